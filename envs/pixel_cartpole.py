"""Pixel CartPole: CartPole-v1 seen as small grayscale frames, frame-stacked.

The student sees only pixels, ``Box(0, 255, (stack, 40, 60), uint8)`` (the last
``stack`` frames, oldest first; a single frame has no velocity); the expert acts on the
true state (``env.unwrapped.state``, the 4 CartPole variables): the privileged-teacher
pattern (Chen et al. 2019, "Learning by Cheating"). Dynamics, rewards, termination and
seeding are CartPole-v1's own (the inner env is gymnasium's ``CartPoleEnv``), so a
pixel episode from seed ``s`` is the state episode from seed ``s``.

Frames are drawn from the state in numpy rather than with gymnasium's
``render_mode="rgb_array"``: that renderer needs pygame (a display driver, or
``SDL_VIDEODRIVER=dummy`` headless), draws 600x400 RGB frames that must then be
downscaled, and costs about a millisecond per frame; drawing 40x60 directly is a
few vectorised array operations, needs no display, and is bit-for-bit deterministic
across machines. The cart is a filled rectangle and the pole an anti-aliased line
(intensity falls off with the distance of a pixel's centre from the segment), so the
pole angle is visible below one pixel of resolution.

The pole is drawn 34 px long, from the cart near the bottom edge to 3 px below the top:
the expert balances within a few hundredths of a radian, and one step changes the angle
by ``0.02 * theta_dot`` (a few thousandths), so the angle and, from the stacked frames,
its rate are only visible at the tip; at 34 px the tip moves 0.34 px per 0.01 rad (0.21 px
with the 21 px pole drawn before).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

HEIGHT, WIDTH = 40, 60
STACK = 4
_SCALE = WIDTH / 5.6  # pixels per world unit: x in [-2.8, 2.8] spans the frame
_CART_ROW = 37.0  # row of the cart's centre (near the bottom: the pole gets the height)
_CART_HALF_W, _CART_HALF_H = 0.3 * _SCALE, 1.5  # pixels
_POLE_LENGTH = 34.0  # pixels: most of the frame's height (3.2x CartPole's 1.0 to scale)
_POLE_HALF_THICKNESS = 1.0  # pixels


def render_frames(states: np.ndarray) -> np.ndarray:
    """``[B, 4]`` CartPole states ``(x, x_dot, theta, theta_dot)`` -> ``uint8 [B, H, W]``."""
    states = np.asarray(states, dtype=np.float64).reshape(-1, 4)
    x, theta = states[:, 0], states[:, 2]
    rows = np.arange(HEIGHT, dtype=np.float64)[None, :, None] + 0.5  # pixel centres
    cols = np.arange(WIDTH, dtype=np.float64)[None, None, :] + 0.5
    cx = (x * _SCALE + WIDTH / 2)[:, None, None]
    cart = (np.abs(cols - cx) <= _CART_HALF_W) & (np.abs(rows - _CART_ROW) <= _CART_HALF_H)
    # pole: the segment from the cart's top, leaning by theta (0 upright, > 0 to the right)
    top = _CART_ROW - _CART_HALF_H
    dx, dy = np.sin(theta)[:, None, None], -np.cos(theta)[:, None, None]
    px, py = cols - cx, rows - top
    along = np.clip(px * dx + py * dy, 0.0, _POLE_LENGTH)
    distance = np.hypot(px - along * dx, py - along * dy)
    pole = np.clip(_POLE_HALF_THICKNESS + 0.5 - distance, 0.0, 1.0)
    frame = np.maximum(pole, cart.astype(np.float64))
    return np.round(frame * 255.0).astype(np.uint8)


class PixelCartPoleEnv(gym.Env[np.ndarray, np.int64]):
    """CartPole-v1 with stacked pixel observations (see the module docstring).

    ``state`` is the inner CartPole state (for privileged experts)."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012  (gymnasium declares it so)

    def __init__(self, stack: int = STACK) -> None:
        if stack < 1:
            raise ValueError(f"stack must be >= 1, got {stack}")
        self.stack = stack
        self.inner = CartPoleEnv()
        self.observation_space = gym.spaces.Box(0, 255, (stack, HEIGHT, WIDTH), np.uint8)
        self.action_space = gym.spaces.Discrete(2)  # CartPoleEnv's: 0 push left, 1 right
        self._frames = np.zeros((stack, HEIGHT, WIDTH), np.uint8)

    @property
    def state(self) -> np.ndarray:
        """The true CartPole state ``[4]`` (x, x_dot, theta, theta_dot)."""
        return np.asarray(self.inner.state, dtype=np.float64)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        state, info = self.inner.reset(seed=seed, options=options)
        self._frames[:] = render_frames(state)[0]
        return self._frames.copy(), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        state, reward, terminated, truncated, info = self.inner.step(action)
        self._frames = np.roll(self._frames, -1, axis=0)
        self._frames[-1] = render_frames(state)[0]
        return self._frames.copy(), float(reward), terminated, truncated, info


def _cartpole_feedback(states: np.ndarray) -> np.ndarray:
    """The linear state feedback of ``agents.heuristics.CartPoleExpert`` (envs/ cannot import
    agents/): push towards the pole's lean."""
    x, x_dot, theta, theta_dot = np.asarray(states, dtype=np.float64).T
    return (theta + 0.5 * theta_dot + 0.01 * x + 0.1 * x_dot > 0).astype(np.int64)


class CartPoleFeedback:
    """The linear state feedback as a Policy on CartPole states ``[B, 4]``."""

    def act(self, states: np.ndarray) -> np.ndarray:
        return _cartpole_feedback(states)


class PixelCartPoleExpert:
    """Privileged expert: acts on the true state of each env (``env.unwrapped.state``),
    through ``state_policy`` (a batched Policy on CartPole states; default: linear state
    feedback). ``act`` on pixels is refused: the pixels do not determine the state.

    ``policy`` and ``attribute`` say what it is (a policy on ``env.unwrapped.state``;
    :func:`imitate.privileged.state_expert_view`), so a rollout that records the state
    beside the pixels lets it label after the fact (distillation with soft targets)."""

    attribute = "state"

    def __init__(self, state_policy: Any = None) -> None:
        self.state_policy = state_policy

    @property
    def policy(self) -> Any:
        """The Policy on states ``[B, 4]`` (float32) it acts with."""
        return CartPoleFeedback() if self.state_policy is None else self.state_policy

    def act_envs(
        self,
        envs: Sequence[gym.Env[Any, Any]],
        obs: Any,
        starts: np.ndarray,
        taken: np.ndarray | None,
    ) -> np.ndarray:
        states = np.stack([np.asarray(e.unwrapped.state, np.float64) for e in envs])  # type: ignore[attr-defined]
        if self.state_policy is None:
            return _cartpole_feedback(states)
        return np.asarray(self.state_policy.act(states.astype(np.float32)))

    def act(self, obs: np.ndarray) -> np.ndarray:
        raise TypeError(
            "PixelCartPoleExpert acts on the envs' true state (act_envs), not on pixels"
        )
