"""Observation envs: the correct action is a known function of a non-Box observation.

One env per observation space (Dict, Tuple, Discrete, MultiBinary, Text), used to test
that each observation encoder can be learned end to end (collect -> BC -> eval ->
export). As in :mod:`envs.label_envs`, observations are i.i.d. across steps, an episode
lasts ``horizon`` steps, the reward is 1 for the correct action and 0 otherwise, and the
action space is ``Discrete(3)``. Each env has its expert, a batched policy returning the
correct action for a batch of observations (:mod:`imitate.observations` batches: a dict
or tuple of arrays, strings as a unicode array).

========================  ==========================================  ======================
env                       observation                                  correct action
========================  ==========================================  ======================
``discrete``              ``Discrete(7)``: a symbol s                  ``TABLE_7[s]``
``multi_binary``          ``MultiBinary(4)``: bits b                   ``TABLE_16[b as int]``
``text``                  ``Text``: "please go left now" etc.,         0 left, 1 right,
                          direction word among filler words            2 stay
``tuple``                 ``Tuple(Discrete(3), Box(-1, 1, (1,)))``:    ``(d + [x > 0]) % 3``
                          (d, x)
``dict``                  ``Dict(vec: Box(-1, 1, (2,)), mode:          mode 0: argmax of
                          Discrete(2), mask: MultiBinary(3))``         ``W @ vec``; mode 1:
                                                                       first set bit of mask
                                                                       (2 when none)
========================  ==========================================  ======================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

N_ACTIONS = 3
TABLE_7 = np.array([2, 0, 1, 1, 0, 2, 0], dtype=np.int64)
"""The Discrete env's correct action of each symbol."""
TABLE_16 = np.array([0, 1, 2, 1, 2, 0, 0, 1, 2, 2, 1, 0, 1, 0, 2, 2], dtype=np.int64)
"""The MultiBinary env's correct action of each bit pattern ``b0 + 2 b1 + 4 b2 + 8 b3``."""
_W_DICT = np.array([[1.0, -0.5], [-0.4, 1.0], [-0.6, -0.6]], dtype=np.float64)
DIRECTIONS = ("left", "right", "stay")
_FILLERS = ("please", "now", "go", "quickly", "then", "the", "agent", "should")
TEXT_SPACE = gym.spaces.Text(64, min_length=1, charset="abcdefghijklmnopqrstuvwxyz ")


def observation_space(kind: str) -> gym.Space[Any]:
    """The observation space of the env of ``kind``."""
    if kind == "discrete":
        return gym.spaces.Discrete(7)
    if kind == "multi_binary":
        return gym.spaces.MultiBinary(4)
    if kind == "text":
        return TEXT_SPACE
    if kind == "tuple":
        return gym.spaces.Tuple(
            (gym.spaces.Discrete(3), gym.spaces.Box(-1.0, 1.0, (1,), np.float32))
        )
    if kind == "dict":
        return gym.spaces.Dict(
            [
                ("vec", gym.spaces.Box(-1.0, 1.0, (2,), np.float32)),
                ("mode", gym.spaces.Discrete(2)),
                ("mask", gym.spaces.MultiBinary(3)),
            ]
        )
    raise ValueError(f"unknown observation env kind {kind!r}")


def correct_discrete(obs: Any) -> np.ndarray:
    return TABLE_7[np.asarray(obs, dtype=np.int64)]


def correct_multi_binary(obs: Any) -> np.ndarray:
    bits = np.asarray(obs, dtype=np.int64)
    return TABLE_16[bits @ (1 << np.arange(4))]


def correct_text(obs: Any) -> np.ndarray:
    words = [str(s).split() for s in np.asarray(obs, dtype=np.str_).reshape(-1)]
    return np.array(
        [next(DIRECTIONS.index(w) for w in ws if w in DIRECTIONS) for ws in words], np.int64
    )


def correct_tuple(obs: Any) -> np.ndarray:
    d, x = obs
    return ((np.asarray(d, np.int64) + (np.asarray(x).reshape(-1) > 0)) % N_ACTIONS).astype(
        np.int64
    )


def correct_dict(obs: Any) -> np.ndarray:
    vec = np.asarray(obs["vec"], dtype=np.float64)
    mode = np.asarray(obs["mode"], dtype=np.int64)
    mask = np.asarray(obs["mask"], dtype=np.int64)
    by_vec = (vec @ _W_DICT.T).argmax(axis=-1)
    first_bit = np.where(mask.any(axis=-1), mask.argmax(axis=-1), 2)
    return np.where(mode == 0, by_vec, first_bit).astype(np.int64)


class ObsEnv(gym.Env[Any, np.int64]):
    """Reward the action that ``correct(obs)`` prescribes; observations are i.i.d."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012  (gymnasium declares it so)

    def __init__(self, kind: str = "dict", horizon: int = 50) -> None:
        self.kind = kind
        self.horizon = horizon
        self.observation_space = observation_space(kind)
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self._expert = ObsExpert(kind)
        self._obs: Any = None
        self._t = 0

    def _draw(self) -> Any:
        rng = self.np_random
        if self.kind == "discrete":
            obs: Any = np.int64(rng.integers(7))
        elif self.kind == "multi_binary":
            obs = rng.integers(0, 2, 4).astype(np.int8)
        elif self.kind == "text":
            words = list(rng.choice(_FILLERS, size=int(rng.integers(1, 4)), replace=False))
            words.insert(int(rng.integers(len(words) + 1)), DIRECTIONS[int(rng.integers(3))])
            obs = " ".join(words)
        elif self.kind == "tuple":
            obs = (np.int64(rng.integers(3)), rng.uniform(-1, 1, 1).astype(np.float32))
        else:
            obs = {
                "vec": rng.uniform(-1, 1, 2).astype(np.float32),
                "mode": np.int64(rng.integers(2)),
                "mask": rng.integers(0, 2, 3).astype(np.int8),
            }
        self._obs = obs
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        return self._draw(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        expert = int(self._expert.act(_as_batch(self._obs))[0])
        reward = float(int(action) == expert)
        self._t += 1
        return self._draw(), reward, False, self._t >= self.horizon, {}


def _as_batch(obs: Any) -> Any:
    """One observation as a batch of one."""
    if isinstance(obs, dict):
        return {k: _as_batch(v) for k, v in obs.items()}
    if isinstance(obs, tuple):
        return tuple(_as_batch(v) for v in obs)
    if isinstance(obs, str):
        return np.array([obs])
    return np.asarray(obs)[None]


class ObsExpert:
    """The correct-action policy of an observation env (batched)."""

    _CORRECT: ClassVar[dict[str, Callable[[Any], np.ndarray]]] = {
        "discrete": correct_discrete,
        "multi_binary": correct_multi_binary,
        "text": correct_text,
        "tuple": correct_tuple,
        "dict": correct_dict,
    }

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._correct = self._CORRECT[kind]

    def act(self, obs: Any) -> np.ndarray:
        return self._correct(obs)
