"""The Ray :class:`~imitate.backends.Rollouts` (the ``ray`` extra): rollouts on Ray actors,
results as one Dataset; :meth:`RayRollouts.map` runs any function over items on the same
actors. Opened by :meth:`imitate.backends.Backend.open`.

Work is split into chunks of consecutive episode indices (large first, small last).
Each chunk is collected with per-episode seeding (episode ``i`` resets with
``seed + i``) by a :class:`RayRollouts` actor and the chunks are joined in episode
order, so the dataset equals the local backend's (``seeding="per-episode"``) whatever
the number of workers or the order in which chunks finish. Chunks are handed out as
workers become free (episode lengths vary).

A worker that dies is restarted by Ray (``max_restarts``) and its unfinished chunk
is run again from its seeds: no episode is lost or recorded twice. The workers know
nothing of what they run: a policy that marks expert steps (DAgger's mixture) marks them
in the data it returns, and a :class:`~imitate.runtime.StochasticPolicy` is reseeded
per chunk from the chunk's first reset seed.

With a step budget (``max_steps``, DAgger rounds) the budget is split evenly between
``workers`` shards; shard ``k`` starts at episode ``k * (n_episodes // workers)``. That
result depends on ``workers`` (as the local one depends on ``num_envs``).
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from imitate.collect import EvalResult, Seeding, collect, env_spec, evaluate
from imitate.constants import EVAL_SEED
from imitate.data import Dataset, concatenate
from imitate.environments import EnvLike
from imitate.errors import BackendError
from imitate.runtime import Policy, StochasticPolicy, fast_policy

T = TypeVar("T")
R = TypeVar("R")

ChunkCallback = Callable[[int, int], None]
"""Called after each finished chunk with (index of the worker that ran it, chunks done)."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise BackendError(
            "the ray backend needs Ray: pip install 'imitate[ray]' (or use --backend local)"
        ) from exc
    return ray


