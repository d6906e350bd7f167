"""Plain help text from the command dataclasses' docstrings.

tyro builds ``imitate ... --help`` from the attribute docstrings of the command
and config dataclasses. Those docstrings are written for the Python API as well:
they use reST literals (````--flag````, ``:class:`X```) and wrap at the source's line
length with indented continuation lines, which tyro would print verbatim (markup,
and a line break wherever a continuation line starts with a non-letter).
:func:`install` has tyro's docstring step first turn reST into plain text and join
wrapped lines into paragraphs (blank lines and ``- `` list items are kept).

Hand-written because tyro offers no hook for it: this replaces the function
``tyro._strings.remove_single_line_breaks`` that tyro's docstring reader calls. If a
tyro release renames it, :func:`install` does nothing and help text stays as tyro
makes it (tests/test_cli.py checks the result).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj):`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain(text: str) -> str:
    """reST roles and literals as plain text; wrapped lines joined into paragraphs."""
    text = _LITERAL.sub(r"\1", _ROLE.sub(r"\1", inspect.cleandoc(text)))
    paragraphs: list[list[str]] = [[]]
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped:
            if paragraphs[-1]:
                paragraphs.append([])
        elif stripped.startswith(("- ", "* ", "• ")) and paragraphs[-1]:
            paragraphs.append([stripped])
        else:
            paragraphs[-1].append(stripped)
    return "\n\n".join(" ".join(p) for p in paragraphs if p)


def install() -> None:
    """Route tyro's docstring clean-up through :func:`plain` (idempotent)."""
    try:
        from tyro import _strings
    except ImportError:  # pragma: no cover - tyro's layout changed
        return
    original: Any = getattr(_strings, "remove_single_line_breaks", None)
    if original is None or getattr(original, "_imitate_plain", False):
        return

    def remove_single_line_breaks(helptext: str) -> str:
        return str(original(plain(helptext)))

    remove_single_line_breaks._imitate_plain = True  # type: ignore[attr-defined]
    _strings.remove_single_line_breaks = remove_single_line_breaks
