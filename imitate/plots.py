"""Figures (matplotlib, Agg backend), one function per figure.

Each function takes plain data, writes a PNG (and an SVG when asked) atomically
and returns the PNG path. Readable defaults: labelled axes, a legend, a grid.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from imitate.fileio import write_bytes

Curve = tuple[str, Sequence[float], Sequence[float]]
"""(label, x values, y values)."""


def save_figure(fig: Any, path: str | os.PathLike[str], svg: bool = False) -> Path:
    """Write ``fig`` to ``path`` (PNG, 120 dpi) and optionally beside it as SVG; closes it."""
    target = Path(path)
    formats = [("png", target)] + ([("svg", target.with_suffix(".svg"))] if svg else [])
    for fmt, file in formats:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=120, bbox_inches="tight")
        write_bytes(file, buffer.getvalue())
    plt.close(fig)
    return target


def plot_return_vs_labels(
    curves: Sequence[Curve],
    path: str | os.PathLike[str],
    expert_return: float | None = None,
    title: str = "Learner return vs expert labels",
    xlabel: str = "expert labels",
    svg: bool = False,
) -> Path:
    """Mean return of learners against the expert labels (or demonstrations) they used."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, xs, ys in curves:
        ax.plot(xs, ys, marker="o", label=label)
    if expert_return is not None:
        ax.axhline(expert_return, color="black", linestyle="--", linewidth=1, label="expert")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path, svg)
