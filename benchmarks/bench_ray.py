"""Collection throughput on LunarLander-v3 (a costly Box2D step): local vs Ray with 1 and 2 workers.

The scripted lander expert collects the same 160 episodes (reset seeds 0..159) each
way; the Ray datasets are checked equal to the local one. Pools are started before
timing (``*_warm``: the rate of a running cluster); ``ray_2_workers_cold`` also
counts starting the two actors. Ratios are against the same run's figures.

    python -m benchmarks.bench_ray
"""

from __future__ import annotations

import time

import numpy as np
import ray
import torch

from agents.heuristics import heuristic_expert
from benchmarks.common import best_of, emit
from imitate.backends import Backend
from imitate.collect import collect
from imitate.distributed import RayRollouts

ENV = "LunarLander-v3"
EPISODES = 160


def main() -> None:
    torch.set_num_threads(1)
    expert = heuristic_expert(ENV)
    local = collect(expert, ENV, EPISODES, seed=0, seeding="per-episode")
    steps = len(local)
    results: dict[str, float] = {}
    seconds, _ = best_of(
        3, lambda: len(collect(expert, ENV, EPISODES, seed=0, seeding="per-episode"))
    )
    results["local_steps_per_s"] = steps / seconds
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    identical = True
    for workers in (1, 2):
        with RayRollouts(workers) as pool:
            pool.worker_pids()  # actors up before timing

            def run(p: RayRollouts = pool) -> int:
                return len(p.collect(expert, ENV, EPISODES, 0))

            seconds, _ = best_of(3, run)
            data = pool.collect(expert, ENV, EPISODES, 0)
        identical &= all(
            np.array_equal(array, data.arrays()[name]) for name, array in local.arrays().items()
        )
        results[f"ray_{workers}_workers_warm_steps_per_s"] = steps / seconds
    start = time.perf_counter()
    with Backend(kind="ray", workers=2).open() as rollouts:
        rollouts.collect(expert, ENV, EPISODES, 0)
    results["ray_2_workers_cold_steps_per_s"] = steps / (time.perf_counter() - start)
    ray.shutdown()
    results["ratio_ray2_vs_ray1"] = (
        results["ray_2_workers_warm_steps_per_s"] / results["ray_1_workers_warm_steps_per_s"]
    )
    results["ratio_ray2_vs_local"] = (
        results["ray_2_workers_warm_steps_per_s"] / results["local_steps_per_s"]
    )
    results["ratio_ray1_vs_local"] = (
        results["ray_1_workers_warm_steps_per_s"] / results["local_steps_per_s"]
    )
    emit(
        "bench_ray",
        {
            "env": ENV,
            "episodes": EPISODES,
            "transitions": steps,
            "datasets_equal_local": bool(identical),
            "results": {k: float(np.round(v, 3)) for k, v in results.items()},
        },
    )


if __name__ == "__main__":
    main()
