"""CNN BC throughput: imitate's trainer vs a textbook torch loop on the same images.

Both train the same policy (the pixel CartPole ``EncodedPolicy``: the encoder's CNN, an
MLP, a categorical head; uint8 frames cast and scaled inside the model) from the same
initial weights on the same frames (expert episodes of ``imitate/PixelCartPole-v1``),
with the same batch size and learning rate:

* ``imitate``: :func:`imitate.bc.train_bc` (the torch trainer: frames kept resident as
  uint8, batches gathered by index from a once-per-epoch permutation, FastAdam; one
  held-out evaluation at the end);
* ``textbook``: ``DataLoader(TensorDataset(frames, actions), batch_size, shuffle=True)``
  (per-sample indexing and default collation), ``torch.optim.Adam``, cross-entropy.

Samples/s are gradient steps x batch size over wall time, the two loops alternating
``--repeats`` times in one process (best of each), so the machine's load hits both.

    python -m benchmarks.cnn_throughput

Writes ``benchmarks/results/cnn_throughput.json``.
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from agents.registry import resolve_expert
from benchmarks.common import emit
from imitate import BCConfig, PolicyConfig, collect, train_bc
from imitate.configs import EarlyStopConfig, OptimConfig
from imitate.encoded import EncodedPolicy
from imitate.encoders import EncoderConfig

ENV = "imitate/PixelCartPole-v1"


def textbook(policy: EncodedPolicy, frames: np.ndarray, actions: np.ndarray, args: Any) -> float:
    """Samples/s of the textbook loop over ``args.steps`` steps."""
    data = TensorDataset(torch.as_tensor(frames), torch.as_tensor(actions, dtype=torch.int64))
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, drop_last=True)
    optimizer = torch.optim.Adam(policy.parameters(), lr=args.lr)
    policy.train()
    steps = 0
    start = time.perf_counter()
    while steps < args.steps:
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(policy(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if steps == args.steps:
                break
    return steps * args.batch_size / (time.perf_counter() - start)


def ours(policy: EncodedPolicy, demos: Any, args: Any) -> float:
    """Samples/s of ``train_bc`` over ``args.steps`` steps (one held-out evaluation)."""
    config = BCConfig(
        policy=policy.config,
        optim=OptimConfig(lr=args.lr, batch_size=args.batch_size, max_steps=args.steps),
        early_stop=EarlyStopConfig(eval_every=args.steps, holdout_fraction=0.02),
        trainer="torch",
        cnn_precision=args.cnn_precision,
    )
    start = time.perf_counter()
    _, history = train_bc(demos, config, policy=policy)
    return history.steps * args.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=8, help="expert episodes of frames")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cnn", default="nature", choices=["nature", "tiny"])
    parser.add_argument("--cnn-precision", default="auto", choices=["auto", "float32", "bfloat16"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    demos = collect(resolve_expert("zoo", ENV), ENV, args.episodes, seed=0)
    obs_space, action_space = demos.meta.spaces()
    torch.manual_seed(0)
    initial = EncodedPolicy.for_data(
        obs_space,
        action_space,
        demos.obs,
        PolicyConfig((64,), "relu", cnn=args.cnn),
        EncoderConfig(cnn=args.cnn),
    )
    rates: dict[str, list[float]] = {"imitate": [], "textbook": []}
    for _ in range(args.repeats):
        rates["textbook"].append(textbook(copy.deepcopy(initial), demos.obs, demos.actions, args))
        rates["imitate"].append(ours(copy.deepcopy(initial), demos, args))
    best = {k: max(v) for k, v in rates.items()}
    emit(
        "cnn_throughput",
        {
            "env": ENV,
            "frames": len(demos),
            "frame_shape": list(demos.obs.shape[1:]),
            "cnn": args.cnn,
            "parameters": initial.n_parameters(),
            "batch_size": args.batch_size,
            "steps": args.steps,
            "samples_per_s": best,
            "all_samples_per_s": rates,
            "ratio": best["imitate"] / best["textbook"],
        },
    )


if __name__ == "__main__":
    main()
