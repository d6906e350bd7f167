"""A user's own env: ``--env module:EnvId --env-kwargs``, EnvSpec/factory/wrappers in Python,
and the env, expert and seeds recorded with every dataset and checkpoint."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from cli_helpers import run_cli as cli

from imitate import BCConfig, OptimConfig, collect, evaluate, load_dataset, train_bc
from imitate.environments import env_record, env_spec, parse_env_kwargs, spec_of_record
from imitate.errors import EnvError
from imitate.policy import load_policy, save_policy

TESTS = Path(__file__).resolve().parent
LINE = "mypkg.envs:Line-v0"


@pytest.fixture(autouse=True)
def importable_mypkg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS))


def checkpoint_config(path: Path) -> dict[str, object]:
    from imitate.runtime import read_checkpoint

    return dict(read_checkpoint(path)["config"])


def test_env_kwargs_parse_as_json_python_or_text() -> None:
    assert parse_env_kwargs(["size=5", "continuous=True", "mode=fast", "gains=[1, 2]"]) == {
        "size": 5,
        "continuous": True,
        "mode": "fast",
        "gains": [1, 2],
    }
    with pytest.raises(EnvError, match="key=value"):
        parse_env_kwargs(["size"])


def test_module_env_id_kwargs_and_wrappers_reach_every_rollout() -> None:
    from mypkg.envs import LineExpert, NegateReward

    spec = env_spec(LINE, {"size": 5}, wrappers=[NegateReward])
    assert spec.id == LINE and spec.kwargs == {"size": 5}
    demos = collect(LineExpert(), spec, 4, seed=0)
    assert demos.obs.shape[1] == 5 and (demos.rewards == 1.0).all()  # kwargs and wrapper
    assert demos.meta.env_kwargs == {"size": 5}
    assert [w["entry_point"] for w in demos.meta.env_wrappers] == ["mypkg.envs:NegateReward"]
    again = demos.meta.env()  # the recorded env, rebuilt
    result = evaluate(LineExpert(), again, 4, seed=0)
    np.testing.assert_array_equal(result.returns, demos.episode_returns)
    assert env_record(spec_of_record(env_record(spec))) == env_record(spec)


def test_python_api_takes_a_spec_or_a_factory_and_refuses_an_instance() -> None:
    from mypkg.envs import LineEnv, LineExpert

    def make_line() -> gym.Env[np.ndarray, int]:
        return gym.wrappers.TimeLimit(LineEnv(size=4), 50)

    by_factory = collect(LineExpert(), make_line, 3, seed=1)
    by_spec = collect(LineExpert(), env_spec(LINE, {"size": 4}), 3, seed=1)
    np.testing.assert_array_equal(by_factory.obs, by_spec.obs)
    assert by_factory.meta.env_id == "make_line"  # a factory is recorded by name only
    with pytest.raises(EnvError, match="factory"):
        collect(LineExpert(), LineEnv(), 1, seed=0)  # type: ignore[arg-type]


def test_python_checkpoints_record_env_expert_and_seed(tmp_path: Path) -> None:
    from agents.registry import resolve_expert

    env = env_spec(LINE, {"size": 5})
    expert = resolve_expert("mypkg.envs:LineExpert", env)
    demos = collect(expert, env, 5, seed=3)
    assert demos.meta.source == "mypkg.envs:LineExpert"
    assert demos.meta.expert == {"spec": "mypkg.envs:LineExpert", "kind": "python"}
    policy, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=200)))
    config = checkpoint_config(save_policy(policy, tmp_path / "p.pt"))
    assert config["env_id"] == LINE and config["env_kwargs"] == {"size": 5}
    assert config["expert"] == "mypkg.envs:LineExpert" and config["data_seed"] == 3
    assert load_policy(tmp_path / "p.pt").provenance["env_kwargs"] == {"size": 5}


def test_cli_collect_bc_eval_dagger_on_a_module_env_with_kwargs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = ["--env", LINE, "--env-kwargs", "size=5"]
    expert = ["--expert", "mypkg.envs:LineExpert"]
    data = tmp_path / "d.npz"
    code, _, err = cli(["collect", *env, *expert, "--episodes", "5", "--out", str(data)], capsys)
    assert code == 0, err
    meta = load_dataset(data).meta
    assert (meta.env_id, meta.env_kwargs, meta.source) == (LINE, {"size": 5}, expert[1])
    bc = tmp_path / "bc"
    args = ["bc", "--data", str(data), "--out", str(bc), "--eval-episodes", "5", "--max-steps"]
    code, out, err = cli([*args, "300", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["eval"]["mean_length"] < 5  # on the 5-cell line, as recorded
    config = checkpoint_config(bc / "policy.pt")
    assert config["env_kwargs"] == {"size": 5} and config["expert"] == expert[1]
    # eval: the env comes back from the checkpoint, kwargs included; calibration names its expert
    code, out, err = cli(
        ["eval", "--policy", str(bc / "policy.pt"), "--episodes", "5", "--json"], capsys
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["env"] == LINE
    # the recorded expert is user code: named, never imported because a checkpoint says so
    assert f"pass --expert {expert[1]}" in result["calibration"]["skipped"]
    args = ["eval", "--policy", str(bc / "policy.pt"), "--episodes", "3", *expert, "--json"]
    code, out, err = cli(args, capsys)
    assert code == 0, err
    assert json.loads(out)["calibration"]["expert_from"] == "--expert"
    # the default size (10) is another observation space: one line, exit 2
    code, _, err = cli(["eval", "--policy", str(bc / "policy.pt"), "--env", LINE], capsys)
    assert code == 2 and err.startswith("imitate: error:") and err.count("\n") == 1
    dagger = tmp_path / "dagger"
    code, out, err = cli(
        ["dagger", *env, *expert, "--out", str(dagger), "--rounds", "2", "--steps-per-round",
         "100", "--eval-episodes", "3", "--no-compare-bc", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert checkpoint_config(dagger / "policy.pt")["env_kwargs"] == {"size": 5}


@pytest.mark.slow
def test_cli_run_on_a_module_env_with_kwargs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(
        ["run", "--env", LINE, "--env-kwargs", "size=5", "--expert", "mypkg.envs:LineExpert",
         "--out", str(tmp_path / "run"), "--episodes", "2", "--demo-counts", "1",
         "--eval-episodes", "5", "--drift-episodes", "3", "--horizons", "5", "10",
         "--exports", "numpy", "--dagger.rounds", "2", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["env"] == LINE
    assert load_dataset(tmp_path / "run" / "demos.npz").meta.env_kwargs == {"size": 5}
    assert checkpoint_config(tmp_path / "run" / "dagger" / "policy.pt")["env_kwargs"] == {"size": 5}


@pytest.mark.slow
def test_cli_drift_ood_distill_take_env_kwargs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mypkg.envs import LineExpert

    demos = collect(LineExpert(), env_spec(LINE, {"size": 5}), 5, seed=0)
    policy, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=200)))
    path = save_policy(policy, tmp_path / "p.pt")
    env = ["--env", LINE, "--env-kwargs", "size=5"]
    expert = ["--expert", "mypkg.envs:LineExpert"]
    for command in (
        ["drift", *env, *expert, "--policy", str(path), "--episodes", "3", "--horizons", "5", "10"],
        ["ood", *env, *expert, "--policy", str(path), "--episodes", "3"],
        ["distill", *env, "--teacher", str(path), "--eval-episodes", "3"],
    ):
        out = ["--out", str(tmp_path / command[0]), "--json"]
        code, _, err = cli([*command, *out], capsys)
        assert code == 0, (command[0], err)
    student = checkpoint_config(tmp_path / "distill" / "policy.pt")
    assert student["env_kwargs"] == {"size": 5}
    code, _, err = cli(["drift", "--env", LINE, "--policy", str(path), "--expert",
                        "mypkg.envs:LineExpert"], capsys)  # fmt: skip
    assert code == 2 and "imitate: error:" in err  # size 10 by default: another space


def test_eval_skips_calibration_with_a_note_when_no_expert_is_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agents.heuristics import CartPoleExpert

    demos = collect(CartPoleExpert(), "CartPole-v1", 2, seed=0)  # a bare object: no provenance
    policy, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=200)))
    path = save_policy(policy, tmp_path / "p.pt")
    code, out, err = cli(["eval", "--policy", str(path), "--episodes", "2", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["calibration"] == {
        "skipped": "no expert recorded with the policy: pass --expert to calibrate"
    }
    args = ["eval", "--policy", str(path), "--episodes", "2", "--expert", "heuristic", "--json"]
    code, out, err = cli(args, capsys)
    assert code == 0, err
    assert json.loads(out)["calibration"]["expert_from"] == "--expert"
    recorded = save_policy(policy, tmp_path / "q.pt", {"expert": "heuristic"})
    args = ["eval", "--policy", str(recorded), "--episodes", "2", "--json"]
    code, out, err = cli(args, capsys)
    assert code == 0, err
    assert json.loads(out)["calibration"]["expert_from"] == "recorded with the policy"


def test_minari_import_restores_env_kwargs_of_a_foreign_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Minari dataset not written by imitate: its env spec's kwargs are kept on import."""
    import minari
    from minari.data_collector import EpisodeBuffer

    from imitate.minari_io import import_minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    spec = env_spec("LunarLander-v3", {"continuous": True})
    rng = np.random.default_rng(0)

    class Random:
        def act(self, obs: np.ndarray) -> np.ndarray:
            return rng.uniform(-1, 1, (len(obs), 2)).astype(np.float32)

    demos = collect(Random(), spec, 2, seed=0)
    buffers = []
    for e, (start, end) in enumerate(zip(demos.episode_starts, demos.episode_ends, strict=True)):
        assert demos.final_obs is not None
        buffers.append(
            EpisodeBuffer(
                id=e,
                observations=np.concatenate([demos.obs[start:end], demos.final_obs[e : e + 1]]),
                actions=demos.actions[start:end],
                rewards=demos.rewards[start:end],
                terminations=demos.terminated[start:end],
                truncations=demos.truncated[start:end],
                infos={},
            )
        )
    minari.create_dataset_from_buffers(
        "test/lander-continuous-v0", buffers, env=spec, algorithm_name="random",
        author="t", author_email="", code_permalink="", description="foreign",
    )  # fmt: skip
    back = import_minari("test/lander-continuous-v0")
    assert back.meta.env_id == "LunarLander-v3" and back.meta.env_kwargs == {"continuous": True}
    policy, _ = train_bc(back, BCConfig(optim=OptimConfig(max_steps=50)))
    assert evaluate(policy, back.meta.env(), 1, seed=0).lengths[0] > 0  # the Box env, not Discrete


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
