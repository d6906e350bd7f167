"""Pixel CartPole from a privileged state expert: BC vs DAgger vs distillation into a tiny CNN.

The env is ``imitate/PixelCartPole-v1`` (four stacked 40x60 grey frames drawn from the
state); the expert is the shipped CartPole-v1 PPO acting on ``env.unwrapped.state``
(``--expert zoo``: :class:`envs.pixel_cartpole.PixelCartPoleExpert`). Every student sees
only pixels. Per method: mean return over ``--episodes`` evaluation episodes (reset seeds
10000 + i), the expert labels it used, and a drift report measured on the underlying
state (the clone's and the expert's episodes from the same seeds, recorded through
:class:`imitate.privileged.PrivilegedObservation`):

* ``bc``: the expert's episodes (seeds 0..), a Nature-shaped CNN + MLP;
* ``dagger``: round 0 the expert's episodes, then the learner drives and the expert
  labels every visited state online (:class:`imitate.privileged.PrivilegedMixture`);
* ``distill``: :func:`imitate.distill.distill` with the state expert as teacher (its PPO
  logits on the recorded states, T = 2, alpha 0.9) and a tiny CNN student (8x8/4 and
  4x4/2 convolutions of 8 and 16 channels, dense 32, MLP 32) on the student's own states.

    python -m benchmarks.pixel_cartpole --methods bc dagger distill

Writes ``benchmarks/results/pixel_cartpole.json`` (methods already there are kept unless
run again).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.registry import resolve_expert
from benchmarks.common import RESULTS, emit
from imitate import BCConfig, PolicyConfig, collect, evaluate, train_bc
from imitate.configs import DAggerConfig, DistillConfig, EarlyStopConfig, OptimConfig
from imitate.constants import EVAL_SEED
from imitate.dagger import dagger
from imitate.distill import distill, state_drift
from imitate.policy import load_policy, save_policy

ENV = "imitate/PixelCartPole-v1"
NAME = "pixel_cartpole"


def bc_config(max_steps: int, seed: int, policy: PolicyConfig) -> BCConfig:
    return BCConfig(
        policy=policy,
        optim=OptimConfig(lr=1e-3, batch_size=64, max_steps=max_steps),
        early_stop=EarlyStopConfig(eval_every=250, patience=4),
        seed=seed,
    )


def run_bc(expert: Any, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    demos = collect(expert, ENV, args.demos, seed=args.seed)
    policy, history = train_bc(demos, bc_config(args.steps, args.seed, PolicyConfig((64,), "relu")))
    return policy, {
        "expert_labels": len(demos),
        "demonstrations": args.demos,
        "gradient_steps": history.steps,
    }


def run_dagger(expert: Any, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    config = DAggerConfig(
        rounds=args.rounds,
        steps_per_round=args.steps_per_round,
        eval_episodes=args.round_episodes,
        patience=None,
        bc=bc_config(args.steps // 2, args.seed, PolicyConfig((64,), "relu")),
        seed=args.seed,
    )
    policy, history = dagger(ENV, expert, config)
    return policy, {
        "expert_labels": history.expert_labels,
        "rounds": [
            {
                "round": r.round,
                "labels": r.expert_labels,
                "learner_return": r.learner_return,
                "dataset": r.dataset_size,
            }
            for r in history.rounds
        ],
        "best_round": history.best_round,
    }


def run_distill(expert: Any, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    config = DistillConfig(
        student=PolicyConfig((32,), "relu", cnn="tiny", image_features=32),
        mode="on-student",
        rounds=args.rounds,
        steps_per_round=args.steps_per_round,
        max_steps=args.steps * args.rounds // 2,
        lr=1e-3,
        seed=args.seed,
    )
    student, history = distill(expert, ENV, config)
    return student, {
        "expert_labels": history["teacher_labels"],
        "temperature": history["temperature"],
        "soft_targets": history["soft_targets"],
        "student_parameters": student.n_parameters(),
        "rounds": history.get("rounds"),
    }


def finite(summary: dict[str, float]) -> dict[str, float | None]:
    """NaN (e.g. no clone failed: no time to failure) as null, so the JSON is standard."""
    return {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in summary.items()}


METHODS = {"bc": run_bc, "dagger": run_dagger, "distill": run_distill}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes")
    parser.add_argument("--demos", type=int, default=20, help="BC: expert episodes")
    parser.add_argument("--rounds", type=int, default=6, help="DAgger / distill rounds")
    parser.add_argument("--steps-per-round", type=int, default=2000)
    parser.add_argument("--round-episodes", type=int, default=10, help="DAgger: per-round eval")
    parser.add_argument("--steps", type=int, default=3000, help="BC gradient steps")
    parser.add_argument("--drift-episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, default=None, help="write <method>.pt here")
    parser.add_argument(
        "--reuse", action="store_true", help="evaluate the policies in --save again, no training"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    expert = resolve_expert("zoo", ENV)
    methods: dict[str, Any] = {}
    expert_eval = evaluate(expert, ENV, args.episodes, EVAL_SEED)
    path = RESULTS / f"{NAME}.json"
    previous = json.loads(path.read_text()).get("methods", {}) if path.exists() else {}
    for name in args.methods:
        start = time.perf_counter()
        if args.reuse:  # the saved policy and its training record; evaluated again
            policy = load_policy(args.save / f"{name}.pt")
            info = {k: v for k, v in previous[name].items() if k not in ("drift",)}
        else:
            policy, info = METHODS[name](expert, args)
            info["wall_time_s"] = time.perf_counter() - start
        result = evaluate(policy, ENV, args.episodes, EVAL_SEED)
        methods[name] = {
            **info,
            "mean_return": result.mean_return,
            "std_return": result.std_return,
            "min_return": float(np.min(result.returns)),
            "drift": finite(state_drift(expert, policy, ENV, args.drift_episodes, EVAL_SEED)),
            "seed": args.seed,
        }
        print(name, json.dumps({k: methods[name][k] for k in ("mean_return", "expert_labels")}))
        if args.save is not None and not args.reuse:
            save_policy(policy, args.save / f"{name}.pt")
    if path.exists():  # read again: another run may have added methods meanwhile
        methods = {**json.loads(path.read_text()).get("methods", {}), **methods}
    emit(
        NAME,
        {
            "env": ENV,
            "expert": "zoo (CartPole-v1 PPO on env.unwrapped.state)",
            "expert_return": expert_eval.mean_return,
            "episodes": args.episodes,
            "eval_seed": EVAL_SEED,
            "methods": methods,
        },
    )


if __name__ == "__main__":
    main()
