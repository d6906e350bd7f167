"""Observation wrappers imitate adds to envs (recorded in data and checkpoints as
gymnasium ``WrapperSpec`` s, so every rollout rebuilds the same env).

:class:`StackObservation` stacks the last ``k`` observations of Box entries (frame
stacking; a memoryless policy then sees motion, and its own recent turns). gymnasium's
``FrameStackObservation`` stacks the whole observation, which fails for Text entries
(minigrid's mission) and widens entries that do not change; this stacks chosen keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import WrapperSpec

ENTRY_POINT = "imitate.wrappers:StackObservation"


def _stacked(space: gym.spaces.Box, k: int) -> gym.spaces.Box:
    low = np.broadcast_to(space.low, (k, *space.shape))
    high = np.broadcast_to(space.high, (k, *space.shape))
    return gym.spaces.Box(low, high, (k, *space.shape), space.dtype.type)


class StackObservation(gym.ObservationWrapper[Any, Any, Any]):
    """The last ``k`` values of Box observations (or of the Box entries ``keys`` of a Dict
    observation; default all Box entries), stacked on a new first axis, oldest first. An
    episode starts with ``k`` copies of its first observation."""

    def __init__(self, env: gym.Env[Any, Any], k: int = 4, keys: Sequence[str] | None = None):
        super().__init__(env)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = k
        space = env.observation_space
        if isinstance(space, gym.spaces.Dict):
            chosen = [n for n, s in space.spaces.items() if isinstance(s, gym.spaces.Box)]
            self.keys: list[str] | None = list(keys) if keys is not None else chosen
            for key in self.keys:
                if not isinstance(space.spaces.get(key), gym.spaces.Box):
                    raise ValueError(f"entry {key!r} of {space} is not a Box")
            self.observation_space = gym.spaces.Dict(
                [
                    (n, _stacked(s, k) if n in self.keys else s)  # type: ignore[arg-type]
                    for n, s in space.spaces.items()
                ]
            )
        elif isinstance(space, gym.spaces.Box):
            if keys is not None:
                raise ValueError("keys apply to Dict observations")
            self.keys = None
            self.observation_space = _stacked(space, k)
        else:
            raise ValueError(f"cannot stack observations of {space}")
        self._frames: dict[str, list[np.ndarray]] = {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._frames = {}
        return self.observation(obs), info

    def _push(self, name: str, value: Any) -> np.ndarray:
        frames = self._frames.get(name)
        value = np.asarray(value)
        frames = [value] * self.k if frames is None else [*frames[1:], value]
        self._frames[name] = frames
        return np.stack(frames)

    def observation(self, observation: Any) -> Any:
        if self.keys is None:
            return self._push("", observation)
        return {n: self._push(n, v) if n in self.keys else v for n, v in dict(observation).items()}


def stack_spec(k: int, keys: Sequence[str] | None = None) -> WrapperSpec:
    """The ``WrapperSpec`` of :class:`StackObservation` (for ``env_spec(..., wrappers=)``)."""
    kwargs: dict[str, Any] = {"k": int(k)}
    if keys is not None:
        kwargs["keys"] = list(keys)
    return WrapperSpec("StackObservation", ENTRY_POINT, kwargs)
