"""Sweeps: behavioural cloning over seeds x one or two settings, locally or as Ray tasks.

A trial is one (seed, value, value) point: collect ``episodes`` demonstrations from the
expert (reset seeds ``1000 * seed + i``), train BC with the setting changed and the
seed set, evaluate on ``eval_episodes`` (seeds 10000 + i, the same for every trial).
Trials are independent: :meth:`~imitate.backends.Rollouts.map` runs them (on Ray: each on a
free 1-CPU worker, rerun on a replacement if its worker dies). Results come back in trial
order whatever the backend.

An axis is ``episodes``, ``hidden`` (layer widths, ``64x64``) or any scalar field of
:class:`~imitate.bc.BCConfig` (``lr``, ``label_smoothing``, ``class_weights`` ...).
"""

from __future__ import annotations

import functools
import itertools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from imitate.backends import Rollouts
from imitate.bc import BCConfig, train_bc
from imitate.collect import LocalRollouts, collect, evaluate
from imitate.constants import EVAL_SEED
from imitate.environments import EnvLike
from imitate.errors import ImitateError
from imitate.policy import Policy, PolicyConfig

_SPECIAL_AXES = ("episodes", "hidden")


@dataclass(frozen=True)
class SweepAxis:
    """One swept setting and its values (already typed)."""

    name: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep trains and measures."""

    env_id: str
    axes: tuple[SweepAxis, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    episodes: int = 10
    """Demonstrations per trial (unless ``episodes`` is an axis)."""
    eval_episodes: int = 20
    bc: BCConfig = field(default_factory=BCConfig)
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    """Keyword arguments of the env (``(name, value)`` pairs), as ``--env-kwargs`` gives them."""

    def env(self) -> EnvLike:
        """What the trials collect and evaluate on: the id, or its spec with the kwargs."""
        from imitate.environments import env_spec

        return env_spec(self.env_id, dict(self.env_kwargs)) if self.env_kwargs else self.env_id

    def __post_init__(self) -> None:
        if not 1 <= len(self.axes) <= 2:
            raise ImitateError(f"a sweep has one or two axes, got {len(self.axes)}")
        if not self.seeds:
            raise ImitateError("a sweep needs at least one seed")
        if len({axis.name for axis in self.axes}) != len(self.axes):
            raise ImitateError("the two sweep axes must differ")


def _sweepable() -> dict[str, tuple[type, bool]]:
    """Scalar BCConfig settings by name -> their type (which parses the values) and whether
    ``None`` is one of them (``lr=None,1e-3``: None picks the default for the head)."""
    types = {name: BCConfig.setting_type(name) for name in BCConfig.settings()}
    return {name: kind for name, kind in types.items() if kind is not None and name != "seed"}


def parse_axis(text: str) -> SweepAxis:
    """``name=v1,v2,...`` -> a typed axis, e.g. ``lr=1e-3,3e-3`` or ``hidden=16,64x64``."""
    name, sep, raw = text.partition("=")
    name = name.strip().replace("-", "_")
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not sep or not items:
        raise ImitateError(f"--grid {text!r}: expected name=value,value,...")
    sweepable = _sweepable()
    if name not in (*_SPECIAL_AXES, *sweepable):
        known = ", ".join([*_SPECIAL_AXES, *sorted(sweepable)])
        raise ImitateError(f"--grid {text!r}: cannot sweep {name!r} (choose from {known})")
    try:
        if name == "episodes":
            values: list[Any] = [int(item) for item in items]
            if min(values) < 1:
                raise ValueError("episodes must be >= 1")
        elif name == "hidden":
            values = [tuple(int(w) for w in item.split("x")) for item in items]
            if min(min(v) for v in values) < 1:
                raise ValueError("layer widths must be >= 1")
        else:
            kind, optional = sweepable[name]
            if kind is bool:
                values = [item.lower() in ("1", "true", "yes") for item in items]
            else:
                values = [None if optional and item == "None" else kind(item) for item in items]
            for value in values:  # BCConfig's own checks
                BCConfig().with_setting(name, value)
    except ValueError as exc:
        raise ImitateError(f"--grid {text!r}: {exc}") from exc
    return SweepAxis(name, tuple(values))


def trials(config: SweepConfig) -> list[dict[str, Any]]:
    """Every (seed, axis values) point, seeds innermost."""
    grids = [axis.values for axis in config.axes]
    return [
        {"seed": seed, **{axis.name: v for axis, v in zip(config.axes, values, strict=True)}}
        for values in itertools.product(*grids)
        for seed in config.seeds
    ]


def run_trial(expert: Policy, config: SweepConfig, trial: dict[str, Any]) -> dict[str, Any]:
    """Collect, train and evaluate one point; returns the trial plus its measurements."""
    start = time.perf_counter()
    seed = int(trial["seed"])
    episodes = int(trial.get("episodes", config.episodes))
    bc = replace(config.bc, seed=seed)
    for name, value in trial.items():
        if name not in ("seed", *_SPECIAL_AXES):
            bc = bc.with_setting(name, value)
    if "hidden" in trial:
        bc = replace(
            bc, policy=PolicyConfig(hidden=trial["hidden"], activation=bc.policy.activation)
        )
    demos = collect(expert, config.env(), episodes, 1000 * seed, seeding="per-episode")
    policy, history = train_bc(demos, bc)
    result = evaluate(policy, config.env(), config.eval_episodes, EVAL_SEED)
    final = history.final
    return {
        **{k: "x".join(map(str, v)) if k == "hidden" else v for k, v in trial.items()},
        "mean_return": result.mean_return,
        "std_return": result.std_return,
        "transitions": len(demos),
        "holdout_bits_per_action": final.get("holdout_bits_per_action", float("nan")),
        "holdout_accuracy": final.get("holdout_accuracy", float("nan")),
        "pid": os.getpid(),
        "wall_time_s": time.perf_counter() - start,
        # the trial's BC curve (train loss, held-out bits per action by gradient step)
        "curve": [
            {k: r[k] for k in ("step", "train_loss", "holdout_bits_per_action") if k in r}
            for r in history.records
        ],
    }


def run_sweep(
    expert: Policy,
    config: SweepConfig,
    rollouts: Rollouts | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Run every trial on ``rollouts`` (default: this process); one row per trial, in
    :func:`trials` order."""
    trial = functools.partial(run_trial, expert, config)
    return (rollouts or LocalRollouts()).map(trial, trials(config), progress, desc="sweep")


