"""Drift on observation spaces other than a flat Box: per-key normalised distances (checked by
hand), Text missions, PixelCartPole measured on its true state with a privileged expert (one
path for `imitate drift` and distillation's state drift; the state recorded, replay only as
the fallback), image features from the clone's encoder, and the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.pixel_cartpole import PixelCartPoleExpert
from imitate import BCConfig, collect, save_policy, train_bc
from imitate.configs import OptimConfig
from imitate.distill import state_drift
from imitate.drift import analyse_drift, disagreement_along, paired_rollouts
from imitate.drift_space import DriftSpaceError, check_drift_space, drift_space, replay_states
from imitate.encoded import EncodedPolicy
from imitate.environments import env_spec
from tests.cli_helpers import run_cli

DICT = "imitate/ObsDict-v0"
PIXELS = "imitate/PixelCartPole-v1"


def _distance(space: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt((((a - b) / space.scale) ** 2).sum(axis=-1))


def test_dict_distance_is_per_key_normalised_by_hand() -> None:
    data = collect(envs.EXPERTS[DICT](), DICT, 2, seed=0)
    space = drift_space(data, DICT)
    assert space.names == ("vec[0]", "vec[1]", "mode=0", "mode=1", "mask[0]", "mask[1]", "mask[2]")
    features = space.features(data)
    vec, mode, mask = data.obs["vec"], data.obs["mode"], data.obs["mask"]
    std = vec.astype(np.float64).std(axis=0)
    i, j = 3, 17
    by_hand = (
        (((vec[i] - vec[j]) / std) ** 2).sum()  # vector: expert-std units
        + float(mode[i] != mode[j])  # discrete: 1 when different
        + float((mask[i] != mask[j]).sum())  # bits: Hamming
    )
    assert _distance(space, features[i], features[j]) == pytest.approx(np.sqrt(by_hand))
    assert _distance(space, features[i], features[i]) == 0.0
    assert "Hamming" in space.note and "discrete" in space.note


def test_text_missions_equal_at_zero_one_replaced_word_at_one() -> None:
    data = collect(envs.EXPERTS["imitate/ObsText-v0"](), "imitate/ObsText-v0", 2, seed=0)
    space = drift_space(data)
    leaf = space.leaves[0]
    rows = leaf.features(
        np.array(["please go left now", "please go left now", "please go right now"])
    )
    assert _distance(space, rows[0], rows[1]) == 0.0
    assert _distance(space, rows[0], rows[2]) == pytest.approx(1.0)
    # a word the expert never said counts in the shared "other" column
    other = leaf.features(np.array(["zzz go left now"]))[0]
    assert other[-1] == 1.0 and _distance(space, rows[0], other) == pytest.approx(1.0)


def test_flat_box_distance_is_unchanged() -> None:
    from agents.heuristics import CartPoleExpert

    data = collect(CartPoleExpert(), "CartPole-v1", 2, seed=0)
    space = drift_space(data, "CartPole-v1")
    assert space.flat and space.state_attribute is None
    np.testing.assert_array_equal(space.features(data), data.obs.astype(np.float64))
    np.testing.assert_allclose(space.scale, data.obs.std(axis=0))


class AlwaysLeft:
    def act(self, obs: Any) -> np.ndarray:
        return np.zeros(len(obs), np.int64)


def test_pixel_cartpole_drift_on_the_true_state_with_a_privileged_expert() -> None:
    expert = PixelCartPoleExpert()
    expert_data = collect(expert, PIXELS, 2, seed=10_000, max_steps=None)
    states = replay_states(PIXELS, expert_data, expert_data.actions)
    assert states is not None and states.shape == (len(expert_data), 4)
    # the replayed state renders the recorded frame (the newest of the stack)
    from envs.pixel_cartpole import render_frames

    np.testing.assert_array_equal(render_frames(states[:5]), expert_data.obs[:5, -1])
    pair = paired_rollouts(expert, AlwaysLeft(), PIXELS, 2, seed=10_000, expert_data=expert_data)
    assert "true state" in pair.note and pair.expert_obs.shape[-1] == 4
    # always pushing left topples the pole within a few dozen steps: it diverges and fails
    assert np.all(np.isfinite(pair.first_divergence)) and np.all(np.isfinite(pair.clone_failure))
    assert pair.clone_data is not None
    # the expert's labels of the clone's states were recorded while the clone drove
    assert 0 < pair.clone_data.actions.mean() < 1
    # a wrong replay (other actions) does not reproduce the frames: refused, not guessed
    assert replay_states(PIXELS, expert_data, 1 - expert_data.actions) is None


def test_analyse_drift_with_a_privileged_expert_counts_its_labels() -> None:
    analysis = analyse_drift(
        PIXELS, PixelCartPoleExpert(), {"left": AlwaysLeft()}, 2, horizons=(10, 20, 40)
    )
    summary = analysis.summaries["left"]
    pair = analysis.pairs["left"]
    assert pair.clone_data is not None
    # disagreement on the clone's states = share of the expert's labels that are not "left"
    expected = float((pair.clone_data.actions != 0).mean())
    assert summary["disagreement_on_clone_states"] == pytest.approx(expected)
    assert summary["horizon_scaling"]["cost"] == "disagreement"
    assert analysis.state_names == [
        "cart position",
        "cart velocity",
        "pole angle",
        "pole angular velocity",
    ]


def test_drift_and_state_drift_give_the_same_numbers_through_one_path() -> None:
    expert = PixelCartPoleExpert()
    ours = state_drift(expert, AlwaysLeft(), PIXELS, episodes=2)  # distillation's report
    analysis = analyse_drift(PIXELS, expert, {"left": AlwaysLeft()}, 2, horizons=(10, 20))
    pair = analysis.pairs["left"]  # what `imitate drift` and `imitate run` report
    np.testing.assert_equal({k: ours[k] for k in pair.summary()}, pair.summary())
    mean = np.nan_to_num(np.nanmean(pair.distance, axis=1), nan=0.0).mean()
    assert ours["mean_state_distance"] == mean  # exactly: the same rollouts and states
    assert "recorded beside each observation" in analysis.note
    # the replay fallback (expert data without recorded states) gives the same numbers
    assert pair.expert_data is not None
    replayed = paired_rollouts(expert, AlwaysLeft(), PIXELS, 2, expert_data=pair.expert_data)
    assert "replaying" in replayed.note
    np.testing.assert_array_equal(replayed.distance, pair.distance)
    np.testing.assert_array_equal(replayed.expert_obs, pair.expert_obs)


class StickyActions(gym.ActionWrapper[Any, Any, Any]):
    """Repeats the previous action with probability 1/4, drawn from an unseeded generator
    (Machado et al. 2018's sticky actions): a seed and the actions chosen do not determine
    the episode."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.rng, self.last = np.random.default_rng(), None

    def reset(self, **kwargs: Any) -> Any:
        self.last = None
        return super().reset(**kwargs)

    def action(self, action: Any) -> Any:
        if self.last is not None and self.rng.random() < 0.25:
            action = self.last
        self.last = action
        return action


def test_the_true_state_is_recorded_where_a_replay_cannot_recover_it() -> None:
    from envs.pixel_cartpole import render_frames

    sticky = env_spec(PIXELS, wrappers=[StickyActions])
    analysis = analyse_drift(
        sticky, PixelCartPoleExpert(), {"left": AlwaysLeft()}, 2, horizons=(10, 20)
    )
    pair = analysis.pairs["left"]
    assert "true state" in analysis.note and pair.expert_obs.shape[-1] == 4
    assert np.all(np.isfinite(pair.first_divergence)) and np.all(np.isfinite(pair.clone_failure))
    assert pair.expert_data is not None
    # the recorded states are the ones that drew the recorded frames
    n = int(pair.expert_data.episode_lengths[0])
    frames = render_frames(pair.expert_obs[0, :n])
    np.testing.assert_array_equal(frames, pair.expert_data.obs[:n, -1])
    # replaying the same seeds and actions gives other episodes: no state from a replay
    assert replay_states(sticky, pair.expert_data, pair.expert_data.actions) is None


def test_image_without_state_uses_the_clone_encoder_and_fails_early_without_one() -> None:
    expert = PixelCartPoleExpert()
    data = collect(expert, PIXELS, 1, seed=0, max_steps=60)
    policy, _ = train_bc(data, BCConfig(optim=OptimConfig(max_steps=5)))
    assert isinstance(policy, EncodedPolicy)
    space = drift_space(data, env=None, clones={"bc": policy})  # no env: no state to replay
    features = space.features(data)
    assert features.shape == (len(data), policy.encoder.out_dim)
    np.testing.assert_allclose(features, policy.encoder.encode_numpy(data.obs), rtol=1e-6)
    with pytest.raises(DriftSpaceError, match="image"):
        drift_space(data, env=None, clones={"left": AlwaysLeft()})
    check_drift_space(data.meta.spaces()[0], PIXELS, {"left": AlwaysLeft()})  # env has a state


def test_disagreement_along_takes_a_dataset_of_any_observation_space() -> None:
    expert: Any = envs.EXPERTS[DICT]()
    demos = collect(expert, DICT, 4, seed=0)
    policy, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=30)))
    analysis = analyse_drift(DICT, expert, {"bc": policy}, 3, horizons=(10, 20))
    data = analysis.pairs["bc"].clone_data
    assert data is not None and isinstance(data.obs, dict)
    along = disagreement_along(expert, policy, data)  # Dict observations
    assert along.shape == (3, int(data.episode_lengths.max()))
    by_hand = (policy.act(data.obs) != expert.act(data.obs)).astype(np.float64)
    np.testing.assert_array_equal(
        along[0, : data.episode_lengths[0]], by_hand[: data.episode_ends[0]]
    )
    np.testing.assert_array_equal(along, analysis.disagreement["bc"][:, : along.shape[1]])
    # a privileged expert: its labels recorded while the clone drove
    pixels = analyse_drift(
        PIXELS, PixelCartPoleExpert(), {"left": AlwaysLeft()}, 2, horizons=(10, 20)
    )
    left = pixels.pairs["left"].clone_data
    assert left is not None
    np.testing.assert_array_equal(
        disagreement_along(PixelCartPoleExpert(), AlwaysLeft(), left),
        pixels.disagreement["left"][:, : int(left.episode_lengths.max())],
    )
    # flat Box: the Dataset and the padded states give the same numbers
    from agents.heuristics import CartPoleExpert

    pair = paired_rollouts(CartPoleExpert(), AlwaysLeft(), "CartPole-v1", 2)
    assert pair.clone_data is not None
    ours = disagreement_along(CartPoleExpert(), AlwaysLeft(), pair.clone_data)
    padded = disagreement_along(CartPoleExpert(), AlwaysLeft(), pair.clone_obs)
    np.testing.assert_array_equal(padded[:, : ours.shape[1]], ours)
    assert (
        np.isnan(padded[:, ours.shape[1] :]).all()
        and np.isnan(ours[0, pair.clone_data.episode_lengths[0] :]).all()
    )


def test_drift_command_on_a_dict_env(capsys, tmp_path: Path) -> None:
    demos = collect(envs.EXPERTS[DICT](), DICT, 6, seed=0)
    policy, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=300)))
    path = save_policy(policy, tmp_path / "bc" / "policy.pt")
    out = tmp_path / "drift"
    argv = ["drift", "--env", DICT, "--policy", str(path), "--episodes", "3"]
    code, _, err = run_cli([*argv, "--horizons", "10", "50", "--out", str(out)], capsys)
    assert code == 0, err
    result = json.loads((out / "drift.json").read_text())
    assert "Per-key normalised" in result["distance"]
    clone = result["clones"]["bc/policy.pt"]
    assert 0.0 <= clone["disagreement_on_clone_states"] <= 1.0 and "nll_on_clone_states" in clone
    assert "Per-key normalised" in (out / "report.md").read_text()
    # --video on a Dict env: refused at the start, in one line
    code, _, err = run_cli([*argv, "--video", "--out", str(tmp_path / "v")], capsys)
    assert code == 2 and err.count("\n") == 1 and "--video needs flat Box" in err, err
    assert not (tmp_path / "v").exists()
