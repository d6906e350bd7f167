"""Buttons: a stochastic expert presses K = 3 correlated buttons (MultiBinary actions).

The multi-label test bed of ``benchmarks/multilabel_calibration.py``. Each step shows a
state ``s = (x, y)`` uniform in ``[-1, 1]^2`` (i.i.d. across steps). The expert's joint
distribution over the 8 button combinations ``b in {0, 1}^3`` is known exactly:

    P*(b | s)  proportional to  exp( sum_k u_k(s) b_k  +  t(s) b_0 b_1 b_2 )

with a regime weight ``lam = sigmoid(4 y)``:

* ``y << 0`` (lam -> 0): independent buttons, ``u = 2 x (1, -1, 0.5)``, ``t = 0``. A
  product of per-button Bernoullis is the true model here.
* ``y >> 0`` (lam -> 1): "press exactly two of three": ``u_k = 3``, ``t = -8``. Each
  button's marginal is about 2/3, but all three together have probability ~0.002, so
  thresholding each marginal at 1/2 presses the one combination the expert avoids.

In between the two mix smoothly (``u = (1 - lam) u_indep + 3 lam``, ``t = -8 lam``).
Combination index ``c = b_0 + 2 b_1 + 4 b_2``. The reward of a step is the expert's
probability of the pressed combination, ``P*(a | s)`` (at most 1); an episode lasts
100 steps. A policy's return is thus 100 x the mean probability that the expert gives
the combinations the policy presses; the best deterministic policy presses the joint mode.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

K = 3
HORIZON = 100
_COMBOS = ((np.arange(2**K)[:, None] >> np.arange(K)) & 1).astype(np.int8)  # [8, K]
_INDEPENDENT = np.array([1.0, -1.0, 0.5])


def combinations() -> np.ndarray:
    """``[8, 3]`` int8: the button combination of each index ``c = b0 + 2 b1 + 4 b2``."""
    return _COMBOS.copy()


def combination_index(buttons: np.ndarray) -> np.ndarray:
    """``[B, 3]`` buttons -> ``[B]`` int64 index ``b0 + 2 b1 + 4 b2``."""
    return (np.asarray(buttons).astype(np.int64) << np.arange(K)).sum(axis=-1)


def joint_probabilities(obs: np.ndarray) -> np.ndarray:
    """``[B, 2]`` states -> ``[B, 8]`` float64: the expert's exact joint distribution."""
    s = np.asarray(obs, dtype=np.float64).reshape(-1, 2)
    lam = 1.0 / (1.0 + np.exp(-4.0 * s[:, 1]))
    u = (1.0 - lam)[:, None] * 2.0 * s[:, :1] * _INDEPENDENT + 3.0 * lam[:, None]  # [B, K]
    t = -8.0 * lam
    logits = u @ _COMBOS.T.astype(np.float64) + t[:, None] * _COMBOS.all(axis=1)  # [B, 8]
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def marginal_probabilities(obs: np.ndarray) -> np.ndarray:
    """``[B, 2]`` -> ``[B, 3]``: ``P*(b_k = 1 | s)``, the sums of the joint over the others."""
    return joint_probabilities(obs) @ _COMBOS.astype(np.float64)


class ButtonsExpert:
    """Samples combinations from the exact joint; a StochasticPolicy (``reseed``)."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray) -> np.ndarray:
        p = joint_probabilities(obs)
        u = self._rng.random((len(p), 1))
        index = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), 2**K - 1)
        return _COMBOS[index]


class ButtonsEnv(gym.Env[np.ndarray, np.ndarray]):
    """Observations ``(x, y)`` uniform in [-1, 1]^2; actions MultiBinary(3); reward P*(a|s)."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012  (gymnasium declares it so)

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.MultiBinary(K)
        self._obs = np.zeros(2, np.float32)

    def _draw(self) -> np.ndarray:
        self._obs = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)
        return self._obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return self._draw(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        index = int(combination_index(np.asarray(action).reshape(1, K))[0])
        reward = float(joint_probabilities(self._obs[None])[0, index])
        return self._draw(), reward, False, False, {}
