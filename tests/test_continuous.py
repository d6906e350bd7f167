"""Box-action cloning: the loss choice, early stopping, and returns on Pendulum (fixed seeds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agents.zoo import load_zoo_teacher
from imitate import (
    BCConfig,
    Dataset,
    EarlyStopConfig,
    LossConfig,
    OptimConfig,
    collect,
    evaluate,
    train_bc,
)
from imitate.bc import box_loss
from imitate.losses import beta_nll, gaussian_nll
from imitate.spaces import GaussianHead


@pytest.fixture(scope="module")
def pendulum_zoo_demos() -> Dataset:
    """The issue's file: 20 zoo-expert Pendulum episodes from reset seed 4 (4,000 steps)."""
    return collect(load_zoo_teacher("Pendulum-v1"), "Pendulum-v1", n_episodes=20, seed=4)


@pytest.mark.slow
def test_default_box_bc_clones_the_pendulum_expert(pendulum_zoo_demos: Dataset) -> None:
    """The issue's defect: the NLL-trained clone returned -1192 here; the expert -142."""
    policy, history = train_bc(pendulum_zoo_demos, BCConfig(seed=0))
    result = evaluate(policy, "Pendulum-v1", n_episodes=50, seed=10_000)
    assert result.mean_return >= -200.0, result.mean_return
    assert history.final["holdout_action_mse"] < 0.02


@pytest.mark.slow
def test_nll_trained_clone_gives_up_the_saturated_states(pendulum_zoo_demos: Dataset) -> None:
    """The cause, as evidence: under the NLL the clone buys a large std exactly where the
    expert saturates its torque (the swing-up), and then misses its action there."""
    policy, _ = train_bc(
        pendulum_zoo_demos,
        BCConfig(seed=0, optim=OptimConfig(max_steps=6000), loss=LossConfig(box_loss="nll")),
    )
    head = policy.head
    assert isinstance(head, GaussianHead)
    with torch.no_grad():
        outputs = policy(torch.as_tensor(pendulum_zoo_demos.obs))
        mean, log_std = head.mean_log_std(outputs)
    actions = torch.as_tensor(pendulum_zoo_demos.actions).reshape(-1, 1)
    saturated = (actions.abs() > 1.95).squeeze(-1)
    assert 0.01 < float(saturated.float().mean()) < 0.2
    std = log_std.exp().squeeze(-1)
    error = (mean - actions).abs().squeeze(-1)
    assert float(std[saturated].median()) > 20 * float(std[~saturated].median())
    assert float(error[saturated].mean()) > 5 * float(error[~saturated].mean())


def test_box_loss_dispatch_matches_the_losses_by_hand() -> None:
    head = GaussianHead((-2.0, -1.0), (2.0, 1.0))
    g = torch.Generator().manual_seed(0)
    outputs = torch.randn(8, 4, generator=g)
    actions = torch.rand(8, 2, generator=g) * 2 - 1
    mean, log_std = head.mean_log_std(outputs)
    nll = box_loss(head, outputs, actions, LossConfig(box_loss="nll"))
    torch.testing.assert_close(nll, gaussian_nll(mean, log_std, actions, reduction="none"))
    beta = box_loss(head, outputs, actions, LossConfig(box_loss="beta_nll", box_beta=0.25))
    torch.testing.assert_close(beta, beta_nll(mean, log_std, actions, 0.25, reduction="none"))
    mse = box_loss(head, outputs, actions, LossConfig(box_loss="mse"))
    expected = ((mean - actions) ** 2).mean(-1) + beta_nll(
        mean, log_std, actions, 1.0, reduction="none"
    )
    torch.testing.assert_close(mse, expected)


def test_mse_loss_leaves_the_mean_gradient_to_the_regression() -> None:
    """With 'mse' the std's fit sends no gradient into the mean (mean detached)."""
    head = GaussianHead((-1.0,), (1.0,))
    raw = torch.tensor([[0.3, -1.0]], requires_grad=True)
    action = torch.tensor([[0.9]])
    box_loss(head, raw, action, LossConfig(box_loss="mse")).sum().backward()
    assert raw.grad is not None
    mean = float(np.tanh(0.3))
    expected = 2 * (mean - 0.9) * (1 - mean**2)  # d/d raw of (tanh(raw) - a)^2
    assert float(raw.grad[0, 0]) == pytest.approx(expected, rel=1e-5)


