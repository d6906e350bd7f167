"""Privileged experts: policies that act on the env objects, not on the observations.

A *privileged* expert sees what the student does not: the env's true state (a pixel
student's state teacher), or the whole env (BabyAI's bot plans on the full grid). It
cannot label recorded observations after the fact; the rollout must hand it the envs
while they are in the state to label. The protocol is the smallest that serves both
uses (collecting the expert's own episodes, and labelling a learner's states in
DAgger):

``act_envs(envs, obs, starts, taken) -> actions [B]``

* ``envs``: the ``B`` env objects (the sub-envs of a sync vector env) whose current
  observations are the rows of ``obs``, in order;
* ``obs``: those observations (an :data:`imitate.observations.ObsBatch`), for experts that
  use them too;
* ``starts``: ``bool [B]``, true where the env has just been reset (a new episode: a
  planning expert drops its plan);
* ``taken``: ``[B]`` the action last executed in each env (meaningless where ``starts``),
  or ``None`` when not known; in DAgger the learner acts, so a planner must update its plan
  with the action actually taken rather than the one it proposed.

A privileged expert keeps per-env state (keyed by the env object) across calls; the
caller promises to call it once per step for each env that holds an episode. Rollouts
with one need per-episode seeding on sync vector envs (the env objects are in this
process). :class:`UnwrappedState` adapts an ordinary Policy that acts on an attribute of
``env.unwrapped`` (e.g. CartPole's ``state``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from imitate.errors import ImitateError
from imitate.runtime import Policy


@runtime_checkable
class EnvPolicy(Protocol):
    """A privileged policy: acts on the env objects (see the module docstring)."""

    def act_envs(
        self,
        envs: Sequence[gym.Env[Any, Any]],
        obs: Any,
        starts: np.ndarray,
        taken: np.ndarray | None,
    ) -> np.ndarray: ...


class PrivilegedExpertError(ImitateError):
    """A privileged expert was asked to label observations without their envs."""


def is_privileged(policy: object) -> bool:
    """True for a policy that must be handed the envs (:class:`EnvPolicy`)."""
    return callable(getattr(policy, "act_envs", None))


@dataclass(frozen=True)
class UnwrappedState:
    """A Policy on states, acting on ``getattr(env.unwrapped, attribute)`` of each env.

    ``policy``: batched, ``states [B, *state_shape] -> actions [B, ...]``."""

    policy: Policy
    attribute: str = "state"

    def states(self, envs: Sequence[gym.Env[Any, Any]]) -> np.ndarray:
        """``[B, *state_shape]`` float32: the attribute of each env's unwrapped env."""
        return np.stack(
            [np.asarray(getattr(e.unwrapped, self.attribute), np.float32) for e in envs]
        )

    def act_envs(
        self,
        envs: Sequence[gym.Env[Any, Any]],
        obs: Any,
        starts: np.ndarray,
        taken: np.ndarray | None,
    ) -> np.ndarray:
        return np.asarray(self.policy.act(self.states(envs)))

    def act(self, obs: np.ndarray) -> np.ndarray:
        raise PrivilegedExpertError(
            "a privileged expert acts on the envs' state; it cannot label observations alone"
        )
