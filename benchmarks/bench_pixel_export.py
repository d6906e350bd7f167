"""Pixel CartPole CNN student: int8 / float32 C export parity on 10,000 recorded frames,
and time per action (batch 1) against torch and the numpy export.

The student is BC on ``imitate/PixelCartPole-v1`` frames labelled by the privileged state
expert (4 stacked 40x60 uint8 frames; the default encoder: Nature-CNN shaped, 128
features, trunk (64, 64)). Parity is measured against the torch student on two frame
sets: 10,000 frames of expert-driven episodes (the states a good policy visits) and up
to 10,000 of the student's own rollouts. The int8 export is calibrated on 2,000 other
frames (the student's own and the expert's). C is timed through ctypes, one call per
action (``policy_act_batch`` with n = 1; the ctypes overhead is included), best of 3.

    python -m benchmarks.bench_pixel_export [--episodes 20] [--max-steps 2000]
"""

from __future__ import annotations

import argparse
import ctypes
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import envs
from benchmarks.common import emit
from imitate import BCConfig, collect, evaluate, train_bc
from imitate.configs import OptimConfig
from imitate.encoded import EncodedPolicy
from imitate.export import export_policy, load_exported
from imitate.export.c_encoders import EncodedCPolicy, encoded_weight_bytes

ENV = "imitate/PixelCartPole-v1"


def per_action_us(act: Any, frames: np.ndarray, calls: int = 500) -> float:
    """Best of 3 mean wall time of ``act(one frame)`` in microseconds."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(calls):
            act(frames[i % len(frames)][None])
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best


def c_single_call(policy: EncodedCPolicy) -> Any:
    """``<prefix>_act`` on one contiguous uint8 frame (no batch reshaping in Python)."""
    fn = policy.lib[f"{policy.prefix}_act"]
    fn.restype = None
    out = np.zeros(policy.action_dim, np.intc)

    def act(frame: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(frame, dtype=np.uint8)
        fn(x.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p))
        return out

    return act


def parity(actions: np.ndarray, expected: np.ndarray) -> float:
    return float(
        (actions.reshape(len(actions), -1) == expected.reshape(len(expected), -1)).all(1).mean()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20, help="expert demonstration episodes")
    parser.add_argument("--max-steps", type=int, default=2000, help="BC gradient steps")
    parser.add_argument("--frames", type=int, default=10_000, help="recorded frames per set")
    args = parser.parse_args()
    torch.set_num_threads(1)
    expert: Any = envs.EXPERTS[ENV]()
    start = time.perf_counter()
    demos = collect(expert, ENV, args.episodes, seed=0, num_envs=4)
    policy, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=args.max_steps)))
    assert isinstance(policy, EncodedPolicy)
    train_s = time.perf_counter() - start
    student_return = evaluate(policy, ENV, 10, seed=10_000).mean_return
    episodes = -(-args.frames // 500)
    expert_frames = np.asarray(collect(expert, ENV, episodes, seed=1000, num_envs=4).obs)
    expert_frames = expert_frames[: args.frames]
    own = collect(policy, ENV, 400, seed=2000, num_envs=4, max_steps=args.frames)
    own_frames = np.asarray(own.obs)[: args.frames]
    calibration = np.concatenate(
        [
            np.asarray(collect(policy, ENV, 50, seed=3000, num_envs=4, max_steps=1000).obs),
            np.asarray(collect(expert, ENV, 2, seed=4000, num_envs=2).obs),
        ]
    )[:2000]
    sets = {"expert_frames": expert_frames, "student_frames": own_frames}
    expected = {name: policy.act(frames) for name, frames in sets.items()}
    results: dict[str, dict[str, Any]] = {
        "torch": {"us_per_action": per_action_us(policy.act, expert_frames)}
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        numpy = load_exported(export_policy(policy, "numpy", root / "numpy")[0])
        results["numpy"] = {
            "us_per_action": per_action_us(numpy.act, expert_frames),
            **{f"parity_{n}": parity(numpy.act(f), expected[n]) for n, f in sets.items()},
        }
        for int8 in (False, True):
            t0 = time.perf_counter()
            files = export_policy(
                policy, "c", root / f"c{int8}", int8=int8, calibration=calibration if int8 else None
            )
            export_s = time.perf_counter() - t0
            c = load_exported(next(f for f in files if f.suffix == ".c"))
            assert isinstance(c, EncodedCPolicy)
            row: dict[str, Any] = {
                "export_s": round(export_s, 2),
                "weight_bytes": encoded_weight_bytes(policy, int8),
                "us_per_action": per_action_us(c_single_call(c), expert_frames, calls=2000),
            }
            for name, frames in sets.items():
                row[f"parity_{name}"] = parity(c.act(frames), expected[name])
                row[f"frames_{name}"] = len(frames)
            results["c_int8" if int8 else "c_float32"] = row
    torch_us = results["torch"]["us_per_action"]
    for name in ("numpy", "c_float32", "c_int8"):
        results[name]["speedup_vs_torch"] = round(torch_us / results[name]["us_per_action"], 2)
    emit(
        "bench_pixel_export",
        {
            "env": ENV,
            "policy": repr(policy),
            "parameters": policy.n_parameters(),
            "demo_episodes": args.episodes,
            "bc_steps": args.max_steps,
            "train_s": round(train_s, 1),
            "student_mean_return_10_episodes": student_return,
            "acceptance": "int8 C parity >= 0.99 on 10,000 recorded frames, < 1000 us per action",
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
