"""Expert agents: scripted heuristics (and, with the expert zoo, trained SB3 experts)."""

from agents.heuristics import HEURISTICS, heuristic_expert

__all__ = ["HEURISTICS", "heuristic_expert"]
