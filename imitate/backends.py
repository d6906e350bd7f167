"""Where rollouts run: :class:`Backend` (a frozen config) and :meth:`Backend.open`, which
gives the one rollout object every consumer (DAgger, sweeps, drift, the CLI) receives.

A :class:`Rollouts` collects datasets, evaluates policies and maps a function over
items. Two implementations, chosen here and nowhere else:

* ``local``: :class:`imitate.collect.LocalRollouts` (this process, no Ray import);
* ``ray``: :class:`imitate.distributed.RayRollouts` (Ray actors, the ``ray`` extra).

Episode ``i`` resets with ``seed + i`` on every backend, so ``collect`` and ``evaluate``
return the same data wherever they run. This module sits above :mod:`imitate.collect`
and :mod:`imitate.distributed` (``distributed`` imports ``collect``, never the reverse).

    with Backend(kind="ray", workers=4).open() as rollouts:
        data = rollouts.collect(expert, "CartPole-v1", 100, seed=0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol, TypeVar

from imitate.collect import EvalResult, LocalRollouts, Seeding
from imitate.constants import EVAL_SEED
from imitate.data import Dataset
from imitate.environments import EnvLike
from imitate.errors import BackendError
from imitate.runtime import Policy

T = TypeVar("T")
R = TypeVar("R")


class Rollouts(Protocol):
    """Rollouts of any Policy (``collect``, ``evaluate``) and a parallel ``map``, on one
    backend; a context manager (leaving it releases the workers)."""

    def __enter__(self) -> Rollouts: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

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
        """``n_episodes`` episodes of ``policy`` (episode ``i`` reset with ``seed + i``), or
        fewer states with ``max_steps`` (see :func:`imitate.collect.collect`)."""
        ...

    def evaluate(
        self,
        policy: Policy,
        env_id: EnvLike,
        n_episodes: int = 50,
        seed: int = EVAL_SEED,
        num_envs: int = 16,
        progress: bool = False,
    ) -> EvalResult:
        """Per-episode returns (episode ``i`` reset with ``seed + i``)."""
        ...

    def map(
        self, fn: Callable[[T], R], items: Sequence[T], progress: bool = False, desc: str = "map"
    ) -> list[R]:
        """``[fn(item) for item in items]``, in item order, possibly in parallel."""
        ...


@dataclass(frozen=True)
class Backend:
    """Where rollouts run: ``local`` (this process) or ``ray`` (:mod:`imitate.distributed`).

    With ``ray``, episodes are split into chunks of consecutive indices, each collected with
    per-episode seeding (episode ``i`` resets with ``seed + i``) by one of ``workers`` actors,
    and joined in episode order: the result equals the local backend's with
    ``seeding="per-episode"``.
    """

    kind: Literal["local", "ray"] = "local"
    """``local`` or ``ray``."""
    workers: int = 2
    """Ray actors (one CPU each)."""
    address: str | None = None
    """Ray cluster to join (``auto``, ``ray://host:10001``); default: start a local one."""
    max_restarts: int = 3
    """How often a dead worker is replaced (its unfinished chunk is rerun) before giving up."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")

    def open(self) -> Rollouts:
        """The rollouts of this backend (Ray: connects or starts Ray, starts the actors)."""
        if self.kind == "local":
            return LocalRollouts()
        from imitate.distributed import RayRollouts  # here: Ray stays unimported when local

        return RayRollouts(self.workers, self.address, self.max_restarts)

    def seeding(self, requested: Seeding) -> Seeding:
        """The seeding ``collect`` uses here for ``requested``: Ray always seeds per episode
        (``auto`` is per-episode there, ``stream`` a :class:`BackendError`), checked before
        anything starts."""
        if self.kind == "local":
            return requested
        if requested == "stream":
            raise BackendError("the ray backend uses per-episode seeding; stream is local only")
        return "per-episode"


LOCAL = Backend()