def test_box_early_stopping_keeps_the_best_held_out_action_mse(
    pendulum_zoo_demos: Dataset,
) -> None:
    _, history = train_bc(
        pendulum_zoo_demos,
        BCConfig(
            seed=0, optim=OptimConfig(max_steps=1500), early_stop=EarlyStopConfig(eval_every=250)
        ),
    )
    best = min(r["holdout_action_mse"] for r in history.records)
    assert history.final["holdout_action_mse"] == best


@pytest.mark.slow
def test_short_halfcheetah_bc_beats_random_by_a_wide_margin() -> None:
    """3,000 transitions, 2,000 steps: the clone must run, not just twitch. On this scale
    (uniform random 0, the expert 1; 5 episodes) the zero action scores 0.06; the clone
    scored 0.80 with 'mse' (0.94 beta-NLL, 1.02 Huber, 1.14 NLL) when this was written."""
    pytest.importorskip("mujoco")
    env_id = "HalfCheetah-v5"
    expert = load_zoo_teacher(env_id)
    demos = collect(expert, env_id, n_episodes=3, seed=0)
    policy, _ = train_bc(demos, BCConfig(seed=0, optim=OptimConfig(max_steps=2000)))
    space = expert.action_space
    rng = np.random.default_rng(0)

    class Uniform:
        def act(self, obs: np.ndarray) -> np.ndarray:
            return rng.uniform(space.low, space.high, (len(obs), *space.shape)).astype(np.float32)

    episodes = 5
    clone = evaluate(policy, env_id, episodes, 10_000).mean_return
    best = evaluate(expert, env_id, episodes, 10_000).mean_return
    floor = evaluate(Uniform(), env_id, episodes, 10_000).mean_return
    assert (clone - floor) / (best - floor) >= 0.6, (clone, best, floor)


def test_main_job_scales_its_defaults_for_mujoco_only() -> None:
    from imitate.configs import RunConfig, long_episode_config
    from imitate.pipeline import scaled_run_config as _scaled_run_config

    assert _scaled_run_config("HalfCheetah-v5", RunConfig()) == long_episode_config()
    assert _scaled_run_config("CartPole-v1", RunConfig()) == RunConfig()
    chosen = RunConfig(eval_episodes=7)  # a flag given: the user's config is kept
    assert _scaled_run_config("HalfCheetah-v5", chosen) == chosen


def test_benchmark_action_gap_is_in_half_ranges_by_hand() -> None:
    import gymnasium as gym

    from benchmarks.continuous import action_gap

    class Fixed:
        def __init__(self, actions: list[list[float]]) -> None:
            self.actions = np.asarray(actions, np.float32)

        def act(self, obs: np.ndarray) -> np.ndarray:
            return self.actions

    space = gym.spaces.Box(np.array([-2.0, 0.0]), np.array([2.0, 1.0]))  # half-ranges 2, 0.5
    a = Fixed([[0.0, 0.5], [1.0, 0.5]])
    b = Fixed([[0.4, 0.6], [1.0, 0.25]])
    gap = action_gap(a, b, np.zeros((2, 3), np.float32), space)
    # per state: max(0.4 / 2, 0.1 / 0.5) = 0.2, max(0, 0.25 / 0.5) = 0.5
    assert gap["states"] == 2
    assert gap["mean"] == pytest.approx(0.35) and gap["max"] == pytest.approx(0.5)


