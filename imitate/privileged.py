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

An expert that acts on an attribute of ``env.unwrapped`` (:class:`StateExpert`: it has
``policy`` and ``attribute``, as :class:`UnwrappedState`) can also label after the fact,
if the rollout records that attribute beside the observation: :class:`PrivilegedObservation`
(a wrapper, added to the env's spec by :func:`privileged_spec`) makes each observation
``{"obs": what the student sees, "privileged": the attribute}``, so one rollout holds both
views of every state, and a teacher on one view labels (logits included) a student on the
other (:mod:`imitate.distill`). :func:`both_views` is what to collect to record it,
:func:`student_view` / :func:`teacher_view` split such a rollout; :mod:`imitate.drift_space`
records the true state of pixel envs the same way to measure drift on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec, WrapperSpec

from imitate import observations as ob
from imitate.environments import EnvLike, env_record, env_spec
from imitate.errors import ImitateError
from imitate.runtime import Policy

if TYPE_CHECKING:
    from imitate.data import Dataset

STUDENT_KEY, PRIVILEGED_KEY = "obs", "privileged"
"""The keys of :class:`PrivilegedObservation`'s observations."""
ENTRY_POINT = "imitate.privileged:PrivilegedObservation"


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


def read_attribute(env: gym.Env[Any, Any], attribute: str) -> np.ndarray:
    """``getattr(env.unwrapped, attribute)`` as float32 ``[*shape]``: the one reading of an
    env's true state (what a state expert acts on, what the wrapper records, what a replay
    recovers)."""
    return np.asarray(getattr(env.unwrapped, attribute), np.float32)


def probe_attribute(env: EnvLike, attribute: str) -> np.ndarray | None:
    """The value of ``getattr(env.unwrapped, attribute)`` on a fresh env after a reset (seed
    0), float32; None when the env has no such attribute or it is not a non-empty number
    array."""
    made = gym.make(env_spec(env))
    try:
        made.reset(seed=0)
        value = getattr(made.unwrapped, attribute, None)
        if value is None:
            return None
        array = np.asarray(value)
        if array.dtype.kind not in "biuf" or array.size == 0:
            return None
        return read_attribute(made, attribute)
    except (TypeError, ValueError):
        return None
    finally:
        made.close()


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
        return np.stack([read_attribute(e, self.attribute) for e in envs])

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


@runtime_checkable
class LabellingPolicy(EnvPolicy, Protocol):
    """A privileged policy whose executed actions differ from the labels it records (DAgger
    around a privileged expert): the rollout steps the envs with ``actions`` and records
    ``labels`` as the data's actions."""

    def act_envs_labelled(
        self,
        envs: Sequence[gym.Env[Any, Any]],
        obs: Any,
        starts: np.ndarray,
        taken: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]: ...


class PrivilegedMixture:
    """DAgger's beta-mixture around a privileged expert (:class:`EnvPolicy`).

    The expert cannot label recorded states afterwards, so it is asked at every state the
    rollout visits (its answers are the labels, recorded as the data's actions; a planner
    is told the action actually executed through ``taken``); the executed action is the
    expert's with probability ``beta`` (a coin per state), else the ``learner``'s."""

    def __init__(
        self, expert: EnvPolicy, learner: Policy, beta: float, rng: np.random.Generator
    ) -> None:
        self.expert, self.learner, self.beta, self.rng = expert, learner, beta, rng

    def act_envs_labelled(
        self,
        envs: Sequence[gym.Env[Any, Any]],
        obs: Any,
        starts: np.ndarray,
        taken: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        labels = np.asarray(self.expert.act_envs(envs, obs, starts, taken))
        actions = labels.copy()
        learner_rows = np.flatnonzero(self.rng.random(len(labels)) >= self.beta)
        if len(learner_rows):
            rows: Any = ob.take(obs, learner_rows)
            actions[learner_rows] = self.learner.act(rows)
        return actions, labels

    def act_envs(
        self,
        envs: Sequence[gym.Env[Any, Any]],
        obs: Any,
        starts: np.ndarray,
        taken: np.ndarray | None,
    ) -> np.ndarray:
        return self.act_envs_labelled(envs, obs, starts, taken)[0]

    def act(self, obs: Any) -> np.ndarray:
        raise PrivilegedExpertError("a privileged mixture acts on the envs (act_envs)")

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)


@runtime_checkable
class StateExpert(EnvPolicy, Protocol):
    """A privileged expert that is an ordinary ``policy`` on ``getattr(env.unwrapped,
    attribute)`` (e.g. a state-space zoo expert of a pixel env)."""

    @property
    def policy(self) -> Policy: ...

    @property
    def attribute(self) -> str: ...


def state_expert_view(expert: object) -> tuple[Policy, str] | None:
    """``(policy on the attribute, attribute)`` of a :class:`StateExpert`, else None."""
    if not is_privileged(expert):
        return None
    policy, attribute = getattr(expert, "policy", None), getattr(expert, "attribute", None)
    if not callable(getattr(policy, "act", None)) or not isinstance(attribute, str):
        return None
    return policy, attribute  # type: ignore[return-value]


class PrivilegedObservation(gym.ObservationWrapper[Any, Any, Any]):
    """Observations ``{"obs": the env's, "privileged": getattr(env.unwrapped, attribute)}``
    (float32 ``[*shape]``, read after every reset and step, so it is the state that
    produced the observation).

    ``shape``: the attribute's shape (:func:`privileged_shape` measures it), needed for
    the space before the first reset."""

    def __init__(
        self, env: gym.Env[Any, Any], attribute: str = "state", shape: Sequence[int] = ()
    ) -> None:
        super().__init__(env)
        self.attribute = attribute
        private = gym.spaces.Box(-np.inf, np.inf, tuple(int(s) for s in shape), np.float32)
        self.observation_space = gym.spaces.Dict(
            {STUDENT_KEY: env.observation_space, PRIVILEGED_KEY: private}
        )

    def observation(self, observation: Any) -> dict[str, Any]:
        return {STUDENT_KEY: observation, PRIVILEGED_KEY: read_attribute(self.env, self.attribute)}


def privileged_shape(env: EnvLike, attribute: str) -> tuple[int, ...]:
    """The shape of ``getattr(env.unwrapped, attribute)`` after a reset (seed 0);
    ``PrivilegedExpertError`` when the env has no such attribute."""
    value = probe_attribute(env, attribute)
    if value is None:
        raise PrivilegedExpertError(
            f"{env_spec(env).id}: the env has no attribute {attribute!r} to show a teacher"
        )
    return tuple(value.shape)


def privileged_spec(env: EnvLike, attribute: str = "state") -> EnvSpec:
    """``env``'s spec with :class:`PrivilegedObservation` added (its wrappers kept)."""
    wrapper = WrapperSpec(
        "PrivilegedObservation",
        ENTRY_POINT,
        {"attribute": attribute, "shape": list(privileged_shape(env, attribute))},
    )
    return env_spec(env, wrappers=[wrapper])


class OnEntry:
    """A Policy on one entry of Dict observations: ``act(obs) = policy.act(obs[key])``
    (and ``logits`` likewise, when the policy has them)."""

    def __init__(self, policy: Policy, key: str) -> None:
        self.policy, self.key = policy, key

    def act(self, obs: Any) -> np.ndarray:
        return np.asarray(self.policy.act(obs[self.key]))

    def logits(self, obs: Any) -> np.ndarray:
        return np.asarray(self.policy.logits(obs[self.key]))  # type: ignore[attr-defined]


def both_views(policy: Policy, env: EnvLike, attribute: str = "state") -> tuple[Policy, EnvSpec]:
    """What to collect to record both views of every state: ``env``'s spec with
    :class:`PrivilegedObservation` (:func:`privileged_spec`) and ``policy`` (on the env's
    observations) on its observations: a privileged expert as it is (it acts on the envs), a
    mixture with its learner on the student's entry (the same mixture otherwise: its coin
    stream goes on), any other policy on the student's entry (:class:`OnEntry`). Split the
    rollout with :func:`student_view` and :func:`teacher_view`."""
    driver: Policy = OnEntry(policy, STUDENT_KEY)
    if isinstance(policy, PrivilegedMixture):
        learner = OnEntry(policy.learner, STUDENT_KEY)
        driver = PrivilegedMixture(policy.expert, learner, policy.beta, policy.rng)
    elif is_privileged(policy):
        driver = policy
    return driver, privileged_spec(env, attribute)


def student_view(data: Dataset, env: EnvLike) -> Dataset:
    """The student's dataset of a rollout recorded with :class:`PrivilegedObservation`:
    the observations alone, and the meta of ``env`` (the env without the wrapper) and its
    observation space."""
    record = env_record(env)
    recorded = data.meta.spaces()[0]
    assert isinstance(recorded, gym.spaces.Dict), "not a PrivilegedObservation rollout"
    meta = replace(
        data.meta,
        env_id=record["env_id"],
        env_kwargs=dict(record.get("env_kwargs") or {}),
        env_wrappers=list(record.get("env_wrappers") or []),
        observation_space=ob.obs_space_to_json(recorded[STUDENT_KEY]),
    )
    obs: Any = data.obs
    final = data.final_obs[STUDENT_KEY] if isinstance(data.final_obs, dict) else None
    return replace(data, obs=obs[STUDENT_KEY], final_obs=final, meta=meta)


def teacher_view(data: Dataset) -> Dataset:
    """The teacher's view of such a rollout: the recorded attribute as the observations
    (float32 ``[N, *shape]``, a Box; the meta's observation space says so)."""
    obs: Any = data.obs
    states = np.asarray(obs[PRIVILEGED_KEY])
    space = ob.obs_space_to_json(gym.spaces.Box(-np.inf, np.inf, states.shape[1:], np.float32))
    meta = replace(data.meta, observation_space=space)
    final = data.final_obs[PRIVILEGED_KEY] if isinstance(data.final_obs, dict) else None
    return replace(data, obs=states, final_obs=final, meta=meta)
