"""The CLI is wiring: each command gives the numbers its library call gives for the same
config, and ``--from config.json`` repeats a run (issue 14). Small settings: seconds each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli

from agents.heuristics import CartPoleExpert
from imitate import BCConfig, collect, evaluate, train_bc
from imitate.configs import EarlyStopConfig, OptimConfig
from imitate.constants import EVAL_SEED
from imitate.data import load_dataset
from imitate.policy import load_policy, load_policy_with_meta

ENV = "CartPole-v1"
BC = ["--max-steps", "60", "--eval-every", "30"]


def _json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    code, out, err = run_cli([*args, "--json"], capsys)
    assert code == 0, err
    return dict(json.loads(out))


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("parity") / "d.npz"
    from imitate.cli import main

    assert main(["collect", "--episodes", "2", "--seed", "3", "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def clone(demos: Path) -> Path:
    from imitate.cli import main

    out = demos.parent / "bc"
    assert main(["bc", "--data", str(demos), *BC, "--eval-episodes", "0", "--out", str(out)]) == 0
    return out / "policy.pt"


def test_collect_equals_the_library(demos: Path) -> None:
    ours = collect(CartPoleExpert(), ENV, 2, seed=3, source="heuristic")
    cli = load_dataset(demos)
    for name, array in ours.arrays().items():
        np.testing.assert_array_equal(cli.arrays()[name], array, err_msg=name)
    assert cli.meta.source == ours.meta.source == "heuristic"


def test_bc_equals_the_library_and_records_the_same_provenance(
    demos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _json(
        ["bc", "--data", str(demos), *BC, "--eval-episodes", "3", "--out", str(tmp_path / "b")],
        capsys,
    )
    policy, _ = train_bc(
        load_dataset(demos),
        BCConfig(optim=OptimConfig(max_steps=60), early_stop=EarlyStopConfig(eval_every=30)),
    )
    cli_policy, meta = load_policy_with_meta(result["policy"])
    obs = load_dataset(demos).obs
    np.testing.assert_array_equal(cli_policy.logits(obs), policy.logits(obs))
    assert result["eval"]["mean_return"] == evaluate(policy, ENV, 3, EVAL_SEED).mean_return
    # a checkpoint saved from Python records what the command records (PolicyMeta)
    from imitate.policy import save_policy

    _, python_meta = load_policy_with_meta(save_policy(policy, tmp_path / "p.pt"))
    assert python_meta.to_config() == meta.to_config()
    assert (
        meta.env_id == ENV
        and meta.expert == "heuristic"
        and meta.training["bc"]["optim"]["max_steps"] == 60
    )
    assert meta.versions["imitate"]


def test_bc_from_config_json_repeats_the_run(
    demos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _json(
        [
            "bc",
            "--data",
            str(demos),
            *BC,
            "--seed",
            "4",
            "--eval-episodes",
            "2",
            "--out",
            str(tmp_path / "a"),
        ],
        capsys,
    )
    again = _json(
        ["bc", "--from", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b")], capsys
    )
    assert again["eval"] == first["eval"] and again["best_step"] == first["best_step"]
    obs = load_dataset(demos).obs
    np.testing.assert_array_equal(
        load_policy(again["policy"]).logits(obs), load_policy(first["policy"]).logits(obs)
    )
    recorded = json.loads((tmp_path / "b" / "config.json").read_text())
    assert recorded["config"]["seed"] == 4 and recorded["out"] == str(tmp_path / "b")
    override = _json(
        [
            "bc",
            "--from",
            str(tmp_path / "a" / "config.json"),
            "--seed",
            "5",
            "--out",
            str(tmp_path / "c"),
        ],
        capsys,
    )
    assert json.loads((tmp_path / "c" / "config.json").read_text())["config"]["seed"] == 5
    assert "eval" in override


def test_from_refuses_a_config_of_another_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"policy": "p.pt", "format": "onnx"}))
    code, _, err = run_cli(["bc", "--from", str(tmp_path / "config.json")], capsys)
    assert code == 2 and err.startswith("imitate: error: ") and "unknown field 'format'" in err, err
    code, _, err = run_cli(["bc", "--from", str(tmp_path / "missing.json")], capsys)
    assert code == 2 and "config file not found" in err, err
    (tmp_path / "demos.npz").write_bytes(b"PK\x03\x04\xaa\xff binary")  # a dataset, not JSON
    code, _, err = run_cli(["bc", "--from", str(tmp_path / "demos.npz")], capsys)
    assert code == 2 and err.count("\n") == 1 and "not a text file" in err, err
    (tmp_path / "list.json").write_text("[1, 2]")
    code, _, err = run_cli(["bc", "--from", str(tmp_path / "list.json")], capsys)
    assert code == 2 and err.startswith("imitate: error: ") and err.count("\n") == 1, err


def test_eval_equals_the_library(clone: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = _json(["eval", "--policy", str(clone), "--episodes", "3", "--seed", "7"], capsys)
    assert result["mean_return"] == evaluate(load_policy(clone), ENV, 3, 7).mean_return
    from imitate.evaluation import calibration_report
    from imitate.runtime import load_numpy_policy

    report = calibration_report(load_numpy_policy(clone), CartPoleExpert(), ENV, 7)  # eval's
    calibration = result["calibration"]
    assert calibration["expert"] == "heuristic" and calibration["ece"] == report["ece"]


def test_dagger_equals_the_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from imitate import DAggerConfig, dagger

    flags = [
        "--rounds",
        "2",
        "--steps-per-round",
        "100",
        "--eval-episodes",
        "1",
        "--bc.max-steps",
        "40",
        "--no-compare-bc",
    ]
    result = _json(["dagger", *flags, "--out", str(tmp_path / "d")], capsys)
    config = DAggerConfig(
        rounds=2, steps_per_round=100, eval_episodes=1, bc=BCConfig(optim=OptimConfig(max_steps=40))
    )
    policy, history = dagger(ENV, CartPoleExpert(), config)
    assert result["expert_labels"] == history.expert_labels
    obs = collect(CartPoleExpert(), ENV, 1, seed=0).obs
    np.testing.assert_array_equal(load_policy(result["policy"]).logits(obs), policy.logits(obs))


def test_distill_equals_the_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agents.registry import resolve_expert
    from imitate import DistillConfig, distill
    from imitate.configs import PolicyConfig

    flags = [
        "--mode",
        "offline",
        "--episodes",
        "2",
        "--max-steps",
        "50",
        "--hidden",
        "8",
        "--eval-episodes",
        "2",
        "--seed",
        "1",
    ]
    result = _json(["distill", *flags, "--out", str(tmp_path / "s")], capsys)
    config = DistillConfig(
        student=PolicyConfig(hidden=(8,)), mode="offline", episodes=2, max_steps=50, seed=1
    )
    teacher = resolve_expert("zoo", ENV)
    student, history = distill(teacher, ENV, config)
    assert result["teacher_labels"] == history["teacher_labels"]
    obs = collect(teacher, ENV, 1, seed=0).obs
    cli_student, meta = load_policy_with_meta(result["policy"])
    np.testing.assert_array_equal(cli_student.logits(obs), student.logits(obs))
    assert meta.training["distill"]["episodes"] == 2 and meta.expert == "zoo"
    assert result["student_return"] == evaluate(student, ENV, 2, EVAL_SEED).mean_return


def test_drift_and_ood_equal_the_library(
    clone: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from imitate.drift import analyse_drift
    from imitate.ood import ood_report

    drift = _json(
        [
            "drift",
            "--policy",
            str(clone),
            "--episodes",
            "2",
            "--horizons",
            "5",
            "10",
            "--out",
            str(tmp_path / "dr"),
        ],
        capsys,
    )
    analysis = analyse_drift(
        ENV, CartPoleExpert(), {"bc/policy.pt": load_policy(clone)}, 2, EVAL_SEED, horizons=(5, 10)
    )
    assert drift["clones"] == json.loads(json.dumps(analysis.summaries, default=float))
    ood = _json(
        ["ood", "--policy", str(clone), "--episodes", "2", "--out", str(tmp_path / "o")], capsys
    )
    ours = ood_report(load_policy(clone), CartPoleExpert(), ENV, tmp_path, episodes=2)
    for key in ("energy", "neg_msp", "off_support_states", "out_source"):
        assert ood[key] == ours[key], key


def test_export_and_compress_equal_the_library(
    clone: Path, demos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from imitate.export import export_policy
    from imitate.jobs import compress_dataset

    result = _json(
        ["export", "--policy", str(clone), "--format", "numpy", "--out", str(tmp_path / "e")],
        capsys,
    )
    files = export_policy(load_policy(clone), "numpy", tmp_path / "mine")
    assert [Path(f).read_bytes() for f in result["files"]] == [f.read_bytes() for f in files]
    packed = _json(
        [
            "compress",
            "--policy",
            str(clone),
            "--data",
            str(demos),
            "--out",
            str(tmp_path / "a.imz"),
        ],
        capsys,
    )
    ours = compress_dataset(load_policy(clone), load_dataset(demos), tmp_path / "b.imz")
    assert packed["payload_bits"] == ours["payload_bits"]
    assert (tmp_path / "a.imz").read_bytes() == (tmp_path / "b.imz").read_bytes()


def test_sweep_and_expert_eval_equal_the_library(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from imitate.sweep import SweepConfig, parse_axis, run_sweep, summarise

    flags = ["--grid", "episodes=1,2", "--seeds", "0", "--eval-episodes", "2", "--max-steps", "30"]
    result = _json(["sweep", *flags, "--out", str(tmp_path / "s")], capsys)
    axes = (parse_axis("episodes=1,2"),)
    bc = BCConfig(optim=OptimConfig(max_steps=30))
    config = SweepConfig(env_id=ENV, axes=axes, seeds=(0,), eval_episodes=2, bc=bc)
    rows = run_sweep(CartPoleExpert(), config)
    for row in rows:
        row.pop("curve", None)
    assert result["summary"] == json.loads(json.dumps(summarise(rows, axes), default=float))
    from imitate.console import emit

    emit(result, as_json=False)  # the human form: where the table went, rows as cells
    human = capsys.readouterr().out.splitlines()
    assert f"table: {tmp_path / 's' / 'sweep.md'}" in human and "summary:" in human
    assert not any(line.startswith("[") for line in human), human
    expert = _json(["expert", "eval", "--expert", "heuristic", "--episodes", "3"], capsys)
    assert expert["mean_return"] == evaluate(CartPoleExpert(), ENV, 3, EVAL_SEED).mean_return


def test_policy_meta_reads_what_checkpoints_have_always_written(clone: Path) -> None:
    from imitate import PolicyMeta
    from imitate.runtime import read_checkpoint, read_policy_meta

    config = {
        "env_id": "X", "env_kwargs": {"size": 5}, "env_wrappers": [], "expert": "zoo",
        "expert_info": {"spec": "zoo"}, "data_seed": 3, "bc": {"seed": 1},
    }  # fmt: skip
    meta = PolicyMeta.from_header({"config": config, "versions": {"imitate": "0"}})
    assert meta.env_id == "X" and meta.extra == {"data_seed": 3}
    assert meta.training == {"bc": {"seed": 1}} and meta.to_config() == config
    on_disk = read_policy_meta(clone)
    assert on_disk.to_config() == read_checkpoint(clone)["config"]
    assert on_disk.action_space["type"] == "Discrete" and on_disk.env().id == ENV
