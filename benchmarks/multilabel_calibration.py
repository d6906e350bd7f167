"""Multi-label BCE learns calibrated marginals of correlated labels; its joint is wrong.

``imitate/Buttons-v0`` (``envs/buttons.py``): a stochastic expert presses 3 correlated
buttons with a known joint ``P*(b | s)``; for ``y < 0`` the buttons are nearly
independent, for ``y > 0`` the expert presses exactly two of three. Per seed, 300
expert episodes (30,000 transitions; ``--episodes``) train two clones with the same
MLP (64x64 tanh) and BC settings (default: batch 256, lr 1e-3, up to 40,000 steps,
patience 16; BCConfig's defaults are batch 64, lr 3e-3, 20,000 steps, patience 8):

* **BCE**: the MultiBinary head, one sigmoid per button (sum of BCEs);
* **joint softmax**: a Discrete(8) head over the combinations ``c = b0 + 2 b1 + 4 b2``.

On 50,000 held-out states (uniform, labels drawn from ``P*``) it reports per-button
ECE (15 equal-width bins of ``P(b_k = 1)``), Brier, the mean |p - p*| against the known
marginal, and the joint log loss in bits per state of both models (BCE's joint is the
product of its marginals) next to the true joint's log loss and entropy and the total
correlation ``sum_k H(b_k | s) - H(b | s)`` (what a product of exact marginals must
lose), split by regime (``y``). The held-out labels are also range-coded with each
clone (:mod:`imitate.compress`): the payload is the joint log loss made literal.
Returns: 20 episodes x 100 steps (reset seeds 10000 + i), the reward of a step being
``P*(a | s)``: BCE presses every button with ``p > 1/2``, the joint clone its most
likely combination.

    nice -n 5 python -m benchmarks.multilabel_calibration [--episodes 100] [--batch-size 64
        --lr 3e-3 --max-steps 20000 --patience 8]

Writes benchmarks/results/multilabel_calibration_<settings>.json and prints markdown
tables.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import envs  # noqa: F401  (registers imitate/Buttons-v0)
from benchmarks.common import emit
from envs.buttons import (
    ButtonsExpert,
    combination_index,
    combinations,
    joint_probabilities,
    marginal_probabilities,
)
from imitate.bc import BCConfig, train_bc
from imitate.calibration import binary_calibration_error
from imitate.collect import collect, evaluate
from imitate.compress import compress_actions
from imitate.configs import EarlyStopConfig, OptimConfig
from imitate.policy import MLPPolicy
from imitate.spaces import space_to_json

ENV = "imitate/Buttons-v0"
SEEDS = (0, 1, 2, 3, 4)
TRAIN_EPISODES = 300
HELDOUT_STATES = 50_000
EVAL_EPISODES = 20
EVAL_SEED = 10_000


class JointPolicy:
    """A Discrete(8) clone acting in the MultiBinary env: its most likely combination."""

    def __init__(self, policy: MLPPolicy) -> None:
        self.policy = policy

    def act(self, obs: np.ndarray) -> np.ndarray:
        return combinations()[self.policy.act(obs)]


class OraclePolicy:
    """Exact ``P*``: the joint mode, or every button whose exact marginal exceeds 1/2."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def act(self, obs: np.ndarray) -> np.ndarray:
        if self.kind == "joint_mode":
            return combinations()[joint_probabilities(obs).argmax(axis=1)]
        return (marginal_probabilities(obs) > 0.5).astype(np.int8)


def bits(p: np.ndarray) -> np.ndarray:
    return -np.log2(np.clip(p, 1e-300, 1.0))


def bernoulli_entropy(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-300, 1 - 1e-16)
    return -(q * np.log2(q) + (1 - q) * np.log2(1 - q))


def train_pair(seed: int, episodes: int, config: BCConfig) -> tuple[MLPPolicy, MLPPolicy]:
    demos = collect(ButtonsExpert(seed), ENV, episodes, 1000 * seed)
    config = replace(config, seed=seed)
    bce, _ = train_bc(demos, config)
    joint_meta = replace(demos.meta, action_space=space_to_json(gym.spaces.Discrete(8)))
    joint_data = replace(demos, actions=combination_index(demos.actions), meta=joint_meta)
    joint, _ = train_bc(joint_data, config)
    return bce, joint


