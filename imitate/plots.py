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


STYLES = ("-", "--", ":", "-.")
"""Line styles cycled per learner, so that overlapping curves stay distinguishable."""
MARKERS = ("o", "s", "^", "D", "v", "P")
BAND_LABEL = "band: 95 % bootstrap CI over episodes"


def _style(k: int) -> dict[str, Any]:
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {"color": colors[k % len(colors)], "linestyle": STYLES[k % len(STYLES)]}


def _mean_over_alive(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps where >= 2 episodes are still running ``[E, T]`` (NaN: ended): (t, mean, sem)."""
    alive = (~np.isnan(values)).sum(axis=0)
    keep = alive >= 2
    mean = np.nanmean(values[:, keep], axis=0)
    sem = np.nanstd(values[:, keep], axis=0) / np.sqrt(alive[keep])
    return np.flatnonzero(keep), mean, sem


def bootstrap_over_alive(
    values: Any, n_bootstrap: int = 200, seed: int = 0, min_alive: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-step mean of ``values [E, T]`` (NaN: the episode has ended) over the episodes
    still running, with a 95 % bootstrap interval over episodes.

    Returns ``(steps, mean, low, high, alive)`` on the steps where at least ``min_alive``
    episodes run; ``alive [T]`` counts them at every step."""
    values = np.asarray(values, dtype=np.float64)
    alive = (~np.isnan(values)).sum(axis=0)
    keep = np.flatnonzero(alive >= min_alive)
    if len(keep) == 0:
        empty = np.zeros(0)
        return keep, empty, empty, empty, alive
    kept = values[:, keep]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), (n_bootstrap, len(values)))
    samples = kept[picks]  # [B, E, T]
    counts = (~np.isnan(samples)).sum(axis=1)
    sums = np.nansum(samples, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    low, high = np.nanpercentile(means, [2.5, 97.5], axis=0)
    return keep, np.nanmean(kept, axis=0), low, high, alive


def _over_time(
    series: Mapping[str, Any],
    path: str | os.PathLike[str],
    ylabel: str,
    title: str,
    xlabel: str,
    svg: bool,
    threshold: float | None = None,
    bottom: float | None = 0.0,
) -> Path:
    """Mean over the episodes still running, 95 % bootstrap band, and below it the number
    of episodes each mean is taken over (so that a late mean over 2 survivors is visible)."""
    fig, (ax, counts) = plt.subplots(
        2, 1, figsize=(7.0, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    for k, (name, values) in enumerate(series.items()):
        steps, mean, low, high, alive = bootstrap_over_alive(values)
        style = _style(k)
        ax.plot(steps, mean, label=name, linewidth=1.4, **style)
        ax.fill_between(steps, low, high, alpha=0.15, color=style["color"], linewidth=0)
        counts.step(np.arange(len(alive)), alive, where="post", linewidth=1.2, **style)
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle=":", label="divergence threshold")
    if bottom is not None:
        ax.set_ylim(bottom=bottom)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}\nmean over episodes still running; {BAND_LABEL}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    n = max(len(np.asarray(v)) for v in series.values())
    counts.set_ylim(0, n * 1.05)
    counts.set_ylabel("episodes\nrunning")
    counts.set_xlabel(xlabel)
    counts.grid(alpha=0.3)
    return save_figure(fig, path, svg)


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
    title: str = "Expert vs clone trajectories",
    smooth: int = 10,
) -> Path:
    """Small multiples: one row per state dimension, one column per clone, each panel the
    expert (black) and that clone (colour) on the first ``episodes`` seeds, so no clone
    hides another. Arrays ``[E, T, obs_dim]``; ``dim_names`` name the chosen ``dims``.

    Bang-bang experts make velocities flip sign every step (a solid band at full scale),
    so the lines are ``smooth``-step moving averages over the faint raw values."""
    names = list(clone_obs)
    fig, axes = plt.subplots(
        len(dims),
        len(names),
        figsize=(3.6 * len(names) + 0.8, 1.7 * len(dims) + 0.9),
        sharex=True,
        sharey="row",
        squeeze=False,
    )
    for col, name in enumerate(names):
        style = _style(col)
        for row, dim in enumerate(dims):
            ax = axes[row][col]
            for e in range(min(episodes, len(expert_obs))):
                for values, color, dash, label in (
                    (expert_obs[e, :, dim], "black", "-", "expert"),
                    (clone_obs[name][e, :, dim], style["color"], "--", name),
                ):
                    ax.plot(values, color=color, alpha=0.18, linewidth=0.6)  # raw, faint
                    ax.plot(
                        moving_average(values, smooth),
                        color=color,
                        alpha=0.9,
                        linewidth=1.1,
                        linestyle=dash,
                        label=label if e == 0 else None,
                    )
            ax.grid(alpha=0.3)
            if col == 0:
                ax.set_ylabel(dim_names[row] if dim_names else f"state[{dim}]", fontsize=8)
        axes[0][col].set_title(name, fontsize=10)
        axes[0][col].legend(fontsize=7, loc="best")
        axes[-1][col].set_xlabel("step t")
    seeds = min(episodes, len(expert_obs))
    fig.suptitle(
        f"{title} (same {seeds} reset seeds in every panel)\n"
        f"lines: {smooth}-step moving average; faint: raw values",
        fontsize=11,
    )
    return save_figure(fig, path, svg)


