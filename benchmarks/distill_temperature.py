"""Temperature study: do soft targets beat hard labels for the same student and data?

LunarLander-v3, zoo PPO teacher, offline distillation from 5 teacher episodes
(the same states for every run). For each student width, a student trained on
hard teacher actions only (alpha = 0) is compared with students trained on
softened teacher distributions (alpha = 0.9) at T in {0.01, 0.1, 1, 2, 5, 10}.
Reports return (50 episodes, seeds 10000 + i) and agreement with the teacher
on the student's own states, over 2 training seeds; plots docs/distill_temperature.png.

    python -m benchmarks.distill_temperature
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from agents.zoo import load_zoo_teacher
from benchmarks.common import emit
from imitate.distill import DistillConfig, distill, distillation_report
from imitate.plots import save_figure
from imitate.policy import PolicyConfig

ENV = "LunarLander-v3"
TEMPERATURES = [0.01, 0.1, 1.0, 2.0, 5.0, 10.0]
WIDTHS = [4, 16]
SEEDS = [0, 1]
DOCS = Path(__file__).resolve().parent.parent / "docs"


def run(
    teacher: object, width: int, alpha: float, temperature: float, seed: int
) -> dict[str, float]:
    config = DistillConfig(
        student=PolicyConfig((width,)),
        temperature=temperature,
        alpha=alpha,
        mode="offline",
        episodes=5,
        max_steps=8000,
        seed=seed,
    )
    student, _ = distill(teacher, ENV, config)  # type: ignore[arg-type]
    report = distillation_report(teacher, student, ENV, episodes=50)
    return {
        k: report[k]
        for k in ("student_return", "agreement_on_student_states", "student_parameters")
    }


def main() -> None:
    torch.set_num_threads(1)
    teacher = load_zoo_teacher(ENV)
    rows = []
    for width in WIDTHS:
        settings = [("hard", 0.0, 1.0)] + [(f"T={t:g}", 0.9, t) for t in TEMPERATURES]
        for name, alpha, temperature in settings:
            runs = [run(teacher, width, alpha, temperature, seed) for seed in SEEDS]
            row = {
                "width": width,
                "targets": name,
                "temperature": temperature if alpha > 0 else None,
                "mean_return": float(np.mean([r["student_return"] for r in runs])),
                "mean_agreement": float(np.mean([r["agreement_on_student_states"] for r in runs])),
                "parameters": runs[0]["student_parameters"],
            }
            rows.append(row)
            print(row, flush=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for width in WIDTHS:
        soft = [r for r in rows if r["width"] == width and r["temperature"] is not None]
        hard = next(r for r in rows if r["width"] == width and r["temperature"] is None)
        for ax, key in zip(axes, ("mean_return", "mean_agreement"), strict=True):
            (line,) = ax.semilogx(
                [r["temperature"] for r in soft],
                [r[key] for r in soft],
                marker="o",
                label=f"soft, {width} units",
            )
            ax.axhline(
                hard[key],
                color=line.get_color(),
                linestyle="--",
                label=f"hard labels, {width} units",
            )
    axes[0].set_ylabel("student return")
    axes[1].set_ylabel("agreement with teacher (student states)")
    for ax in axes:
        ax.set_xlabel("temperature T")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{ENV}: soft targets vs hard labels (5 teacher episodes, offline)")
    save_figure(fig, DOCS / "distill_temperature.png")
    emit("distill_temperature", {"env": ENV, "seeds": SEEDS, "rows": rows})


if __name__ == "__main__":
    main()
