"""Drift tools: paired rollouts, distribution shift, horizon scaling (T^2 vs T), the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.heuristics import CartPoleExpert
from envs.tightrope import TightropeExpert
from imitate import BCConfig, Dataset, collect, save_policy, train_bc
from imitate.cli import main
from imitate.dagger import DAggerConfig, dagger
from imitate.drift import distribution_shift, fit_loglog, horizon_scaling, paired_rollouts

HORIZONS = [25, 50, 100, 200, 400]


def test_identical_policies_never_diverge() -> None:
    pair = paired_rollouts(CartPoleExpert(), CartPoleExpert(), "CartPole-v1", 3, seed=5)
    assert np.nanmax(pair.distance) == 0.0
    assert np.isnan(pair.first_divergence).all() and np.isnan(pair.clone_failure).all()
    np.testing.assert_array_equal(pair.expert_returns, pair.clone_returns)


def test_a_one_demo_clone_diverges_earlier(cartpole_demos: Dataset) -> None:
    one, _ = train_bc(
        cartpole_demos.select_episodes([0]).select_transitions(np.arange(60)), BCConfig()
    )
    ten, _ = train_bc(cartpole_demos, BCConfig())
    early = paired_rollouts(CartPoleExpert(), one, "CartPole-v1", 10, threshold=1.0).summary()
    late = paired_rollouts(CartPoleExpert(), ten, "CartPole-v1", 10, threshold=1.0).summary()
    assert early["mean_first_divergence_or_end"] < late["mean_first_divergence_or_end"]


def test_distribution_shift_is_zero_for_the_expert_itself() -> None:
    states = collect(CartPoleExpert(), "CartPole-v1", 2, seed=0).obs
    shift = distribution_shift(CartPoleExpert(), CartPoleExpert(), states, states)
    assert shift["disagreement_on_expert_states"] == 0.0 == shift["disagreement_gap"]


def test_fit_loglog_recovers_a_power_law() -> None:
    hs = np.array(HORIZONS, dtype=float)
    slope, intercept = fit_loglog(hs, 0.003 * hs**2)
    assert slope == pytest.approx(2.0) and np.exp(intercept) == pytest.approx(0.003)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_bc_cost_grows_like_t_squared_and_dagger_like_t(seed: int) -> None:
    demos = collect(TightropeExpert(), "imitate/TightropeCalm-v0", 10, seed=seed)
    clone, _ = train_bc(demos, BCConfig(seed=seed))
    learner, _ = dagger(
        "imitate/Tightrope-v0",
        TightropeExpert(),
        DAggerConfig(rounds=4, steps_per_round=1000, eval_episodes=0, seed=seed),
    )
    bc_fit = horizon_scaling(clone, "imitate/Tightrope-v0", HORIZONS, 200, seed=50_000 + seed)
    dagger_fit = horizon_scaling(learner, "imitate/Tightrope-v0", HORIZONS, 200, seed=50_000 + seed)
    assert 1.6 <= bc_fit.slope <= 2.4, bc_fit.to_json()
    assert 0.6 <= dagger_fit.slope <= 1.4, dagger_fit.to_json()
    assert bc_fit.slope_ci[0] <= bc_fit.slope <= bc_fit.slope_ci[1]


def test_drift_command_writes_report_and_figures(
    tmp_path: Path, cartpole_demos: Dataset, capsys: pytest.CaptureFixture[str]
) -> None:
    clone, _ = train_bc(cartpole_demos.select_episodes([0]), BCConfig(max_steps=300))
    save_policy(clone, tmp_path / "bc1" / "policy.pt", {"env_id": "CartPole-v1"})
    args = ["drift", "--env", "CartPole-v1", "--policy", str(tmp_path / "bc1" / "policy.pt")]
    code = main(
        [
            *args,
            "--episodes",
            "3",
            "--horizons",
            "25",
            "50",
            "100",
            "--out",
            str(tmp_path / "r"),
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    for name in ("trajectories", "distance", "disagreement"):
        assert Path(result["figures"][name]).is_file()
    assert (tmp_path / "r" / "drift.json").is_file() and (tmp_path / "r" / "report.md").is_file()
    assert main(["drift", "--env", "CartPole-v1"]) == 2
