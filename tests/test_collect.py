"""Vectorised collection and seeded evaluation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents.heuristics import AcrobotExpert, CartPoleExpert
from imitate import Dataset, EnvError, collect, evaluate
from imitate.collect import make_vec_env


class RandomPolicy:
    """Uniform random actions from an explicit generator."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.rng = n, np.random.default_rng(seed)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.integers(0, self.n, len(obs))


def _single_env_episode(policy: object, env_id: str, seed: int) -> tuple[np.ndarray, float]:
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    observations, total, done = [], 0.0, False
    while not done:
        observations.append(obs)
        action = policy.act(obs[None])[0]  # type: ignore[attr-defined]
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
    return np.array(observations), total


def test_per_episode_seeding_does_not_depend_on_num_envs() -> None:
    expert = AcrobotExpert()
    a = collect(expert, "Acrobot-v1", 5, seed=3, num_envs=1, seeding="per-episode")
    b = collect(expert, "Acrobot-v1", 5, seed=3, num_envs=4, seeding="per-episode")
    for name, array in a.arrays().items():
        np.testing.assert_array_equal(getattr(b, name), array)
    first_obs, first_return = _single_env_episode(expert, "Acrobot-v1", seed=3 + 2)
    picked = a.select_episodes([2])
    np.testing.assert_allclose(picked.obs, first_obs)
    assert picked.episode_returns[0] == pytest.approx(first_return)


def test_evaluate_episode_i_uses_seed_plus_i() -> None:
    expert = AcrobotExpert()
    result = evaluate(expert, "Acrobot-v1", n_episodes=3, seed=100, num_envs=2)
    for i in range(3):
        _, expected = _single_env_episode(expert, "Acrobot-v1", seed=100 + i)
        assert result.returns[i] == pytest.approx(expected)
    assert result.lengths.tolist() == [int(-r) + 1 for r in result.returns]


def _check_complete_episodes(dataset: Dataset, max_len: int) -> None:
    ends = dataset.episode_ends - 1
    done = dataset.terminated | dataset.truncated
    assert done[ends].all(), "every episode ends on a terminal or truncated step"
    assert done.sum() == dataset.n_episodes, "no terminal step inside an episode"
    assert dataset.episode_lengths.max() <= max_len


def test_stream_mode_handles_next_step_autoreset() -> None:
    dataset = collect(RandomPolicy(2, 0), "CartPole-v1", 40, seed=1, num_envs=8, seeding="stream")
    assert dataset.meta.seeding == "stream"
    assert dataset.n_episodes == 40
    _check_complete_episodes(dataset, 500)
    # Every episode starts from a fresh reset state (|s| <= 0.05), never from a terminal one.
    first_obs = dataset.obs[dataset.episode_starts]
    assert np.abs(first_obs).max() <= 0.05
    np.testing.assert_allclose(dataset.episode_returns, dataset.episode_lengths)
    again = collect(RandomPolicy(2, 0), "CartPole-v1", 40, seed=1, num_envs=8, seeding="stream")
    np.testing.assert_array_equal(again.obs, dataset.obs)


def test_auto_seeding_uses_native_vector_env_where_available() -> None:
    assert type(make_vec_env("CartPole-v1", 2).unwrapped).__name__ == "CartPoleVectorEnv"
    dataset = collect(CartPoleExpert(), "CartPole-v1", 3, seed=0, num_envs=2)
    assert dataset.meta.seeding == "stream" and len(dataset) == 1500
    assert collect(AcrobotExpert(), "Acrobot-v1", 2, seed=0).meta.seeding == "per-episode"


def test_per_episode_mode_keeps_only_complete_episodes() -> None:
    dataset = collect(RandomPolicy(3, 0), "Acrobot-v1", 3, seed=0, num_envs=2)
    _check_complete_episodes(dataset, 500)
    assert dataset.truncated[dataset.episode_ends - 1].all()  # random play never swings up


def test_unknown_env_is_an_env_error() -> None:
    with pytest.raises(EnvError, match="unknown env id 'NoSuchEnv-v0'"):
        collect(CartPoleExpert(), "NoSuchEnv-v0", 1, seed=0)


class AlternatingCounter:
    """A RecurrentPolicy whose state counts the steps of its episode: action = count % 2."""

    def initial_state(self, batch: int) -> np.ndarray:
        return np.zeros((batch, 1))

    def step(self, obs: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (state[:, 0] % 2).astype(np.int64), state + 1

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.step(obs, self.initial_state(len(obs)))[0]


@pytest.mark.parametrize("seeding", ["per-episode", "stream"])
def test_recurrent_state_is_carried_per_slot_and_reset_each_episode(seeding: str) -> None:
    data = collect(AlternatingCounter(), "CartPole-v1", 7, seed=0, num_envs=3, seeding=seeding)  # type: ignore[arg-type]
    for start, length in zip(data.episode_starts, data.episode_lengths, strict=True):
        np.testing.assert_array_equal(data.actions[start : start + length], np.arange(length) % 2)
