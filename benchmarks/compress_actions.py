"""Cross-entropy as a real code length: clones as compressors of their expert's actions.

For each env, an expert (zoo PPO on CartPole / Acrobot / LunarLander, the scripted
Braking expert) records training demonstrations (seeds 0...) and held-out episodes
(reset seeds 50000 + i, never trained on). Four clones are trained: BC on 1 and on 20
demonstrations, DAgger (4 rounds of 1,000 states, retrained on the aggregate) and a
distilled student (16 hidden units, on its own states). Each clone range-codes the
held-out expert actions (:mod:`imitate.compress`); the table compares

* the payload bits per action with the clone's held-out cross-entropy in bits (the
  acceptance: within 1 % + 16 bits, the coder's termination; the .imz header is
  counted apart, and the whole file is reported too),
* the empirical entropy of the held-out action marginal (the best any order-0 code
  can do without looking at the state),
* gzip -9, xz -9 (python's gzip / lzma) and zstd -19 (``zstandard``) on the same action
  stream, one byte per action: whole outputs (their own headers/framing included) and,
  for a payload-only comparison, minus the size of their output for an empty stream.

Braking's expert has no logits; its student distils a scripted soft teacher whose
logits are ``[0, 200 (h - 0.96)]`` (the same argmax as the expert).

    nice -n 5 python -m benchmarks.compress_actions [--env CartPole-v1 ...] [--seed 1]

Writes benchmarks/results/compress_actions[_seed<k>].json (rows merge by env) and
prints a markdown table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import lzma
import time
from typing import Any

import numpy as np
import torch

from benchmarks.common import RESULTS, emit
from imitate.bc import BCConfig, train_bc
from imitate.collect import collect, evaluate
from imitate.compress import Compressed, compress_actions, decompress_actions
from imitate.configs import EarlyStopConfig, OptimConfig
from imitate.dagger import DAggerConfig, dagger
from imitate.distill import DistillConfig, distill
from imitate.losses import nats_to_bits
from imitate.policy import MLPPolicy, PolicyConfig

ENVS = ("CartPole-v1", "Acrobot-v1", "LunarLander-v3", "imitate/Braking-v0")
HELDOUT_SEED = 50_000
HELDOUT_EPISODES = 10
EVAL_EPISODES = 20
EVAL_SEED = 10_000


class BrakingSoftTeacher:
    """The Braking expert with logits ``[0, 200 (h - 0.96)]``: a SoftPolicy to distil."""

    def logits(self, obs: np.ndarray) -> np.ndarray:
        from envs.braking import HAZARD_THRESHOLD

        margin = 200.0 * (np.asarray(obs, dtype=np.float32)[:, 0] - HAZARD_THRESHOLD)
        return np.stack([np.zeros_like(margin), margin], axis=1).astype(np.float32)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.logits(obs).argmax(axis=1).astype(np.int64)


def experts(env_id: str) -> tuple[Any, Any]:
    """(expert that acts and labels, soft teacher to distil)."""
    if env_id == "imitate/Braking-v0":
        import envs  # noqa: F401  (registers imitate/...)
        from envs.braking import BrakingExpert

        return BrakingExpert(), BrakingSoftTeacher()
    from agents.zoo import load_zoo_teacher

    teacher = load_zoo_teacher(env_id)
    return teacher, teacher


def clones(env_id: str, expert: Any, teacher: Any, seed: int = 0) -> dict[str, MLPPolicy]:
    demos = collect(expert, env_id, 20, 1000 * seed)  # seed 0: reset seeds 0-19
    bc = BCConfig(seed=seed)
    out = {
        "BC-1": train_bc(demos.select_episodes([0]), bc)[0],
        "BC-20": train_bc(demos, bc)[0],
    }
    out["DAgger"] = dagger(
        env_id,
        expert,
        DAggerConfig(
            rounds=4,
            steps_per_round=1000,
            bc=BCConfig(
                seed=seed,
                optim=OptimConfig(max_steps=4000),
                early_stop=EarlyStopConfig(eval_every=200, patience=5),
            ),
            warm_start=False,
            eval_episodes=0,
            seed=seed,
            whole_episodes=False,
            final_refit=False,  # measured without the final refit
        ),
    )[0]
    out["student (16)"] = distill(
        teacher,
        env_id,
        DistillConfig(
            student=PolicyConfig((16,)), rounds=3, steps_per_round=1000, max_steps=4000, seed=seed
        ),
    )[0]
    return out


def baselines(actions: np.ndarray) -> dict[str, float]:
    """Bits per action of order-0 entropy and general-purpose compressors (one byte each):
    ``<name>`` their whole output, ``<name>_payload`` minus their output for no input."""
    import zstandard

    stream = np.asarray(actions, dtype=np.int64)
    n = len(stream)
    _, counts = np.unique(stream, return_counts=True)
    freq = counts / n
    raw = (stream - stream.min()).astype(np.uint8).tobytes()
    coders = {
        "gzip_9": lambda b: gzip.compress(b, compresslevel=9, mtime=0),
        "xz_9": lambda b: lzma.compress(b, preset=9),
        "zstd_19": lambda b: zstandard.ZstdCompressor(level=19).compress(b),
    }
    out = {"marginal_entropy": float(-(freq * np.log2(freq)).sum())}
    for name, fn in coders.items():
        whole, empty = len(fn(raw)), len(fn(b""))
        out[name] = 8 * whole / n
        out[f"{name}_payload"] = 8 * (whole - empty) / n
    return out


def measure(env_id: str, seed: int = 0) -> dict[str, Any]:
    torch.manual_seed(seed)
    start = time.perf_counter()
    expert, teacher = experts(env_id)
    heldout = collect(expert, env_id, HELDOUT_EPISODES, HELDOUT_SEED)
    rows = []
    for name, policy in clones(env_id, expert, teacher, seed).items():
        t0 = time.perf_counter()
        compressed = compress_actions(policy, heldout.obs, heldout.actions)
        t1 = time.perf_counter()
        restored = decompress_actions(
            policy, heldout.obs, Compressed.from_bytes(compressed.to_bytes())
        )
        t2 = time.perf_counter()
        old = compress_actions(policy, heldout.obs, heldout.actions, format_version=1)
        with torch.no_grad():
            outputs = policy(torch.as_tensor(heldout.obs))
            nll = policy.head.nll(outputs, policy.head.actions_to_tensor(heldout.actions))
        ce_bits = nats_to_bits(float(nll.sum()))  # what BC reports, float32 torch
        n = len(heldout)
        quantized = compressed.stats["quantized_bits"]
        rows.append(
            {
                "policy": name,
                "return": evaluate(policy, env_id, EVAL_EPISODES, EVAL_SEED).mean_return,
                "actions": n,
                "round_trip_exact": restored.tobytes() == heldout.actions.tobytes(),
                "cross_entropy_bits": ce_bits,
                "quantized_model_bits": quantized,
                "payload_bits": compressed.payload_bits,
                "header_bytes": len(compressed.header_bytes()),
                "file_bytes": len(compressed.to_bytes()),
                "bits_per_action": compressed.payload_bits / n,
                "cross_entropy_bits_per_action": ce_bits / n,
                "payload_minus_ce_bits": compressed.payload_bits - ce_bits,
                "format1_payload_bits": old.payload_bits,
                "format1_header_bytes": len(old.header_bytes()) + 8,
                "payload_within_1pct_plus_16_bits_of_ce": abs(compressed.payload_bits - ce_bits)
                <= 0.01 * ce_bits + 16,
                "file_within_1pct_plus_header_of_ce": abs(8 * len(compressed.to_bytes()) - ce_bits)
                <= 0.01 * ce_bits + 8 * len(compressed.header_bytes()) + 16,
                "payload_within_1pct_plus_16_bits_of_quantized": abs(
                    compressed.payload_bits - quantized
                )
                <= 0.01 * quantized + 16,
                "state_bits": compressed.header["coder"]["state_bits"],
                "compress_s": t1 - t0,
                "decompress_s": t2 - t1,
                "min_log2_probability_of_an_expert_action": -nats_to_bits(
                    float(nll.max()) if len(nll) else 0.0
                ),
                "actions_below_2^-24": int((nll > 24 * np.log(2.0)).sum()),
                "ce_bits_of_actions_below_2^-24": nats_to_bits(
                    float(nll[nll > 24 * np.log(2.0)].sum())
                ),
                "min_probability_of_an_expert_action": float(
                    torch.exp(-nll.max()) if len(nll) else 1.0
                ),
                "accuracy": float((policy.act(heldout.obs) == heldout.actions).mean()),
            }
        )
    teacher_logits = torch.as_tensor(np.asarray(teacher.logits(heldout.obs), dtype=np.float32))
    actions = torch.as_tensor(np.asarray(heldout.actions, dtype=np.int64))
    teacher_ce = torch.nn.functional.cross_entropy(teacher_logits, actions, reduction="sum")
    return {
        "env": env_id,
        "teacher_ce_bits_per_action": nats_to_bits(float(teacher_ce)) / len(heldout),
        "heldout_episodes": HELDOUT_EPISODES,
        "heldout_actions": len(heldout),
        "expert_return": float(heldout.episode_returns.mean()),
        "baselines_bits_per_action": baselines(heldout.actions),
        "rows": rows,
        "wall_time_s": time.perf_counter() - start,
    }


def markdown(results: list[dict[str, Any]]) -> str:
    """One table: per clone the held-out cross-entropy and the code, then the baselines."""
    lines = [
        "| env (held-out actions) | coder | return | held-out CE, bits | our integer tables, bits "
        "| payload, bits | payload - CE | format 1 payload (2^-24 floor) "
        "| payload bits/action | file bits/action | round trip |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        env = f"{r['env']} ({r['heldout_actions']})"
        n = r["heldout_actions"]
        for row in r["rows"]:
            lines.append(
                f"| {env} | {row['policy']} | {row['return']:.1f} "
                f"| {row['cross_entropy_bits']:.1f} | {row['quantized_model_bits']:.1f} "
                f"| {row['payload_bits']} | {row['payload_minus_ce_bits']:+.1f} "
                f"| {row['format1_payload_bits']} "
                f"| {row['bits_per_action']:.4f} "
                f"| {8 * row['file_bytes'] / n:.3f} "
                f"| {'exact' if row['round_trip_exact'] else 'FAILED'} |"
            )
            env = ""
        b = r["baselines_bits_per_action"]
        lines.append(
            f"| | expert's own distribution (CE only) | {r['expert_return']:.1f} "
            f"| {r['teacher_ce_bits_per_action'] * n:.1f} | | | | | "
            f"{r['teacher_ce_bits_per_action']:.4f} | | |"
        )
        lines.append(
            f"| | marginal entropy (order 0, no model) | | {b['marginal_entropy'] * n:.1f} "
            f"| | | | | {b['marginal_entropy']:.4f} | | |"
        )
        for key, label in (("gzip_9", "gzip -9"), ("xz_9", "xz -9"), ("zstd_19", "zstd -19")):
            lines.append(
                f"| | {label} (payload: minus its output for no input) | | | | | | "
                f"| {b[key + '_payload']:.3f} | {b[key]:.3f} | |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", action="append", help="env id (repeat); default: all four")
    parser.add_argument("--seed", type=int, default=0, help="demonstrations and training")
    args = parser.parse_args()
    torch.set_num_threads(1)
    name = "compress_actions" + (f"_seed{args.seed}" if args.seed else "")
    path = RESULTS / f"{name}.json"
    previous = json.loads(path.read_text())["results"] if path.exists() else []
    by_env = {r["env"]: r for r in previous}
    for env_id in args.env or ENVS:
        by_env[env_id] = {**measure(env_id, args.seed), "seed": args.seed}
    results = [by_env[e] for e in ENVS if e in by_env]
    emit(name, {"results": results, "markdown": markdown(results)})
    print(markdown(results))


if __name__ == "__main__":
    main()