def summarise(rows: Sequence[dict[str, Any]], axes: Sequence[SweepAxis]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds of each axis point."""
    names = [axis.name for axis in axes]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[n] for n in names), []).append(row)
    summary = []
    for key, members in groups.items():
        returns = np.array([m["mean_return"] for m in members])
        bits = np.array([m["holdout_bits_per_action"] for m in members], dtype=float)
        summary.append(
            {
                **dict(zip(names, key, strict=True)),
                "seeds": len(members),
                "mean_return": float(returns.mean()),
                "std_over_seeds": float(returns.std()),
                "holdout_bits_per_action": float(np.nanmean(bits))
                if np.isfinite(bits).any()
                else None,
            }
        )
    return summary


def sweep_markdown(
    summary: Sequence[dict[str, Any]], axes: Sequence[SweepAxis], env_id: str
) -> str:
    """The summary as a markdown table."""
    names = [axis.name for axis in axes]
    header = [*names, "seeds", "mean return", "std over seeds", "held-out bits/action"]
    lines = [f"# {env_id}: BC sweep over {' x '.join(names)}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    for row in summary:
        bits = (
            "n/a"
            if row["holdout_bits_per_action"] is None
            else f"{row['holdout_bits_per_action']:.3f}"
        )
        cells = [*(str(row[n]) for n in names), str(row["seeds"])]
        cells += [f"{row['mean_return']:.1f}", f"{row['std_over_seeds']:.1f}", bits]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_sweep(
    summary: Sequence[dict[str, Any]],
    axes: Sequence[SweepAxis],
    path: str | os.PathLike[str],
    title: str = "",
) -> Path:
    """Mean return (± std over seeds) against the first axis, one line per second-axis value."""
    from imitate.plots import plot_errorbars

    first = axes[0].name
    second = axes[1].name if len(axes) == 2 else None
    series: dict[str, tuple[list[str], list[float], list[float]]] = {}
    for row in summary:
        label = f"{second}={row[second]}" if second else "BC"
        xs, ys, errs = series.setdefault(label, ([], [], []))
        xs.append(str(row[first]))
        ys.append(row["mean_return"])
        errs.append(row["std_over_seeds"])
    ylabel = "mean return (± std over seeds)"
    return plot_errorbars(series, path, xlabel=first, ylabel=ylabel, title=title)
