"""Rare critical actions (Braking), calibration in `imitate eval`, and `imitate ood`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.heuristics import AcrobotExpert, CartPoleExpert
from agents.zoo import load_zoo_teacher
from envs.braking import BrakingExpert
from imitate import (
    BCConfig,
    Dataset,
    LossConfig,
    OptimConfig,
    collect,
    evaluate,
    save_policy,
    train_bc,
)
from imitate.calibration import auroc, energy_score
from imitate.cli import main
from imitate.drift import action_flip_rate, nearest_distances, off_support
from imitate.policy import JSGatedPolicy


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
            policy, _ = train_bc(demos, BCConfig(seed=seed, loss=LossConfig(class_weights=weights)))  # type: ignore[arg-type]
            scores[name][0].append(float((policy.act(held_out)[must_brake] == 1).mean()))
            scores[name][1].append(evaluate(policy, "imitate/Braking-v0", 50, 10_000).mean_return)
    assert np.mean(scores["balanced"][0]) > np.mean(scores["plain"][0])
    assert np.mean(scores["balanced"][1]) > np.mean(scores["plain"][1])


@pytest.fixture(scope="module")
def one_demo_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    demos: Dataset = collect(CartPoleExpert(), "CartPole-v1", 1, seed=0)
    policy, _ = train_bc(
        demos.select_transitions(np.arange(100)), BCConfig(optim=OptimConfig(max_steps=400))
    )
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


def test_nearest_distances_are_in_reference_std_units() -> None:
    reference = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]])  # std (1, 2)
    query = np.array([[1.0, 0.0], [2.0, 6.0], [0.0, 0.0]])
    np.testing.assert_allclose(nearest_distances(query, reference), [1.0, 1.0, 0.0])


def test_off_support_uses_the_held_out_expert_quantile() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(500, 3))
    expert_states = rng.normal(size=(200, 3))
    far = rng.normal(size=(30, 3)) + 10.0
    clone_states = np.concatenate([rng.normal(size=(100, 3)), far])
    support = off_support(reference, expert_states, clone_states, quantile=0.99)
    assert support.threshold == pytest.approx(np.quantile(support.expert_distances, 0.99))
    assert support.mask[100:].all()  # every far state is off support
    assert support.mask[:100].mean() < 0.05  # and almost no in-distribution one is
    with pytest.raises(ValueError, match="quantile"):
        off_support(reference, expert_states, clone_states, quantile=1.0)


def test_ood_command_scores_drift_states(
    one_demo_clone: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["ood", "--policy", str(one_demo_clone), "--env", "CartPole-v1", "--episodes", "4"]
    assert main([*args, "--out", str(tmp_path / "ood"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["energy"]["auroc"] <= 1.0 and result["out_states"] > 0
    assert result["off_support_states"] <= result["clone_states"]
    assert (tmp_path / "ood" / "ood.json").is_file() and Path(result["figures"]["roc"]).is_file()


def test_ood_command_takes_the_demonstrations_as_support(
    one_demo_clone: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demos = collect(CartPoleExpert(), "CartPole-v1", 1, seed=0).save(tmp_path / "d.npz")
    args = ["ood", "--policy", str(one_demo_clone), "--episodes", "3", "--data", str(demos)]
    assert main([*args, "--out", str(tmp_path / "ood"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["clone_states"] > 0 and result["support_threshold"] > 0
    capsys.readouterr()
    assert main([*args, "--quantile", "1.5"]) == 2
    assert "--quantile" in capsys.readouterr().err
    other = collect(AcrobotExpert(), "Acrobot-v1", 1, seed=0).save(tmp_path / "acrobot.npz")
    assert main([*args[:-2], "--data", str(other)]) == 2
    assert "Acrobot-v1" in capsys.readouterr().err


@pytest.mark.slow
def test_energy_margin_flags_lunarlander_drift_states() -> None:
    """The acceptance study of `imitate ood` (benchmarks/toolbox_followups.py, seed 0):
    BC from 10 zoo demonstrations; drift states are the clone's off-support states."""
    env_id = "LunarLander-v3"
    expert = load_zoo_teacher(env_id)
    demos = collect(expert, env_id, 10, seed=0)
    expert_states = collect(expert, env_id, 20, seed=10_000).obs
    aurocs, returns = {}, {}
    for name, weight in (("plain", 0.0), ("margin", 0.1)):
        policy, _ = train_bc(demos, BCConfig(seed=0, loss=LossConfig(ood_energy_weight=weight)))
        clone = collect(policy, env_id, 20, seed=10_000)
        drifted = clone.obs[off_support(demos.obs, expert_states, clone.obs).mask]
        assert len(drifted) > 50
        energies = [
            energy_score(torch.as_tensor(policy.logits(s.astype(np.float32)))).numpy()
            for s in (expert_states, drifted)
        ]
        aurocs[name], returns[name] = auroc(*energies), clone.episode_returns.mean()
    assert aurocs["plain"] < 0.7 < 0.9 <= aurocs["margin"]
    assert returns["margin"] >= 0.98 * returns["plain"]


