"""Braking: a rare but critical action.

A car drives on; each step a hazard signal ``h`` in [0, 1] is shown with three
distractor readings. The expert brakes exactly when ``h > 0.96`` (about 4 % of
steps). Braking costs the step's progress (reward 0 instead of 1); not braking
when it should ends the episode in a crash (reward -100). A clone trained with
plain cross-entropy sees few braking labels and tends to put its boundary too
high; class weights or focal loss should raise its braking recall.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

HAZARD_THRESHOLD = 0.96
CRASH_PENALTY = -100.0


def braking_expert_actions(obs: np.ndarray) -> np.ndarray:
    """``[B, 4] -> [B]``: 1 (brake) when the hazard reading (column 0) exceeds the threshold."""
    return (np.asarray(obs)[:, 0] > HAZARD_THRESHOLD).astype(np.int64)


class BrakingExpert:
    """The Braking expert as a batched Policy."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        return braking_expert_actions(obs)


class BrakingEnv(gym.Env[np.ndarray, np.int64]):
    """Observations ``[hazard, noise x3]`` in [0, 1]; actions 0 = drive, 1 = brake."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012  (gymnasium declares it so)

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0.0, 1.0, (4,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self._obs = np.zeros(4, np.float32)

    def _draw(self) -> np.ndarray:
        self._obs = self.np_random.uniform(0.0, 1.0, 4).astype(np.float32)
        return self._obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return self._draw(), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        must_brake = bool(self._obs[0] > HAZARD_THRESHOLD)
        if must_brake and int(action) != 1:
            return self._draw(), CRASH_PENALTY, True, False, {"crash": True}
        reward = 0.0 if int(action) == 1 else 1.0
        return self._draw(), reward, False, False, {"crash": False}