def measure(
    seed: int, episodes: int = TRAIN_EPISODES, config: BCConfig | None = None
) -> dict[str, Any]:
    start = time.perf_counter()
    bce, joint = train_pair(seed, episodes, config or BCConfig())
    rng = np.random.default_rng(99 + seed)
    states = rng.uniform(-1, 1, (HELDOUT_STATES, 2)).astype(np.float32)
    labels = ButtonsExpert(10_000 + seed).act(states)  # [N, 3]
    index = combination_index(labels)
    rows = np.arange(len(states))
    true_joint = joint_probabilities(states)
    true_marg = marginal_probabilities(states)
    combos = combinations().astype(np.float64)
    with torch.no_grad():
        bce_marg = torch.sigmoid(torch.as_tensor(bce.logits(states), dtype=torch.float64))
        joint_q = torch.softmax(torch.as_tensor(joint.logits(states), dtype=torch.float64), -1)
    p_bce, q_joint = bce_marg.numpy(), joint_q.numpy()
    p_joint = q_joint @ combos  # the joint model's marginals
    bce_joint = np.prod(np.where(combos[None] == 1, p_bce[:, None], 1 - p_bce[:, None]), axis=2)
    entropy = (true_joint * bits(true_joint)).sum(axis=1)
    total_correlation = bernoulli_entropy(true_marg).sum(axis=1) - entropy

    def per_button(p: np.ndarray) -> dict[str, list[float]]:
        return {
            "ece": [binary_calibration_error(p[:, k], labels[:, k]) for k in range(3)],
            "brier": [float(((p[:, k] - labels[:, k]) ** 2).mean()) for k in range(3)],
            "mean_abs_error_vs_true": [
                float(np.abs(p[:, k] - true_marg[:, k]).mean()) for k in range(3)
            ],
        }

    y = states[:, 1]
    regimes = {
        "all": rows >= 0,
        "y < -0.5 (nearly independent)": y < -0.5,
        "-0.5 <= y < 0.5 (mixed)": (y >= -0.5) & (y < 0.5),
        "y >= 0.5 (two of three)": y >= 0.5,
    }
    log_loss = {}
    for name, mask in regimes.items():
        log_loss[name] = {
            "bce_product": float(bits(bce_joint[rows, index])[mask].mean()),
            "joint_softmax": float(bits(q_joint[rows, index])[mask].mean()),
            "true_joint": float(bits(true_joint[rows, index])[mask].mean()),
            "true_entropy": float(entropy[mask].mean()),
            "total_correlation": float(total_correlation[mask].mean()),
        }
    coded = {  # payload bits per state of range-coding the held-out labels with each clone
        "bce": compress_actions(bce, states, labels).payload_bits / len(states),
        "joint_softmax": compress_actions(joint, states, index).payload_bits / len(states),
    }
    returns = {
        "bce": evaluate(bce, ENV, EVAL_EPISODES, EVAL_SEED).mean_return,
        "joint_softmax": evaluate(JointPolicy(joint), ENV, EVAL_EPISODES, EVAL_SEED).mean_return,
    }
    return {
        "seed": seed,
        "train_transitions": 100 * episodes,
        "bce": per_button(p_bce),
        "exact": per_button(true_marg),
        "joint_softmax": per_button(p_joint),
        "brier_floor": [float((true_marg[:, k] * (1 - true_marg[:, k])).mean()) for k in range(3)],
        "log_loss_bits_per_state": log_loss,
        "coded_bits_per_state": coded,
        "returns": returns,
        "wall_time_s": time.perf_counter() - start,
    }


def references() -> dict[str, float]:
    """Returns of the expert (sampling) and of the two exact-probability decision rules."""
    return {
        "expert (samples P*)": evaluate(
            ButtonsExpert(7), ENV, EVAL_EPISODES, EVAL_SEED
        ).mean_return,
        "exact joint mode": evaluate(
            OraclePolicy("joint_mode"), ENV, EVAL_EPISODES, EVAL_SEED
        ).mean_return,
        "exact marginals > 1/2": evaluate(
            OraclePolicy("marginals"), ENV, EVAL_EPISODES, EVAL_SEED
        ).mean_return,
    }


