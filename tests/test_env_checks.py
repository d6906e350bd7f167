"""Env and flag checks of the CLI found on a fresh clone: no BabyAI bot for plain MiniGrid
envs, an env constructor's ValueError, distill's two teacher flags, eval on another env
(recorded calibration expert, spaces), the int8 C export's refusals before calibration
(an unsupported policy, an env with other spaces), and no empty folder left by an
interrupted command."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from imitate.spaces import space_text
from tests.cli_helpers import run_cli


def _forbid(monkeypatch: pytest.MonkeyPatch, module: str, name: str, what: str) -> list[Any]:
    """Replace ``module.name`` by a function that records its call and fails the test with
    ``what`` (before the refusal); the returned list holds the calls (empty: none)."""
    import importlib

    calls: list[Any] = []

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        raise AssertionError(f"{what} before the refusal")

    # importlib: ``imitate.collect`` as an attribute of the package is the function
    monkeypatch.setattr(importlib.import_module(module), name, forbidden)
    return calls


def _clone(root: Path, collect_flags: list[str], max_steps: int) -> Path:
    """``imitate collect`` with ``collect_flags`` into ``root``, then a short BC: the
    checkpoint's path."""
    from imitate.cli import main

    assert main(["collect", *collect_flags, "--out", str(root / "d.npz")]) == 0
    bc = ["bc", "--data", str(root / "d.npz"), "--max-steps", str(max_steps)]
    assert main([*bc, "--eval-episodes", "0", "--out", str(root / "bc")]) == 0
    return root / "bc" / "policy.pt"


