"""Continuous control: BC, DAgger and a distilled student on Pendulum and MuJoCo locomotion.

For each task and training seed: BC from 1, 5 and 25 expert episodes (the default Box
loss), DAgger with no more expert labels than BC-25 used, a distilled student with at
most 1/20 of the teacher's actor parameters and its int8 C export, plus BC-25 under each
Box loss. Every policy is evaluated on the same 50 episodes (reset seeds 10000 + i).

Scores are expert-normalised, ``(return - random) / (expert - random)`` with ``random``
the uniform-action policy's mean return over the same episodes; aggregates are the
interquartile mean with 95 % stratified-bootstrap intervals over seeds (``rliable``).
Output: ``benchmarks/results/continuous.json`` and ``continuous.png`` (score against
expert labels, per method and task).

    python -m benchmarks.continuous                                  # the full study
    python -m benchmarks.continuous --tasks Pendulum-v1 --seeds 2    # a reduced one
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.zoo import load_zoo_teacher, read_manifest
from benchmarks.common import RESULTS, emit
from imitate import BCConfig, OptimConfig, collect, evaluate, train_bc
from imitate.collect import env_spaces
from imitate.configs import BoxLoss
from imitate.dagger import DAggerConfig, dagger
from imitate.distill import DistillConfig, distill
from imitate.export import export_policy, load_exported
from imitate.policy import MLPPolicy, PolicyConfig

TASKS = ("Pendulum-v1", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")
LOSSES: tuple[BoxLoss, ...] = ("mse", "huber", "nll", "beta_nll")
DEMO_COUNTS = (1, 5, 25)
EVAL_SEED = 10_000
# Two layers in steps of 8, then one: the largest within the 1/20 budget is taken (the
# MuJoCo students were 2x32 while 2x40-2x48 fit: Walker2d's 2x32 student scored 0.73 on
# seed 0, a 2x48 one (3,804 parameters, just over its 1/20) 0.96).
STUDENT_SIZES = (
    *((w, w) for w in (64, 56, 48, 40, 32, 24, 16)),
    (16,),
    (8,),
    (4,),
)
# --methods: BC = BC-1/5/25 and the Box losses, BC-25 = that row alone, losses = the Box
# losses' rows alone (the default loss retrained, not copied from BC-25: a run that adds the
# comparison to another's rows); student = the student, its float32 C export (a control: the
# same function up to float rounding) and its int8 C export.
METHODS = ("BC", "BC-25", "losses", "DAgger", "student")
BC_ROWS = tuple(f"BC-{n}" for n in DEMO_COUNTS)


class UniformPolicy:
    """Uniform random actions in the Box (the normalisation's floor)."""

    def __init__(self, space: gym.spaces.Box, seed: int) -> None:
        self.low, self.high = space.low, space.high
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray) -> np.ndarray:
        shape = (len(obs), *self.low.shape)
        return self.rng.uniform(self.low, self.high, shape).astype(np.float32)


def student_size(env_id: str, teacher_params: int) -> tuple[int, ...]:
    """The largest student of STUDENT_SIZES with at most 1/20 of the teacher's parameters."""
    obs_space, action_space = env_spaces(env_id)
    for hidden in STUDENT_SIZES:
        probe = MLPPolicy(obs_space, action_space, PolicyConfig(hidden=hidden))
        if 20 * probe.n_parameters() <= teacher_params:
            return hidden
    raise ValueError(f"no student size fits 1/20 of {teacher_params} parameters")


