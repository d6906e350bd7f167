"""The HTML drift report: one self-contained ``report.html``, opened with any browser.

Plotly (offline: its JavaScript is inlined once in the page's head, so no server or
network is needed) draws the interactive parts: trajectories per state dimension (named
for the shipped envs), the state distance and the action disagreement over time with the
number of episodes still running under each, the first-divergence histogram and the
cost-vs-horizon fit. The side-by-side videos are embedded as base64 GIFs (or, for envs
that cannot render, the PNG strip + trajectory plot), and the results tables as plain
HTML. Nothing here is hand-written JavaScript.
"""

from __future__ import annotations

import base64
import html
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imitate.drift import COST_LABELS, DRIFT_HEADER, DriftAnalysis, drift_rows, plotted_features
from imitate.errors import ImitateError, scrub
from imitate.fileio import write_text
from imitate.plots import bootstrap_over_alive

HEADLESS_CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=15000",
)
"""How the report is opened in headless Chromium (its test and the README screenshot): no
network traffic of the browser's own, and time for plotly to draw before the page is read."""

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
DASHES = ("solid", "dash", "dot", "dashdot")


@dataclass(frozen=True)
class Table:
    """A results table: a title, the header cells and rows of cells (already formatted)."""

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    note: str = ""


def _color(k: int) -> str:
    return COLORS[k % len(COLORS)]


def _figure_html(fig: Any, div_id: str) -> str:
    return str(
        fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=div_id,
            config={"displaylogo": False, "responsive": True},
        )
    )


def _list(values: np.ndarray) -> list[float | None]:
    """Plotly-ready values: NaN becomes None (a gap in the line)."""
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, np.float64)]


