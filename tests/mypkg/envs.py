"""``Line-v0``: walk right along a line of ``size`` cells (a user's env with a kwarg).

The observation is the one-hot cell ``[size]``, so a dataset or a policy made with
``size=5`` has 5 features and cannot be mistaken for the default ``size=10``. Actions:
0 left, 1 right; reward -1 per step; the episode ends in the last cell (or after 50 steps).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class LineEnv(gym.Env[np.ndarray, int]):
    def __init__(self, size: int = 10) -> None:
        self.size = int(size)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.size,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.position = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.size, np.float32)
        obs[self.position] = 1.0
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.position = int(self.np_random.integers(0, self.size - 1))
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        move = 1 if int(action) == 1 else -1
        self.position = int(np.clip(self.position + move, 0, self.size - 1))
        return self._obs(), -1.0, self.position == self.size - 1, False, {}


class NegateReward(gym.RewardWrapper[np.ndarray, int]):
    """A user's wrapper: reward +1 per step instead of -1."""

    def reward(self, reward: float) -> float:
        return -float(reward)


class LineExpert:
    """Always right: the shortest way to the last cell."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.ones(len(obs), np.int64)


if "Line-v0" not in gym.registry:
    gym.register(
        "Line-v0", entry_point="mypkg.envs:LineEnv", kwargs={"size": 10}, max_episode_steps=50
    )
