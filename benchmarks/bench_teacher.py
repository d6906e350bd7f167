"""Teacher inference latency: SB3 ``model.predict`` vs the batched SoftPolicy wrapper.

Per call: predict on one observation, the wrapper's ``act`` on one observation
and on a batch of 256. Uses the shipped zoo expert of each env given.

    python -m benchmarks.bench_teacher [ENV ...]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from agents.zoo import load_zoo_teacher, read_manifest
from benchmarks.common import emit
from imitate import collect


def per_call_us(fn: object, arg: np.ndarray, calls: int) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            fn(arg)  # type: ignore[operator]
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best


def main() -> None:
    torch.set_num_threads(1)
    env_ids = sys.argv[1:] or sorted(read_manifest())
    results = {}
    for env_id in env_ids:
        teacher = load_zoo_teacher(env_id, cached=False, safe=False)
        states = collect(teacher, env_id, 2, seed=0).obs
        one, batch = states[:1], states[np.arange(256) % len(states)]
        predict_one = per_call_us(
            lambda o, t=teacher: t.model.predict(t.normalize(o)[0], deterministic=True),
            one,
            500,
        )
        act_one = per_call_us(teacher.act, one, 2000)
        act_batch = per_call_us(teacher.act, batch, 500)
        results[env_id] = {
            "predict_batch1_us": round(predict_one, 1),
            "wrapper_batch1_us": round(act_one, 1),
            "wrapper_batch256_us": round(act_batch, 1),
            "wrapper_batch256_us_per_obs": round(act_batch / 256, 2),
            "speedup_batch1": round(predict_one / act_one, 2),
        }
    emit("bench_teacher", {"results": results})


if __name__ == "__main__":
    main()