def timed(run: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    value = run()
    return value, time.perf_counter() - start


def action_gap(
    policy: Any, reference: Any, states: np.ndarray, space: gym.Space[Any]
) -> dict[str, float]:
    """Per-state action difference of ``policy`` vs ``reference`` on ``states``, in units
    of the Box's half-range (mean and max of the per-state max over action dimensions)."""
    assert isinstance(space, gym.spaces.Box)
    half = (space.high - space.low) / 2
    diff = np.abs(policy.act(states) - reference.act(states)) / half
    worst = diff.reshape(len(states), -1).max(axis=1)
    return {"mean": float(worst.mean()), "max": float(worst.max()), "states": len(states)}


def one_seed(
    env_id: str,
    expert: Any,
    seed: int,
    episodes: int,
    bc: BCConfig,
    losses: tuple[str, ...],
    methods: tuple[str, ...] = METHODS,
) -> list[dict[str, Any]]:
    """Every method's return, expert labels and wall time for one training seed
    (``methods``: a subset of :data:`METHODS`, to rerun some rows)."""
    rows: list[dict[str, Any]] = []

    def row(method: str, policy: Any, labels: int, wall: float, **extra: Any) -> None:
        result = evaluate(policy, env_id, episodes, EVAL_SEED)
        rows.append(
            {"method": method, "seed": seed, "return": result.mean_return, "labels": labels}
            | {"wall_time_s": round(wall, 2), **extra}
        )
        if method.startswith("student"):  # per-episode returns: the int8 gap's analysis
            rows[-1]["returns"] = result.to_json()["returns"]
        print(f"  {env_id} seed {seed} {method}: {result.mean_return:.1f}", flush=True)

    demos = collect(expert, env_id, max(DEMO_COUNTS), seed=1000 * (seed + 1), source="zoo")
    config = replace(bc, seed=seed)
    counts = DEMO_COUNTS if "BC" in methods else DEMO_COUNTS[-1:] if "BC-25" in methods else ()
    for count in counts:
        subset = demos.select_episodes(np.arange(count))
        (policy, _), wall = timed(lambda s=subset: train_bc(s, config))
        row(f"BC-{count}", policy, len(subset), wall)
    for loss in losses if {"BC", "losses"} & set(methods) else ():
        name = f"BC-{max(DEMO_COUNTS)} {loss}"
        if loss == config.loss.box_loss and "BC" in methods:  # the BC-25 row above
            rows.append(rows[len(DEMO_COUNTS) - 1] | {"method": name, "loss": loss})
            continue
        loss_config = config.with_setting("box_loss", loss)
        (policy, _), wall = timed(lambda c=loss_config: train_bc(demos, c))
        row(name, policy, len(demos), wall, loss=loss)

    rounds = 5
    if "DAgger" in methods:
        dagger_config = DAggerConfig(
            rounds=rounds,
            steps_per_round=len(demos) // rounds,  # labels <= BC-25's
            eval_episodes=0,
            bc=config.with_setting("max_steps", max(1, config.optim.max_steps // 2)),
            seed=seed,
            warm_start=True,
            final_refit=False,  # measured without the final refit
        )
        (learner, history), wall = timed(lambda: dagger(env_id, expert, dagger_config))
        row("DAgger", learner, history.expert_labels, wall)
    if "student" in methods:
        student_rows(env_id, expert, seed, len(demos) // rounds, config, row)
    return rows


def student_rows(
    env_id: str, expert: Any, seed: int, steps_per_round: int, config: BCConfig, row: Any
) -> None:
    """The distilled student and its float32 C and int8 C exports, each evaluated and
    appended by ``row`` (:func:`one_seed`'s)."""
    rounds = 5

    teacher_params = int(expert.n_actor_parameters())
    hidden = student_size(env_id, teacher_params)
    distill_config = DistillConfig(
        student=PolicyConfig(hidden=hidden),
        mode="on-student",
        rounds=rounds,
        steps_per_round=steps_per_round,
        max_steps=config.optim.max_steps,
        seed=seed,
    )
    (student, info), wall = timed(lambda: distill(expert, env_id, distill_config))
    params = student.n_parameters()
    extra = {"student_parameters": params, "teacher_actor_parameters": teacher_params}
    row("student", student, int(info["teacher_labels"]), wall, hidden=list(hidden), **extra)
    calibration = collect(student, env_id, 10, seed=seed + 999).obs  # int8 ranges: own states
    # The student's own states on the evaluation episodes: where the exports' per-state
    # action error is measured (against the float student).
    states = collect(student, env_id, 5, seed=EVAL_SEED).obs
    _, action_space = env_spaces(env_id)
    labels = int(info["teacher_labels"])
    with tempfile.TemporaryDirectory() as tmp:
        for name, int8 in (("student float C", False), ("student int8 C", True)):
            out = Path(tmp) / name.replace(" ", "_")
            files = export_policy(student, "c", out, int8=int8, calibration=calibration)
            exported = load_exported(next(f for f in files if f.suffix == ".c"))
            gap = action_gap(exported, student, states, action_space)
            row(name, exported, labels, 0.0, **extra, action_error_vs_student=gap)


def iqm_with_ci(scores: np.ndarray, reps: int = 2000) -> dict[str, float]:
    """IQM and 95 % stratified-bootstrap interval of a ``[runs, tasks]`` score matrix."""
    from rliable import library as rly
    from rliable import metrics

    def aggregate(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x)])

    point, interval = rly.get_interval_estimates({"m": scores}, aggregate, reps=reps)
    return {"iqm": float(point["m"][0]), "low": float(interval["m"][0, 0]),
            "high": float(interval["m"][1, 0])}  # fmt: skip


def summarise(rows: list[dict[str, Any]], tasks: list[str]) -> dict[str, Any]:
    """Per-task and across-task IQM (95 % CI) of the normalised score for each method."""
    methods = sorted({r["method"] for r in rows}, key=[r["method"] for r in rows].index)
    seeds = sorted({r["seed"] for r in rows})
    summary: dict[str, Any] = {}
    for method in methods:
        matrix = np.full((len(seeds), len(tasks)), np.nan)
        labels: dict[str, list[int]] = {}
        for r in rows:
            if r["method"] == method:
                matrix[seeds.index(r["seed"]), tasks.index(r["task"])] = r["score"]
                labels.setdefault(r["task"], []).append(r["labels"])
        # Per task: the seeds it has; across tasks: the seeds every task has (rliable's
        # stratified bootstrap resamples runs within each task, so it needs a full matrix).
        per_task = {}
        for t, task in enumerate(tasks):
            column = matrix[~np.isnan(matrix[:, t]), t]
            if len(column):
                per_task[task] = iqm_with_ci(column[:, None]) | {
                    "labels": float(np.mean(labels[task])),
                    "seeds": len(column),
                }
        entry: dict[str, Any] = {"per_task": per_task}
        full = matrix[~np.isnan(matrix).any(axis=1)]
        if len(full):
            entry["all_tasks"] = iqm_with_ci(full) | {"seeds": len(full)}
        summary[method] = entry
    return summary


def int8_gaps(
    rows: list[dict[str, Any]], tasks: list[str], method: str = "student int8 C"
) -> dict[str, dict[str, float]]:
    """Per task: the ``method`` export's score minus the float student's, paired by seed
    (mean, min, max over seeds; score points are 1/100 of the expert-normalised scale)."""
    gaps: dict[str, dict[str, float]] = {}
    for task in tasks:
        score = {(r["method"], r["seed"]): r["score"] for r in rows if r["task"] == task}
        seeds = [s for (m, s) in score if m == "student" and (method, s) in score]
        diffs = [score[(method, s)] - score[("student", s)] for s in seeds]
        if diffs:
            gaps[task] = {
                "mean": float(np.mean(diffs)),
                "min": float(min(diffs)),
                "max": float(max(diffs)),
                "seeds": len(diffs),
            }
    return gaps


def plot(summary: dict[str, Any], tasks: list[str], path: Path) -> None:
    """Normalised score (IQM, 95 % CI) against expert labels, one panel per task."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        bc = [(m, summary.get(m, {}).get("per_task", {}).get(task)) for m in BC_ROWS]
        bc = [(m, s) for m, s in bc if s]
        if bc:
            x = [s["labels"] for _, s in bc]
            y = [s["iqm"] for _, s in bc]
            err = [[s["iqm"] - s["low"] for _, s in bc], [s["high"] - s["iqm"] for _, s in bc]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label="BC (1, 5, 25 episodes)")
        for method, marker in (("DAgger", "s"), ("student", "^"), ("student int8 C", "v")):
            s = summary.get(method, {}).get("per_task", {}).get(task)
            if s:
                err = [[s["iqm"] - s["low"]], [s["high"] - s["iqm"]]]
                ax.errorbar([s["labels"]], [s["iqm"]], yerr=err, marker=marker, capsize=3,
                            linestyle="none", label=method)  # fmt: skip
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(task)
        ax.set_xlabel("expert labels")
    axes[0][0].set_ylabel("expert-normalised score (IQM, 95 % CI)")
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(name: str, run: dict[str, Any], quiet: bool = False) -> None:
    """Summarise ``run``'s rows, draw the figure and write ``results/<name>.json``."""
    summary = summarise(run["rows"], run["tasks"])
    summary["int8_minus_float_student"] = int8_gaps(run["rows"], run["tasks"])
    summary["float_c_minus_float_student"] = int8_gaps(run["rows"], run["tasks"], "student float C")
    RESULTS.mkdir(exist_ok=True)
    figure = RESULTS / f"{name}.png"
    plot(summary, run["tasks"], figure)
    payload = run | {"summary": summary, "figure": str(figure.relative_to(RESULTS.parent.parent))}
    if quiet:
        (RESULTS / f"{name}.json").write_text(json.dumps({"benchmark": name, **payload}) + "\n")
    else:
        emit(name, payload)


def merge(names: list[str], out: str) -> None:
    """One result (rows, references, summary, figure) from runs of disjoint tasks, or of
    one task's disjoint seeds (``--first-seed``) measured with the same expert."""
    runs = [json.loads((RESULTS / f"{n}.json").read_text()) for n in names]
    tasks = list(dict.fromkeys(t for r in runs for t in r["tasks"]))
    for task in tasks:
        references = [r["references"][task] for r in runs if task in r["references"]]
        if any(ref != references[0] for ref in references):
            raise SystemExit(f"{task}: the runs to merge used different experts or references")
        keys = [
            (row["method"], row["seed"]) for r in runs for row in r["rows"] if row["task"] == task
        ]
        if len(keys) != len(set(keys)):
            raise SystemExit(f"{task}: the runs to merge share a (method, seed) row")
    completed: dict[str, int] = {}
    for r in runs:
        for t in r["tasks"]:
            completed[t] = completed.get(t, 0) + r["seeds_completed"]
    merged: dict[str, Any] = {
        "merged_from": [
            {"name": n, "command": r["command"], "bc_optimiser": r.get("bc_optimiser")}
            for n, r in zip(names, runs, strict=True)
        ],
        "tasks": tasks,
        "seeds_completed": completed,
        "eval_episodes": sorted({r["eval_episodes"] for r in runs}),
        "eval_seeds": f"{EVAL_SEED} + i",
        "default_box_loss": BCConfig().loss.box_loss,
        "references": {k: v for r in runs for k, v in r["references"].items()},
        "rows": [row for r in runs for row in r["rows"]],
        "wall_time_s": {n: r["wall_time_s"] for n, r in zip(names, runs, strict=True)},
    }
    write(out, merged)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first .. first+seeds-1")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes")
    parser.add_argument("--losses", default=",".join(LOSSES), help="'' skips the comparison")
    parser.add_argument("--loss-seeds", type=int, default=None, help="seeds of the comparison")
    parser.add_argument(
        "--methods", default=",".join(METHODS), help=f"rows to run, of {', '.join(METHODS)}"
    )
    parser.add_argument("--max-steps", type=int, default=BCConfig().optim.max_steps)
    parser.add_argument("--out", default="continuous")
    parser.add_argument("--merge", default="", help="comma-separated result names to merge")
    args = parser.parse_args()
    if args.merge:
        merge(args.merge.split(","), args.out)
        return
    torch.set_num_threads(1)
    gym.logger.min_level = 40
    tasks = [t for t in args.tasks.split(",") if t]
    losses = tuple(x for x in args.losses.split(",") if x)
    methods = tuple(x for x in args.methods.split(",") if x)
    if unknown := set(methods) - set(METHODS):
        parser.error(f"unknown --methods {sorted(unknown)} (known: {', '.join(METHODS)})")
    loss_seeds = args.seeds if args.loss_seeds is None else args.loss_seeds
    bc = BCConfig(optim=OptimConfig(max_steps=args.max_steps))
    start = time.perf_counter()
    run: dict[str, Any] = {
        "command": "python -m benchmarks.continuous "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v != ""),
        "tasks": tasks,
        "seeds": args.seeds,
        "seeds_completed": 0,
        "eval_episodes": args.episodes,
        "eval_seeds": f"{EVAL_SEED} + i",
        "default_box_loss": BCConfig().loss.box_loss,
        "bc_optimiser": asdict(bc.optim.resolved(box_head=True)),  # BC and DAgger rows
        "references": {},
        "rows": [],
    }
    for env_id in tasks:
        expert = load_zoo_teacher(env_id)
        _, action_space = env_spaces(env_id)
        assert isinstance(action_space, gym.spaces.Box)
        expert_return = evaluate(expert, env_id, args.episodes, EVAL_SEED).mean_return
        random_return = evaluate(
            UniformPolicy(action_space, 0), env_id, args.episodes, EVAL_SEED
        ).mean_return
        shipped = read_manifest()[env_id]  # which expert the rows were measured with
        run["references"][env_id] = {
            "expert": expert_return,
            "random": random_return,
            "expert_model": {k: shipped.get(k) for k in ("algo", "timesteps", "file", "command")},
        }
        print(f"{env_id}: expert {expert_return:.1f}, random {random_return:.1f}", flush=True)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            seed_losses = losses if seed - args.first_seed < loss_seeds else ()
            for r in one_seed(env_id, expert, seed, args.episodes, bc, seed_losses, methods):
                score = (r["return"] - random_return) / (expert_return - random_return)
                run["rows"].append({"task": env_id, **r, "score": score})
            # Partial results survive an interrupted run: rewritten after every seed.
            run["seeds_completed"] = seed - args.first_seed + 1
            run["wall_time_s"] = round(time.perf_counter() - start, 1)
            write(args.out, run, quiet=True)
    write(args.out, run)


if __name__ == "__main__":
    main()
