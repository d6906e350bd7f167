"""One thread policy for the library and the command line: ``set_threads(n)``.

Small MLPs (a few thousand weights, batches of tens) are fastest on one intra-op
thread: more threads only add hand-off costs (issue 18 measured ``distill`` of the
README's CartPole example at 31-34 s with torch's default threads against 4.8-5.9 s
with one, on this project's 2-core machine). ``import imitate`` applies ``IMITATE_THREADS``
(default 1) so that Python users get the command line's speed.

When torch is not imported yet, ``OMP_NUM_THREADS`` is set (unless the user set it),
which torch reads when it starts; once torch is imported, ``torch.set_num_threads``
is called. Nothing here imports torch.
"""

from __future__ import annotations

import os
import sys

ENV_VAR = "IMITATE_THREADS"
DEFAULT_THREADS = 1


def default_threads() -> int:
    """``IMITATE_THREADS`` if set (a positive integer), else 1."""
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return DEFAULT_THREADS
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{ENV_VAR} must be a positive integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"{ENV_VAR} must be a positive integer, got {text!r}")
    return value


def set_threads(n: int | None = None) -> int:
    """Use ``n`` intra-op threads for torch (default: ``IMITATE_THREADS`` or 1); returns n."""
    n = default_threads() if n is None else int(n)
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(n)
    else:
        os.environ["OMP_NUM_THREADS"] = str(n)
    return n


def init_threads() -> None:
    """At ``import imitate``: apply ``IMITATE_THREADS``; else 1 unless ``OMP_NUM_THREADS``
    is set by the user (then torch keeps it)."""
    if os.environ.get(ENV_VAR) or "OMP_NUM_THREADS" not in os.environ:
        set_threads(default_threads())