def trajectories_figure(analysis: DriftAnalysis, episodes: int = 3) -> Any:
    """One row per state dimension (named), expert and every clone on the same seeds; of
    many features, the most informative (:func:`~imitate.drift.plotted_features`, named in
    the title)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    dims, caption = plotted_features(analysis)
    names = [analysis.state_names[d] for d in dims]
    first = next(iter(analysis.pairs.values()))
    n_ep = min(episodes, analysis.n_episodes)
    fig = make_subplots(
        rows=len(names),
        cols=1,
        shared_xaxes=True,
        subplot_titles=names,
        vertical_spacing=min(0.03, 0.5 / max(len(names) - 1, 1)),  # plotly: <= 1/(rows-1)
    )
    series = [("expert", first.expert_obs, "#000000", "solid")]
    series += [
        (name, pair.clone_obs, _color(k), DASHES[(k + 1) % len(DASHES)])
        for k, (name, pair) in enumerate(analysis.pairs.items())
    ]
    for row, dim in enumerate(dims):
        for name, obs, color, dash in series:
            for e in range(n_ep):
                fig.add_trace(
                    go.Scatter(
                        y=_list(obs[e, :, dim]),
                        mode="lines",
                        name=name,
                        legendgroup=name,
                        showlegend=row == 0 and e == 0,
                        line={"color": color, "dash": dash, "width": 1.3},
                        opacity=0.85,
                        hovertemplate=f"{name}, seed {analysis.seed + e}<br>t=%{{x}}<br>"
                        f"{names[row]}=%{{y:.3f}}<extra></extra>",
                    ),
                    row=row + 1,
                    col=1,
                )
    fig.update_xaxes(title_text="step t", row=len(names), col=1)
    fig.update_layout(
        height=190 * len(names) + 120,
        title=f"Trajectories: expert vs clones on the first {n_ep} reset seeds "
        f"({analysis.seed} + i); click a legend entry to hide a policy"
        + (f"<br><sup>{caption}</sup>" if caption else ""),
        margin={"t": 110 if caption else 90},
    )
    return fig


def over_time_figure(series: dict[str, np.ndarray], title: str, ylabel: str) -> Any:
    """Mean over the episodes still running with a 95 % bootstrap band; below it, the number
    of episodes each mean is taken over."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.06
    )
    for k, (name, values) in enumerate(series.items()):
        steps, mean, low, high, alive = bootstrap_over_alive(values)
        color = _color(k)
        band_x = [*steps.tolist(), *steps[::-1].tolist()]
        fig.add_trace(
            go.Scatter(
                x=band_x,
                y=[*_list(high), *_list(low[::-1])],
                fill="toself",
                fillcolor=color,
                opacity=0.18,
                line={"width": 0},
                name=f"{name}: 95 % bootstrap CI",
                legendgroup=name,
                showlegend=False,
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=steps.tolist(),
                y=_list(mean),
                mode="lines",
                name=name,
                legendgroup=name,
                line={"color": color, "dash": DASHES[k % len(DASHES)]},
                customdata=alive[steps].tolist(),
                hovertemplate=f"{name}<br>t=%{{x}}<br>mean %{{y:.3f}} over %{{customdata}} "
                "episodes<extra></extra>",
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                y=alive.tolist(),
                mode="lines",
                line={"color": color, "shape": "hv", "dash": DASHES[k % len(DASHES)]},
                name=f"{name}: episodes running",
                legendgroup=name,
                showlegend=False,
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(title_text=ylabel, row=1, col=1, rangemode="tozero")
    fig.update_yaxes(title_text="episodes running", row=2, col=1, rangemode="tozero")
    fig.update_xaxes(title_text="step t", row=2, col=1)
    fig.update_layout(
        height=520,
        title=f"{title}<br><sup>mean over the episodes still running (count below); "
        "band: 95 % bootstrap CI over episodes</sup>",
    )
    return fig


def divergence_histogram(analysis: DriftAnalysis) -> Any:
    """Histogram of the first-divergence step per clone; never-diverging episodes counted in
    the legend."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for k, (name, pair) in enumerate(analysis.pairs.items()):
        first = pair.first_divergence
        never = int(np.isnan(first).sum())
        fig.add_trace(
            go.Histogram(
                x=first[~np.isnan(first)].tolist(),
                name=f"{name} ({never} of {len(first)} never diverge)",
                marker_color=_color(k),
                opacity=0.6,
                nbinsx=30,
            )
        )
    fig.update_layout(
        barmode="overlay",
        height=380,
        title=f"First divergence: first step with state distance > {analysis.threshold:g} "
        f"expert std ({analysis.n_episodes} paired episodes per clone)",
        xaxis_title="step of first divergence",
        yaxis_title="episodes",
    )
    return fig


def horizon_figure(analysis: DriftAnalysis) -> Any | None:
    """Log-log cumulative cost vs horizon with the fitted slopes and their intervals."""
    import plotly.graph_objects as go

    fits = {n: f for n, f in analysis.fits.items() if np.isfinite(f.slope)}
    if not fits:
        return None
    fig = go.Figure()
    for k, (name, fit) in enumerate(fits.items()):
        lo, hi = fit.slope_ci
        xs = np.geomspace(fit.horizons.min(), fit.horizons.max(), 30)
        fig.add_trace(
            go.Scatter(
                x=fit.horizons.tolist(),
                y=fit.mean_costs.tolist(),
                mode="markers",
                marker={"color": _color(k), "size": 9},
                name=f"{name}: slope {fit.slope:.2f} [{lo:.2f}, {hi:.2f}]",
                legendgroup=name,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=xs.tolist(),
                y=(np.exp(fit.intercept) * xs**fit.slope).tolist(),
                mode="lines",
                line={"color": _color(k), "dash": DASHES[k % len(DASHES)]},
                legendgroup=name,
                showlegend=False,
            )
        )
    kind = next(iter(fits.values())).cost
    episodes = min(len(f.costs) for f in fits.values())
    fig.update_layout(
        height=420,
        title="Compounding error: cost summed over a fixed horizon T on the clone's own "
        f"rollouts<br><sup>mean over {episodes} episodes; slope [95 % bootstrap CI over "
        "episodes]</sup>",
        xaxis={"type": "log", "title": "horizon T (steps)"},
        yaxis={"type": "log", "title": f"cumulative cost: {COST_LABELS.get(kind, kind)}"},
        yaxis_title_font_size=11,
    )
    return fig


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
        for row in table.rows
    )
    note = f"<p class='note'>{html.escape(table.note)}</p>" if table.note else ""
    return (
        f"<h2>{html.escape(table.title)}</h2><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>{note}"
    )


def drift_table(analysis: DriftAnalysis) -> Table:
    """The drift summary per clone as a :class:`Table` (the same cells as report.md's)."""
    rows, note = drift_rows(analysis.summaries)
    setting = f"{analysis.n_episodes} paired episodes from reset seeds {analysis.seed} + i. "
    return Table("Drift from the expert", DRIFT_HEADER, rows, setting + note)


def _media_html(path: Path, caption: str) -> str:
    kind = "gif" if path.suffix == ".gif" else "png"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f"<figure class='video'><img src='data:image/{kind};base64,{data}' "
        f"alt='{html.escape(caption)}'><figcaption>{html.escape(caption)}</figcaption></figure>"
    )


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
.note { font-size: 0.85em; color: #555; }
.videos { display: flex; flex-wrap: wrap; gap: 12px; }
figure.video { margin: 0; }
figure.video img { border: 1px solid #ddd; max-width: 100%; }
figcaption { font-size: 0.8em; color: #444; max-width: 490px; }
"""


def write_html_report(
    path: str | os.PathLike[str],
    title: str,
    analysis: DriftAnalysis,
    tables: Sequence[Table] = (),
    videos: Sequence[Any] = (),
    intro: str = "",
) -> Path:
    """Write the self-contained report: ``tables`` (e.g. the run's results) and the drift
    table, the ``videos`` (:class:`~imitate.video.EpisodeVideo`), then the interactive
    figures. Returns the path."""
    from plotly.offline import get_plotlyjs

    parts = [f"<h1>{html.escape(title)}</h1>"]
    if intro:
        parts.append(f"<p>{html.escape(intro)}</p>")
    parts += [_table_html(t) for t in (*tables, drift_table(analysis))]
    if videos:
        parts.append(
            "<h2>Episodes side by side</h2><p class='note'>Expert (left) and clone (right) "
            "from the same reset seed. Below: the state distance (expert-std units) with the "
            "divergence threshold (grey line); from the first divergence on, the clone's frame "
            "has a red border and the strip a red marker.</p><div class='videos'>"
        )
        for video in videos:
            first = video.first_divergence
            caption = (
                f"{video.clone}, {video.why} (episode {video.episode}, seed {video.seed}, "
                f"{video.steps} steps): "
                + (f"first divergence at t = {first}" if first is not None else "never diverges")
            )
            shown = next((f for f in video.files if f.suffix in (".gif", ".png")), video.files[0])
            parts.append(_media_html(Path(shown), caption))
        parts.append("</div>")
    figures = [
        ("trajectories", trajectories_figure(analysis)),
        (
            "distance",
            over_time_figure(
                {n: p.distance for n, p in analysis.pairs.items()},
                "State distance from the expert (same reset seeds)",
                "state distance (expert-std units)",
            ),
        ),
        (
            "disagreement",
            over_time_figure(
                analysis.disagreement,
                "Action disagreement with the expert on the clone's own states",
                "share of steps where actions differ",
            ),
        ),
        ("divergence", divergence_histogram(analysis)),
        ("horizon", horizon_figure(analysis)),
    ]
    parts.append("<h2>Interactive figures</h2>")
    parts += [_figure_html(fig, f"plot-{name}") for name, fig in figures if fig is not None]
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )
    return write_text(path, page)


class ReportWarning(UserWarning):
    """report.html could not be drawn; the command's other artefacts are kept."""


def html_report_or_reason(
    path: str | os.PathLike[str],
    title: str,
    analysis: DriftAnalysis,
    tables: Sequence[Table] = (),
    videos: Sequence[Any] = (),
    intro: str = "",
) -> tuple[Path | None, str]:
    """:func:`write_html_report`, returning ``(path, "")``; when a figure cannot be drawn
    (a plotting library's limit, e.g. plotly's subplot spacing), ``(None, why)`` with a
    :class:`ReportWarning` instead of the exception, so that a failing last step does not
    discard a finished run (its artefact folder is only kept when the command returns).
    User errors (:class:`~imitate.errors.ImitateError`) and file-system faults
    (``OSError``: a full disk) still raise, as do interruptions."""
    try:
        return write_html_report(path, title, analysis, tables, videos, intro), ""
    except (ImitateError, OSError):
        raise
    except Exception as exc:  # any drawing failure: the run's work is kept
        why = f"not written: {type(exc).__name__}: {scrub(str(exc))}"
        warnings.warn(ReportWarning(f"report.html {why}"), stacklevel=2)
        return None, why
