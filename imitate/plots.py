"""Figures (matplotlib, Agg backend), one function per figure.

Each function takes plain data, writes a PNG (and an SVG when asked) atomically
and returns the PNG path. Readable defaults: labelled axes, a legend, a grid.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

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


def _finish(fig: Any, ax: Any, xlabel: str, ylabel: str, title: str, path: Any, svg: bool) -> Path:
    """Label, grid and legend the axes, then save the figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return save_figure(fig, path, svg)


def _mean_over_alive(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps where >= 2 episodes are still running ``[E, T]`` (NaN: ended): (t, mean, sem)."""
    alive = (~np.isnan(values)).sum(axis=0)
    keep = alive >= 2
    mean = np.nanmean(values[:, keep], axis=0)
    sem = np.nanstd(values[:, keep], axis=0) / np.sqrt(alive[keep])
    return np.flatnonzero(keep), mean, sem


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
    return _finish(fig, ax, xlabel, "mean return", title, path, svg)


def plot_errorbars(
    series: Mapping[str, tuple[Sequence[str], Sequence[float], Sequence[float]]],
    path: str | os.PathLike[str],
    xlabel: str,
    ylabel: str,
    title: str = "",
    svg: bool = False,
) -> Path:
    """One line with error bars per series ``label -> (x labels, values, errors)``; the x
    values are categories (in first-seen order), so numbers and layer shapes both work."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    categories: list[str] = []
    for xs, _, _ in series.values():
        categories += [x for x in xs if x not in categories]
    for label, (xs, ys, errs) in series.items():
        positions = [categories.index(x) for x in xs]
        ax.errorbar(positions, ys, yerr=errs, marker="o", capsize=3, label=label)
    ax.set_xticks(range(len(categories)), categories)
    return _finish(fig, ax, xlabel, ylabel, title, path, svg)


def plot_trajectories(
    expert_obs: Any,
    clone_obs: dict[str, Any],
    path: str | os.PathLike[str],
    dims: Sequence[int] = (0, 1),
    dim_names: Sequence[str] | None = None,
    episodes: int = 3,
    svg: bool = False,
) -> Path:
    """Expert and clone states over time on chosen dimensions; arrays ``[E, T, obs_dim]``."""
    fig, axes = plt.subplots(
        len(dims), 1, figsize=(7.0, 2.4 * len(dims)), sharex=True, squeeze=False
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, dim in enumerate(dims):
        ax = axes[row][0]
        for e in range(min(episodes, len(expert_obs))):
            ax.plot(
                expert_obs[e, :, dim],
                color="black",
                alpha=0.7,
                linewidth=1.2,
                label="expert" if e == 0 else None,
            )
            for k, (name, obs) in enumerate(clone_obs.items()):
                ax.plot(
                    obs[e, :, dim],
                    color=colors[k % len(colors)],
                    alpha=0.8,
                    linewidth=1.0,
                    linestyle="--",
                    label=name if e == 0 else None,
                )
        ax.set_ylabel(dim_names[row] if dim_names else f"state[{dim}]")
        ax.grid(alpha=0.3)
    axes[0][0].set_title(f"Expert vs clone trajectories (first {episodes} seeds)")
    axes[0][0].legend(fontsize=8)
    axes[-1][0].set_xlabel("step t")
    return save_figure(fig, path, svg)


def plot_distance(
    distances: dict[str, Any],
    path: str | os.PathLike[str],
    threshold: float | None = None,
    svg: bool = False,
) -> Path:
    """Mean normalised expert-clone state distance vs t, with a 95 % band, per learner."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, distance in distances.items():
        steps, mean, sem = _mean_over_alive(distance)
        ax.plot(steps, mean, label=name)
        # A distance is never negative: the normal band is clipped at 0.
        ax.fill_between(steps, np.maximum(mean - 1.96 * sem, 0), mean + 1.96 * sem, alpha=0.2)
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle=":", label="divergence threshold")
    ax.set_ylim(bottom=0)
    ylabel = "state distance to expert (expert-std units)"
    return _finish(fig, ax, "step t", ylabel, "Drift from the expert's trajectory", path, svg)


def plot_horizon_scaling(
    fits: dict[str, Any],
    path: str | os.PathLike[str],
    svg: bool = False,
) -> Path:
    """Log-log cumulative cost vs horizon with fitted slopes; values are HorizonScaling."""

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, fit in fits.items():
        (line,) = ax.loglog(fit.horizons, fit.mean_costs, marker="o", linestyle="none")
        xs = np.geomspace(fit.horizons.min(), fit.horizons.max(), 50)
        lo, hi = fit.slope_ci
        ax.loglog(
            xs,
            np.exp(fit.intercept) * xs**fit.slope,
            color=line.get_color(),
            label=f"{name}: slope {fit.slope:.2f} [{lo:.2f}, {hi:.2f}]",
        )
    horizons = sorted({int(h) for fit in fits.values() for h in fit.horizons})
    ax.set_xticks(horizons, [str(h) for h in horizons])
    ax.minorticks_off()
    title = "Compounding error: cost vs horizon"
    return _finish(fig, ax, "horizon T", "cumulative cost", title, path, svg)


def plot_disagreement(
    disagreement: dict[str, Any],
    path: str | os.PathLike[str],
    svg: bool = False,
) -> Path:
    """Per-step share of episodes where the clone's action differs from the expert's."""

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, per_step in disagreement.items():
        steps, mean, _ = _mean_over_alive(per_step)
        ax.plot(steps, mean, label=name)
    xlabel = "step t (clone's own trajectory)"
    title = "Per-step action disagreement"
    return _finish(fig, ax, xlabel, "action disagreement with expert", title, path, svg)


def plot_score_histogram(
    scores: dict[str, Any], path: str | os.PathLike[str], xlabel: str, svg: bool = False
) -> Path:
    """Overlaid histograms of a score for several state sets (e.g. expert vs drift states)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    every = np.concatenate([np.asarray(v) for v in scores.values()])
    bins = np.linspace(every.min(), every.max(), 40)
    for name, values in scores.items():
        ax.hist(values, bins=bins.tolist(), alpha=0.5, density=True, label=name)
    return _finish(fig, ax, xlabel, "density", "Score distributions", path, svg)


def plot_roc(
    curves: dict[str, tuple[Any, Any]], path: str | os.PathLike[str], svg: bool = False
) -> Path:
    """ROC curves ``{name: (in_scores, out_scores)}``; higher score = flagged as OOD."""
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    for name, (inside, outside) in curves.items():
        thresholds = np.unique(np.concatenate([inside, outside]))[::-1]
        tpr = [(np.asarray(outside) >= t).mean() for t in thresholds]
        fpr = [(np.asarray(inside) >= t).mean() for t in thresholds]
        ax.plot([0, *fpr, 1], [0, *tpr, 1], label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    return _finish(fig, ax, "false positive rate", "true positive rate", "ROC", path, svg)


def plot_reliability(
    probs: Any, labels: Any, path: str | os.PathLike[str], n_bins: int = 15, svg: bool = False
) -> Path:
    """Reliability diagram: accuracy vs confidence per bin, with the diagonal."""
    confidence = np.asarray(probs).max(axis=1)
    correct = np.asarray(probs).argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0, 1, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins - 1)
    centers, accuracy = [], []
    for b in range(n_bins):
        if (bins == b).any():
            centers.append(confidence[bins == b].mean())
            accuracy.append(correct[bins == b].mean())
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    ax.plot(centers, accuracy, marker="o", label="policy")
    return _finish(fig, ax, "confidence", "accuracy", "Reliability diagram", path, svg)


def plot_training_curves(
    curves: Mapping[tuple[str, str], Mapping[str, tuple[Sequence[float], Sequence[float]]]],
    path: str | os.PathLike[str],
    svg: bool = False,
) -> Path:
    """Training loss and held-out NLL (bits per action), one line per stage: a row of
    panels per x axis (``step``: gradient steps; ``round``: DAgger rounds), a column per
    metric. ``{(metric, x key): {stage: (x, y)}}``."""
    labels = {
        "train_loss": "training loss",
        "holdout_bits_per_action": "held-out NLL (bits per action)",
        "step": "gradient step",
        "round": "round (training on the aggregate so far)",
    }
    metrics = sorted({m for m, _ in curves}, key=lambda m: m != "train_loss")
    x_keys = sorted({x for _, x in curves}, key=lambda x: x != "step")
    fig, axes = plt.subplots(
        len(x_keys), len(metrics), figsize=(5.5 * len(metrics), 3.8 * len(x_keys)), squeeze=False
    )
    for row, x_key in enumerate(x_keys):
        for col, metric in enumerate(metrics):
            ax = axes[row][col]
            stages = curves.get((metric, x_key), {})
            for stage, (x, y) in stages.items():
                ax.plot(x, y, marker="." if len(x) < 30 else None, label=stage)
            ax.set_xlabel(labels.get(x_key, x_key))
            ax.set_ylabel(labels.get(metric, metric))
            ax.grid(alpha=0.3)
            if stages:
                ax.legend(fontsize="small")
    return save_figure(fig, path, svg)
