"""The observation envs (envs/obs_envs.py) and pixel CartPole (envs/pixel_cartpole.py):
experts are correct, observations lie in their spaces and batch, pixels follow the state."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.obs_envs import correct_text
from envs.pixel_cartpole import HEIGHT, WIDTH, PixelCartPoleExpert, render_frames
from imitate import observations as ob
from imitate.privileged import EnvPolicy, PrivilegedExpertError, UnwrappedState, is_privileged


@pytest.mark.parametrize("env_id", list(envs.OBS_ENVS))
def test_expert_earns_every_reward(env_id: str) -> None:
    expert = envs.EXPERTS[env_id]()
    vec = gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(4)])
    space = vec.single_observation_space
    raw, _ = vec.reset(seed=0)
    total = np.zeros(4)
    assert gym.spec(env_id).max_episode_steps == envs.OBS_HORIZON == 50  # horizon-aware tools
    for _ in range(50):
        obs = ob.from_vector(raw, space)
        ob.validate(obs, ob.canonical_space(space), 4, env_id)
        actions = expert.act(obs)
        assert actions.shape == (4,) and actions.dtype == np.int64
        raw, reward, terminated, truncated, _ = vec.step(actions)
        total += reward
    assert np.all(total == 50)
    assert bool(truncated.all()) and not terminated.any()
    vec.close()


def test_obs_env_rewards_only_the_correct_action() -> None:
    env = gym.make("imitate/ObsDict-v0")
    obs, _ = env.reset(seed=3)
    expert = envs.EXPERTS["imitate/ObsDict-v0"]()
    rewards = []
    for _ in range(20):
        right = int(expert.act(ob.batch([obs], env.observation_space))[0])
        obs, reward, *_ = env.step((right + 1) % 3)
        rewards.append(reward)
    assert rewards == [0.0] * 20


def test_text_env_expert_reads_the_direction_word() -> None:
    np.testing.assert_array_equal(
        correct_text(np.array(["please go left now", "right", "the agent should stay"])),
        [0, 1, 2],
    )
    env = gym.make("imitate/ObsText-v0")
    obs, _ = env.reset(seed=0)
    assert isinstance(obs, str) and env.observation_space.contains(obs)


def test_all_actions_are_needed() -> None:
    """Each env's expert uses every action (a constant policy cannot pass)."""
    for env_id in envs.OBS_ENVS:
        env = gym.make(env_id)
        obs, _ = env.reset(seed=0)
        seen = set()
        for _ in range(200):
            seen.add(int(envs.EXPERTS[env_id]().act(ob.batch([obs], env.observation_space))[0]))
            obs, *_ = env.step(0)
        assert seen == {0, 1, 2}, env_id


def test_pixel_frames_follow_the_state() -> None:
    upright = render_frames(np.array([[0.0, 0, 0.0, 0]]))[0]
    assert upright.shape == (HEIGHT, WIDTH) and upright.dtype == np.uint8
    np.testing.assert_array_equal(upright, upright[:, ::-1])  # symmetric when centred
    right = render_frames(np.array([[1.0, 0, 0.0, 0]]))[0]
    assert np.argmax(right.sum(axis=0)) > np.argmax(upright.sum(axis=0))  # cart moved right
    lean = render_frames(np.array([[0.0, 0, 0.1, 0]]))[0]
    top_rows = slice(0, 12)
    cols = np.arange(WIDTH)
    centre = lambda f: (f[top_rows] * cols).sum() / f[top_rows].sum()  # noqa: E731
    assert centre(lean) > centre(upright) + 1.0  # pole tip leans right by > 1 px
    tiny = render_frames(np.array([[0.0, 0, 0.01, 0]]))[0]
    assert not np.array_equal(tiny, upright)  # anti-aliasing shows sub-pixel angles


def test_pixel_cartpole_is_cartpole_with_stacked_frames() -> None:
    pixel = gym.make("imitate/PixelCartPole-v1")
    state = gym.make("CartPole-v1")
    frames, _ = pixel.reset(seed=7)
    s, _ = state.reset(seed=7)
    assert pixel.observation_space.contains(frames) and frames.shape == (4, HEIGHT, WIDTH)
    assert all(np.array_equal(frames[i], frames[0]) for i in range(4))
    np.testing.assert_allclose(pixel.unwrapped.state, s)
    for t in range(5):
        frames, r1, *_ = pixel.step(t % 2)
        s, r2, *_ = state.step(t % 2)
        assert r1 == r2
        np.testing.assert_allclose(pixel.unwrapped.state, s, rtol=1e-6)
        np.testing.assert_array_equal(frames[-1], render_frames(s[None])[0])
    pixel.close()
    state.close()


def test_privileged_pixel_expert_balances_from_the_state() -> None:
    expert = PixelCartPoleExpert()
    assert isinstance(expert, EnvPolicy) and is_privileged(expert)
    vec = gym.vector.SyncVectorEnv([lambda: gym.make("imitate/PixelCartPole-v1")] * 3)
    obs, _ = vec.reset(seed=[0, 1, 2])
    total = np.zeros(3)
    done = np.zeros(3, bool)
    starts = np.ones(3, bool)
    while not done.all():
        actions = expert.act_envs(vec.envs, obs, starts, None)
        obs, reward, terminated, truncated, _ = vec.step(actions)
        total += reward * ~done
        done |= terminated | truncated
        starts[:] = False
    assert np.all(total == 500)
    with pytest.raises(TypeError, match="true state"):
        expert.act(obs)
    vec.close()


def test_unwrapped_state_adapter() -> None:
    class Sign:
        def act(self, states: np.ndarray) -> np.ndarray:
            return (states[:, 2] > 0).astype(np.int64)

    adapter = UnwrappedState(Sign())
    env = gym.make("imitate/PixelCartPole-v1")
    env.reset(seed=0)
    env.unwrapped.inner.state = np.array([0.0, 0.0, 0.05, 0.0])
    assert adapter.act_envs([env], None, np.array([True]), None).tolist() == [1]
    with pytest.raises(PrivilegedExpertError):
        adapter.act(np.zeros((1, 4, HEIGHT, WIDTH), np.uint8))