def test_benchmark_merges_one_tasks_seeds_measured_with_one_expert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import benchmarks.common
    import benchmarks.continuous as bench

    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(benchmarks.common, "RESULTS", tmp_path)
    reference = {"expert": 10.0, "random": 0.0, "expert_model": {"algo": "sac"}}

    def run(name: str, seed: int, scores: tuple[float, float], ref: dict[str, Any]) -> None:
        rows = [
            {"task": "T", "method": m, "seed": seed, "score": s, "return": 10 * s, "labels": 5}
            for m, s in zip(("student", "student int8 C"), scores, strict=True)
        ]
        payload = {"command": name, "tasks": ["T"], "seeds_completed": 1, "eval_episodes": 50,
                   "references": {"T": ref}, "rows": rows, "wall_time_s": 1.0}  # fmt: skip
        (tmp_path / f"{name}.json").write_text(json.dumps(payload))

    run("a", 0, (1.0, 0.9), reference)
    run("b", 1, (0.8, 0.85), reference)
    bench.merge(["a", "b"], "m")
    merged = json.loads((tmp_path / "m.json").read_text())
    assert merged["tasks"] == ["T"] and merged["seeds_completed"] == {"T": 2}
    gap = merged["summary"]["int8_minus_float_student"]["T"]
    assert gap["mean"] == pytest.approx((-0.1 + 0.05) / 2) and gap["seeds"] == 2
    run("c", 2, (1.0, 1.0), reference | {"expert": 20.0})  # another expert
    with pytest.raises(SystemExit, match="different experts"):
        bench.merge(["a", "c"], "m2")
    with pytest.raises(SystemExit, match="share a"):
        bench.merge(["a", "a"], "m3")


def test_benchmark_losses_alone_retrains_the_default_loss_and_adds_no_bc_rows() -> None:
    """``--methods losses`` (the comparison added to another run's rows): one row per Box
    loss, the default one trained too, and none of the BC-n rows the other run has."""
    from agents.zoo import load_zoo_teacher
    from benchmarks.continuous import one_seed
    from imitate import BCConfig, OptimConfig

    bc = BCConfig(optim=OptimConfig(max_steps=5))
    expert = load_zoo_teacher("Pendulum-v1")
    rows = one_seed("Pendulum-v1", expert, 0, 1, bc, ("mse", "huber"), ("losses",))
    assert [r["method"] for r in rows] == ["BC-25 mse", "BC-25 huber"]
    assert [r["loss"] for r in rows] == ["mse", "huber"] and rows[0]["labels"] == 5000
    with_bc = one_seed("Pendulum-v1", expert, 0, 1, bc, ("mse",), ("BC-25", "losses"))
    assert [r["method"] for r in with_bc] == ["BC-25", "BC-25 mse"]


def test_box_early_stopping_waits_longer_than_the_discrete_default() -> None:
    """``patience=None``: a Box head's held-out action MSE gets 40 stale evaluations (it
    stalls for thousands of steps while still falling on MuJoCo), a categorical head's NLL
    8; an explicit patience is kept for both. Actions here are noise, so the held-out
    measure stops improving early and the run stops exactly ``patience`` evaluations after
    its best one."""
    import dataclasses

    from imitate.configs import BOX_PATIENCE, DEFAULT_PATIENCE

    assert EarlyStopConfig().resolved_patience(True) == BOX_PATIENCE == 40
    assert EarlyStopConfig().resolved_patience(False) == DEFAULT_PATIENCE == 8
    assert EarlyStopConfig(patience=3).resolved_patience(True) == 3
    rng = np.random.default_rng(0)
    demos = collect(load_zoo_teacher("Pendulum-v1"), "Pendulum-v1", n_episodes=2, seed=0)
    noise = dataclasses.replace(
        demos, actions=rng.uniform(-2, 2, demos.actions.shape).astype(np.float32)
    )

    def stale_steps(patience: int | None) -> int:
        config = BCConfig(
            seed=0,
            optim=OptimConfig(max_steps=4000),
            early_stop=EarlyStopConfig(eval_every=10, patience=patience),
        )
        _, history = train_bc(noise, config)
        assert history.steps < 4000  # it stopped early
        assert history.best_step is not None
        return history.steps - history.best_step

    assert stale_steps(None) == 10 * BOX_PATIENCE
    assert stale_steps(8) == 10 * 8


