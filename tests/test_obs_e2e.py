"""End to end on every observation env: collect -> BC -> eval -> checkpoint -> ONNX export
parity; an unsupported observation space fails at the start, in one line (exit 2)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import envs
from imitate import BCConfig, collect, evaluate, train_bc
from imitate import observations as ob
from imitate.configs import OptimConfig
from imitate.data import load_dataset
from imitate.encoded import EncodedPolicy
from imitate.errors import UnsupportedSpaceError
from imitate.policy import load_policy, save_policy
from imitate.spaces import space_text
from tests.cli_helpers import run_cli


@pytest.mark.parametrize("env_id", list(envs.OBS_ENVS))
def test_collect_bc_eval_export(env_id: str, tmp_path: Path) -> None:
    expert = envs.EXPERTS[env_id]()
    demos = collect(expert, env_id, 30, seed=0, num_envs=8)
    assert len(demos) == 1500 and np.all(demos.episode_returns == 50)
    demos = load_dataset(demos.save(tmp_path / "demos.npz"))  # through the file format
    policy, history = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=1500)))
    assert isinstance(policy, EncodedPolicy) and history.trainer == "torch"
    result = evaluate(policy, env_id, 20, seed=10_000)
    assert result.mean_return >= 0.95 * 50, result  # the expert earns 50
    loaded = load_policy(save_policy(policy, tmp_path / "policy.pt"))
    held_out = collect(expert, env_id, 4, seed=500)
    np.testing.assert_array_equal(loaded.act(held_out.obs), policy.act(held_out.obs))
    pytest.importorskip("onnxruntime")
    from imitate.export.onnx import OnnxEncodedPolicy, export_onnx

    onnx = OnnxEncodedPolicy(export_onnx(loaded, tmp_path / "policy.onnx"), loaded.encoder)
    np.testing.assert_array_equal(onnx.act(held_out.obs), policy.act(held_out.obs))


class SequenceObsEnv(gym.Env[Any, int]):
    """Observations of a space imitate has no encoder for (a variable-length Sequence)."""

    observation_space = gym.spaces.Sequence(gym.spaces.Discrete(3))
    action_space = gym.spaces.Discrete(2)
    steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return (0, 1), {}

    def step(self, action: int):
        SequenceObsEnv.steps += 1
        return (1,), 0.0, True, False, {}


class ZeroExpert:
    def act(self, obs: Any) -> np.ndarray:
        return np.zeros(len(obs), np.int64)


def test_unsupported_observation_space_fails_before_any_step(capsys, tmp_path: Path) -> None:
    if "tmp/SequenceObs-v0" not in gym.registry:
        gym.register("tmp/SequenceObs-v0", entry_point=SequenceObsEnv)
    with pytest.raises(UnsupportedSpaceError, match="unsupported observation space Sequence"):
        collect(ZeroExpert(), "tmp/SequenceObs-v0", 2, seed=0)
    assert SequenceObsEnv.steps == 0
    out = tmp_path / "d.npz"
    code, _, err = run_cli(
        [
            "collect",
            "--env",
            "tmp/SequenceObs-v0",
            "--expert",
            "tests.test_obs_e2e:ZeroExpert",
            "--episodes",
            "2",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imitate: error:"), err
    assert "Sequence" in lines[0]
    assert SequenceObsEnv.steps == 0 and not out.exists()


class DictSequenceObsEnv(SequenceObsEnv):
    """A Dict observation space with one unsupported entry, under a key."""

    observation_space = gym.spaces.Dict(
        {"pos": gym.spaces.Discrete(3), "s": gym.spaces.Sequence(gym.spaces.Discrete(3))}
    )


def test_an_unsupported_entry_is_named_by_its_key(capsys, tmp_path: Path) -> None:
    """The message names where the unsupported subspace is, not only what it is (a real
    Dict space prints long); with a step limit too, whose memory estimate reads the space
    before collect checks it."""
    if "tmp/DictSequenceObs-v0" not in gym.registry:
        gym.register("tmp/DictSequenceObs-v0", entry_point=DictSequenceObsEnv, max_episode_steps=50)
    expected = "observation key 's': unsupported observation space Sequence(Discrete(3)"
    with pytest.raises(UnsupportedSpaceError, match=re.escape(expected)):
        collect(ZeroExpert(), "tmp/DictSequenceObs-v0", 2, seed=0)
    out = tmp_path / "d.npz"
    args = ["collect", "--env", "tmp/DictSequenceObs-v0", "--expert"]
    args += ["tests.test_obs_e2e:ZeroExpert", "--episodes", "2", "--out", str(out)]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and err.startswith(f"imitate: error: {expected}") and err.count("\n") == 1
    assert SequenceObsEnv.steps == 0 and not out.exists()


def test_text_vocabulary_travels_in_the_checkpoint(tmp_path: Path) -> None:
    demos = collect(envs.EXPERTS["imitate/ObsText-v0"](), "imitate/ObsText-v0", 4, seed=0)
    policy, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=50)))
    path = save_policy(policy, tmp_path / "p.pt")
    from imitate import runtime

    header = runtime.read_checkpoint(path)
    vocabulary = header["constructor"]["encoder"]["vocabulary"]
    assert {"left", "right", "stay"} <= set(vocabulary)
    assert isinstance(ob.canonical_space(load_policy(path).observation_space), gym.spaces.Text)


def test_text_encoder_width_and_words_kept_come_from_the_policy_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--policy.text-dim`` / ``--policy.max-tokens`` reach the Text encoder and its
    checkpoint; out-of-range values are one line naming the flag."""
    from imitate.configs import PolicyConfig
    from imitate.encoders import TextEncoder

    demos = collect(envs.EXPERTS["imitate/ObsText-v0"](), "imitate/ObsText-v0", 2, seed=0)
    config = BCConfig(policy=PolicyConfig(text_dim=8, max_tokens=3), optim=OptimConfig(max_steps=5))
    policy, _ = train_bc(demos, config)
    assert isinstance(policy, EncodedPolicy) and isinstance(policy.encoder, TextEncoder)
    loaded = load_policy(save_policy(policy, tmp_path / "p.pt"))
    assert isinstance(loaded, EncodedPolicy) and isinstance(loaded.encoder, TextEncoder)
    assert loaded.encoder.max_tokens == 3 and loaded.encoder.embedding.embedding_dim == 8
    code, _, err = run_cli(["bc", "--data", "x.npz", "--policy.max-tokens", "0"], capsys)
    assert code == 2 and err == "imitate: error: --policy.max-tokens must be >= 1, got 0\n"


