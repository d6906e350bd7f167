"""Expert agents: scripted heuristics (and, with the expert zoo, trained SB3 experts).

Names resolve on first use (PEP 562), so ``from agents import zoo`` loads no numpy or
gymnasium until they are needed (``imitate expert list`` reads only the manifest).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["HEURISTICS", "heuristic_expert"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from agents import heuristics

        return getattr(heuristics, name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")


if TYPE_CHECKING:
    from agents.heuristics import HEURISTICS, heuristic_expert
