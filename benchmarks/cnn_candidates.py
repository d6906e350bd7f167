"""The candidates for a faster CNN BC step, measured one against another.

One gradient step (forward, cross-entropy, backward; no optimizer) of the pixel
CartPole policy (4 stacked 40x60 frames, the Nature or tiny CNN, batch 64, one thread)
on random uint8 frames, the variants interleaved in short windows (best window of each):

* ``textbook``: the model's forward (float32, NCHW);
* ``channels_last``: the same model and batches converted to ``torch.channels_last``;
* ``autocast_bf16``: the textbook step under ``torch.autocast("cpu", torch.bfloat16)``;
* ``channels_last_autocast_bf16``: both;
* ``fastcnn_float32`` / ``fastcnn_bf16``: :class:`imitate.fastcnn.PixelTrainingForward`
  (NHWC-pinned frames, normalisation folded into conv 1), the trainer's forward;
* ``compile`` (with ``--compile``): ``torch.compile`` (inductor) of the textbook model;
  its compile time is reported apart.

    python -m benchmarks.cnn_candidates [--cnn tiny] [--compile]

Writes ``benchmarks/results/cnn_candidates[_tiny].json``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import emit
from imitate.configs import PolicyConfig
from imitate.encoded import EncodedPolicy
from imitate.encoders import EncoderConfig, ImageEncoder
from imitate.fastcnn import PixelTrainingForward, native_bf16

Step = Callable[[torch.Tensor], None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cnn", default="nature", choices=["nature", "tiny"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--windows", type=int, default=10, help="windows per variant")
    parser.add_argument("--steps", type=int, default=3, help="steps per window")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="also torch.compile")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    space = gym.spaces.Box(0, 255, (4, 40, 60), np.uint8)
    frames = np.random.default_rng(0).integers(0, 256, (1000, 4, 40, 60), dtype=np.uint8)
    actions = torch.as_tensor(np.random.default_rng(1).integers(0, 2, 1000))
    torch.manual_seed(0)
    policy = EncodedPolicy.for_data(
        space,
        gym.spaces.Discrete(2),
        frames,
        PolicyConfig((64,), "relu", cnn=args.cnn),
        EncoderConfig(cnn=args.cnn),
    )
    assert isinstance(policy.encoder, ImageEncoder)
    nchw = torch.from_numpy(frames)
    cl_policy = EncodedPolicy.for_data(
        space, gym.spaces.Discrete(2), frames, policy.config, EncoderConfig(cnn=args.cnn)
    )
    cl_policy.load_state_dict(policy.state_dict())
    cl_policy.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def plain(model: Callable[..., torch.Tensor], cl: bool, bf16: bool) -> Step:
        def step(index: torch.Tensor) -> None:
            x = nchw[index]
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                out = model(x)
            F.cross_entropy(out.float(), actions[index]).backward()

        return step

    def fast(precision: str) -> Step:
        forward = PixelTrainingForward(policy.encoder, frames, precision)  # type: ignore[arg-type]

        def step(index: torch.Tensor) -> None:
            F.cross_entropy(policy.net(forward(index)), actions[index]).backward()

        return step

    variants: dict[str, Step] = {
        "textbook": plain(policy, False, False),
        "channels_last": plain(cl_policy, True, False),
        "autocast_bf16": plain(policy, False, True),
        "channels_last_autocast_bf16": plain(cl_policy, True, True),
        "fastcnn_float32": fast("float32"),
        "fastcnn_bf16": fast("bfloat16"),
    }
    compile_s = None
    if args.compile:
        compiled = torch.compile(policy)
        start = time.perf_counter()
        plain(compiled, False, False)(torch.arange(args.batch_size))  # compiles
        compile_s = time.perf_counter() - start
        variants["compile"] = plain(compiled, False, False)
    generator = torch.Generator().manual_seed(0)
    best = {name: float("inf") for name in variants}
    for step in variants.values():  # warm-up (oneDNN primitive caches)
        step(torch.randperm(1000, generator=generator)[: args.batch_size])
    for _ in range(args.windows):
        for name, step in variants.items():
            batches = [
                torch.randperm(1000, generator=generator)[: args.batch_size]
                for _ in range(args.steps)
            ]
            start = time.perf_counter()
            for index in batches:
                policy.zero_grad(set_to_none=True)
                cl_policy.zero_grad(set_to_none=True)
                step(index)
            best[name] = min(best[name], (time.perf_counter() - start) / args.steps)
    rates = {name: args.batch_size / seconds for name, seconds in best.items()}
    emit(
        "cnn_candidates" + ("" if args.cnn == "nature" else f"_{args.cnn}"),
        {
            "cnn": args.cnn,
            "batch_size": args.batch_size,
            "threads": args.threads,
            "native_bf16": native_bf16(),
            "step_ms": {name: 1e3 * seconds for name, seconds in best.items()},
            "samples_per_s": rates,
            "speedup_vs_textbook": {name: r / rates["textbook"] for name, r in rates.items()},
            "compile_s": compile_s,
        },
    )


if __name__ == "__main__":
    main()
