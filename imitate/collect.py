"""Vectorised rollouts of any Policy: demonstrations (:func:`collect`), returns (:func:`evaluate`).

Two ways of seeding, both explicit:

* ``per-episode``: episode ``i`` starts from ``reset(seed=seed + i)`` whatever
  the number of envs, so two policies are compared on the same starts and a
  dataset does not depend on ``num_envs``. Uses gymnasium's sync vector env
  with autoreset disabled, stepping and resetting only the sub-envs that hold
  an episode (the policy sees only their rows), so a tail with few episodes
  left costs no work for the idle slots.
* ``stream``: one ``reset(seed=seed)`` of the env's native vectorised
  implementation (e.g. CartPole's), then gymnasium 1.x next-step autoreset.
  Several times faster where a native implementation exists; reproducible
  for a given ``(seed, num_envs)``.

A :class:`~imitate.policy.RecurrentPolicy` (e.g. ``JSGatedPolicy``) gets its state
carried per env slot and reset from ``initial_state`` whenever a slot starts an episode,
in both modes.

Only complete episodes are kept. Transitions are recorded step-major into
preallocated chunks and regrouped by episode at the end, so the per-step cost
is a few array copies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

import gymnasium as gym
import numpy as np

from imitate import observations as ob
from imitate.configs import Seeding as Seeding  # re-exported
from imitate.constants import EVAL_SEED
from imitate.data import Dataset, make_meta
from imitate.environments import EnvLike, env_record, env_spec
from imitate.errors import EnvError
from imitate.privileged import EnvPolicy, LabellingPolicy, is_privileged
from imitate.runtime import Policy, RecurrentPolicy, fast_policy

_CHUNK_STEPS = 1024


@runtime_checkable
class MarkingPolicy(Policy, Protocol):
    """A Policy that says, per row, whether an expert chose the action (a DAgger mixture):
    the rollout records it as the dataset's ``expert_acted`` column."""

    def act_marked(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(actions [B, ...], expert_acted [B] bool)``."""
        ...


def make_vec_env(env: EnvLike, num_envs: int, seeding: Seeding = "auto") -> gym.vector.VectorEnv:
    """Create ``num_envs`` copies of ``env`` (see :mod:`imitate.environments`) vectorised for
    the seeding mode.

    ``auto`` picks ``stream`` when gymnasium has a native vector implementation
    of the env (and no wrappers are added) and ``per-episode`` otherwise. Unknown ids raise
    ``EnvError``.
    """
    spec = env_spec(env)
    native = spec.vector_entry_point is not None and not spec.additional_wrappers
    if seeding == "auto":
        seeding = "stream" if native else "per-episode"
    try:
        if seeding == "stream":
            return gym.make_vec(spec, num_envs=num_envs)
        return gym.make_vec(
            spec,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.DISABLED},
        )
    except (gym.error.Error, TypeError) as exc:  # gymnasium names the kwargs in a TypeError
        raise EnvError(f"cannot create env {spec.id!r}: {exc}") from exc
    except ValueError as exc:  # the env's constructor refused a kwarg's value
        given = f" with kwargs {spec.kwargs}" if spec.kwargs else ""
        raise EnvError(f"cannot create env {spec.id!r}{given}: {exc}") from exc


def env_spaces(env: EnvLike) -> tuple[gym.Space[Any], gym.Space[Any]]:
    """The single-env (observation, action) spaces of ``env``."""
    envs = make_vec_env(env, 1, "per-episode")
    try:
        return envs.single_observation_space, envs.single_action_space
    finally:
        envs.close()


def _seeding_of(envs: gym.vector.VectorEnv) -> str:
    mode = envs.metadata.get("autoreset_mode")
    return "per-episode" if mode == gym.vector.AutoresetMode.DISABLED else "stream"


@dataclass(frozen=True)
class EvalResult:
    """Per-episode returns and lengths of a seeded evaluation.

    Attributes:
        returns: ``[E]`` undiscounted return of episode ``i`` (reset seed ``seed + i``).
        lengths: ``[E]`` steps of episode ``i``.
        seed: the first reset seed.
    """

    returns: np.ndarray
    lengths: np.ndarray
    seed: int

    def __repr__(self) -> str:
        return (
            f"EvalResult(mean_return={self.mean_return:.2f}, std_return={self.std_return:.2f}, "
            f"episodes={len(self.returns)}, seed={self.seed})"
        )

    @property
    def mean_return(self) -> float:
        return float(self.returns.mean())

    @property
    def std_return(self) -> float:
        return float(self.returns.std())

    def to_json(self) -> dict[str, Any]:
        return {
            "mean_return": self.mean_return,
            "std_return": self.std_return,
            "mean_length": float(self.lengths.mean()),
            "episodes": len(self.returns),
            "seed": self.seed,
            "returns": [float(r) for r in self.returns],
            "lengths": [int(n) for n in self.lengths],
        }


@dataclass(frozen=True)
class _Trace:
    """Recorded transitions of the kept episodes, grouped by episode, in time order."""

    obs: ob.AnyObs | None  # [N, ...] per leaf (imitate.observations)
    actions: np.ndarray | None
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode_ids: np.ndarray  # [N] rank of the episode (0..n_episodes-1), non-decreasing
    final_obs: ob.AnyObs | None  # [E, ...] observation after each kept episode
    expert_acted: np.ndarray | None  # [N] bool, recorded for a MarkingPolicy


class _StepRecorder:
    """Step-major buffers ``[T, B, ...]`` grown in chunks; ``episode`` -1 marks unrecorded slots."""

    def __init__(self, envs: gym.vector.VectorEnv, record_obs: bool, record_marks: bool) -> None:
        self.num_envs = envs.num_envs
        self.record_obs = record_obs
        self.record_marks = record_marks
        self.obs_space = ob.canonical_space(envs.single_observation_space)
        self.obs_chunks: list[ob.ObsBatch] = []  # [T, B, ...] per leaf, storage dtypes
        self.action_shape: tuple[int, ...] = tuple(envs.single_action_space.shape or ())
        self.action_dtype = envs.single_action_space.dtype
        self.chunks: list[dict[str, np.ndarray]] = []
        self.t = _CHUNK_STEPS  # forces a new chunk at the first step

    def _new_chunk(self) -> None:
        shape = (_CHUNK_STEPS, self.num_envs)
        chunk = {
            "rewards": np.zeros(shape, np.float32),
            "terminated": np.zeros(shape, np.bool_),
            "truncated": np.zeros(shape, np.bool_),
            "episode": np.full(shape, -1, np.int64),
        }
        if self.record_obs:
            self.obs_chunks.append(ob.empty(self.obs_space, shape))
            chunk["actions"] = np.zeros((*shape, *self.action_shape), self.action_dtype)
        if self.record_marks:
            chunk["expert_acted"] = np.zeros(shape, np.bool_)
        self.chunks.append(chunk)
        self.t = 0

    def record(
        self,
        obs: ob.ObsBatch,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        episode: np.ndarray,
        marks: np.ndarray | None,
    ) -> None:
        if self.t == _CHUNK_STEPS:
            self._new_chunk()
        chunk, t = self.chunks[-1], self.t
        if self.record_obs:
            ob.assign(self.obs_chunks[-1], t, obs)
            chunk["actions"][t] = actions
        if self.record_marks:
            chunk["expert_acted"][t] = marks
        chunk["rewards"][t] = rewards
        chunk["terminated"][t] = terminated
        chunk["truncated"][t] = truncated
        chunk["episode"][t] = episode
        self.t += 1

    def trace(self, rank_of_episode: dict[int, int], final_obs: dict[int, ob.ObsBatch]) -> _Trace:
        """Keep the episodes in ``rank_of_episode``, ordered by rank then time."""

        def flat(name: str) -> np.ndarray:
            parts = [c[name] for c in self.chunks[:-1]] + [self.chunks[-1][name][: self.t]]
            joined = np.concatenate(parts)
            return joined.reshape(-1, *joined.shape[2:])

        def flat_obs(order: np.ndarray) -> ob.ObsBatch:
            last = ob.take(self.obs_chunks[-1], slice(0, self.t))
            joined = ob.concatenate([*self.obs_chunks[:-1], last])
            rows = ob.map_obs(lambda a: a.reshape(-1, *a.shape[2:]), joined)
            return ob.compact(ob.take(rows, order))

        episode = flat("episode")
        # lookup[id] = rank of a kept episode, -1 otherwise; the last entry serves id -1.
        lookup = np.full(max([int(episode.max(initial=-1)), *rank_of_episode]) + 2, -1, np.int64)
        for episode_id, rank in rank_of_episode.items():
            lookup[episode_id] = rank
        ranks = lookup[np.where(episode >= 0, episode, len(lookup) - 1)]
        kept = np.flatnonzero(ranks >= 0)
        order = kept[np.argsort(ranks[kept], kind="stable")]
        final = None
        if self.record_obs:  # episodes cut by a budget before their first step have no rows
            episode_of_rank = {rank: episode for episode, rank in rank_of_episode.items()}
            present = np.unique(ranks[order])
            rows = [final_obs[episode_of_rank[int(r)]] for r in present]
            final = ob.compact(ob.from_vector(ob.concatenate(rows), self.obs_space))
        return _Trace(
            obs=flat_obs(order) if self.record_obs else None,
            actions=flat("actions")[order] if self.record_obs else None,
            rewards=flat("rewards")[order],
            terminated=flat("terminated")[order],
            truncated=flat("truncated")[order],
            episode_ids=ranks[order],
            final_obs=final,
            expert_acted=flat("expert_acted")[order] if self.record_marks else None,
        )


def _sub_envs(envs: gym.vector.VectorEnv) -> Sequence[gym.Env[Any, Any]]:
    assert isinstance(envs, gym.vector.SyncVectorEnv), "per-episode seeding uses sync envs"
    return envs.envs  # no copy: called on every step


def _step_slots(
    envs: gym.vector.VectorEnv, slots: np.ndarray, actions: np.ndarray, obs: ob.ObsBatch
) -> tuple[ob.AnyObs, np.ndarray, np.ndarray, np.ndarray]:
    """Step the sub-envs at ``slots`` only; the other slots keep their observation."""
    sub_envs = _sub_envs(envs)
    next_obs = ob.map_obs(np.copy, obs)
    n = envs.num_envs
    rewards = np.zeros(n, np.float64)
    terminated = np.zeros(n, np.bool_)
    truncated = np.zeros(n, np.bool_)
    for i in slots:
        single, rewards[i], terminated[i], truncated[i], _ = sub_envs[i].step(actions[i])
        _set_row(next_obs, int(i), single, envs)
    return next_obs, rewards, terminated, truncated


def _set_row(batch: ob.ObsBatch, i: int, single: Any, envs: gym.vector.VectorEnv) -> None:
    """Row ``i`` of a batch := one env's observation (a flat array row, or leaf by leaf)."""
    if isinstance(batch, np.ndarray):
        batch[i] = single
    else:
        space = ob.canonical_space(envs.single_observation_space)
        ob.assign(batch, [i], ob.batch([single], space))


def _rollout(
    policy: Policy,
    envs: gym.vector.VectorEnv,
    n_episodes: int,
    seed: int,
    record_obs: bool,
    progress: bool,
    desc: str,
    max_steps: int | None = None,
) -> _Trace:
    """Run ``policy`` until ``n_episodes`` episodes are complete or ``max_steps`` transitions
    are recorded (then episodes still running are kept, cut short); see the module docstring."""
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    per_episode = _seeding_of(envs) == "per-episode"
    num_envs = envs.num_envs
    space = ob.check_supported(envs.single_observation_space)  # one line naming the space
    flat = isinstance(space, gym.spaces.Box)  # one array, as the vector env returns it
    privileged: EnvPolicy | None = policy if is_privileged(policy) else None  # type: ignore[assignment]
    if privileged is not None and not per_episode:
        raise EnvError("a privileged expert (act_envs) needs per-episode seeding")
    starts = np.ones(num_envs, np.bool_)  # privileged: the slot's env was just reset
    taken = np.zeros((num_envs, *tuple(envs.single_action_space.shape or ())), np.int64)

    def storage(raw: Any) -> ob.AnyObs:
        return raw if flat else ob.from_vector(raw, space)

    recurrent = policy if isinstance(policy, RecurrentPolicy) else None
    marking = policy if isinstance(policy, MarkingPolicy) and recurrent is None else None
    recorder = _StepRecorder(envs, record_obs, marking is not None)
    marks = np.zeros(num_envs, np.bool_) if marking is not None else None
    slot_episode = np.arange(num_envs, dtype=np.int64)
    next_episode = num_envs
    if per_episode:
        slot_episode[slot_episode >= n_episodes] = -1
        raw, _ = envs.reset(seed=[seed + i for i in range(num_envs)])  # type: ignore[arg-type]
    else:
        raw, _ = envs.reset(seed=seed)
    obs = storage(raw)
    autoreset_step = np.zeros(num_envs, np.bool_)  # stream mode: this step only resets the slot
    # per-slot state of a RecurrentPolicy (no columns for a stateless one)
    state = recurrent.initial_state(num_envs) if recurrent is not None else np.empty((num_envs, 0))
    completed: list[int] = []
    final_obs: dict[int, ob.ObsBatch] = {}  # episode id -> its observation after its last step
    n_recorded = 0
    budget = max_steps if max_steps is not None else np.inf
    from tqdm.auto import tqdm  # here: importing tqdm costs start-up time of every command

    bar = tqdm(total=n_episodes, desc=desc, unit="ep", disable=not progress, leave=False)
    while len(completed) < n_episodes and n_recorded < budget:
        if per_episode:  # step only the slots that hold an episode (no work in the tail)
            active = np.flatnonzero(slot_episode >= 0)
            actions = np.zeros((num_envs, *recorder.action_shape), recorder.action_dtype)
            rows: ob.AnyObs = ob.take(obs, active)
            if recurrent is not None:
                actions[active], state[active] = recurrent.step(rows, state[active])
            elif marking is not None and marks is not None:
                marks[:] = False
                actions[active], marks[active] = marking.act_marked(rows)
            elif privileged is not None:
                sub = [_sub_envs(envs)[int(i)] for i in active]
                if isinstance(privileged, LabellingPolicy):  # DAgger: record the labels
                    labels = actions.copy()
                    actions[active], labels[active] = privileged.act_envs_labelled(
                        sub, rows, starts[active], taken[active]
                    )
                else:
                    actions[active] = privileged.act_envs(sub, rows, starts[active], taken[active])
                starts[active] = False
            else:
                actions[active] = policy.act(rows)
            if privileged is not None:
                taken[active] = actions[active]
            next_obs, rewards, terminated, truncated = _step_slots(envs, active, actions, obs)
        else:
            if recurrent is not None:
                actions, state = recurrent.step(obs, state)
                # a slot that autoresets on this step starts its next episode afresh
                state[autoreset_step] = recurrent.initial_state(int(autoreset_step.sum()))
            elif marking is not None:
                actions, marks = marking.act_marked(obs)
            else:
                actions = policy.act(obs)
            raw, rewards, terminated, truncated, _ = envs.step(actions)
            next_obs = storage(raw)
        if not isinstance(privileged, LabellingPolicy):
            labels = actions  # what the data records as the action taken in each state
        recorded = np.where(autoreset_step, -1, slot_episode)
        recorder.record(obs, labels, rewards, terminated, truncated, recorded, marks)
        n_recorded += int((recorded >= 0).sum())
        done = (terminated | truncated) & ~autoreset_step
        if done.any():
            done_slots = np.flatnonzero(done)
            finished = [int(slot_episode[i]) for i in done_slots if slot_episode[i] >= 0]
            completed.extend(finished)
            if record_obs:  # before a reset overwrites them
                final_obs.update(
                    (int(slot_episode[i]), ob.take(next_obs, [i]))
                    for i in done_slots
                    if slot_episode[i] >= 0
                )
            bar.update(len(finished))
            if per_episode:
                if recurrent is not None:
                    state[done_slots] = recurrent.initial_state(len(done_slots))
                sub_envs = _sub_envs(envs)
                for i in done_slots:
                    if next_episode < n_episodes:
                        slot_episode[i] = next_episode
                        first = sub_envs[int(i)].reset(seed=seed + next_episode)[0]
                        _set_row(next_obs, int(i), first, envs)
                        starts[i] = True
                        next_episode += 1
                    else:
                        slot_episode[i] = -1
            else:
                slot_episode[done_slots] = np.arange(next_episode, next_episode + len(done_slots))
                next_episode += len(done_slots)
        if not per_episode:
            autoreset_step = done
        obs = next_obs
    bar.close()
    # Per-episode seeding: episode i is the one reset with seed + i, whenever it finished.
    # Stream seeding: the first n_episodes to finish, in the order they finished.
    # A step budget keeps the episodes cut short too (DAgger labels states, not episodes).
    partial = [int(e) for e in slot_episode if e >= 0] if n_recorded >= budget else []
    if record_obs:
        final_obs.update((int(e), ob.take(obs, [i])) for i, e in enumerate(slot_episode) if e >= 0)
    kept = sorted(completed + partial) if per_episode else completed[:n_episodes] + partial
    rank_of_episode = {episode: rank for rank, episode in enumerate(kept)}
    return recorder.trace(rank_of_episode, final_obs)


def collect(
    policy: Policy,
    env_id: EnvLike,
    n_episodes: int,
    seed: int,
    num_envs: int = 16,
    seeding: Seeding = "auto",
    source: str = "policy",
    progress: bool = False,
    max_steps: int | None = None,
    desc: str = "collect",
) -> Dataset:
    """Roll out ``policy`` and record every transition of ``n_episodes`` complete episodes.

    Returns a :class:`Dataset` with ``N`` transitions over ``n_episodes`` episodes,
    in episode order (per-episode seeding: episode ``i`` from seed ``seed + i``).
    With ``max_steps``, collection also stops once that many transitions are
    recorded, and the episodes then running are kept although incomplete.
    ``desc`` labels the progress bar. A :class:`MarkingPolicy` (DAgger's mixture) also
    fills ``expert_acted``. Elsewhere than this process: :meth:`imitate.backends.Backend.open`.
    """
    envs = make_vec_env(env_id, min(num_envs, n_episodes), seeding)
    try:
        trace = _rollout(
            fast_policy(policy), envs, n_episodes, seed, True, progress, desc, max_steps
        )
        meta = make_meta(
            env_record(env_id),
            envs.single_observation_space,
            envs.single_action_space,
            source,
            seed,
            _seeding_of(envs),
        )
    finally:
        envs.close()
    assert trace.obs is not None and trace.actions is not None
    provenance = getattr(policy, "provenance", None)  # set by agents.registry.resolve_expert
    if isinstance(provenance, dict) and "kind" in provenance:
        named = provenance.get("spec", source) if source == "policy" else source
        meta = replace(meta, source=str(named), expert=dict(provenance))
    starts = np.flatnonzero(np.diff(trace.episode_ids, prepend=-1)).astype(np.int64)
    return Dataset(
        obs=trace.obs,
        actions=trace.actions,
        rewards=trace.rewards,
        terminated=trace.terminated,
        truncated=trace.truncated,
        episode_starts=starts,
        meta=meta,
        final_obs=trace.final_obs,
        expert_acted=trace.expert_acted,
    )


def evaluate(
    policy: Policy,
    env_id: EnvLike,
    n_episodes: int = 50,
    seed: int = EVAL_SEED,
    num_envs: int = 16,
    progress: bool = False,
) -> EvalResult:
    """Mean and per-episode return of ``policy``; episode ``i`` resets with seed ``seed + i``.

    The result does not depend on ``num_envs`` (nor on the backend of a :class:`Rollouts`)."""
    envs = make_vec_env(env_id, min(num_envs, n_episodes), "per-episode")
    try:
        trace = _rollout(fast_policy(policy), envs, n_episodes, seed, False, progress, "eval")
    finally:
        envs.close()
    returns = np.bincount(trace.episode_ids, weights=trace.rewards, minlength=n_episodes)
    lengths = np.bincount(trace.episode_ids, minlength=n_episodes)
    return EvalResult(returns=returns, lengths=lengths, seed=seed)


T = TypeVar("T")
R = TypeVar("R")


class LocalRollouts:
    """The :class:`imitate.backends.Rollouts` of this process: :func:`collect`,
    :func:`evaluate` and a plain loop for :meth:`map`. Nothing to open or close."""

    def __enter__(self) -> LocalRollouts:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def collect(
        self,
        policy: Policy,
        env_id: EnvLike,
        n_episodes: int,
        seed: int,
        num_envs: int = 16,
        seeding: Seeding = "per-episode",
        source: str = "policy",
        progress: bool = False,
        max_steps: int | None = None,
        desc: str = "collect",
    ) -> Dataset:
        """:func:`collect` (per-episode seeding unless asked otherwise)."""
        return collect(
            policy, env_id, n_episodes, seed, num_envs, seeding, source, progress, max_steps, desc
        )

    def evaluate(
        self,
        policy: Policy,
        env_id: EnvLike,
        n_episodes: int = 50,
        seed: int = EVAL_SEED,
        num_envs: int = 16,
        progress: bool = False,
    ) -> EvalResult:
        """:func:`evaluate`."""
        return evaluate(policy, env_id, n_episodes, seed, num_envs, progress)

    def map(
        self, fn: Callable[[T], R], items: Sequence[T], progress: bool = False, desc: str = "map"
    ) -> list[R]:
        """``[fn(item) for item in items]``."""
        from tqdm.auto import tqdm

        return [fn(item) for item in tqdm(items, desc=desc, disable=not progress)]
