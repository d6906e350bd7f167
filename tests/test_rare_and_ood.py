"""Rare critical actions (Braking), calibration in `imitate eval`, and `imitate ood`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.heuristics import CartPoleExpert
from envs.braking import BrakingExpert
from imitate import BCConfig, Dataset, collect, evaluate, save_policy, train_bc
from imitate.cli import main


def test_braking_expert_brakes_rarely_and_never_crashes() -> None:
    demos = collect(BrakingExpert(), "imitate/Braking-v0", 10, seed=0)
    assert 0.0 < demos.actions.mean() < 0.05  # the rare action is under 5 % of labels
    assert not demos.terminated.any() and demos.episode_lengths.min() == 200


@pytest.mark.slow
def test_balanced_weights_raise_rare_action_recall_and_return() -> None:
    demos = collect(BrakingExpert(), "imitate/Braking-v0", 10, seed=0)
    held_out = collect(BrakingExpert(), "imitate/Braking-v0", 20, seed=777).obs
    must_brake = BrakingExpert().act(held_out) == 1
    scores: dict[str, tuple[list[float], list[float]]] = {"plain": ([], []), "balanced": ([], [])}
    for seed in range(3):
        for name, weights in (("plain", "none"), ("balanced", "balanced")):
            policy, _ = train_bc(demos, BCConfig(seed=seed, class_weights=weights))  # type: ignore[arg-type]
            scores[name][0].append(float((policy.act(held_out)[must_brake] == 1).mean()))
            scores[name][1].append(evaluate(policy, "imitate/Braking-v0", 50, 10_000).mean_return)
    assert np.mean(scores["balanced"][0]) > np.mean(scores["plain"][0])
    assert np.mean(scores["balanced"][1]) > np.mean(scores["plain"][1])


@pytest.fixture(scope="module")
def one_demo_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    demos: Dataset = collect(CartPoleExpert(), "CartPole-v1", 1, seed=0)
    policy, _ = train_bc(demos.select_transitions(np.arange(100)), BCConfig(max_steps=400))
    return save_policy(
        policy, tmp_path_factory.mktemp("ood") / "policy.pt", {"env_id": "CartPole-v1"}
    )


def test_eval_reports_calibration_against_the_expert(
    one_demo_clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "eval",
        "--policy",
        str(one_demo_clone),
        "--expert",
        "heuristic",
        "--episodes",
        "3",
        "--json",
    ]
    assert main(args) == 0
    calibration = json.loads(capsys.readouterr().out)["calibration"]
    assert 0.0 <= calibration["ece"] <= 1.0 and 0.0 <= calibration["brier"] <= 2.0
    assert calibration["nll_bits_per_action"] > 0
    assert main(["eval", "--episodes", "3"]) == 2


def test_ood_command_scores_drift_states(
    one_demo_clone: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["ood", "--policy", str(one_demo_clone), "--env", "CartPole-v1", "--episodes", "4"]
    assert main([*args, "--out", str(tmp_path / "ood"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["energy"]["auroc"] <= 1.0 and result["out_states"] > 0
    assert (tmp_path / "ood" / "ood.json").is_file() and Path(result["figures"]["roc"]).is_file()


def test_eval_uses_the_envs_expert_for_calibration_by_default(
    one_demo_clone: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    args = ["eval", "--policy", str(one_demo_clone), "--episodes", "2", "--json"]
    assert main([*args, "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["calibration"]["expert"] == "zoo"
    assert Path(result["calibration"]["reliability_figure"]) == out / "reliability.png"
    assert (out / "reliability.png").stat().st_size > 0
    assert json.loads((out / "eval.json").read_text())["returns"] == result["returns"]
