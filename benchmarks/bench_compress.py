"""Speed of imitate.compress: format 2 (our big-integer range coder) against format 1
(constriction's 24-bit coder) in the same run, per coded symbol.

Random 8-unit MLP policies on 3-d observations, 100,000 steps (``--steps``) of actions
drawn uniformly from the space (so many are unlikely under the policy): Discrete(2),
Discrete(4) with a 30x last layer (near-certain outputs: tables of more than 62 bits),
MultiBinary(3) and Box(2) at resolution 0.01 (201-cell grids). Best of ``--repeats``
runs of compress and of decompress (decompress includes its check of the tables).

    nice -n 5 python -m benchmarks.bench_compress [--steps 100000] [--repeats 2]

Writes benchmarks/results/bench_compress.json: microseconds per symbol and the ratio
format 2 / format 1.
"""

from __future__ import annotations

import argparse
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from benchmarks.common import best_of, emit
from imitate.compress import compress_actions, decompress_actions
from imitate.policy import MLPPolicy, PolicyConfig

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
CASES: tuple[tuple[str, gym.Space, float], ...] = (
    ("Discrete(2)", gym.spaces.Discrete(2), 1.0),
    ("Discrete(4), 30x logits", gym.spaces.Discrete(4), 30.0),
    ("MultiBinary(3)", gym.spaces.MultiBinary(3), 1.0),
    ("Box(2), resolution 0.01", gym.spaces.Box(-1.0, 1.0, (2,), np.float32), 1.0),
)


def measure(name: str, space: gym.Space, scale: float, steps: int, repeats: int) -> dict[str, Any]:
    torch.manual_seed(0)
    policy = MLPPolicy(OBS, space, PolicyConfig((8,))).eval()
    last = policy.net[-1]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.weight.mul_(scale)
    obs = np.random.default_rng(0).uniform(-1, 1, (steps, 3)).astype(np.float32)
    space.seed(0)
    actions = np.stack([space.sample() for _ in range(steps)])
    resolution = 0.01 if isinstance(space, gym.spaces.Box) else None
    symbols = steps * (1 if isinstance(space, gym.spaces.Discrete) else actions.shape[1])
    row: dict[str, Any] = {"case": name, "symbols": symbols}
    for version in (2, 1):
        out: list[Any] = []

        def run_compress(version: int = version, out: list[Any] = out) -> int:
            out[:] = [compress_actions(policy, obs, actions, resolution, format_version=version)]
            return symbols

        def run_decompress(out: list[Any] = out) -> int:
            decoded = decompress_actions(policy, obs, out[0])
            assert len(decoded) == steps
            return symbols

        compress_s, _ = best_of(repeats, run_compress)
        decompress_s, _ = best_of(repeats, run_decompress)
        row[f"format{version}"] = {
            "compress_us_per_symbol": 1e6 * compress_s / symbols,
            "decompress_us_per_symbol": 1e6 * decompress_s / symbols,
            "payload_bits": out[0].payload_bits,
            "cross_entropy_bits": out[0].stats["cross_entropy_bits"],
        }
    for key in ("compress_us_per_symbol", "decompress_us_per_symbol"):
        row[f"{key}_ratio_2_over_1"] = row["format2"][key] / row["format1"][key]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [measure(*case, args.steps, args.repeats) for case in CASES]
    emit("bench_compress", {"steps": args.steps, "repeats": args.repeats, "rows": rows})


if __name__ == "__main__":
    main()
