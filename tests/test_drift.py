"""Drift tools: paired rollouts, distribution shift, horizon scaling (T^2 vs T), the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.heuristics import CartPoleExpert
from envs.tightrope import TightropeExpert
from imitate import BCConfig, Dataset, OptimConfig, collect, save_policy, train_bc
from imitate.cli import main
from imitate.configs import short_round_bc
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
        DAggerConfig(
            rounds=4,
            steps_per_round=1000,
            eval_episodes=0,
            seed=seed,
            whole_episodes=False,
            bc=short_round_bc(),  # the round training these slopes were measured with
            final_refit=False,  # and without the final refit
        ),
    )
    bc_fit = horizon_scaling(clone, "imitate/Tightrope-v0", HORIZONS, 200, seed=50_000 + seed)
    dagger_fit = horizon_scaling(learner, "imitate/Tightrope-v0", HORIZONS, 200, seed=50_000 + seed)
    assert 1.6 <= bc_fit.slope <= 2.4, bc_fit.to_json()
    assert 0.6 <= dagger_fit.slope <= 1.4, dagger_fit.to_json()
    assert bc_fit.slope_ci[0] <= bc_fit.slope <= bc_fit.slope_ci[1]
    # the intervals hold the theory's exponents: BC's reaches >= 1.6, DAgger's <= 1.2
    assert bc_fit.slope_ci[1] >= 1.6 and dagger_fit.slope_ci[0] <= 1.2


def test_drift_command_writes_report_and_figures(
    tmp_path: Path, cartpole_demos: Dataset, capsys: pytest.CaptureFixture[str]
) -> None:
    clone, _ = train_bc(
        cartpole_demos.select_episodes([0]), BCConfig(optim=OptimConfig(max_steps=300))
    )
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


def test_a_failing_termination_is_absorbing() -> None:
    from imitate.drift import horizon_costs

    step_cost = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 0.0])  # episode 0: 3 steps, episode 1: 3
    padded = horizon_costs(
        step_cost, np.array([3, 3]), np.array([0, 3]), np.array([True, False]), 5
    )
    # the failed episode keeps costing 1 per step up to T; the other stops accruing
    np.testing.assert_array_equal(padded, [[1, 0, 1, 1, 1], [0, 0, 0, 0, 0]])


def test_which_terminations_are_failures() -> None:
    from imitate.drift import failed_at_termination

    done = np.array([True, True, False])
    rewards = np.array([-100.0, 100.0, -100.0])
    assert failed_at_termination("CartPole-v1", done, rewards).tolist() == [True, True, False]
    assert failed_at_termination("Acrobot-v1", done, rewards).tolist() == [False] * 3
    assert failed_at_termination("LunarLander-v3", done, rewards).tolist() == [True, False, False]


class AlwaysLeft:
    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros(len(obs), dtype=np.int64)


def test_an_early_fall_costs_every_remaining_step() -> None:
    fit = horizon_scaling(AlwaysLeft(), "CartPole-v1", [50, 100, 200], 5, seed=0, cost="failure")
    lengths = np.array(
        [
            len(collect(AlwaysLeft(), "CartPole-v1", 1, seed=i, seeding="per-episode"))
            for i in range(5)
        ]
    )
    assert lengths.max() < 50 and fit.failed_share == 1.0
    np.testing.assert_array_equal(fit.costs, np.array([50, 100, 200])[None] - lengths[:, None])
    # cost ~ T - c: the slope is ~1, not the ~0 an un-absorbed cost would give
    assert 1.0 <= fit.slope <= 1.2
    disagreement = horizon_scaling(
        AlwaysLeft(),
        "CartPole-v1",
        [50, 100],
        5,
        seed=0,
        cost="disagreement",
        expert=CartPoleExpert(),
    )
    assert np.all(disagreement.costs >= fit.costs[:, :2]) and disagreement.cost == "disagreement"


def test_horizons_beyond_the_time_limit_are_dropped() -> None:
    fit = horizon_scaling(AlwaysLeft(), "CartPole-v1", [100, 300, 600], 2, seed=0, cost="failure")
    assert fit.horizons.tolist() == [100, 300]
    with pytest.raises(ValueError, match="time limit"):
        horizon_scaling(AlwaysLeft(), "CartPole-v1", [100, 600], 2, seed=0, cost="failure")


def test_survivor_means_count_the_running_episodes() -> None:
    from imitate.plots import bootstrap_over_alive

    values = np.array([[1.0, 1.0, 1.0, np.nan], [0.0, 0.0, np.nan, np.nan], [2.0, 2.0, 2.0, 2.0]])
    steps, mean, low, high, alive = bootstrap_over_alive(values)
    assert alive.tolist() == [3, 3, 2, 1] and steps.tolist() == [0, 1, 2]  # >= 2 running
    np.testing.assert_allclose(mean, [1.0, 1.0, 1.5])
    assert np.all(low <= mean) and np.all(mean <= high) and np.all(high <= 2.0)


def test_roc_auc_equals_the_rank_auroc() -> None:
    from imitate.calibration import auroc
    from imitate.plots import roc_curve

    rng = np.random.default_rng(0)
    inside, outside = rng.normal(0, 1, 300), rng.normal(1, 1, 200).round(1)
    assert roc_curve(inside, outside)[2] == pytest.approx(auroc(inside, outside), abs=1e-12)


def test_state_names_of_shipped_envs() -> None:
    from imitate.drift import state_names

    assert state_names("CartPole-v1", 4) == [
        "cart position",
        "cart velocity",
        "pole angle",
        "pole angular velocity",
    ]
    assert len(state_names("LunarLander-v3", 8)) == 8
    assert state_names("Unknown-v0", 2) == ["state[0]", "state[1]"]


def test_drift_video_flag_writes_videos_and_report_html(tmp_path: Path) -> None:
    clone = tmp_path / "sloppy" / "policy.pt"
    demos = collect(CartPoleExpert(), "CartPole-v1", 1, seed=0)
    save_policy(
        train_bc(demos, BCConfig(optim=OptimConfig(max_steps=200)))[0],
        clone,
        {"env_id": "CartPole-v1"},
    )
    out = tmp_path / "r"
    args = ["drift", "--env", "CartPole-v1", "--policy", str(clone), "--episodes", "2"]
    assert main([*args, "--horizons", "10", "20", "--video", "--out", str(out)]) == 0
    result = json.loads((out / "drift.json").read_text())
    assert 1 <= len(result["videos"]) <= 2  # earliest-diverging, median, best: distinct ones
    gifs = sorted((out / "videos").glob("*.gif"))
    assert len(gifs) == len(result["videos"])
    assert (out / "report.html").read_text().count("data:image/gif;base64") == len(gifs)


def test_moving_average_by_hand() -> None:
    from imitate.plots import moving_average

    out = moving_average(np.array([1.0, 2.0, 3.0, 4.0, np.nan, 6.0]), 2)
    np.testing.assert_allclose(out, [1.0, 1.5, 2.5, 3.5, np.nan, 6.0])


def test_horizons_are_checked_against_the_time_limit() -> None:
    from imitate.drift import checked_horizons, episode_limit
    from imitate.errors import HorizonError, ImitateError

    assert episode_limit("CartPole-v1") == 500
    assert checked_horizons("CartPole-v1", [600, 100, 25, 100]).tolist() == [25, 100]
    for bad in ([25], [25, 1000], [25, 25]):
        with pytest.raises(HorizonError, match="time limit of 500 steps") as caught:
            checked_horizons("CartPole-v1", bad)
        assert isinstance(caught.value, ImitateError) and "\n" not in str(caught.value)
    import dataclasses

    import gymnasium as gym

    unlimited = dataclasses.replace(gym.spec("imitate/ObsDict-v0"), max_episode_steps=None)
    assert episode_limit(unlimited) is None  # no TimeLimit, no max_steps
    with pytest.raises(HorizonError) as caught:
        checked_horizons(unlimited, [25])
    assert "time limit" not in str(caught.value) and "at least 2" in str(caught.value)


def test_babyai_horizons_are_checked_against_its_own_max_steps() -> None:
    pytest.importorskip("minigrid")
    from imitate.drift import checked_horizons, episode_limit
    from imitate.errors import HorizonError

    assert episode_limit("BabyAI-GoToRedBallGrey-v0") == 64  # set at reset, no TimeLimit
    assert checked_horizons("BabyAI-GoToRedBallGrey-v0", [25, 50, 100]).tolist() == [25, 50]
    with pytest.raises(HorizonError, match="time limit of 64 steps"):
        checked_horizons("BabyAI-GoToRedBallGrey-v0", [25, 100])


@pytest.mark.parametrize(
    ("env", "horizons", "says"),
    [
        ("CartPole-v1", ["25"], "time limit of 500 steps"),
        ("CartPole-v1", ["25", "1000"], "time limit of 500 steps"),
        ("imitate/ObsDict-v0", ["25"], "at least 2 distinct horizons"),
    ],
)
def test_drift_refuses_too_few_horizons_up_front(
    env: str,
    horizons: list[str],
    says: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cli_helpers import run_cli

    import imitate.drift

    def no_rollouts(*args: object, **kwargs: object) -> None:
        raise AssertionError("rolled out before the horizons were checked")

    monkeypatch.setattr(imitate.drift, "analyse_drift", no_rollouts)
    demos = collect(CartPoleExpert(), "CartPole-v1", 1, seed=0)
    policy = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=20)))[0]
    clone = save_policy(policy, tmp_path / "bc" / "policy.pt", {"env_id": "CartPole-v1"})
    out = tmp_path / "d"
    argv = ["drift", "--env", env, "--policy", str(clone), "--episodes", "2", "--out", str(out)]
    code, _, err = run_cli([*argv, "--horizons", *horizons], capsys)
    assert code == 2 and err.startswith("imitate: error: --horizons ") and says in err, err
    assert err.count("\n") == 1 and not out.exists()


def test_run_refuses_too_few_horizons_before_any_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli_helpers import run_cli

    pytest.importorskip("minigrid")
    out = tmp_path / "run"
    argv = ["run", "--env", "BabyAI-GoToRedBallGrey-v0", "--horizons", "25", "100"]
    code, _, err = run_cli([*argv, "--out", str(out)], capsys)
    assert code == 2 and "time limit of 64 steps" in err and err.count("\n") == 1, err
    assert "imitate run [" not in err and not out.exists()
    code, _, err = run_cli(
        ["run", "--env", "CartPole-v1", "--horizons", "25", "--out", str(out)], capsys
    )
    assert code == 2 and "time limit of 500 steps" in err and not out.exists(), err


def test_drift_writes_report_html_without_video(tmp_path: Path) -> None:
    demos = collect(CartPoleExpert(), "CartPole-v1", 1, seed=0)
    policy = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=50)))[0]
    clone = save_policy(policy, tmp_path / "bc" / "policy.pt", {"env_id": "CartPole-v1"})
    out = tmp_path / "d"
    args = ["drift", "--env", "CartPole-v1", "--policy", str(clone), "--episodes", "2"]
    assert main([*args, "--horizons", "10", "20", "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "plot-trajectories" in page and "data:image/gif" not in page  # no videos asked
    result = json.loads((out / "drift.json").read_text())
    assert result["report_html"] == str(out / "report.html") and "videos" not in result