def moving_average(values: Any, window: int) -> np.ndarray:
    """Trailing ``window``-step mean of ``values [T]`` (NaN stays NaN; shorter at the start)."""
    values = np.asarray(values, dtype=np.float64)
    if window <= 1:
        return values
    finite = np.isfinite(values)
    sums = np.cumsum(np.where(finite, values, 0.0))
    counts = np.cumsum(finite)
    sums[window:] = sums[window:] - sums[:-window]
    counts[window:] = counts[window:] - counts[:-window]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = sums / counts
    out[~finite] = np.nan
    return out


def plot_distance(
    distances: dict[str, Any],
    path: str | os.PathLike[str],
    threshold: float | None = None,
    svg: bool = False,
) -> Path:
    """Mean normalised expert-clone state distance vs t over the episodes where both still
    run, with its 95 % bootstrap band and the number of such episodes per step."""
    ylabel = "state distance to expert\n(expert-std units)"
    title = "Drift from the expert's trajectory"
    return _over_time(distances, path, ylabel, title, "step t", svg, threshold)


def plot_horizon_scaling(
    fits: dict[str, Any],
    path: str | os.PathLike[str],
    svg: bool = False,
    cost_label: str = "cumulative cost",
) -> Path:
    """Log-log cumulative cost vs horizon with fitted slopes; values are HorizonScaling.

    ``cost_label`` says what is summed (the y axis reads "cumulative cost: <label>")."""

    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    for k, (name, fit) in enumerate(fits.items()):
        (line,) = ax.loglog(
            fit.horizons,
            fit.mean_costs,
            marker=MARKERS[k % len(MARKERS)],
            linestyle="none",
            color=_style(k)["color"],
        )
        xs = np.geomspace(fit.horizons.min(), fit.horizons.max(), 50)
        lo, hi = fit.slope_ci
        ax.loglog(
            xs,
            np.exp(fit.intercept) * xs**fit.slope,
            color=line.get_color(),
            linestyle=STYLES[k % len(STYLES)],
            label=f"{name}: slope {fit.slope:.2f} [{lo:.2f}, {hi:.2f}]",
        )
    horizons = sorted({int(h) for fit in fits.values() for h in fit.horizons})
    ax.set_xticks(horizons, [str(h) for h in horizons])
    ax.minorticks_off()
    episodes = min(len(fit.costs) for fit in fits.values())
    title = (
        "Compounding error: cost summed over a fixed horizon T\n"
        f"mean over {episodes} episodes each; slope [95 % bootstrap CI over episodes]"
    )
    ax.set_title(title, fontsize=10)
    ylabel = "\n".join(_wrap(f"cumulative cost: {cost_label}", 48))
    ax.set_xlabel("horizon T (steps)")
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(fig, path, svg)


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)


def plot_disagreement(
    disagreement: dict[str, Any],
    path: str | os.PathLike[str],
    svg: bool = False,
) -> Path:
    """Per-step share of episodes where the clone's action differs from the expert's, over
    the clone's episodes still running (count below), with a 95 % bootstrap band."""
    ylabel = "action disagreement\nwith the expert"
    title = "Per-step action disagreement on the clone's own states"
    return _over_time(disagreement, path, ylabel, title, "step t (clone's own trajectory)", svg)


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


def roc_curve(inside: Any, outside: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """``(fpr, tpr, auc)`` of scores where higher = flagged as OOD; the AUC is the trapezoid
    area under the curve (equal to the rank AUROC, ties counted half)."""
    inside, outside = np.asarray(inside), np.asarray(outside)
    thresholds = np.unique(np.concatenate([inside, outside]))[::-1]
    tpr = np.array([0.0, *((outside >= t).mean() for t in thresholds), 1.0])
    fpr = np.array([0.0, *((inside >= t).mean() for t in thresholds), 1.0])
    return fpr, tpr, float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def plot_roc(
    curves: dict[str, tuple[Any, Any]], path: str | os.PathLike[str], svg: bool = False
) -> Path:
    """ROC curves ``{name: (in_scores, out_scores)}``; higher score = flagged as OOD. The
    legend gives each curve's AUC."""
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    for k, (name, (inside, outside)) in enumerate(curves.items()):
        fpr, tpr, auc = roc_curve(inside, outside)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})", **_style(k))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance (AUC 0.5)")
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
