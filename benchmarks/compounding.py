"""Compounding error as Ross and Bagnell (2010) define it, on five envs.

For BC on 1, 5 and 20 expert demonstrations and for DAgger (the main job's settings),
the cost of a clone is the expert's 0-1 imitation loss summed over a fixed horizon
``T`` on the clone's own rollouts, a failing termination being absorbing (every step
after it costs 1 up to ``T``). On ``imitate/Tightrope-v0`` the task's own failure
indicator (a step off the rope) is the primary cost, as in ``drift_slopes``, and the 0-1
loss is reported beside it. ``log cost`` is fitted against ``log T`` (200 episodes per
fit, seeds 50000 + i) with a 95 % bootstrap interval over episodes. The theory predicts
a slope of ~2 for BC and ~1 for DAgger when the per-step error is small and spread
evenly in time; the JSON also records the per-step cost rate in each horizon window, the
failed share and each clone's mean return over 50 episodes (seeds 10000 + i), which show
where that premise does not hold.

    python -m benchmarks.compounding [ENV ...]     # default: all five
    python -m benchmarks.compounding --table       # the docs/compounding.md table

Writes benchmarks/results/compounding.json, one figure per env
(docs/figures/compounding_<env>.png) and prints one line per clone.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import envs  # noqa: F401  (registers imitate/...)
from agents.zoo import load_zoo_teacher
from benchmarks.common import RESULTS, emit
from envs.tightrope import TightropeExpert
from imitate import BCConfig, collect, evaluate, train_bc
from imitate.configs import short_round_bc
from imitate.dagger import DAggerConfig, dagger
from imitate.drift import COST_LABELS, CostKind, HorizonScaling, horizon_scaling
from imitate.pipeline import RunConfig
from imitate.plots import plot_horizon_scaling
from imitate.policy import Policy

ENVS = ("CartPole-v1", "Acrobot-v1", "LunarLander-v3", "Pendulum-v1", "imitate/Tightrope-v0")
HORIZONS: dict[str, list[int]] = {
    "Pendulum-v1": [10, 20, 50, 100, 200],  # its time limit is 200 steps
}
DEFAULT_HORIZONS = [25, 50, 100, 200, 400]
DEMO_COUNTS = (1, 5, 20)
FIGURES = Path(__file__).resolve().parent.parent / "docs" / "figures"
EPISODES = 200
SEED = 0


def clones_for(env_id: str, seed: int) -> tuple[Policy, dict[str, Policy], dict[str, int]]:
    """The expert, its clones (BC-k, DAgger) and the expert labels each used."""
    if env_id == "imitate/Tightrope-v0":
        expert: Policy = TightropeExpert()
        demo_env = "imitate/TightropeCalm-v0"  # demonstrations never leave the rope
        dagger_config = DAggerConfig(
            rounds=4, steps_per_round=1000, eval_episodes=0, seed=seed, whole_episodes=False,
            bc=short_round_bc(),  # the round training docs/compounding.md was measured with
            final_refit=False,  # and without the final refit
        )  # fmt: skip
    else:
        expert = load_zoo_teacher(env_id)
        demo_env = env_id
        base = RunConfig().dagger
        dagger_config = DAggerConfig(
            rounds=base.rounds,
            steps_per_round=base.steps_per_round,
            bc=base.bc,
            warm_start=base.warm_start,
            eval_episodes=0,
            seed=seed,
            whole_episodes=base.whole_episodes,
            patience=base.patience,
            final_refit=base.final_refit,
        )
    demos = collect(expert, demo_env, max(DEMO_COUNTS), seed, seeding="per-episode")
    clones: dict[str, Policy] = {}
    labels: dict[str, int] = {}
    for count in DEMO_COUNTS:
        subset = demos.select_episodes(np.arange(count))
        clones[f"BC-{count}"], _ = train_bc(subset, BCConfig(seed=seed))
        labels[f"BC-{count}"] = len(subset)
    clones["DAgger"], history = dagger(env_id, expert, dagger_config)
    labels["DAgger"] = history.expert_labels
    return expert, clones, labels


def window_rates(fit: HorizonScaling) -> list[float]:
    """Mean cost per step within each window (0, T1], (T1, T2], ...: where the cost accrues."""
    mean = fit.mean_costs
    edges = np.concatenate([[0], fit.horizons])
    increments = np.diff(np.concatenate([[0.0], mean]))
    return [float(x) for x in increments / np.diff(edges)]


def row(name: str, fit: HorizonScaling, labels: int, mean_return: float) -> dict[str, Any]:
    return {
        "clone": name,
        "labels": labels,
        "mean_return": mean_return,
        **fit.to_json(),
        "rate_per_window": window_rates(fit),
    }


def main(env_ids: tuple[str, ...] = ENVS) -> None:
    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    for env_id in env_ids:
        start = time.perf_counter()
        expert, clones, labels = clones_for(env_id, SEED)
        horizons = HORIZONS.get(env_id, DEFAULT_HORIZONS)
        costs: list[CostKind] = (
            ["negative_reward", "disagreement"] if "Tightrope" in env_id else ["disagreement"]
        )
        rows = []
        primary: dict[str, HorizonScaling] = {}
        returns = {"expert": evaluate(expert, env_id, 50, 10_000).mean_return}
        for name, clone in clones.items():
            returns[name] = evaluate(clone, env_id, 50, 10_000).mean_return
            for cost in costs:
                fit = horizon_scaling(
                    clone,
                    env_id,
                    horizons,
                    EPISODES,
                    50_000,
                    cost,
                    expert,
                )
                rows.append(row(name, fit, labels[name], returns[name]))
                if cost == costs[0]:
                    primary[name] = fit
                lo, hi = fit.slope_ci
                print(
                    f"{env_id} {name} ({cost}): slope {fit.slope:.2f} [{lo:.2f}, {hi:.2f}], "
                    f"cost at T={horizons[-1]} {fit.mean_costs[-1]:.1f}, "
                    f"failed {fit.failed_share:.2f}, return {returns[name]:.1f}",
                    flush=True,
                )
        label = (
            "steps off the rope (the task's failure indicator)"
            if "Tightrope" in env_id
            else COST_LABELS["disagreement"]
        )
        slug = env_id.split("/")[-1].split("-")[0].lower()
        plot_horizon_scaling(
            {n: f for n, f in primary.items() if np.isfinite(f.slope)},
            FIGURES / f"compounding_{slug}.png",
            cost_label=label,
        )
        results[env_id] = {
            "horizons": horizons,
            "expert_mean_return": returns["expert"],
            "rows": rows,
            "wall_time_s": time.perf_counter() - start,
        }
    emit(
        "compounding",
        {"episodes_per_fit": EPISODES, "training_seed": SEED, "envs": results},
    )


def markdown_table(path: Path = RESULTS / "compounding.json") -> str:
    """The docs table from a results file: one row per env, one column per clone."""
    data = json.loads(path.read_text())
    names = [f"BC-{k}" for k in DEMO_COUNTS] + ["DAgger"]
    lines = [
        "| env (cost) | expert return | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for env_id, result in data["envs"].items():
        rows = result["rows"]
        for cost in dict.fromkeys(r["cost"] for r in rows):
            cells = []
            for name in names:
                r = next(r for r in rows if r["clone"] == name and r["cost"] == cost)
                lo, hi = r["slope_ci"]
                cells.append(
                    f"{r['slope']:.2f} [{lo:.2f}, {hi:.2f}]<br>cost {r['mean_costs'][-1]:.1f}, "
                    f"return {r['mean_return']:.1f}, {r['labels']:,} labels"
                )
            lines.append(
                f"| {env_id} ({cost}) | {result['expert_mean_return']:.1f} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        print(markdown_table())
    else:
        main(tuple(sys.argv[1:]) or ENVS)