def test_benchmark_student_is_the_largest_size_within_a_twentieth_of_the_teacher() -> None:
    from benchmarks.continuous import STUDENT_SIZES, student_size
    from imitate.collect import env_spaces
    from imitate.policy import MLPPolicy, PolicyConfig

    obs_space, action_space = env_spaces("Pendulum-v1")

    def params(hidden: tuple[int, ...]) -> int:
        return MLPPolicy(obs_space, action_space, PolicyConfig(hidden=hidden)).n_parameters()

    for teacher in (4_546, 40_000, 100_000):
        chosen = student_size("Pendulum-v1", teacher)
        assert 20 * params(chosen) <= teacher
        larger = STUDENT_SIZES[: STUDENT_SIZES.index(chosen)]
        assert all(20 * params(h) > teacher for h in larger), (teacher, chosen)
    assert student_size("Pendulum-v1", 40_000) == (40, 40)  # between 2x32 and 2x48


def test_eval_of_a_box_policy_says_calibration_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ECE and Brier are measured for Discrete actions: a Box policy's eval says so, also
    when --expert is given (it used to be silently unused)."""
    import json

    from cli_helpers import run_cli

    data, out = tmp_path / "p.npz", tmp_path / "pb"
    collect_args = ["collect", "--env", "Pendulum-v1", "--expert", "zoo", "--episodes", "2"]
    assert run_cli([*collect_args, "--out", str(data)], capsys)[0] == 0
    assert (
        run_cli(["bc", "--data", str(data), "--out", str(out), "--max-steps", "50"], capsys)[0] == 0
    )
    args = ["eval", "--policy", str(out / "policy.pt"), "--episodes", "1", "--expert", "heuristic"]
    code, stdout, err = run_cli([*args, "--json"], capsys)
    assert code == 0, err
    skipped = json.loads(stdout)["calibration"]["skipped"]
    assert "Gaussian head" in skipped and "Discrete actions only" in skipped


def test_optimiser_defaults_resolve_by_head_and_reach_the_trainer() -> None:
    """``lr``/``batch_size`` None: a Box head trains exactly as with 1e-3 / 256 (issue 15's
    regression baseline), a categorical head as with 3e-3 / 64; explicit values are kept."""
    from imitate.configs import ResolvedOptim

    assert OptimConfig().resolved(box_head=True) == ResolvedOptim(256, 1e-3, 0.0, 20_000)
    assert OptimConfig().resolved(box_head=False) == ResolvedOptim(64, 3e-3, 0.0, 20_000)
    assert OptimConfig(lr=0.01, batch_size=8).resolved(box_head=True).lr == 0.01
    for env_id, lr, batch in (("Pendulum-v1", 1e-3, 256), ("CartPole-v1", 3e-3, 64)):
        demos = collect(load_zoo_teacher(env_id), env_id, n_episodes=2, seed=0)
        stop = EarlyStopConfig(eval_every=50)
        trained = {}
        for name, optim in (
            ("default", OptimConfig(max_steps=100)),
            ("explicit", OptimConfig(lr=lr, batch_size=batch, max_steps=100)),
            ("other", OptimConfig(lr=lr * 3, batch_size=batch // 4, max_steps=100)),
        ):
            policy, history = train_bc(demos, BCConfig(seed=0, optim=optim, early_stop=stop))
            trained[name] = torch.nn.utils.parameters_to_vector(policy.parameters())
            if name != "other":
                assert (history.lr, history.batch_size) == (lr, batch), env_id
        assert torch.equal(trained["default"], trained["explicit"]), env_id
        assert not torch.allclose(trained["default"], trained["other"]), env_id


def test_mujoco_warnings_are_one_line_each_once(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """MuJoCo prints its C warnings at every model compile (HalfCheetah-v5's deprecated
    ``settotalmass`` under mujoco 4: once per env made); a command routes them into the
    one-line warning contract, each distinct message once."""
    from imitate.cli import main

    out = tmp_path / "hc.npz"
    args = ["collect", "--env", "HalfCheetah-v5", "--expert", "zoo", "--episodes", "2"]
    assert main([*args, "--num-envs", "2", "--out", str(out)]) == 0
    captured = capfd.readouterr()
    lines = (captured.out + captured.err).splitlines()
    assert not [line for line in lines if line.startswith("WARNING:")], lines  # MuJoCo's own
    routed = [line for line in lines if line.startswith("imitate: warning: mujoco: ")]
    assert len(routed) == len(set(routed)) <= 1, routed