def test_command_line_on_a_dict_env(capsys, tmp_path: Path) -> None:
    data, run = tmp_path / "d.npz", tmp_path / "run"
    code, _, err = run_cli(
        ["collect", "--env", "imitate/ObsDict-v0", "--episodes", "10", "--out", str(data)],
        capsys,
    )
    assert code == 0, err
    code, _, err = run_cli(
        ["bc", "--data", str(data), "--max-steps", "600", "--out", str(run)], capsys
    )
    assert code == 0, err
    policy = run / "policy.pt"
    code, out, err = run_cli(["eval", "--policy", str(policy), "--episodes", "5"], capsys)
    assert code == 0 and "mean_return" in out, err
    code, _, err = run_cli(
        ["eval", "--policy", str(policy), "--env", "imitate/ObsTuple-v0", "--episodes", "2"],
        capsys,
    )
    assert code == 2 and err.count("\n") == 1 and "imitate: error:" in err
    assert "observations Dict(" in err and "None" not in err  # the spaces are named
    code, _, err = run_cli(
        ["eval", "--policy", str(policy), "--env", "CartPole-v1", "--episodes", "2"], capsys
    )
    cartpole = space_text(gym.make("CartPole-v1").observation_space)  # the same form as Dict's
    assert code == 2 and "observations Dict(" in err and f"has {cartpole} and" in err, err
    if "tmp/SequenceObs-v0" not in gym.registry:
        gym.register("tmp/SequenceObs-v0", entry_point=SequenceObsEnv)
    code, _, err = run_cli(
        ["eval", "--policy", str(policy), "--env", "tmp/SequenceObs-v0", "--episodes", "2"],
        capsys,
    )  # the env's space is unsupported: the same line as collect gives, before any step
    assert code == 2 and "unsupported observation space Sequence" in err, err
    code, _, err = run_cli(
        ["export", "--policy", str(data), "--format", "onnx", "--out", str(tmp_path / "y")],
        capsys,
    )  # a dataset given as the policy
    assert code == 2 and "an .npz file" in err and "inline_container" not in err, err
    code, _, err = run_cli(["dagger", "--resume", str(run)], capsys)  # a bc folder
    assert code == 2 and "holds a 'bc' run, not a 'dagger' one" in err, err
    code, _, err = run_cli(
        ["export", "--policy", str(policy), "--format", "onnx", "--out", str(tmp_path / "x")],
        capsys,
    )
    assert code == 0 and (tmp_path / "x" / "policy.onnx").is_file(), err
    code, _, err = run_cli(
        ["export", "--policy", str(policy), "--format", "c", "--out", str(tmp_path / "c")],
        capsys,
    )
    assert code == 0 and (tmp_path / "c" / "policy.c").is_file(), err  # issue 19: C for Dict
    code, _, err = run_cli(
        ["export", "--policy", str(policy), "--format", "sb3", "--out", str(tmp_path / "s")],
        capsys,
    )
    assert code == 2 and "exports to onnx" in err