def test_eval_never_guesses_the_calibration_expert(
    one_demo_clone: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No expert recorded with the clone: calibration is skipped with a note (it used to
    fall back to the env's zoo expert silently); --expert zoo calibrates and says so."""
    args = ["eval", "--policy", str(one_demo_clone), "--episodes", "2", "--json"]
    assert main(args) == 0
    assert "pass --expert" in json.loads(capsys.readouterr().out)["calibration"]["skipped"]
    out = tmp_path / "eval"
    assert main([*args, "--expert", "zoo", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["calibration"]["expert"] == "zoo"
    assert result["calibration"]["expert_from"] == "--expert"
    assert Path(result["calibration"]["reliability_figure"]) == out / "reliability.png"
    assert (out / "reliability.png").stat().st_size > 0
    assert json.loads((out / "eval.json").read_text())["returns"] == result["returns"]


def test_eval_reports_the_flip_rate_and_gates_actions(
    one_demo_clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", "--policy", str(one_demo_clone), "--episodes", "3", "--json"]
    assert main(args) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["js_gate"] == 0.0 and 0.0 <= plain["action_flip_rate"] <= 1.0
    assert main([*args, "--js-gate", "0.6"]) == 0
    gated = json.loads(capsys.readouterr().out)
    assert gated["js_gate"] == 0.6 and gated["action_flip_rate"] < plain["action_flip_rate"]
    assert main([*args, "--js-gate", "0.7"]) == 2
    assert "--js-gate" in capsys.readouterr().err


@pytest.mark.slow
def test_js_smoothness_and_gate_cut_lunarlander_flips_at_no_return_cost() -> None:
    """The acceptance setting (benchmarks/toolbox_followups.py js_gate, seed 0): BC from 10
    zoo demonstrations with temporal_js 3, executed through a 0.1-nat JS gate."""
    env_id = "LunarLander-v3"
    demos = collect(load_zoo_teacher(env_id), env_id, 10, seed=0)
    measured = {}
    for name, weight, threshold in (("plain", 0.0, 0.0), ("smooth", 3.0, 0.1)):
        policy, _ = train_bc(demos, BCConfig(seed=0, loss=LossConfig(temporal_js=weight)))
        actor = JSGatedPolicy.wrap(policy, threshold) if threshold else policy
        own = collect(actor, env_id, 20, seed=10_000)
        flips = action_flip_rate(own.actions, own.episode_starts)
        measured[name] = (flips, own.episode_returns.mean())
    assert measured["smooth"][0] <= 0.7 * measured["plain"][0]  # >= 30 % fewer flips
    assert measured["smooth"][1] >= 0.98 * measured["plain"][1]  # <= 2 % return lost


def test_eval_calibrates_against_the_expert_that_labelled_the_clone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.npz"
    assert main(["collect", "--expert", "heuristic", "--episodes", "2", "--out", str(data)]) == 0
    bc = ["bc", "--data", str(data), "--out", str(tmp_path / "bc"), "--eval-episodes", "0"]
    assert main([*bc, "--max-steps", "200"]) == 0
    capsys.readouterr()
    policy = str(tmp_path / "bc" / "policy.pt")
    assert main(["eval", "--policy", policy, "--episodes", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["calibration"]["expert"] == "heuristic"
