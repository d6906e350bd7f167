"""CNN BC throughput: imitate's trainer vs a textbook torch loop on the same images.

All loops train the same policy (the pixel CartPole ``EncodedPolicy``: the encoder's CNN,
an MLP, a categorical head; uint8 frames cast and scaled inside the model) from the same
initial float32 weights on the same frames (expert episodes of
``imitate/PixelCartPole-v1``), with the same batch size, learning rate and number of
intra-op threads (``--threads``, default 1):

* ``textbook``: ``DataLoader(TensorDataset(frames, actions), batch_size, shuffle=True)``
  (per-sample indexing and default collation), the model's own forward (float32, NCHW,
  normalisation as four elementwise ops), cross-entropy, ``torch.optim.Adam``;
* ``imitate``: :func:`imitate.bc.train_bc` with its defaults (the torch trainer; one
  held-out evaluation at the end), whose gradient steps differ in exactly these ways
  (:mod:`imitate.fastcnn`): batches are ``index_select`` s of the frames pinned once as
  NHWC uint8, the convolutions run channels-last with the normalisation folded into the
  first one, in bfloat16 where the CPU has native bf16 (``--cnn-precision auto``;
  float32 weights, gradients, Adam state and loss), and Adam is FastAdam (one flat
  buffer);
* ``imitate_float32``: the same with ``--cnn-precision float32`` (the fast path without
  bf16), reported beside it.

Samples/s are gradient steps x batch size over wall time; the loops alternate
``--repeats`` times in one process (best of each), so the machine's load hits all.
``ratio`` is best over best; ``paired_ratios`` are each repeat's imitate / textbook, with
their median (the stricter reading: the first repeat's textbook loop also pays the
process's first page faults, ~6 s of system time here).

    python -m benchmarks.cnn_throughput [--cnn tiny]

Writes ``benchmarks/results/cnn_throughput[_tiny].json``.
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
from imitate.configs import CnnPrecision, EarlyStopConfig, OptimConfig
from imitate.encoded import EncodedPolicy
from imitate.encoders import EncoderConfig
from imitate.fastcnn import native_bf16, resolve_precision

ENV = "imitate/PixelCartPole-v1"
DIFFERENCES = {
    "same": "model definition and initial float32 weights, frames, batch size, learning "
    "rate, steps, intra-op threads, cross-entropy, Adam hyperparameters",
    "batches": "textbook: DataLoader per-sample indexing + collation; imitate: "
    "index_select of frames pinned once as NHWC uint8",
    "convolutions": "textbook: the model's forward (float32 NCHW, 4 normalisation ops); "
    "imitate: channels-last, normalisation folded into conv 1, cnn_precision arithmetic "
    "(float32 master weights, gradients, Adam state and loss)",
    "optimizer": "textbook: torch.optim.Adam; imitate: FastAdam (same update, flat buffer)",
}


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


def ours(policy: EncodedPolicy, demos: Any, args: Any, precision: CnnPrecision) -> float:
    """Samples/s of ``train_bc`` over ``args.steps`` steps (one held-out evaluation)."""
    config = BCConfig(
        policy=policy.config,
        optim=OptimConfig(lr=args.lr, batch_size=args.batch_size, max_steps=args.steps),
        early_stop=EarlyStopConfig(eval_every=args.steps, holdout_fraction=0.02),
        trainer="torch",
        cnn_precision=precision,
    )
    start = time.perf_counter()
    _, history = train_bc(demos, config, policy=policy)
    return history.steps * args.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=8, help="expert episodes of frames")
    parser.add_argument(
        "--steps",
        type=int,
        default=1000,
        help="gradient steps per loop (pixel BC fits here take 1,500-3,000)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cnn", default="nature", choices=["nature", "tiny"])
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (all loops)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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
    loops = {
        "textbook": lambda p: textbook(p, demos.obs, demos.actions, args),
        "imitate": lambda p: ours(p, demos, args, "auto"),
        "imitate_float32": lambda p: ours(p, demos, args, "float32"),
    }
    rates: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.repeats):
        for name, loop in loops.items():
            rates[name].append(loop(copy.deepcopy(initial)))
    best = {k: max(v) for k, v in rates.items()}
    # the repeats' own ratios: the loops of one repeat ran back to back, so a machine that
    # slows down for a while (this one does, by 10-25 %) moves both sides of each ratio
    paired = [fast / base for fast, base in zip(rates["imitate"], rates["textbook"], strict=True)]
    emit(
        "cnn_throughput" + ("" if args.cnn == "nature" else f"_{args.cnn}"),
        {
            "env": ENV,
            "frames": len(demos),
            "frame_shape": list(demos.obs.shape[1:]),
            "cnn": args.cnn,
            "parameters": initial.n_parameters(),
            "batch_size": args.batch_size,
            "steps": args.steps,
            "threads": args.threads,
            "cnn_precision_auto": resolve_precision("auto"),
            "native_bf16": native_bf16(),
            "differences": DIFFERENCES,
            "samples_per_s": best,
            "all_samples_per_s": rates,
            "ratio": best["imitate"] / best["textbook"],
            "paired_ratios": paired,
            "paired_ratio_median": float(np.median(paired)),
            "ratio_float32": best["imitate_float32"] / best["textbook"],
        },
    )


if __name__ == "__main__":
    main()
