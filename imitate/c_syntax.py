"""C99 literals for generated code (the C export and the heads' C decision snippets).

A leaf module: :mod:`imitate.spaces` writes each head's decision in C and
:mod:`imitate.export.c` the network around it; both spell numbers the same way.
"""

from __future__ import annotations

import numpy as np

from imitate.errors import ImitateError


def float_literal(value: float) -> str:
    """A float32 literal with 9 significant digits (round-trips every float32)."""
    if not np.isfinite(value):  # "nan.0f" / "inf.0f" would not compile
        raise ImitateError(f"the C export needs finite weights and normalisation, got {value}")
    text = f"{value:.9g}"
    return f"{text}f" if any(c in text for c in ".e") else f"{text}.0f"


def floats(values: np.ndarray) -> str:
    """The comma-separated float32 literals of ``values`` (flattened)."""
    return ", ".join(float_literal(float(v)) for v in np.asarray(values, np.float32).ravel())
