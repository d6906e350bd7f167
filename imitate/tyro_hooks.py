"""Two hooks into tyro: plain help text, and a default-value check without typeguard.

**Help text.**
tyro builds ``imitate ... --help`` from the attribute docstrings of the command
and config dataclasses. Those docstrings are written for the Python API as well:
they use reST literals (````--flag````, ``:class:`X```) and wrap at the source's line
length with indented continuation lines, which tyro would print verbatim (markup,
and a line break wherever a continuation line starts with a non-letter).
:func:`install` has tyro's docstring step first turn reST into plain text and join
wrapped lines into paragraphs (blank lines and ``- `` list items are kept).

**Start-up.** Before parsing, tyro checks every field's default against its type;
for ``X | None`` and ``tuple[int, ...]`` it falls back to typeguard, whose import is
about a fifth of a command's start-up here. :func:`install` adds exact fast paths for
those two forms (the union's members, the tuple's items) and leaves every other type
to tyro.

Hand-written because tyro offers no hook for either: :func:`install` replaces
``tyro._strings.remove_single_line_breaks`` (called by tyro's docstring reader) and
wraps ``tyro._resolver.is_instance``. If a tyro release renames them, the hooks do
nothing and tyro behaves as shipped (tests/test_cli.py checks the help text,
tests/test_startup.py that typeguard stays unloaded).
"""

from __future__ import annotations

import inspect
import re
import types
from typing import Any, get_args, get_origin

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
    """Install both hooks (idempotent)."""
    _install_plain_help()
    _install_fast_default_check()


def _install_fast_default_check() -> None:
    try:
        from tyro import _resolver
    except ImportError:  # pragma: no cover - tyro's layout changed
        return
    original: Any = getattr(_resolver, "is_instance", None)
    if original is None or getattr(original, "_imitate_fast", False):
        return

    def is_instance(typ: Any, value: Any) -> bool:
        origin = get_origin(typ)
        if origin is types.UnionType:  # X | None: tyro's own fast path knows typing.Union only
            return any(is_instance(arg, value) for arg in get_args(typ))
        if origin is tuple and isinstance(value, tuple):
            args = get_args(typ)
            if len(args) == 2 and args[1] is Ellipsis:
                return all(is_instance(args[0], item) for item in value)
            if Ellipsis not in args and len(args) == len(value):
                return all(is_instance(a, item) for a, item in zip(args, value, strict=True))
            return False
        return bool(original(typ, value))

    is_instance._imitate_fast = True  # type: ignore[attr-defined]
    _resolver.is_instance = is_instance


def _install_plain_help() -> None:
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
