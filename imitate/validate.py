"""One validator for settings, shared by the command line and the Python API.

The config dataclasses (``PolicyConfig``, ``BCConfig``, ``DAggerConfig``,
``DistillConfig``, ``RunConfig``) and the CLI's command dataclasses call these checks in
``__post_init__``, so a bad value is refused when the setting is made, before any folder
exists, with one line naming the flag: ``--seed must be >= 0, got -1``. The error is a
:class:`~imitate.errors.ValueCheckError`, both an ``ImitateError`` (exit 2) and a
``ValueError`` (what the configs raised before).

Rules: seeds ``0 <= s < 2**32`` (gymnasium and numpy refuse negative seeds);
temperatures, learning rates and widths ``> 0``; counts ``>= 1`` where zero means nothing
(episodes to collect, layer widths) and ``>= 0`` where zero is meaningful (evaluation
episodes: skip); widths at most :data:`MAX_WIDTH`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from imitate.errors import ValueCheckError

MAX_SEED = 2**32 - 1
MAX_WIDTH = 1 << 16
"""Widest hidden layer accepted (a 65536 x 65536 layer is already 17 GB of float32)."""


def _flag(name: str) -> str:
    return name if name.startswith("-") else "--" + name.replace("_", "-")


def seed(name: str, value: int) -> None:
    """``0 <= value <= 2**32 - 1``."""
    if not 0 <= value <= MAX_SEED:
        raise ValueCheckError(f"{_flag(name)} must be in [0, 2**32 - 1], got {value}")


def seeds(name: str, values: Iterable[int]) -> None:
    for value in values:
        seed(name, value)


def positive(name: str, value: float) -> None:
    """``value > 0`` and finite."""
    if not (math.isfinite(value) and value > 0):
        raise ValueCheckError(f"{_flag(name)} must be > 0, got {value}")


def count(name: str, value: int, minimum: int = 1) -> None:
    """An integer ``>= minimum`` (1 where 0 means nothing, 0 where it means skip)."""
    if value < minimum:
        raise ValueCheckError(f"{_flag(name)} must be >= {minimum}, got {value}")


def counts(name: str, values: Iterable[int], minimum: int = 1) -> None:
    for value in values:
        count(name, value, minimum)


def fraction(name: str, value: float, low: float = 0.0, high: float = 1.0) -> None:
    """``low <= value <= high``."""
    if not low <= value <= high:
        raise ValueCheckError(f"{_flag(name)} must be in [{low}, {high}], got {value}")


def widths(name: str, values: Iterable[int]) -> None:
    """Hidden layer widths: each in ``[1, MAX_WIDTH]``."""
    for value in values:
        if not 1 <= value <= MAX_WIDTH:
            raise ValueCheckError(
                f"{_flag(name)} must be layer widths in [1, {MAX_WIDTH}], got {value}"
            )


def nonempty(name: str, value: str | None) -> None:
    """A string that is not empty or blank (``None`` passes: the default applies)."""
    if value is not None and not value.strip():
        raise ValueCheckError(f"{_flag(name)} must not be empty")
