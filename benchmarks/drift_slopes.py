"""Compounding error on imitate/Tightrope-v0: cost-vs-horizon slopes of BC and DAgger.

BC learns from 10 calm demonstrations; DAgger runs 4 rounds of 1000 steps on the
slipping env. For 5 training seeds, the cumulative cost (steps off the rope) is
measured at T in {25, 50, 100, 200, 400} over 200 episodes and a log-log line is
fitted. Writes JSON, prints the table, and draws docs/tightrope_horizon.png.

    python -m benchmarks.drift_slopes
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import envs  # noqa: F401  (registers imitate/...)
from benchmarks.common import emit
from envs.tightrope import TightropeExpert
from imitate import BCConfig, collect, train_bc
from imitate.configs import short_round_bc
from imitate.dagger import DAggerConfig, dagger
from imitate.drift import horizon_scaling
from imitate.plots import plot_horizon_scaling

HORIZONS = [25, 50, 100, 200, 400]
DOCS = Path(__file__).resolve().parent.parent / "docs"


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    first_fits = {}
    for seed in range(5):
        demos = collect(TightropeExpert(), "imitate/TightropeCalm-v0", 10, seed=seed)
        clone, _ = train_bc(demos, BCConfig(seed=seed))
        learner, history = dagger(
            "imitate/Tightrope-v0",
            TightropeExpert(),
            DAggerConfig(
                rounds=4,
                steps_per_round=1000,
                eval_episodes=0,
                seed=seed,
                whole_episodes=False,
                bc=short_round_bc(),  # the round training the README's slopes were measured with
                final_refit=False,  # and without the final refit
            ),
        )
        fits = {
            "BC": horizon_scaling(clone, "imitate/Tightrope-v0", HORIZONS, 200, 50_000 + seed),
            "DAgger": horizon_scaling(
                learner, "imitate/Tightrope-v0", HORIZONS, 200, 50_000 + seed
            ),
        }
        if seed == 0:
            first_fits = fits
        rows.append(
            {
                "seed": seed,
                "bc_labels": len(demos),
                "dagger_labels": history.expert_labels,
                **{
                    f"{name}_{k}": v for name, fit in fits.items() for k, v in fit.to_json().items()
                },
            }
        )
        print(
            f"seed {seed}: BC slope {fits['BC'].slope:.2f} {fits['BC'].slope_ci}, "
            f"DAgger slope {fits['DAgger'].slope:.2f} {fits['DAgger'].slope_ci}",
            flush=True,
        )
    plot_horizon_scaling(
        first_fits, DOCS / "tightrope_horizon.png", cost_label="steps off the rope"
    )
    summary = {
        "bc_slope_mean": float(np.mean([r["BC_slope"] for r in rows])),
        "dagger_slope_mean": float(np.mean([r["DAgger_slope"] for r in rows])),
    }
    emit("drift_slopes", {"horizons": HORIZONS, "seeds": rows, "summary": summary})


if __name__ == "__main__":
    main()