def markdown(per_seed: list[dict[str, Any]], refs: dict[str, float]) -> str:
    def mean_std(values: list[float]) -> str:
        return f"{np.mean(values):.4f} ± {np.std(values):.4f}"

    lines = [
        "| model | per-button ECE (max over buttons) | Brier (mean over buttons) "
        "| mean abs(p - p*) | joint log loss, bits/state | range-coded, bits/state | return |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label, ret in (
        ("bce", "BCE (3 sigmoids)", "bce"),
        ("joint_softmax", "joint softmax (8)", "joint_softmax"),
    ):
        ece = [max(r[key]["ece"]) for r in per_seed]
        brier = [float(np.mean(r[key]["brier"])) for r in per_seed]
        mae = [float(np.mean(r[key]["mean_abs_error_vs_true"])) for r in per_seed]
        loss_key = "bce_product" if key == "bce" else "joint_softmax"
        loss = [r["log_loss_bits_per_state"]["all"][loss_key] for r in per_seed]
        returns = [r["returns"][ret] for r in per_seed]
        coded = [r["coded_bits_per_state"][key] for r in per_seed]
        lines.append(
            f"| {label} | {mean_std(ece)} | {mean_std(brier)} | {mean_std(mae)} "
            f"| {mean_std(loss)} | {mean_std(coded)} "
            f"| {np.mean(returns):.1f} ± {np.std(returns):.1f} |"
        )
    floor = float(np.mean([np.mean(r["brier_floor"]) for r in per_seed]))
    true_loss = float(
        np.mean([r["log_loss_bits_per_state"]["all"]["true_joint"] for r in per_seed])
    )
    exact_ece = [max(r["exact"]["ece"]) for r in per_seed]
    lines.append(
        f"| exact P* (noise floor) | {mean_std(exact_ece)} | {floor:.4f} | 0 | {true_loss:.4f} "
        "| | |"
    )
    lines += [
        "",
        "| states | BCE product | joint softmax | true joint (sampled labels) | true entropy "
        "| total correlation | BCE gap | joint gap |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for regime in per_seed[0]["log_loss_bits_per_state"]:
        v = {
            k: float(np.mean([r["log_loss_bits_per_state"][regime][k] for r in per_seed]))
            for k in per_seed[0]["log_loss_bits_per_state"][regime]
        }
        bce_gap, joint_gap = (
            v["bce_product"] - v["true_joint"],
            v["joint_softmax"] - v["true_joint"],
        )
        lines.append(
            f"| {regime} | {v['bce_product']:.4f} | {v['joint_softmax']:.4f} "
            f"| {v['true_joint']:.4f} | {v['true_entropy']:.4f} | {v['total_correlation']:.4f} "
            f"| {bce_gap:+.4f} | {joint_gap:+.4f} |"
        )
    lines += ["", "| reference policy | return |", "|---|---|"]
    lines += [f"| {name} | {value:.1f} |" for name, value in refs.items()]
    return "\n".join(lines)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=TRAIN_EPISODES, help="x 100 transitions")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-steps", type=int, default=40_000)
    parser.add_argument("--patience", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = BCConfig(
        optim=OptimConfig(batch_size=args.batch_size, lr=args.lr, max_steps=args.max_steps),
        early_stop=EarlyStopConfig(patience=args.patience),
    )
    per_seed = [measure(seed, args.episodes, config) for seed in SEEDS]
    refs = references()
    table = markdown(per_seed, refs)
    name = (
        f"multilabel_calibration_{args.episodes}ep_b{args.batch_size}_lr{args.lr:g}"
        f"_{args.max_steps}steps"
    )
    settings = {"episodes": args.episodes, **vars(args)}
    emit(
        name,
        {
            "env": ENV,
            "settings": settings,
            "seeds": per_seed,
            "references": refs,
            "markdown": table,
        },
    )
    print(table)


if __name__ == "__main__":
    main()
