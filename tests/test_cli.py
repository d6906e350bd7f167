"""The imitate command: the collect -> bc -> eval chain, --json, and bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_cli

from imitate import Dataset
from imitate.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collect -> bc run made once for the module."""
    root = tmp_path_factory.mktemp("cli")
    assert (
        main(["collect", "--env", "CartPole-v1", "--episodes", "5", "--out", str(root / "d.npz")])
        == 0
    )
    args = ["bc", "--data", str(root / "d.npz"), "--out", str(root / "bc"), "--eval-episodes", "0"]
    assert main([*args, "--max-steps", "1500"]) == 0
    return root


def test_collect_bc_eval_chain_with_json(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (trained / "bc" / "policy.pt").is_file()
    config = json.loads((trained / "bc" / "config.json").read_text())
    assert config["config"]["optim"]["max_steps"] == 1500 and config["data"].endswith("d.npz")
    records = [
        json.loads(line) for line in (trained / "bc" / "metrics.jsonl").read_text().splitlines()
    ]
    assert records and "holdout_bits_per_action" in records[0]
    code, out, _ = run_cli(
        [
            "eval",
            "--policy",
            str(trained / "bc" / "policy.pt"),
            "--episodes",
            "5",
            "--seed",
            "10000",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    result = json.loads(out)  # exactly one JSON object on stdout
    assert result["env"] == "CartPole-v1" and len(result["returns"]) == 5
    assert {"mean_return", "std_return", "returns"} <= set(result)


def test_collect_json_and_default_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(
        ["collect", "--env", "Acrobot-v1", "--episodes", "2", "--seed", "7", "--json"], capsys
    )
    assert code == 0
    result = json.loads(out)
    folder = Path(result["data"]).parent
    assert folder.parent == Path("runs") and folder.name.startswith("Acrobot-v1__collect__7__")
    assert Dataset is not None and result["episodes"] == 2


def test_eval_expert_and_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        ["eval", "--env", "CartPole-v1", "--expert", "heuristic", "--episodes", "2"], capsys
    )
    assert code == 0 and "mean_return: 500" in out


def _corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"garbage")
    return path


BAD_INPUT = {
    "not an integer": (
        ["collect", "--env", "CartPole-v1", "--episodes", "abc", "--out", "{tmp}/x.npz"],
        "--episodes: expected an integer, got 'abc'",
    ),
    "a flag without its value": (
        ["collect", "--env", "CartPole-v1", "--out", "{tmp}/x.npz", "--episodes"],
        "--episodes needs a value",
    ),
    "not a number, optional flag": (
        ["bc", "--data", "{demos}", "--lr=fast", "--out", "{tmp}/bc"],
        "--lr: expected a number (or None: the default), got 'fast'",
    ),
    "unknown env": (
        ["collect", "--env", "NoSuchEnv-v0", "--out", "{tmp}/x.npz"],
        "unknown env id 'NoSuchEnv-v0'",
    ),
    "missing dataset": (
        ["bc", "--data", "{tmp}/missing.npz", "--out", "{tmp}/bc"],
        "dataset file not found",
    ),
    "dataset is a folder": (
        ["bc", "--data", "{tmp}", "--out", "{tmp}/bc"],
        "a folder, not a dataset file",
    ),
    "corrupt dataset": (
        ["bc", "--data", "{corrupt}", "--out", "{tmp}/bc"],
        "not a readable dataset file",
    ),
    "dataset of another env": (
        ["bc", "--data", "{demos}", "--env", "Acrobot-v1", "--out", "{tmp}/bc"],
        "was collected on CartPole-v1, not on Acrobot-v1",
    ),
    "bad flag value": (["collect", "--episodes", "many", "--out", "{tmp}/x.npz"], "--episodes"),
    "non-positive episodes": (
        ["collect", "--episodes", "0", "--out", "{tmp}/x.npz"],
        "--episodes must be >= 1",
    ),
    "unknown flag": (
        ["eval", "--polcy", "p.pt"],
        "unrecognized option --polcy (did you mean --policy?) (see imitate eval --help)",
    ),
    "unknown flag of a nested command": (
        ["expert", "eval", "--episode", "2"],
        "unrecognized option --episode (did you mean --episodes?)",
    ),
    "unknown command": (["colect"], "unknown command 'colect' (did you mean collect?)"),
    "unknown command before a flag": (
        ["colect", "--episodes", "3"],
        "unknown command 'colect' (did you mean collect?)",
    ),
    "unknown nested command": (["expert", "lst"], "unknown command 'lst' (did you mean list?)"),
    "invalid choice": (
        ["export", "--policy", "p.pt", "--format", "tflite"],
        "invalid choice 'tflite' for argument '--format'. Expected one of ('onnx', "
        "'torchscript', 'numpy', 'c', 'sb3').",
    ),
    "missing checkpoint": (
        ["eval", "--policy", "{tmp}/none.pt", "--env", "CartPole-v1"],
        "checkpoint not found",
    ),
    "policy for another env": (
        ["eval", "--policy", "{policy}", "--env", "Acrobot-v1"],
        "(4,), float32) and actions Discrete(2), but Acrobot-v1 has Box(",
    ),
    "unknown expert": (
        ["collect", "--expert", "wizard", "--out", "{tmp}/x.npz"],
        "unknown expert 'wizard'",
    ),
    "bad config value": (
        ["bc", "--data", "{demos}", "--holdout-fraction", "2"],
        "holdout_fraction",
    ),
    "nan learning rate": (
        ["bc", "--data", "{demos}", "--lr", "nan"],
        "lr must be a finite number > 0, got nan",
    ),
    "negative weight decay": (
        ["bc", "--data", "{demos}", "--weight-decay", "-1"],
        "weight_decay must be a finite number >= 0",
    ),
    "zero max steps": (
        ["bc", "--data", "{demos}", "--max-steps", "0"],
        "max_steps must be >= 1, got 0",
    ),
    "another command's prefixed flag": (  # tyro's "misplaced options" box had no hint
        ["bc", "--data", "{demos}", "--bc.max-steps", "10"],
        "unrecognized option --bc.max-steps (did you mean --max-steps?)",
    ),
    "misspelt flag tyro has no near match for": (
        ["expert", "eval", "--epsiodes", "3"],
        "unrecognized option --epsiodes (did you mean --episodes?)",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUT, ids=list(BAD_INPUT))
def test_bad_input_is_one_line_and_exit_2(
    case: str, tmp_path: Path, trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args, message = BAD_INPUT[case]
    filled = [
        a.format(
            tmp=tmp_path,
            corrupt=_corrupt(tmp_path),
            demos=trained / "d.npz",
            policy=trained / "bc" / "policy.pt",
        )
        for a in args
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run_cli(filled, capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imitate: error: "), err
    assert message in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing partial written


def test_console_script_exit_code(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "imitate.cli", "bc", "--data", str(tmp_path / "nope.npz")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip() == f"imitate: error: {tmp_path / 'nope.npz'}: dataset file not found"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["collect", "--episodes", "0", "--json"],  # the library's check
        ["collect", "--episode", "3", "--json"],  # the parser's
        ["colect", "--json"],  # an unknown command (tyro words this one differently)
    ],
)
def test_json_errors_are_one_object_on_stdout(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert out.count("\n") == 1 and json.loads(out) == {
        "error": err.strip()[len("imitate: error: ") :]
    }
    assert err.startswith("imitate: error: ") and err.count("\n") == 1


@pytest.mark.parametrize("command", ["eval", "run", "dagger", "bc", "ood", "sweep", "collect"])
def test_help_text_is_plain(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """No reST markup, no second "(default: None)" after a documented default, no figures."""
    code, out, _ = run_cli([command, "--help"], capsys)
    assert code == 0 and "usage: imitate" in out
    assert "``" not in out and ":class:" not in out
    for entry in re.split(r"\n  (?=--)", out):  # one option each
        text = " ".join(entry.split())
        if text.endswith("(default: None)"):
            assert "default" not in text[: -len("(default: None)")].lower(), text
    flat = " ".join(out.split())
    if command == "run":
        assert "256.8" not in flat  # no benchmark numbers in help


def test_library_prints_go_to_stderr_so_json_stays_one_object(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """minigrid prints "Sampling rejected: ..." to stdout at some BabyAI resets; it broke
    `collect --json` (stdout no longer parsed). Whatever a handler's libraries print lands
    on stderr, in both output modes."""
    from imitate.console import run_handler

    def handler() -> dict[str, int]:
        print("Sampling rejected: unreachable object at (1, 6)")
        return {"episodes": 3}

    assert run_handler(handler, as_json=True) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"episodes": 3} and "Sampling rejected" in err
    assert run_handler(handler, as_json=False) == 0
    out, err = capsys.readouterr()
    assert out == "episodes: 3\n" and "Sampling rejected" in err
