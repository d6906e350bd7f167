"""Scripted experts for gymnasium's classic tasks, each a batched Policy.

Each expert maps observations ``[B, obs_dim]`` to actions ``[B, ...]`` with a
few lines of control logic: cheap, deterministic, no training, no files. They
are the default experts in tests and in ``imitate collect --expert heuristic``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import numpy as np

from imitate.errors import EnvError
from imitate.runtime import Policy


class CartPoleExpert:
    """Linear state feedback on pole angle and cart state: push towards the pole's lean."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        x, x_dot, theta, theta_dot = np.asarray(obs, dtype=np.float64).T
        return (theta + 0.5 * theta_dot + 0.01 * x + 0.1 * x_dot > 0).astype(np.int64)


class MountainCarExpert:
    """Pump energy: accelerate with the velocity, biased by position (tuned on seeds 10000+)."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        position, velocity = np.asarray(obs, dtype=np.float64).T
        return np.where(velocity - 0.03 * (position + 0.4) > 0, 2, 0).astype(np.int64)


class AcrobotExpert:
    """Pump energy: torque with the (mostly second-link) joint velocities."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        dtheta1, dtheta2 = obs[:, 4], obs[:, 5]
        return np.where(dtheta1 + 10.0 * dtheta2 > 0, 2, 0).astype(np.int64)


class PendulumExpert:
    """Energy-shaping swing-up, then PD balancing near the top (torque clipped to +-2)."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        cos_t, sin_t, theta_dot = np.asarray(obs, dtype=np.float64).T
        theta = np.arctan2(sin_t, cos_t)  # 0 is upright
        # Pendulum-v1 obeys theta'' = 15 sin(theta) + 3 u, so E = theta'^2 / 2 + 15 cos(theta)
        # is conserved without torque and equals 15 at upright rest; u = 2 sign(theta') pumps it.
        energy = 0.5 * theta_dot**2 + 15.0 * cos_t - 15.0
        swing = np.where(energy < 0, 2.0 * np.sign(theta_dot + 1e-9), 0.0)
        balance = -(10.0 * theta + 2.0 * theta_dot)
        torque = np.where(cos_t > 0.85, balance, swing)
        return np.clip(torque, -2.0, 2.0).astype(np.float32)[:, None]


class LunarLanderExpert:
    """gymnasium's own LunarLander heuristic (``lunar_lander.heuristic``), applied per row."""

    _discrete_env = SimpleNamespace(unwrapped=SimpleNamespace(continuous=False))

    def act(self, obs: np.ndarray) -> np.ndarray:
        # imported here: the box2d module loads Box2D and pygame (a noticeable start-up cost)
        from gymnasium.envs.box2d.lunar_lander import heuristic as lunar_lander_heuristic

        rows = np.asarray(obs, dtype=np.float64)
        return np.array(
            [lunar_lander_heuristic(self._discrete_env, row) for row in rows], dtype=np.int64
        )


HEURISTICS: dict[str, Callable[[], Policy]] = {
    "CartPole-v1": CartPoleExpert,
    "MountainCar-v0": MountainCarExpert,
    "Acrobot-v1": AcrobotExpert,
    "Pendulum-v1": PendulumExpert,
    "LunarLander-v3": LunarLanderExpert,
}


def heuristic_expert(env_id: str) -> Policy:
    """The scripted expert for ``env_id``; ``EnvError`` lists the envs that have one."""
    try:
        return HEURISTICS[env_id]()
    except KeyError:
        known = ", ".join(sorted(HEURISTICS))
        raise EnvError(f"no heuristic expert for {env_id!r} (available: {known})") from None
