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

    python -m benchmarks.pixel_cartpole --methods bc dagger distill --save runs/pixel
    python -m benchmarks.pixel_cartpole --methods dagger distill --save runs/pixel --reuse --int8

``--int8``: the saved students' int8 C export (:mod:`imitate.export.c_encoders`; 8-bit
hidden activations, and 16-bit as a second variant; calibrated
on 2,000 frames of the student's own episodes from seed 3000 and 2 expert episodes), its
action parity with the torch student on 10,000 recorded frames (the student's own
episodes from seed 20000, and the expert's from seed 1000), and the time per action of
the compiled ``policy_act`` (median of 3,000 calls timed in C;
``benchmarks.bench_pixel_export``'s timer), and the export's mean return over 50
evaluation episodes.

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
        final_refit=False,  # measured without the final refit
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


def int8_parity(policy: Any, expert: Any, frames: int) -> dict[str, Any]:
    """int8 C export of ``policy``: parity on recorded frames, time per action."""
    import tempfile

    from benchmarks.bench_pixel_export import c_timer_us, parity
    from imitate.export import export_policy, load_exported
    from imitate.export.c_encoders import encoded_weight_bytes

    episodes = -(-frames // 500)
    sets = {
        "own_frames": np.asarray(collect(policy, ENV, episodes, seed=20_000).obs)[:frames],
        "expert_frames": np.asarray(collect(expert, ENV, episodes, seed=1000).obs)[:frames],
    }
    calibration = np.concatenate(
        [
            np.asarray(collect(policy, ENV, 4, seed=3000).obs),
            np.asarray(collect(expert, ENV, 2, seed=4000).obs),
        ]
    )[:2000]
    row: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, bits in (("activations_8", None), ("activations_16", 16)):
            folder = Path(tmp) / key
            files = export_policy(
                policy, "c", folder, int8=True, calibration=calibration, bits=bits
            )
            c_policy = load_exported(next(f for f in files if f.suffix == ".c"))
            median, fastest = c_timer_us(folder, sets["expert_frames"])
            variant: dict[str, Any] = {
                "weight_bytes": encoded_weight_bytes(policy, True, bits),
                "us_per_action_median": median,
                "us_per_action_fastest": fastest,
            }
            for name, recorded in sets.items():
                variant[f"parity_{name}"] = parity(c_policy.act(recorded), policy.act(recorded))
                variant[f"frames_{name}"] = len(recorded)
            variant["mean_return"] = evaluate(c_policy, ENV, 50, EVAL_SEED).mean_return
            row[key] = variant
    return row


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
    parser.add_argument("--int8", action="store_true", help="also measure the int8 C export")
    parser.add_argument("--frames", type=int, default=10_000, help="--int8: frames per set")
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
        if args.int8:
            methods[name]["int8_c"] = int8_parity(policy, expert, args.frames)
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
