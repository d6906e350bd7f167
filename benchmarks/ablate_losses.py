"""Ablation of the cross-entropy toolbox on BC: what each technique does to a clone.

Envs: CartPole-v1, Acrobot-v1, LunarLander-v3 (zoo experts) and imitate/Braking-v0
(rare critical action, scripted expert); 10 demonstration episodes each; 5 seeds.
Variants: plain CE, label smoothing 0.1, balanced class weights, focal loss (gamma 2),
mixup (alpha 0.2), JS temporal smoothness (lambda 1), JS (lambda 3) executed through a
0.1-nat JS gate, the energy-margin loss (0.1). Measured per clone: return (20 episodes,
seeds 10000 + i), recall of the rarest expert action and ECE on held-out expert states
before / after temperature scaling, action-flip rate on the clone's own rollouts, and
the energy score's AUROC between held-out expert states and (a) those states perturbed
by 3 std, (b) the clone's off-support states (`imitate ood`). Writes JSON and
docs/losses.md.

    python -m benchmarks.ablate_losses                     # all envs, then docs/losses.md
    python -m benchmarks.ablate_losses ENV [ENV ...]       # some envs (rows appended to JSONL)
    python -m benchmarks.ablate_losses ENV --variant NAME  # one variant of some envs
    python -m benchmarks.ablate_losses --report            # docs/losses.md from the JSONL
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

import envs  # noqa: F401  (registers imitate/...)
from agents.registry import resolve_expert
from benchmarks.common import RESULTS, emit, energy_of
from imitate import BCConfig, LossConfig, collect, evaluate, train_bc
from imitate.calibration import auroc, expected_calibration_error, fit_temperature
from imitate.constants import EVAL_SEED
from imitate.drift import action_flip_rate, off_support
from imitate.policy import JSGatedPolicy

ENVS = ["imitate/Braking-v0", "CartPole-v1", "Acrobot-v1", "LunarLander-v3"]
VARIANTS: dict[str, dict[str, Any]] = {
    "plain CE": {},
    "label smoothing 0.1": {"label_smoothing": 0.1},
    "balanced weights": {"class_weights": "balanced"},
    "focal (gamma 2)": {"focal_gamma": 2.0},
    "mixup (alpha 0.2)": {"mixup_alpha": 0.2},
    "JS smoothness (lambda 1)": {"temporal_js": 1.0},
    "JS (lambda 3) + JS gate 0.1": {"temporal_js": 3.0},
    "energy margin 0.1": {"ood_energy_weight": 0.1},
}
JS_GATES = {"JS (lambda 3) + JS gate 0.1": 0.1}  # variants executed through JSGatedPolicy
SEEDS = range(5)
DOCS = Path(__file__).resolve().parent.parent / "docs"


def expert_for(env_id: str) -> Any:
    """The env's zoo expert if one is shipped, else its scripted one (Braking): the registry's
    ``auto`` (what ``imitate run --expert auto`` uses)."""
    return resolve_expert("auto", env_id)


def measure(
    env_id: str, expert: Any, options: dict[str, Any], seed: int, js_gate: float = 0.0
) -> dict[str, float]:
    demos = collect(expert, env_id, 10, seed=seed)
    policy, _ = train_bc(demos, BCConfig(seed=seed, loss=LossConfig(**options)))
    actor = JSGatedPolicy.wrap(policy, js_gate) if js_gate else policy
    held_out = collect(expert, env_id, 10, seed=5000 + seed)
    labels = expert.act(held_out.obs)
    counts = np.bincount(demos.actions, minlength=policy.head.n_outputs).astype(float)
    counts[counts == 0] = np.inf  # the rarest action the expert actually took
    rare = int(np.argmin(counts))
    predicted = policy.act(held_out.obs)
    logits = torch.as_tensor(policy.logits(held_out.obs))
    half = len(labels) // 2
    t = fit_temperature(logits[:half], torch.as_tensor(labels[:half]))
    probs = torch.softmax(logits[half:], -1).numpy()
    scaled = torch.softmax(logits[half:] / t, -1).numpy()
    own = collect(actor, env_id, 10, seed=9000 + seed)
    std = held_out.obs.std(axis=0) + 1e-6
    rng = np.random.default_rng(seed)
    perturbed = held_out.obs + rng.normal(0, 3.0, held_out.obs.shape) * std
    drifted = own.obs[off_support(demos.obs, held_out.obs, own.obs).mask]

    energy_in = energy_of(policy, held_out.obs)
    return {
        "return": evaluate(actor, env_id, 20, EVAL_SEED).mean_return,
        "rare_action": rare,
        "rare_recall": float((predicted[labels == rare] == rare).mean())
        if (labels == rare).any()
        else float("nan"),
        "ece": expected_calibration_error(probs, labels[half:]),
        "ece_scaled": expected_calibration_error(scaled, labels[half:]),
        "temperature": t,
        "flip_rate": action_flip_rate(own.actions, own.episode_starts),
        "energy_auroc": auroc(energy_in, energy_of(policy, perturbed)),
        "drift_states": len(drifted),
        "energy_auroc_drift": auroc(energy_in, energy_of(policy, drifted))
        if len(drifted)
        else float("nan"),
    }


ROWS = RESULTS / "ablate_losses_rows.jsonl"
FINDINGS = "## What it shows"


def main() -> None:
    torch.set_num_threads(1)
    args = sys.argv[1:]
    if args == ["--report"]:
        write_report([json.loads(line) for line in ROWS.read_text().splitlines()])
        return
    chosen = list(VARIANTS)
    if "--variant" in args:  # one variant only; its new rows replace older ones in the report
        at = args.index("--variant")
        chosen, args = [args[at + 1]], args[:at] + args[at + 2 :]
        if chosen[0] not in VARIANTS:
            raise SystemExit(f"unknown variant {chosen[0]!r}: choose from {list(VARIANTS)}")
    rows = []
    for env_id in args or ENVS:
        expert = expert_for(env_id)
        for name in chosen:
            options = VARIANTS[name]
            gate = JS_GATES.get(name, 0.0)
            runs = [measure(env_id, expert, options, seed, gate) for seed in SEEDS]
            row: dict[str, Any] = {"env": env_id, "variant": name}
            for key in runs[0]:
                values = np.array([r[key] for r in runs], dtype=float)
                row[key] = float(np.nanmean(values))
                row[f"{key}_std"] = float(np.nanstd(values))
            rows.append(row)
            RESULTS.mkdir(exist_ok=True)
            with ROWS.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(
                {
                    k: round(v, 3) if isinstance(v, float) else v
                    for k, v in row.items()
                    if not k.endswith("_std")
                },
                flush=True,
            )
    emit("ablate_losses", {"seeds": list(SEEDS), "rows": rows})
    if not args and chosen == list(VARIANTS):
        write_report(rows)


def write_report(rows: list[dict[str, Any]]) -> None:
    """docs/losses.md: the table, ordered as ENVS and VARIANTS (the last row of each pair)."""
    latest = {(r["env"], r["variant"]): r for r in rows}
    rows = sorted(
        latest.values(), key=lambda r: (ENVS.index(r["env"]), list(VARIANTS).index(r["variant"]))
    )
    lines = [
        "# The cross-entropy toolbox on BC: an ablation",
        "",
        "Generated by `python -m benchmarks.ablate_losses` (10 demonstrations, 5 seeds,",
        "means ± std). Return: 20 episodes (seeds 10000 + i). Rare recall: recall of the",
        "rarest expert action on held-out expert states. ECE (15 bins) on held-out expert",
        "states, before / after temperature scaling fitted on the other half. Flip rate:",
        "share of steps where the clone's action changes on its own rollouts (10 episodes).",
        "Energy AUROC: held-out expert states vs the same states perturbed by 3 std, and vs",
        "the clone's off-support states (farther from every demonstration than 99 % of the",
        "held-out expert states; their mean count in brackets; a dash when no seed has any).",
        "",
        "| env | variant | return | rare recall | ECE | ECE, T-scaled | flip rate "
        "| energy AUROC, 3 std | energy AUROC, drift |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [
            r["env"],
            r["variant"],
            f"{r['return']:.1f} ± {r['return_std']:.1f}",
            *(f"{r[k]:.3f}" for k in ("rare_recall", "ece", "ece_scaled", "flip_rate")),
            f"{r['energy_auroc']:.3f}",
            "-"
            if np.isnan(r["energy_auroc_drift"])
            else f"{r['energy_auroc_drift']:.3f} ({r['drift_states']:.0f})",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    # Keep the hand-written findings below the table when regenerating it.
    target = DOCS / "losses.md"
    findings = ""
    if target.is_file() and FINDINGS in target.read_text():
        findings = FINDINGS + target.read_text().split(FINDINGS, 1)[1]
    target.write_text("\n".join(lines) + "\n" + (f"\n{findings}" if findings else ""))


if __name__ == "__main__":
    main()
