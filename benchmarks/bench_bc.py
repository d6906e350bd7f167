"""BC training throughput: samples per second for a 2x64 MLP at batch 32 and 256.

Baseline in the same run: the textbook loop (TensorDataset + DataLoader +
torch.optim.Adam) on the same data and model size. ``imitate_*`` is ``train_bc`` with
its default ``trainer="auto"`` (the numpy trainer here); ``imitate_torch_*`` forces the
torch reference trainer.

    python benchmarks/bench_bc.py
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from agents.heuristics import CartPoleExpert
from benchmarks.common import best_of, emit
from imitate import BCConfig, EarlyStopConfig, OptimConfig, PolicyConfig, collect, train_bc

STEPS = 3000


def textbook_loop(obs: np.ndarray, actions: np.ndarray, batch_size: int) -> int:
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 2),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(
        TensorDataset(torch.as_tensor(obs), torch.as_tensor(actions)), batch_size, shuffle=True
    )
    done = 0
    while done < STEPS:
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += 1
            if done == STEPS:
                break
    return STEPS * batch_size


def main() -> None:
    torch.set_num_threads(1)
    demos = collect(CartPoleExpert(), "CartPole-v1", 10, seed=0)
    results: dict[str, float] = {}
    for batch_size in (32, 256):
        config = BCConfig(
            policy=PolicyConfig((64, 64)),
            optim=OptimConfig(batch_size=batch_size, max_steps=STEPS),
            early_stop=EarlyStopConfig(eval_every=STEPS, holdout_fraction=0.0),
        )

        def imitate_run(c: BCConfig = config) -> int:
            return train_bc(demos, c)[1].steps

        reference = replace(config, trainer="torch")

        def torch_run(c: BCConfig = reference) -> int:
            return train_bc(demos, c)[1].steps

        def baseline_run(b: int = batch_size) -> int:
            return textbook_loop(demos.obs, demos.actions, b)

        seconds, _ = best_of(3, imitate_run)
        results[f"imitate_batch{batch_size}_samples_per_s"] = STEPS * batch_size / seconds
        seconds, _ = best_of(3, torch_run)
        results[f"imitate_torch_batch{batch_size}_samples_per_s"] = STEPS * batch_size / seconds
        seconds, samples = best_of(3, baseline_run)
        results[f"baseline_batch{batch_size}_samples_per_s"] = samples / seconds
        results[f"ratio_batch{batch_size}"] = (
            results[f"imitate_batch{batch_size}_samples_per_s"]
            / results[f"baseline_batch{batch_size}_samples_per_s"]
        )
    emit(
        "bench_bc",
        {"steps": STEPS, "results": {k: float(np.round(v, 3)) for k, v in results.items()}},
    )


if __name__ == "__main__":
    main()
