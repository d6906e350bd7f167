"""Collection throughput on CartPole-v1: env steps per second, every transition recorded.

Policies: the heuristic expert and a 2x64 MLP trained by BC. Envs: 1 and 16
(gymnasium's native vectorised CartPole). Baseline in the same run: a bare
loop stepping the same 16 native envs with the torch MLP and recording nothing.

    python benchmarks/bench_collect.py
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.heuristics import CartPoleExpert
from benchmarks.common import best_of, emit
from imitate import BCConfig, OptimConfig, collect, train_bc

ENV = "CartPole-v1"


def bare_loop(policy: torch.nn.Module, num_envs: int, steps: int) -> int:
    """Step native vector envs with the torch policy; record nothing."""
    envs = gym.make_vec(ENV, num_envs=num_envs)
    obs, _ = envs.reset(seed=0)
    with torch.inference_mode():
        for _ in range(steps):
            actions = policy(torch.from_numpy(obs)).argmax(-1).numpy()
            obs, *_ = envs.step(actions)
    envs.close()
    return steps * num_envs


def main() -> None:
    torch.set_num_threads(1)
    demos = collect(CartPoleExpert(), ENV, 10, seed=0)
    mlp, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=3000)))
    results: dict[str, float] = {}
    for name, policy in (("heuristic", CartPoleExpert()), ("mlp_2x64", mlp)):
        for num_envs in (1, 16):
            episodes = 4 if num_envs == 1 else 64

            def run(p: Any = policy, n: int = num_envs, e: int = episodes) -> int:
                return len(collect(p, ENV, e, seed=1, num_envs=n))

            seconds, steps = best_of(
                3,
                run,
            )
            results[f"{name}_{num_envs}env_steps_per_s"] = steps / seconds
    seconds, steps = best_of(3, lambda: bare_loop(mlp, 16, 2000))
    results["baseline_bare_torch_loop_16env_steps_per_s"] = steps / seconds
    results["ratio_mlp_16env_vs_baseline"] = (
        results["mlp_2x64_16env_steps_per_s"]
        / results["baseline_bare_torch_loop_16env_steps_per_s"]
    )
    emit(
        "bench_collect",
        {"env": ENV, "results": {k: float(np.round(v, 3)) for k, v in results.items()}},
    )


if __name__ == "__main__":
    main()
