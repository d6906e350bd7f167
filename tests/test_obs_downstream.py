"""Downstream of the observation encoders: Minari round trips of Dict/Tuple/Discrete/
MultiBinary/Text datasets (and a Dict dataset written by Minari's own collector), calibration
against a privileged pixel expert, OOD scores of an encoded policy, and a sweep on a Dict env."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.pixel_cartpole import PixelCartPoleExpert
from imitate import BCConfig, collect, evaluate, train_bc
from imitate.configs import EarlyStopConfig, OptimConfig
from imitate.encoded import EncodedPolicy
from imitate.minari_io import export_minari, import_minari
from tests.cli_helpers import run_cli

DICT = "imitate/ObsDict-v0"
PIXELS = "imitate/PixelCartPole-v1"


@pytest.fixture
def minari_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


@pytest.mark.parametrize("env_id", [*envs.OBS_ENVS, PIXELS])
def test_minari_round_trip_is_exact(env_id: str, minari_root: Path) -> None:
    demos = collect(envs.EXPERTS[env_id](), env_id, 3, seed=0, max_steps=300)
    name = "imitate/" + env_id.split("/")[1].split("-")[0].lower() + "/test-v0"
    export_minari(demos, name)
    back = import_minari(name)
    assert back.arrays().keys() == demos.arrays().keys()
    for key, array in demos.arrays().items():  # every leaf, final_obs included, dtype kept
        assert getattr(back, key.split("/")[0]) is not None
        np.testing.assert_array_equal(back.arrays()[key], array, err_msg=key)
        assert back.arrays()[key].dtype == array.dtype, key
    assert back.meta.observation_space == demos.meta.observation_space


def test_a_dict_dataset_written_by_minari_trains_bc(minari_root: Path) -> None:
    """A Minari dataset written with Minari's own API (as a foreign dataset is: no imitate
    metadata), Dict observations as per-key arrays of T + 1 rows per episode."""
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    from envs.obs_envs import _as_batch

    expert, buffers = envs.EXPERTS[DICT](), []
    for episode in range(6):
        env = gym.make(DICT)
        obs, _ = env.reset(seed=episode)
        steps, actions, rewards, done = [obs], [], [], False
        while not done:
            action = int(expert.act(_as_batch(obs))[0])
            obs, reward, terminated, truncated, _ = env.step(action)
            steps.append(obs)
            actions.append(action)
            rewards.append(reward)
            done = terminated or truncated
        buffers.append(
            EpisodeBuffer(
                id=episode,
                observations={k: np.stack([o[k] for o in steps]) for k in steps[0]},
                actions=np.array(actions),
                rewards=np.array(rewards),
                terminations=np.zeros(len(actions), bool),
                truncations=np.arange(len(actions)) == len(actions) - 1,
            )
        )
    minari.create_dataset_from_buffers(
        "foreign/dict/expert-v0",
        buffers,
        env=gym.spec(DICT),
        eval_env=gym.spec(DICT),
        description="a Dict dataset written by Minari's own API",
        algorithm_name="table",
        author="test",
        author_email="",
        code_permalink="",
        observation_space=gym.make(DICT).observation_space,
        action_space=gym.spaces.Discrete(3),
    )
    data = import_minari("foreign/dict/expert-v0")  # no imitate metadata: built from Minari's
    assert data.meta.env_id == DICT and data.meta.source == "minari:foreign/dict/expert-v0"
    assert set(data.obs) == {"vec", "mode", "mask"} and data.obs["mode"].dtype == np.int64
    assert data.obs["mask"].dtype == np.int8 and len(data) == 300
    np.testing.assert_array_equal(data.actions, expert.act(data.obs))
    policy, _ = train_bc(data, BCConfig(optim=OptimConfig(max_steps=1200)))
    assert evaluate(policy, DICT, 10, seed=10_000).mean_return >= 0.9 * 50


def test_calibration_against_a_privileged_pixel_expert(tmp_path: Path) -> None:
    from imitate.evaluation import calibration_report
    from imitate.privileged import PrivilegedMixture

    demos = collect(PixelCartPoleExpert(), PIXELS, 1, seed=0, max_steps=200)
    policy, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=20)))
    assert isinstance(policy, EncodedPolicy)
    report = calibration_report(policy.numpy_snapshot(), PixelCartPoleExpert(), PIXELS, seed=7)
    # the same rollout by hand: the state expert labels every state the student drives into
    from imitate.constants import CALIBRATION_EPISODES, CALIBRATION_MAX_STEPS

    snapshot = policy.numpy_snapshot()
    mixture = PrivilegedMixture(PixelCartPoleExpert(), snapshot, 0.0, np.random.default_rng(7))
    data = collect(mixture, PIXELS, CALIBRATION_EPISODES, 7, max_steps=CALIBRATION_MAX_STEPS)
    assert report["states"] == len(data)
    agreement = float((snapshot.act(data.obs) == data.actions).mean())
    assert report["accuracy"] == pytest.approx(agreement)
    assert 0.0 <= report["ece"] <= 1.0 and report["nll_bits_per_action"] > 0


def test_eval_and_ood_commands_on_an_encoded_dict_policy(tmp_path: Path, capsys) -> None:
    data, run = tmp_path / "d.npz", tmp_path / "bc"
    code, _, err = run_cli(
        ["collect", "--env", DICT, "--episodes", "6", "--out", str(data)], capsys
    )
    assert code == 0, err
    code, _, err = run_cli(
        ["bc", "--data", str(data), "--max-steps", "300", "--out", str(run)], capsys
    )
    assert code == 0, err
    policy = run / "policy.pt"
    code, out, err = run_cli(
        [
            "eval",
            "--policy",
            str(policy),
            "--episodes",
            "3",
            "--out",
            str(tmp_path / "e"),
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    calibration = json.loads(out)["calibration"]
    assert calibration["expert"] == "heuristic" and calibration["states"] > 0
    assert 0.0 <= calibration["ece"] <= 1.0 and 0.0 <= calibration["accuracy"] <= 1.0
    argv = ["ood", "--policy", str(policy), "--env", DICT, "--episodes", "3", "--data", str(data)]
    code, out, err = run_cli([*argv, "--out", str(tmp_path / "o"), "--json"], capsys)
    assert code == 0, err
    ood = json.loads(out)
    assert ood["in_states"] == 150 and ood["clone_states"] == 150
    # observations are i.i.d. here: the clone never leaves the support, so the fallback
    # out-states are random observations of the space (and the report says so)
    assert ood["out_source"] == "uniformly random observations of the space"
    assert 0.0 <= ood["energy"]["auroc"] <= 1.0
    assert (tmp_path / "o" / "roc.png").is_file()


def test_sweep_on_a_dict_env() -> None:
    from imitate.sweep import SweepConfig, parse_axis, run_sweep

    config = SweepConfig(
        env_id=DICT,
        axes=(parse_axis("episodes=1,4"),),
        seeds=(0,),
        eval_episodes=3,
        bc=BCConfig(optim=OptimConfig(max_steps=400), early_stop=EarlyStopConfig(eval_every=100)),
    )
    rows = run_sweep(envs.EXPERTS[DICT](), config)
    assert [r["transitions"] for r in rows] == [50, 200]
    assert all(np.isfinite(r["holdout_bits_per_action"]) for r in rows)
    assert rows[1]["mean_return"] >= 0.8 * 50  # the expert earns 50
