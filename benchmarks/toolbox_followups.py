"""Two follow-up studies of the toolbox on BC (zoo experts, 3 seeds), JSON out.

1. JS temporal smoothness on LunarLander-v3 (10 demonstrations): the clone's action-flip
   rate on its own rollouts and its return, for (lambda, temperature) settings, next to the
   expert's own flip rate in the demonstrations.
2. The energy score against drift states (5 seeds): BC from 1 or 10 demonstrations, plain
   CE vs the energy margin (Liu et al. 2020, weight 0.1), AUROC between held-out expert
   states and the clone's off-support states (farther from every demonstration state than
   99 % of held-out expert states, as in `imitate ood`), and against expert states
   perturbed by 3 std.
3. The energy temperature: the same AUROC (plain CE, 10 demonstrations) for
   ``-T logsumexp(f / T)`` with T in 0.1, 1, 10, 1000.

    python -m benchmarks.toolbox_followups                        # all three
    python -m benchmarks.toolbox_followups energy_temperature     # one of them
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch

from agents.zoo import load_zoo_teacher
from benchmarks.ablate_losses import flip_rate
from benchmarks.common import emit
from imitate import BCConfig, collect, evaluate, train_bc
from imitate.calibration import auroc, energy_score
from imitate.drift import off_support

SEEDS = (0, 1, 2)
ENERGY_SEEDS = (0, 1, 2, 3, 4)
JS_SETTINGS = [(0.0, 1.0), (1.0, 1.0), (5.0, 1.0), (1.0, 0.25), (5.0, 0.25)]


def js_study() -> list[dict[str, Any]]:
    env_id = "LunarLander-v3"
    expert = load_zoo_teacher(env_id)
    rows = []
    for seed in SEEDS:
        demos = collect(expert, env_id, 10, seed=seed)
        expert_flips = flip_rate(demos.actions, demos.episode_starts)
        for weight, temperature in JS_SETTINGS:
            config = BCConfig(seed=seed, temporal_js=weight, temporal_js_temperature=temperature)
            policy, _ = train_bc(demos, config)
            own = collect(policy, env_id, 10, seed=9000 + seed)
            row = {
                "seed": seed,
                "lambda": weight,
                "temperature": temperature,
                "expert_flip_rate": expert_flips,
                "flip_rate": flip_rate(own.actions, own.episode_starts),
                "return": evaluate(policy, env_id, 20, 10_000).mean_return,
            }
            print(row, flush=True)
            rows.append(row)
    return rows


def clone_and_drift(
    env_id: str, expert: Any, seed: int, n_demos: int, margin_weight: float
) -> tuple[Any, np.ndarray, np.ndarray, Any]:
    """BC from ``n_demos`` demonstrations, then (policy, held-out expert states, clone
    states, off-support split of the clone states) over 20 episodes from reset seed 10,000."""
    demos = collect(expert, env_id, n_demos, seed=seed)
    policy, _ = train_bc(demos, BCConfig(seed=seed, ood_energy_weight=margin_weight))
    expert_states = collect(expert, env_id, 20, seed=10_000).obs
    clone_states = collect(policy, env_id, 20, seed=10_000)
    support = off_support(demos.obs, expert_states, clone_states.obs)
    return policy, expert_states, clone_states, support


def energy_of(policy: Any, states: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    logits = torch.as_tensor(policy.logits(states.astype(np.float32)))
    return energy_score(logits, temperature).numpy()


def energy_study() -> list[dict[str, Any]]:
    rows = []
    for env_id in ("CartPole-v1", "LunarLander-v3"):
        expert = load_zoo_teacher(env_id)
        for n_demos in (1, 10):
            for seed in ENERGY_SEEDS:
                for weight in (0.0, 0.1):
                    policy, expert_states, clone, support = clone_and_drift(
                        env_id, expert, seed, n_demos, weight
                    )
                    drifted = clone.obs[support.mask]
                    rng = np.random.default_rng(seed)
                    noise = rng.normal(0, 3.0, expert_states.shape) * expert_states.std(0)
                    energy_in = energy_of(policy, expert_states)
                    row: dict[str, Any] = {
                        "env": env_id,
                        "demos": n_demos,
                        "seed": seed,
                        "energy_margin_weight": weight,
                        "return": float(clone.episode_returns.mean()),
                        "clone_states": len(clone.obs),
                        "drift_states": len(drifted),
                        "support_threshold": support.threshold,
                        "auroc_drift": (
                            auroc(energy_in, energy_of(policy, drifted)) if len(drifted) else None
                        ),
                        "auroc_perturbed_3std": auroc(
                            energy_in, energy_of(policy, expert_states + noise)
                        ),
                    }
                    print(row, flush=True)
                    rows.append(row)
    return rows


def energy_temperature_study() -> list[dict[str, Any]]:
    rows = []
    for env_id in ("CartPole-v1", "LunarLander-v3"):
        expert = load_zoo_teacher(env_id)
        for seed in SEEDS:
            policy, expert_states, clone, support = clone_and_drift(env_id, expert, seed, 10, 0.0)
            drifted = clone.obs[support.mask]
            row: dict[str, Any] = {"env": env_id, "seed": seed, "drift_states": len(drifted)}
            for t in (0.1, 1.0, 10.0, 1000.0):
                row[f"auroc_T{t:g}"] = (
                    auroc(energy_of(policy, expert_states, t), energy_of(policy, drifted, t))
                    if len(drifted)
                    else None
                )
            print(row, flush=True)
            rows.append(row)
    return rows


STUDIES = {"js": js_study, "energy": energy_study, "energy_temperature": energy_temperature_study}


def main() -> None:
    torch.set_num_threads(1)
    chosen = sys.argv[1:] or list(STUDIES)
    unknown = set(chosen) - set(STUDIES)
    if unknown:
        raise SystemExit(f"unknown study {sorted(unknown)}: choose from {list(STUDIES)}")
    results = {name: STUDIES[name]() for name in chosen}
    suffix = "" if chosen == list(STUDIES) else "_" + "_".join(chosen)
    emit(f"toolbox_followups{suffix}", {"seeds": list(SEEDS), **results})


if __name__ == "__main__":
    main()
