"""Label envs: the correct action is a known function of the observation.

One env per action space (Discrete, MultiDiscrete, MultiBinary, Box), used to
test that each action head can be learned. Observations are i.i.d. uniform in
``[-1, 1]^4``; an episode lasts ``horizon`` steps; the reward is 1 for the
correct action (Box: ``1 - mean |a - a*|``). Each env has its expert, a batched
policy that returns the correct action.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

OBS_DIM = 4
# Fixed, well-conditioned maps from observation to action (the "ground truth").
_W_DISCRETE = np.array(
    [[1.0, -0.5, 0.3, 0.0], [-0.4, 1.0, 0.0, 0.6], [0.0, 0.2, -1.0, 0.8]], dtype=np.float64
)
_W_BINARY = np.array(
    [[1.0, 0.5, 0.0, -0.3], [0.0, -1.0, 0.7, 0.2], [0.4, 0.0, 0.3, -1.0]], dtype=np.float64
)
_W_BOX = np.array([[0.8, -0.6, 0.3, 0.1], [0.2, 0.5, -0.9, 0.4]], dtype=np.float64)


def correct_discrete(obs: np.ndarray) -> np.ndarray:
    """``[B, 4] -> [B]``: argmax of a fixed linear score."""
    return np.asarray(obs @ _W_DISCRETE.T).argmax(axis=-1).astype(np.int64)


def correct_multi_discrete(obs: np.ndarray) -> np.ndarray:
    """``[B, 4] -> [B, 2]``: the Discrete label, and whether ``obs[2] + obs[3] > 0``."""
    second = (obs[:, 2] + obs[:, 3] > 0).astype(np.int64)
    return np.stack([correct_discrete(obs), second], axis=-1)


def correct_multi_binary(obs: np.ndarray) -> np.ndarray:
    """``[B, 4] -> [B, 3]``: the signs of three linear scores, independent labels."""
    return (obs @ _W_BINARY.T > 0).astype(np.int8)


def correct_box(obs: np.ndarray) -> np.ndarray:
    """``[B, 4] -> [B, 2]``: ``tanh(1.5 * A obs)``, inside ``[-1, 1]^2``."""
    return np.tanh(1.5 * obs @ _W_BOX.T).astype(np.float32)


class LabelEnv(gym.Env[np.ndarray, Any]):
    """Reward the action that ``correct(obs)`` prescribes; observations are i.i.d."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012  (gymnasium declares it so)

    def __init__(self, kind: str = "discrete", horizon: int = 50) -> None:
        self.kind = kind
        self.horizon = horizon
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (OBS_DIM,), np.float32)
        self.action_space: gym.Space[Any] = {
            "discrete": gym.spaces.Discrete(3),
            "multi_discrete": gym.spaces.MultiDiscrete([3, 2]),
            "multi_binary": gym.spaces.MultiBinary(3),
            "box": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
        }[kind]
        self._obs = np.zeros(OBS_DIM, np.float32)
        self._t = 0

    def _draw(self) -> np.ndarray:
        self._obs = self.np_random.uniform(-1, 1, OBS_DIM).astype(np.float32)
        return self._obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        return self._draw(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        expert = LabelExpert(self.kind).act(self._obs[None])[0]
        if self.kind == "box":
            reward = 1.0 - float(np.abs(np.asarray(action) - expert).mean())
        else:
            reward = float(np.array_equal(np.asarray(action), expert))
        self._t += 1
        return self._draw(), reward, False, self._t >= self.horizon, {}


class LabelExpert:
    """The correct-action policy of a label env (batched)."""

    _CORRECT: ClassVar[dict[str, Callable[[np.ndarray], np.ndarray]]] = {
        "discrete": correct_discrete,
        "multi_discrete": correct_multi_discrete,
        "multi_binary": correct_multi_binary,
        "box": correct_box,
    }

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._correct = self._CORRECT[kind]

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._correct(np.asarray(obs, dtype=np.float64))