def connect_ray(address: str | None, workers: int) -> Any:
    """The ``ray`` module, connected to ``address`` or to a local Ray started now
    (``max(workers, CPUs)`` CPUs) unless this process is connected already."""
    ray = _import_ray()
    if address is not None:
        _check_reachable(address)
    if ray.is_initialized():
        return ray
    from imitate.signals import keep_handlers

    try:
        with keep_handlers():  # ray.init sets a SIGTERM handler that aborts (exit 134)
            if address is not None:
                ray.init(address=address, log_to_driver=False)
            else:
                cpus = max(workers, os.cpu_count() or 1)
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local cluster"
        raise BackendError(f"cannot start or reach Ray at {where}: {exc}") from exc
    return ray


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail fast on a ``host:port`` nobody listens on (Ray itself retries for minutes)."""
    if address == "auto" or address.startswith("local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise BackendError(f"bad Ray address {address!r}: use auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise BackendError(f"cannot reach Ray at {address}: {exc}") from exc


def _register(spec: gym.envs.registration.EnvSpec) -> None:
    """Make ``spec`` known in this worker process (envs registered by the driver's imports)."""
    if spec.id not in gym.registry:
        gym.registry[spec.id] = spec


class _RolloutWorker:
    """One Ray actor (one CPU): runs chunks of episodes with the local rollout code, or any
    function on an item."""

    def __init__(self) -> None:
        import torch

        torch.set_num_threads(1)  # one CPU per actor

    def pid(self) -> int:
        return os.getpid()

    def collect(
        self,
        policy: Policy,
        spec: gym.envs.registration.EnvSpec,
        first: int,
        n_episodes: int,
        seed: int,
        num_envs: int,
        source: str,
        max_steps: int | None,
    ) -> Dataset:
        _register(spec)
        if isinstance(policy, StochasticPolicy):
            policy.reseed(seed + first)
        return collect(  # the spec itself: its kwargs and added wrappers hold on the workers too
            policy, spec, n_episodes, seed + first, num_envs, "per-episode", source,
            max_steps=max_steps,
        )  # fmt: skip

    def evaluate(
        self,
        policy: Policy,
        spec: gym.envs.registration.EnvSpec,
        first: int,
        n_episodes: int,
        seed: int,
        num_envs: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        _register(spec)
        result = evaluate(policy, spec, n_episodes, seed + first, num_envs)
        return result.returns, result.lengths

    def map(self, fn: Callable[[Any], Any], item: Any) -> Any:
        return fn(item)


def _chunks(n_episodes: int, workers: int) -> list[tuple[int, int]]:
    """``(first, count)`` spans covering ``0..n_episodes-1``, shrinking as work runs out
    (guided scheduling: each is 1/(2 * workers) of what remains, at least 2 episodes), so
    workers finish together without paying a round trip per episode."""
    spans = []
    first = 0
    while first < n_episodes:
        size = min(n_episodes - first, max(2, math.ceil((n_episodes - first) / (2 * workers))))
        spans.append((first, size))
        first += size
    return spans


class RayRollouts:
    """``workers`` Ray actors that run rollouts of any (picklable) Policy, or any function.

    Connects to the cluster at ``address``, or starts a local Ray when none is running.
    Use as a context manager; the actors end with it (Ray itself stays up).
    """

    def __init__(self, workers: int = 2, address: str | None = None, max_restarts: int = 3):
        self.max_restarts = max_restarts
        self.ray = connect_ray(address, workers)
        actor_class = self.ray.remote(
            num_cpus=1,
            max_restarts=max_restarts,
            max_task_retries=max_restarts,
        )(_RolloutWorker)
        self.actors = [actor_class.remote() for _ in range(workers)]

    def __enter__(self) -> RayRollouts:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []

    def worker_pids(self) -> list[int]:
        """Process ids of the workers (a restarted worker has a new one)."""
        return [int(pid) for pid in self.ray.get([a.pid.remote() for a in self.actors])]

    def _run(
        self,
        method: str,
        chunks: list[tuple[Any, ...]],
        progress: bool,
        on_chunk: ChunkCallback | None,
        desc: str | None = None,
    ) -> list[Any]:
        """Run ``method(*chunk)`` for every chunk on free workers; results in chunk order."""
        ray = self.ray
        results: list[Any] = [None] * len(chunks)
        waiting = list(range(len(chunks)))[::-1]
        running: dict[Any, tuple[int, int]] = {}  # object ref -> (chunk, worker)

        def dispatch(worker: int) -> None:
            if waiting:
                chunk = waiting.pop()
                ref = getattr(self.actors[worker], method).remote(*chunks[chunk])
                running[ref] = (chunk, worker)

        for worker in range(len(self.actors)):
            dispatch(worker)
        done = 0
        label = desc or f"ray {method}"
        with tqdm(total=len(chunks), desc=label, disable=not progress) as bar:
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                chunk, worker = running.pop(ready[0])
                try:
                    results[chunk] = ray.get(ready[0])
                except ray.exceptions.RayActorError as exc:
                    raise BackendError(
                        f"Ray worker {worker} died more than {self.max_restarts} times"
                    ) from exc
                done += 1
                bar.update()
                dispatch(worker)
                if on_chunk is not None:
                    on_chunk(worker, done)
        return results

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
        on_chunk: ChunkCallback | None = None,
    ) -> Dataset:
        """:func:`imitate.collect.collect` on the workers (``seeding`` ``auto`` means
        per-episode here; ``stream`` is refused)."""
        if seeding == "stream":
            raise BackendError("the ray backend uses per-episode seeding; stream is local only")
        spec = env_spec(env_id)
        policy_ref = self.ray.put(fast_policy(policy))
        workers = len(self.actors)
        if max_steps is None:
            spans = _chunks(n_episodes, workers)
            budgets: list[int | None] = [None] * len(spans)
        else:
            shards = min(workers, n_episodes, max_steps)
            stride = n_episodes // shards
            spans = [(k * stride, stride) for k in range(shards)]
            budgets = [max_steps // shards + (k < max_steps % shards) for k in range(shards)]
        chunks = [
            (policy_ref, spec, first, count, seed, num_envs, source, budget)
            for (first, count), budget in zip(spans, budgets, strict=True)
        ]
        parts = self._run("collect", chunks, progress, on_chunk, f"ray {desc}")
        meta = replace(parts[0].meta, seed=seed)  # each part has its own first seed
        return concatenate(parts, meta)

    def evaluate(
        self,
        policy: Policy,
        env_id: EnvLike,
        n_episodes: int = 50,
        seed: int = EVAL_SEED,
        num_envs: int = 16,
        progress: bool = False,
    ) -> EvalResult:
        """:func:`imitate.collect.evaluate` on the workers (same result)."""
        spec = env_spec(env_id)
        policy_ref = self.ray.put(fast_policy(policy))
        chunks = [
            (policy_ref, spec, first, count, seed, num_envs)
            for first, count in _chunks(n_episodes, len(self.actors))
        ]
        parts = self._run("evaluate", chunks, progress, None)
        return EvalResult(
            returns=np.concatenate([returns for returns, _ in parts]),
            lengths=np.concatenate([lengths for _, lengths in parts]),
            seed=seed,
        )

    def map(
        self, fn: Callable[[T], R], items: Sequence[T], progress: bool = False, desc: str = "map"
    ) -> list[R]:
        """``[fn(item) for item in items]``, each call on a free worker (``fn`` is sent once);
        a call whose worker dies runs again on its replacement."""
        fn_ref = self.ray.put(fn)
        return self._run("map", [(fn_ref, item) for item in items], progress, None, desc)
