"""Run logging: ``metrics.jsonl`` always, TensorBoard or Weights & Biases on request.

Every training command logs its records through one :class:`RunLogger`: each
record is one line of ``metrics.jsonl`` in the run folder, tagged with its
``stage`` (``bc``, ``bc_5``, ``dagger``, ``distill``, ``sweep``, ...), in the one
key vocabulary of the project (``step`` or ``round``, ``train_loss``,
``holdout_bits_per_action``, ``learner_return``, ``expert_labels``,
``wall_time_s``). With ``logger="tensorboard"`` the numeric keys are also written
as TensorBoard scalars ``<stage>/<key>`` into the run folder (``tensorboard
--logdir runs/`` shows every run); with ``logger="wandb"`` they go to a W&B run
whose files live in the run folder. W&B runs offline (``WANDB_MODE=offline``,
synced later with ``wandb sync``) unless ``WANDB_MODE`` says otherwise, so it
works without a network or an account. Both are optional extras
(``pip install imitate[tensorboard]`` / ``imitate[wandb]``); a missing one is an
``ImitateError``.

:meth:`RunLogger.close` writes ``metrics.jsonl`` (atomically) and, for stages that
have curves, ``training_curves.png``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from imitate.errors import ImitateError
from imitate.fileio import write_jsonl

Logger = Literal["none", "tensorboard", "wandb"]
LOGGERS: tuple[str, ...] = ("none", "tensorboard", "wandb")
STEP_KEYS = ("step", "round", "trial")
"""Keys that index a stage's records (the x axis), in order of preference."""


class RunLogger:
    """Collects a run's records; mirrors numeric values to TensorBoard or W&B.

    ``out_dir``: the run folder. ``config``: recorded with the W&B run."""

    def __init__(
        self,
        out_dir: Path,
        logger: Logger = "none",
        config: Mapping[str, Any] | None = None,
    ) -> None:
        if logger not in LOGGERS:
            raise ImitateError(f"--logger must be one of {', '.join(LOGGERS)}, got {logger!r}")
        self.out_dir = Path(out_dir)
        self.logger = logger
        self.records: list[dict[str, Any]] = []
        self._tb: Any = None
        self._wandb: Any = None
        if logger == "tensorboard":
            self._tb = _tensorboard_writer(self.out_dir)
        elif logger == "wandb":
            self._wandb = _wandb_run(self.out_dir, dict(config or {}))

    def __repr__(self) -> str:
        return f"RunLogger({self.out_dir}, logger={self.logger!r}, records={len(self.records)})"

    def log(self, stage: str, record: Mapping[str, Any], step: int | None = None) -> None:
        """One record of ``stage``; ``step`` defaults to its step / round / trial key."""
        row = {"stage": stage, **record}
        self.records.append(row)
        if step is None:
            step = next((int(record[k]) for k in STEP_KEYS if k in record), len(self.records))
        scalars = {
            f"{stage}/{key}": float(value)
            for key, value in record.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            and key not in STEP_KEYS and math.isfinite(float(value))
        }  # fmt: skip
        if self._tb is not None:
            for tag, value in scalars.items():
                self._tb.add_scalar(tag, value, step)
        if self._wandb is not None and scalars:
            # each stage has its own x axis; W&B's global step must only grow
            self._wandb.log({**scalars, f"{stage}/x": step})

    def log_records(self, stage: str, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            self.log(stage, record)

    def close(self, figure: bool = True) -> Path:
        """Write ``metrics.jsonl`` (and ``training_curves.png``); close the sinks."""
        path = write_jsonl(self.out_dir / "metrics.jsonl", self.records)
        if figure:
            curves = training_curves(self.records)
            if curves:
                from imitate.plots import plot_training_curves

                plot_training_curves(curves, self.out_dir / "training_curves.png")
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None
        return path

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(figure=kind is None)


Curves = dict[tuple[str, str], dict[str, tuple[list[float], list[float]]]]


def training_curves(records: Iterable[Mapping[str, Any]]) -> Curves:
    """``{(metric, x key): {stage: (x, y)}}`` for the loss-like metrics (``train_loss``,
    ``holdout_bits_per_action``) of stages that logged them at two or more steps; the
    x key (``step``: gradient steps, ``round``: DAgger rounds) keeps unlike axes apart."""
    curves: Curves = {}
    for record in records:
        x_key = next((k for k in ("step", "round") if k in record), None)
        if x_key is None:
            continue
        for metric in ("train_loss", "holdout_bits_per_action"):
            value = record.get(metric)
            if isinstance(value, (int, float)) and math.isfinite(value):
                panel = curves.setdefault((metric, x_key), {})
                xs, ys = panel.setdefault(record["stage"], ([], []))
                xs.append(float(record[x_key]))
                ys.append(float(value))
    return {
        metric: {stage: xy for stage, xy in stages.items() if len(xy[0]) >= 2}
        for metric, stages in curves.items()
        if any(len(xy[0]) >= 2 for xy in stages.values())
    }


def _tensorboard_writer(out_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch's writer needs the tensorboard package
        raise ImitateError(
            "--logger tensorboard needs the tensorboard package (pip install imitate[tensorboard])"
        ) from exc
    return SummaryWriter(log_dir=str(out_dir))


def _wandb_run(out_dir: Path, config: dict[str, Any]) -> Any:
    try:
        import wandb
    except ImportError as exc:
        raise ImitateError(
            "--logger wandb needs the wandb package (pip install imitate[wandb])"
        ) from exc
    mode = os.environ.get("WANDB_MODE", "offline")
    # W&B mistakes this project's `agents` package for the OpenAI Agents SDK and prints a
    # tracing tip on every run; its own switch turns that off
    os.environ.setdefault("WANDB_DISABLE_WEAVE", "true")
    return wandb.init(
        project=os.environ.get("WANDB_PROJECT", "imitate"),
        name=out_dir.name,
        dir=str(out_dir),
        config=config,
        mode=mode,  # type: ignore[arg-type]
        reinit="finish_previous",
        # no console capture (stdout stays one JSON object under --json), no git probing
        settings=wandb.Settings(silent=True, console="off", disable_git=True),
    )
