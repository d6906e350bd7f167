"""Expert labels and wall time until the learner reaches the expert's level.

For each env and 5 seeds: BC on growing expert-demonstration sets, plain DAgger
and gated DAgger (entropy gate, 30 % query rate), stopping at the target mean
return over 50 seeded episodes. Wall time counts rollouts and training, not
the evaluations that decide when to stop. Then gated vs plain DAgger with a
fixed budget of rounds on CartPole-v1 and Acrobot-v1.

``warm-start``: on LunarLander-v3 with the main job's DAgger settings (6 rounds of 1,000
steps, 4,000 BC steps per round), warm-starting each round from the previous learner vs
training a new learner on the aggregate; 50 evaluation episodes, seeds 0-2.

``defaults``: DAgger with its default settings (whole-episode rounds, stop after 2 rounds
without improvement, at most 10 rounds of 500 steps) against BC trained (BC defaults) on
the first ``L`` transitions of expert demonstrations, ``L`` = all the labels DAgger asked
for, on five envs and 5 seeds. Both are scored on 50 episodes with reset seeds 20000 + i,
apart from the seeds 10000 + i DAgger uses to pick its best round.

    python -m benchmarks.bench_dagger               # the label study
    python -m benchmarks.bench_dagger warm-start    # the warm-start study
    python -m benchmarks.bench_dagger defaults [ENV ...] [--seeds N] [--refit|--no-refit]
    python -m benchmarks.bench_dagger rounds ENV 0,1,2 bc|short   # every round's learner scored
    python -m benchmarks.bench_dagger refit ENV 0,1   # BC's training on DAgger's aggregate
    python -m benchmarks.bench_dagger spread ENV SEED N   # refit and BC over N training seeds
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from agents.zoo import load_zoo_teacher
from benchmarks.common import emit
from imitate import BCConfig, EarlyStopConfig, OptimConfig, collect, evaluate, train_bc
from imitate.configs import short_round_bc
from imitate.dagger import DAggerConfig, dagger

TARGETS = {"CartPole-v1": 475.0, "MountainCar-v0": -110.0}
# MountainCar needs whole expert episodes in round 0: a learner that never reaches the
# flag only visits the valley floor, so short rounds teach it nothing new.
STEPS_PER_ROUND = {"CartPole-v1": 250, "MountainCar-v0": 1000}
BC_SIZES = [100, 200, 500, 1000, 2000, 5000, 10000]
SEEDS = range(5)
ROUND_BC = BCConfig(
    optim=OptimConfig(max_steps=1000), early_stop=EarlyStopConfig(eval_every=100, patience=4)
)


def bc_until(env_id: str, target: float, seed: int) -> dict[str, float]:
    expert = load_zoo_teacher(env_id)
    demos = collect(expert, env_id, 10**9, seed, max_steps=max(BC_SIZES))
    wall = 0.0
    for size in BC_SIZES:
        start = time.perf_counter()
        policy, _ = train_bc(demos.select_transitions(np.arange(size)), BCConfig(seed=seed))
        wall += time.perf_counter() - start
        if evaluate(policy, env_id, 50, 10_000).mean_return >= target:
            return {"labels": size, "wall_time_s": wall, "reached": True}
    return {"labels": max(BC_SIZES), "wall_time_s": wall, "reached": False}


def dagger_until(env_id: str, target: float, seed: int, gate: str) -> dict[str, float]:
    config = DAggerConfig(
        rounds=12,
        steps_per_round=STEPS_PER_ROUND[env_id],
        gate=gate,  # type: ignore[arg-type]
        query_rate=0.3,
        eval_episodes=50,
        target_return=target,
        bc=ROUND_BC,
        seed=seed,
        whole_episodes=False,  # this study's rounds are cut at the step budget
        patience=None,
        final_refit=False,
    )
    _, history = dagger(env_id, load_zoo_teacher(env_id), config)
    last = history.records[-1]
    return {
        "labels": last["expert_labels"],
        "wall_time_s": last["wall_time_s"],
        "reached": last["learner_return"] >= target,
        "rounds": len(history.records),
    }


def gated_vs_plain(env_id: str, seed: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for gate in ("none", "entropy"):
        config = DAggerConfig(
            rounds=6,
            steps_per_round=500,
            gate=gate,
            query_rate=0.3,
            eval_episodes=0,
            seed=seed,
            whole_episodes=False,
            patience=None,
            bc=short_round_bc(),  # the round training this study was measured with
            final_refit=False,
        )
        learner, history = dagger(env_id, load_zoo_teacher(env_id), config)
        out[f"{gate}_labels"] = history.expert_labels
        out[f"{gate}_return"] = evaluate(learner, env_id, 50, 10_000).mean_return
    return out


def warm_vs_fresh() -> list[dict[str, float]]:
    from imitate.pipeline import RunConfig

    env_id = "LunarLander-v3"
    expert = load_zoo_teacher(env_id)
    rows = []
    for seed in range(3):
        row: dict[str, float] = {"seed": seed}
        for warm in (True, False):
            config = replace(
                RunConfig().dagger,
                warm_start=warm,
                eval_episodes=0,
                seed=seed,
                rounds=6,  # the settings this study was measured with
                whole_episodes=False,
                whole_first_round=False,
                patience=None,
                final_refit=False,
            )
            learner, history = dagger(env_id, expert, config)
            result = evaluate(learner, env_id, 50, 10_000)
            key = "warm" if warm else "fresh"
            row[f"{key}_return"] = result.mean_return
            row[f"{key}_std"] = result.std_return
            row[f"{key}_wall_time_s"] = history.records[-1]["wall_time_s"]
        print(row, flush=True)
        rows.append(row)
    return rows


DEFAULTS_ENVS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3", "Pendulum-v1")
SCORE_SEED = 20_000


def defaults_vs_bc(env_id: str, seed: int, refit: bool | None = None) -> dict[str, Any]:
    """One seed of DAgger with defaults and BC with the same number of labels. ``refit``
    overrides ``final_refit``; with the refit on, the learner the rounds alone would return
    (the best evaluated round) is scored too (``rounds_return``), from the run folder."""
    import tempfile
    from pathlib import Path

    from imitate.policy import load_policy

    expert = load_zoo_teacher(env_id)
    config = DAggerConfig(seed=seed)
    if refit is not None:
        config = replace(config, final_refit=refit)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        learner, history = dagger(env_id, expert, config, run_dir=folder)
        dagger_wall = time.perf_counter() - start
        best = history.best_round if history.best_round is not None else len(history.rounds) - 1
        rounds_learner = load_policy(Path(folder) / f"round_{best:03d}" / "policy.pt")
    labels = history.expert_labels
    scored = evaluate(learner, env_id, 50, SCORE_SEED)
    demos = collect(expert, env_id, 10**9, seed, max_steps=labels)
    start = time.perf_counter()
    bc, _ = train_bc(
        demos.select_transitions(np.arange(min(labels, len(demos)))), BCConfig(seed=seed)
    )
    bc_wall = time.perf_counter() - start
    bc_scored = evaluate(bc, env_id, 50, SCORE_SEED)
    row: dict[str, Any] = {
        "seed": seed,
        "labels": labels,
        "rounds": len(history.records),
        "best_round": -1 if history.best_round is None else history.best_round,
        "round0_labels": history.records[0]["expert_labels"],
        "dagger_return": scored.mean_return,
        "bc_return": bc_scored.mean_return,
        "dagger_wall_time_s": dagger_wall,
        "bc_wall_time_s": bc_wall,
    }
    if history.refit is not None:
        row["rounds_return"] = evaluate(rounds_learner, env_id, 50, SCORE_SEED).mean_return
        row["refit_selection_return"] = history.refit.learner_return
        row["rounds_selection_return"] = history.rounds[best].learner_return
        row["refit_wall_time_s"] = history.refit.wall_time_s - history.rounds[-1].wall_time_s
    return row


def rounds_scored(env_id: str, seed: int, round_bc: str) -> dict[str, Any]:
    """DAgger defaults with every round run (``patience=None``), each round's learner scored
    on the 50 score episodes: where the learners stop improving. ``round_bc``: ``short``
    (the default round training, :func:`short_round_bc`) or ``bc`` (BC's own, ``BCConfig()``)."""
    import tempfile
    from pathlib import Path

    from imitate.policy import load_policy

    config = DAggerConfig(seed=seed, patience=None, final_refit=False)
    if round_bc == "bc":
        config = replace(config, bc=BCConfig())
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        _, history = dagger(env_id, load_zoo_teacher(env_id), config, run_dir=folder)
        for k, record in enumerate(history.rounds):
            learner = load_policy(Path(folder) / f"round_{k:03d}" / "policy.pt")
            rows.append(
                {
                    "round": k,
                    "expert_labels": record.expert_labels,
                    "selection_return": record.learner_return,
                    "score_return": evaluate(learner, env_id, 50, SCORE_SEED).mean_return,
                }
            )
    return {"seed": seed, "round_bc": round_bc, "rounds": rows}


def refit_aggregate(env_id: str, seed: int) -> dict[str, Any]:
    """DAgger defaults with every round run, then a new learner trained with BC's defaults on
    the whole aggregate and on subsets of its rounds, scored on the 50 score episodes: is a
    gap the data DAgger gathered or the learner it trained?"""
    import tempfile
    from pathlib import Path

    from imitate.data import concatenate, load_dataset

    with tempfile.TemporaryDirectory() as folder:
        learner, history = dagger(
            env_id,
            load_zoo_teacher(env_id),
            DAggerConfig(seed=seed, patience=None, final_refit=False),
            run_dir=folder,
        )
        rounds = [
            load_dataset(Path(folder) / f"round_{k:03d}" / "labels.npz")
            for k in range(len(history.rounds))
        ]
    out: dict[str, Any] = {
        "seed": seed,
        "last_learner": evaluate(learner, env_id, 50, SCORE_SEED).mean_return,
    }
    subsets = {
        "all": range(len(rounds)),
        "r0+r4..": [0, *range(4, len(rounds))],
        "r0..r3": range(4),
    }
    for name, keep in subsets.items():
        data = concatenate([rounds[k] for k in keep])
        policy, _ = train_bc(data, BCConfig(seed=seed))
        out[name] = {
            "labels": len(data),
            "return": evaluate(policy, env_id, 50, SCORE_SEED).mean_return,
        }
    return out


def training_spread(env_id: str, seed: int, trainings: int) -> dict[str, Any]:
    """How much a learner's score moves with its training seed alone: on one default run's
    aggregate (every round run), the final refit's training with ``trainings`` seeds, and BC
    on the same number of expert labels with as many seeds; 50 score episodes each."""
    import tempfile
    from pathlib import Path

    from imitate.configs import refit_training
    from imitate.data import concatenate, load_dataset

    expert = load_zoo_teacher(env_id)
    config = DAggerConfig(seed=seed, patience=None, final_refit=False)
    with tempfile.TemporaryDirectory() as folder:
        _, history = dagger(env_id, expert, config, run_dir=folder)
        aggregate = concatenate(
            [
                load_dataset(Path(folder) / f"round_{k:03d}" / "labels.npz")
                for k in range(len(history.rounds))
            ]
        )
    labels = history.expert_labels
    demos = collect(expert, env_id, 10**9, seed, max_steps=labels)
    demos = demos.select_transitions(np.arange(min(labels, len(demos))))
    out: dict[str, Any] = {"seed": seed, "labels": labels, "refit": [], "bc": []}
    for k in range(trainings):
        refit, _ = train_bc(aggregate, replace(refit_training(config.bc), seed=k))
        bc, _ = train_bc(demos, BCConfig(seed=k))
        out["refit"].append(evaluate(refit, env_id, 50, SCORE_SEED).mean_return)
        out["bc"].append(evaluate(bc, env_id, 50, SCORE_SEED).mean_return)
        print(env_id, seed, k, out["refit"][-1], out["bc"][-1], flush=True)
    return out


def run_defaults(argv: list[str]) -> None:
    seeds, refit, tag = 5, None, ""
    if "--seeds" in argv:
        at = argv.index("--seeds")
        seeds = int(argv[at + 1])
        argv = argv[:at] + argv[at + 2 :]
    for flag, value in (("--refit", True), ("--no-refit", False)):
        if flag in argv:
            argv, refit = [a for a in argv if a != flag], value
            tag = "_" + flag[2:].replace("-", "_")
    env_ids = tuple(argv) or DEFAULTS_ENVS
    results: dict[str, Any] = {}
    for env_id in env_ids:
        rows = []
        for seed in range(seeds):
            rows.append(defaults_vs_bc(env_id, seed, refit))
            print(env_id, rows[-1], flush=True)
        keys = ["labels", "dagger_return", "bc_return", "rounds", "dagger_wall_time_s"]
        keys += ["rounds_return", "refit_wall_time_s"] if "rounds_return" in rows[0] else []
        summary = {key: float(np.mean([r[key] for r in rows])) for key in keys}
        summary["dagger_minus_bc_se"] = (
            float(
                np.std([r["dagger_return"] - r["bc_return"] for r in rows], ddof=1)
                / np.sqrt(len(rows))
            )
            if len(rows) > 1
            else float("nan")
        )
        results[env_id] = {"rows": rows, "mean": summary}
        print(env_id, summary, flush=True)
        emit(
            f"bench_dagger_defaults{tag}_{env_id}",
            {"seeds": seeds, "score_seed": SCORE_SEED, **results[env_id]},
        )
    if len(env_ids) > 1:
        emit(
            f"bench_dagger_defaults{tag}",
            {"seeds": seeds, "score_seed": SCORE_SEED, "envs": results},
        )


def main() -> None:
    torch.set_num_threads(1)
    if sys.argv[1:2] == ["defaults"]:
        run_defaults(sys.argv[2:])
        return
    if sys.argv[1:2] == ["rounds"]:  # rounds ENV SEED,SEED,... bc|short
        env_id, seeds, round_bc = sys.argv[2], sys.argv[3], sys.argv[4]
        rows = [rounds_scored(env_id, int(s), round_bc) for s in seeds.split(",")]
        emit(f"bench_dagger_rounds_{env_id}_{round_bc}", {"env": env_id, "rows": rows})
        return
    if sys.argv[1:2] == ["refit"]:  # refit ENV SEED,SEED,...
        env_id = sys.argv[2]
        rows = [refit_aggregate(env_id, int(s)) for s in sys.argv[3].split(",")]
        emit(f"bench_dagger_refit_{env_id}", {"env": env_id, "rows": rows})
        return
    if sys.argv[1:2] == ["spread"]:  # spread ENV SEED TRAININGS
        env_id, seed, trainings = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        spread = training_spread(env_id, seed, trainings)
        emit(f"bench_dagger_spread_{env_id}_{seed}", {"env": env_id, **spread})
        return
    if sys.argv[1:] == ["warm-start"]:
        emit("bench_dagger_warm_start", {"env": "LunarLander-v3", "rows": warm_vs_fresh()})
        return
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    for env_id, target in TARGETS.items():
        results[env_id] = {"bc": [], "dagger": [], "gated_dagger": []}
        for seed in SEEDS:
            results[env_id]["bc"].append(bc_until(env_id, target, seed))
            results[env_id]["dagger"].append(dagger_until(env_id, target, seed, "none"))
            results[env_id]["gated_dagger"].append(dagger_until(env_id, target, seed, "entropy"))
            print(env_id, seed, {k: v[-1] for k, v in results[env_id].items()}, flush=True)
    comparison = {
        env_id: [gated_vs_plain(env_id, seed) for seed in SEEDS]
        for env_id in ("CartPole-v1", "Acrobot-v1")
    }
    for env_id, rows in comparison.items():
        print(env_id, rows, flush=True)
    emit(
        "bench_dagger", {"targets": TARGETS, "until_target": results, "gated_vs_plain": comparison}
    )


if __name__ == "__main__":
    main()
