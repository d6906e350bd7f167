"""Run folders: ``runs/<env>__<command>__<seed>__<time>/`` and the files inside.

A run folder holds ``config.json`` (what was asked), ``metrics.jsonl`` (one
record per evaluation), checkpoints, figures and ``report.md``. All files are
written atomically (:mod:`imitate.fileio`).
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any

RUNS_ROOT = Path("runs")


def run_name(env_id: str, command: str, seed: int, timestamp: float | None = None) -> str:
    """``<env>__<command>__<seed>__<YYYYmmdd-HHMMSS>`` with the env id made path-safe."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(timestamp))
    safe_env = re.sub(r"[^A-Za-z0-9._-]+", "-", env_id)
    return f"{safe_env}__{command}__{seed}__{stamp}"


def make_run_dir(
    env_id: str, command: str, seed: int, out: Path | None = None, root: Path = RUNS_ROOT
) -> Path:
    """Create and return ``out`` if given, else a new folder under ``root``."""
    path = out if out is not None else root / run_name(env_id, command, seed)
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_to_json(config: Any) -> Any:
    """A dataclass (possibly nested, with paths and tuples) as JSON-safe data."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: config_to_json(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [config_to_json(v) for v in config]
    if isinstance(config, dict):
        return {str(k): config_to_json(v) for k, v in config.items()}
    if isinstance(config, Path):
        return str(config)
    return config
