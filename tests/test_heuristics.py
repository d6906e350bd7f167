"""Scripted experts reach their documented level on seeded episodes."""

from __future__ import annotations

import pytest

from agents.heuristics import HEURISTICS, heuristic_expert
from imitate import EnvError, evaluate

# Floors below the README's 50-episode means, over the first 10 of those seeds.
FLOORS = {
    "CartPole-v1": 500.0,
    "MountainCar-v0": -120.0,
    "Acrobot-v1": -130.0,
    "Pendulum-v1": -250.0,
    "LunarLander-v3": 200.0,
}


@pytest.mark.parametrize("env_id", list(HEURISTICS))
def test_heuristic_expert_reaches_its_floor(env_id: str) -> None:
    result = evaluate(heuristic_expert(env_id), env_id, n_episodes=10, seed=10_000)  # type: ignore[arg-type]
    assert result.mean_return >= FLOORS[env_id], result.returns


def test_unknown_heuristic_lists_the_available_ones() -> None:
    with pytest.raises(EnvError, match="available: Acrobot-v1"):
        heuristic_expert("Walker2d-v5")