def _one_error(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("imitate: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("expert", ["heuristic", "auto"])
def test_plain_minigrid_env_has_no_expert(
    expert: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("minigrid")
    from agents.babyai import bot_plays

    out = tmp_path / "mg.npz"
    argv = ["collect", "--env", "MiniGrid-Empty-5x5-v0", "--expert", expert]
    code, _, err = run_cli([*argv, "--episodes", "2", "--out", str(out)], capsys)
    assert "no heuristic expert for 'MiniGrid-Empty-5x5-v0'" in _one_error(code, err)
    assert not out.exists()
    assert bot_plays("BabyAI-GoToLocal-v0") and not bot_plays("MiniGrid-Empty-5x5-v0")
    from agents.registry import default_expert

    assert default_expert("BabyAI-GoToLocal-v0") == "heuristic"
    assert default_expert("MiniGrid-Empty-5x5-v0") is None


class Forward:
    """A user's expert for any MiniGrid env: always 'forward' (action 2)."""

    def act(self, obs: Any) -> np.ndarray:
        return np.full(len(obs["direction"]), 2, np.int64)


def test_plain_minigrid_env_works_with_a_user_expert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("minigrid")
    out = tmp_path / "mg.npz"
    argv = ["collect", "--env", "MiniGrid-Empty-5x5-v0", "--expert", f"{__name__}:Forward"]
    code, _, err = run_cli([*argv, "--episodes", "2", "--out", str(out)], capsys)
    assert code == 0, err
    assert out.is_file()


def test_env_constructor_value_error_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "c.npz"
    argv = ["collect", "--env", "imitate/ObsDict-v0", "--env-kwargs", "kind=bogus"]
    code, _, err = run_cli([*argv, "--episodes", "2", "--out", str(out)], capsys)
    line = _one_error(code, err)
    assert "imitate/ObsDict-v0" in line and "unknown observation env kind 'bogus'" in line
    assert not out.exists()


@pytest.mark.parametrize(
    "flags",
    [["--teacher", "zoo", "--expert", "heuristic"], ["--expert=heuristic", "--teacher=zoo"]],
)
def test_distill_refuses_two_different_teachers(
    flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "student"
    argv = ["distill", "--env", "imitate/PixelCartPole-v1", *flags, "--out", str(out)]
    line = _one_error(*run_cli(argv, capsys)[::2])
    assert "--teacher zoo" in line and "--expert heuristic" in line
    assert not out.exists()


def test_distill_takes_either_teacher_flag_or_both_alike() -> None:
    from imitate.cli import parse

    for flags in (["--expert", "heuristic"], ["--teacher", "heuristic", "--expert", "heuristic"]):
        assert parse(["distill", "--env", "CartPole-v1", *flags]).teacher == "heuristic"


@pytest.fixture(scope="module")
def cartpole_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CartPole-v1 clone whose checkpoint records the 'heuristic' expert (which has no
    CartPole-v0 entry)."""
    root = tmp_path_factory.mktemp("cartpole")
    return _clone(root, ["--env", "CartPole-v1", "--expert", "heuristic", "--episodes", "2"], 20)


def test_eval_on_another_env_skips_an_unavailable_recorded_expert(
    cartpole_policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    argv = ["eval", "--policy", str(cartpole_policy), "--env", "CartPole-v0", "--episodes", "2"]
    code, out, err = run_cli([*argv, "--json"], capsys)
    assert code == 0, err
    import json

    result = json.loads(out)
    assert result["episodes"] == 2 and result["env"] == "CartPole-v0"
    assert "recorded expert 'heuristic'" in result["calibration"]["skipped"]
    warning = [line for line in err.splitlines() if line.startswith("imitate: warning:")]
    assert len(warning) == 1 and "CartPole-v1" in warning[0] and "CartPole-v0" in warning[0]
    assert result["warnings"] == [warning[0].removeprefix("imitate: warning: ")]


def test_eval_still_refuses_a_given_expert_or_other_spaces(
    cartpole_policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    base = ["eval", "--policy", str(cartpole_policy), "--episodes", "2"]
    code, _, err = run_cli([*base, "--env", "CartPole-v0", "--expert", "heuristic"], capsys)
    assert "no heuristic expert for 'CartPole-v0'" in _one_error(code, err)
    code, _, err = run_cli([*base, "--env", "Acrobot-v1"], capsys)
    ours, theirs = (
        space_text(gym.make(e).observation_space) for e in ("CartPole-v1", "Acrobot-v1")
    )
    assert _one_error(code, err) == (  # both sides' spaces printed alike, in full
        f"imitate: error: {cartpole_policy} was trained for observations {ours} and actions "
        f"Discrete(2), but Acrobot-v1 has {theirs} and Discrete(3)"
    )
    assert ours.startswith("Box([-4.8 -inf") and ours.endswith(", (4,), float32)")


def test_an_imitate_expert_of_other_dict_spaces_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Dict policy as the expert on a Tuple env (both spaces without a shape) is refused
    by its spaces, as eval refuses it, not by a traceback at the first step."""
    from imitate import observations as ob
    from imitate.encoded import EncodedPolicy
    from imitate.policy import save_policy

    space = gym.make("imitate/ObsDict-v0").observation_space
    obs = ob.batch([space.sample() for _ in range(8)], space)
    policy = save_policy(
        EncodedPolicy.for_data(space, gym.spaces.Discrete(3), obs), tmp_path / "dict.pt"
    )
    out = tmp_path / "t.npz"
    argv = ["collect", "--env", "imitate/ObsTuple-v0", "--expert", str(policy), "--episodes", "1"]
    code, _, err = run_cli([*argv, "--out", str(out)], capsys)
    assert _one_error(code, err) == (
        f"imitate: error: {policy} was trained for observations {space_text(space)} and actions "
        "Discrete(3), but imitate/ObsTuple-v0 has Tuple(Discrete(3), Box(-1.0, 1.0, (1,), "
        "float32)) and Discrete(3)"
    )
    assert not out.exists()


def test_int8_export_on_another_env_with_the_same_spaces_warns_as_eval_does(
    cartpole_policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    capsys.readouterr()
    base = ["export", "--policy", str(cartpole_policy), "--format", "c", "--int8", "--json"]
    code, out, err = run_cli([*base, "--env", "CartPole-v0", "--out", str(tmp_path / "a")], capsys)
    assert code == 0, err
    warning = [line for line in err.splitlines() if line.startswith("imitate: warning:")]
    assert len(warning) == 1 and "trained on CartPole-v1, calibrated on CartPole-v0" in warning[0]
    assert json.loads(out)["warnings"] == [warning[0].removeprefix("imitate: warning: ")]
    code, out, err = run_cli([*base, "--env", "CartPole-v1", "--out", str(tmp_path / "b")], capsys)
    assert code == 0 and "imitate: warning:" not in err and "warnings" not in json.loads(out)


@pytest.fixture(scope="module")
def babyai_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("minigrid")
    root = tmp_path_factory.mktemp("babyai")
    return _clone(root, ["--env", "BabyAI-GoToRedBallGrey-v0", "--episodes", "3"], 10)


def test_eval_of_a_babyai_policy_on_another_level_warns(
    babyai_policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    argv = ["eval", "--policy", str(babyai_policy), "--env", "BabyAI-GoToLocal-v0"]
    code, _, err = run_cli([*argv, "--episodes", "1"], capsys)
    assert code == 0, err
    warning = [line for line in err.splitlines() if line.startswith("imitate: warning:")]
    assert len(warning) == 1
    assert "BabyAI-GoToRedBallGrey-v0" in warning[0] and "BabyAI-GoToLocal-v0" in warning[0]


def test_int8_c_export_of_a_babyai_policy_refuses_before_calibration(
    babyai_policy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = _forbid(monkeypatch, "imitate.collect", "make_vec_env", "an env was made")
    calibrated = _forbid(monkeypatch, "imitate.jobs", "int8_export_inputs", "calibration ran")
    out = tmp_path / "export"
    argv = ["export", "--policy", str(babyai_policy), "--format", "c", "--int8"]
    code, _, err = run_cli([*argv, "--out", str(out)], capsys)
    assert "no symbolic-image encoder" in _one_error(code, err)
    assert made == calibrated == [] and not out.exists()


@pytest.fixture(scope="module")
def dict_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone on imitate/ObsDict-v0 (a Dict observation space)."""
    root = tmp_path_factory.mktemp("obsdict")
    return _clone(root, ["--env", "imitate/ObsDict-v0", "--episodes", "2"], 10)


@pytest.mark.parametrize(
    ("env", "has"),
    [
        ("imitate/ObsText-v0", "has Text("),
        ("CartPole-v1", "has Box([-4.8 -inf"),
        ("imitate/ObsTuple-v0", "has Tuple("),
    ],
)
def test_int8_c_export_on_an_env_with_other_spaces_is_one_line(
    env: str,
    has: str,
    dict_policy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rolled = _forbid(monkeypatch, "imitate.collect", "collect", "a calibration rollout ran")
    monkeypatch.chdir(tmp_path)  # no --out: nor the default runs/ folder
    argv = ["export", "--policy", str(dict_policy), "--format", "c", "--int8", "--env", env]
    line = _one_error(*run_cli(argv, capsys)[::2])
    assert f"{dict_policy} was trained for observations Dict(" in line and has in line
    assert rolled == [] and list(tmp_path.iterdir()) == []


def test_a_heuristic_expert_refuses_env_settings_that_change_its_spaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The env's own expert reads its registered spaces: kwargs that give other spaces are
    one line before any step (it raised IndexError inside its first act); kwargs that keep
    them are fine."""
    out = tmp_path / "d.npz"
    argv = ["collect", "--env", "imitate/ObsDict-v0", "--episodes", "1", "--out", str(out)]
    line = _one_error(*run_cli([*argv, "--env-kwargs", "kind=discrete"], capsys)[::2])
    assert "heuristic expert of imitate/ObsDict-v0 acts on its registered spaces" in line
    assert "give Discrete(7), Discrete(3)" in line and not out.exists()
    assert run_cli([*argv, "--env-kwargs", "horizon=20"], capsys)[0] == 0


def test_int8_export_without_env_calibrates_on_the_env_as_trained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --env the calibration rollouts run on the recorded env with its recorded
    kwargs (as eval does), not on the bare id."""
    import importlib

    from imitate.cli import main
    from imitate.errors import ImitateError

    argv = ["collect", "--env", "imitate/ObsDict-v0", "--env-kwargs", "horizon=20"]
    assert main([*argv, "--episodes", "2", "--out", str(tmp_path / "d.npz")]) == 0
    bc = ["bc", "--data", str(tmp_path / "d.npz"), "--max-steps", "5", "--eval-episodes", "0"]
    assert main([*bc, "--out", str(tmp_path / "bc")]) == 0
    envs_used: list[Any] = []

    def record(policy: Any, env: Any, *args: Any, **kwargs: Any) -> Any:
        envs_used.append(env)
        raise ImitateError("stopped after the calibration env was chosen")

    monkeypatch.setattr(importlib.import_module("imitate.collect"), "collect", record)
    policy = str(tmp_path / "bc" / "policy.pt")
    export = ["export", "--policy", policy, "--format", "c", "--int8"]
    line = _one_error(*run_cli([*export, "--out", str(tmp_path / "ex")], capsys)[::2])
    assert "stopped after" in line
    assert [(e.id, e.kwargs["horizon"]) for e in envs_used] == [("imitate/ObsDict-v0", 20)]


@pytest.mark.parametrize("fault", ["interrupt", "error"])
def test_failed_collect_leaves_no_empty_runs_folder(
    fault: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import imitate.jobs
    from imitate.errors import ImitateError, Interrupted

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise Interrupted(signal.SIGINT) if fault == "interrupt" else ImitateError("broken")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(imitate.jobs, "collect_demos", broken)
    argv = ["collect", "--env", "CartPole-v1", "--expert", "heuristic", "--episodes", "2"]
    code, _, _ = run_cli(argv, capsys)
    assert code == (130 if fault == "interrupt" else 2)
    assert list(tmp_path.iterdir()) == []


def test_out_lock_keeps_folders_that_hold_output(tmp_path: Path) -> None:
    from imitate.runs import out_lock

    target = tmp_path / "a" / "b" / "demos.npz"
    with out_lock(target):
        target.write_bytes(b"x")
    assert target.is_file()
    with out_lock(tmp_path / "c" / "d" / "x.npz"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_interrupted_ood_leaves_no_empty_runs_folder(
    cartpole_policy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import imitate.ood
    from imitate.errors import Interrupted

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise Interrupted(signal.SIGINT)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(imitate.ood, "ood_report", interrupted)
    argv = ["ood", "--policy", str(cartpole_policy), "--env", "CartPole-v1"]
    code, _, _ = run_cli([*argv, "--expert", "heuristic", "--episodes", "2"], capsys)
    assert code == 130
    assert list(tmp_path.iterdir()) == []