class PeekingExpert:
    """A privileged expert of the observation envs: reads the env's current observation
    from the env object itself (``env.unwrapped._obs``), not from ``obs``."""

    def __init__(self, kind: str) -> None:
        self.expert = envs.EXPERTS[f"imitate/Obs{kind}-v0"]()
        self.calls = 0

    def act_envs(self, env_list: Any, obs: Any, starts: np.ndarray, taken: Any) -> np.ndarray:
        from envs.obs_envs import _as_batch

        self.calls += len(env_list)
        return np.concatenate([self.expert.act(_as_batch(e.unwrapped._obs)) for e in env_list])


def test_privileged_mixture_records_the_expert_labels_while_the_learner_acts() -> None:
    from imitate.privileged import PrivilegedMixture

    class Zero:
        def act(self, obs: Any) -> np.ndarray:
            return np.zeros(ob.obs_len(obs), np.int64)

    expert = PeekingExpert("Dict")
    mixture = PrivilegedMixture(expert, Zero(), beta=0.0, rng=np.random.default_rng(0))
    data = collect(mixture, "imitate/ObsDict-v0", 6, seed=0, num_envs=3)
    assert expert.calls == len(data) == 300
    # the labels are the expert's, in every state the learner drove through ...
    np.testing.assert_array_equal(data.actions, envs.EXPERTS["imitate/ObsDict-v0"]().act(data.obs))
    # ... and the learner's action (always 0) was executed: rewarded exactly where 0 is right
    np.testing.assert_array_equal(data.rewards, (data.actions == 0).astype(np.float32))


def test_dagger_with_a_privileged_expert() -> None:
    from imitate.configs import DAggerConfig
    from imitate.dagger import dagger
    from imitate.errors import ImitateError

    config = DAggerConfig(
        rounds=2,
        steps_per_round=200,
        eval_episodes=0,
        bc=BCConfig(optim=OptimConfig(max_steps=300)),
    )
    expert = PeekingExpert("Tuple")
    policy, history = dagger("imitate/ObsTuple-v0", expert, config)
    assert [r.labelled for r in history.rounds] == [r.states for r in history.rounds]
    assert history.rounds[-1].expert_labels == expert.calls == sum(r.states for r in history.rounds)
    result = evaluate(policy, "imitate/ObsTuple-v0", 10, seed=10_000)
    assert result.mean_return >= 0.9 * 50
    with pytest.raises(ImitateError, match="gate none"):
        dagger("imitate/ObsTuple-v0", expert, replace_gate(config))


def replace_gate(config: Any) -> Any:
    from dataclasses import replace

    return replace(config, gate="entropy")
