"""Tightrope: a drift test env where a clone's mistakes compound.

A walker stands on a rope at lateral offset ``x = 0``. Each step a wind
``c`` of +-1 blows (the observation shows it before it blows) and the walker
moves ``a - 2`` for an action ``a`` in ``{0..4}``: ``x' = x + (a - 2) + c``.
With probability ``slip_prob`` the walker also slips one step sideways.
The expert counters the wind on the rope and steps back towards it when off
it: ``a* = clip(-c - sign(x), -2, 2) + 2``. The cost of a step is 1 when
``x != 0`` (the reward is its negative): time spent off the expert's path.

Purpose (Ross and Bagnell 2010): demonstrations are collected on
``imitate/TightropeCalm-v0`` (no slips), so states off the rope never appear
in them. A BC clone evaluated with slips leaves the rope at the first slip and
never learns to come back, so its expected cost grows like ``eps * T^2 / 2``;
DAgger visits the off-rope states, learns to recover, and its cost grows like
``eps * T``. The horizon ``T`` is the episode length (``max_episode_steps``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

MAX_OFFSET = 5.0


def tightrope_expert_actions(obs: np.ndarray) -> np.ndarray:
    """``[B, 2] -> [B]``: counter the wind, and step back towards the rope when off it."""
    x, wind = np.asarray(obs, dtype=np.float64).T
    return (np.clip(-wind - np.sign(x), -2, 2) + 2).astype(np.int64)


class TightropeExpert:
    """The Tightrope expert as a batched Policy."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        return tightrope_expert_actions(obs)


class TightropeEnv(gym.Env[np.ndarray, np.int64]):
    """Observations ``[x, wind]``; actions ``Discrete(5)`` (moves -2..2); reward ``-1[x != 0]``."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012  (gymnasium declares it so)

    def __init__(self, slip_prob: float = 0.002) -> None:
        self.slip_prob = slip_prob
        high = np.array([MAX_OFFSET, 1.0], np.float32)
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)
        self.action_space = gym.spaces.Discrete(5)
        self._x = 0.0
        self._wind = 1.0

    def _obs(self) -> np.ndarray:
        return np.array([self._x, self._wind], np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._x = 0.0
        self._wind = float(self.np_random.choice([-1.0, 1.0]))
        return self._obs(), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        x = self._x + (int(action) - 2) + self._wind
        if self.np_random.random() < self.slip_prob:
            x += float(self.np_random.choice([-1.0, 1.0]))
        self._x = float(np.clip(x, -MAX_OFFSET, MAX_OFFSET))
        self._wind = float(self.np_random.choice([-1.0, 1.0]))
        off_path = self._x != 0.0
        return self._obs(), -float(off_path), False, False, {"off_path": off_path}
