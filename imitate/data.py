"""Datasets of expert transitions: flat arrays + an episode index + metadata.

One dataset is one ``.npz`` file: the arrays below plus the metadata as an
embedded JSON string. Writes are atomic; :func:`load_dataset` validates every
field and raises :class:`DatasetError` naming the file and the field at fault.

Shapes: ``N`` transitions, ``E`` episodes, ``K`` teacher outputs. Episodes are
stored back to back; episode ``e`` spans ``episode_starts[e]`` up to the next
start (or ``N``).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import gymnasium as gym
import numpy as np

from imitate import observations as ob
from imitate.errors import DatasetError, UnsupportedSpaceError, scrub
from imitate.fileio import atomic_write
from imitate.spaces import space_to_json, validate_actions

FORMAT_VERSION = 1
_REQUIRED = ("obs", "actions", "rewards", "terminated", "truncated", "episode_starts")
_OPTIONAL = ("teacher_logits", "weights")  # per transition, float
_FLAGS = ("expert_acted",)  # per transition, bool (optional: older files have none)
_PER_EPISODE = ("final_obs",)


@dataclass(frozen=True)
class DatasetMeta:
    """Where a dataset came from."""

    env_id: str
    observation_space: dict[str, Any]
    """JSON form of the observation space (:func:`imitate.observations.obs_space_to_json`)."""
    action_space: dict[str, Any]
    """JSON form of the action space."""
    source: str = "unknown"
    """The policy that acted, e.g. ``heuristic`` or a checkpoint path."""
    seed: int | None = None
    seeding: str = "per-episode"
    """``per-episode`` (episode i reset with seed + i) or ``stream`` (one seed, autoreset)."""
    format_version: int = FORMAT_VERSION
    versions: dict[str, str] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Kwargs given to the env on top of its registered ones (``gym.make(env_id, **kw)``)."""
    env_wrappers: list[dict[str, Any]] = field(default_factory=list)
    """Wrappers added to the env (gymnasium ``WrapperSpec`` JSON: name, entry_point, kwargs)."""
    expert: dict[str, Any] = field(default_factory=dict)
    """The expert that labelled the data, as resolved (``spec``, ``kind``, files, ``algo``);
    empty when not known. ``source`` is its name as given."""

    def env(self) -> Any:
        """The gymnasium ``EnvSpec`` the data was collected on (kwargs and wrappers included)."""
        from imitate.environments import spec_of_record

        return spec_of_record(asdict(self))

    def provenance(self) -> dict[str, Any]:
        """What a policy trained on this data records: env (kwargs, wrappers), expert, seed."""
        return {
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "env_wrappers": self.env_wrappers,
            "expert": self.source,
            "expert_info": self.expert,
            "data_seed": self.seed,
        }

    def spaces(self) -> tuple[gym.Space[Any], gym.Space[Any]]:
        """The (observation, action) spaces as gymnasium objects."""
        return ob.obs_space_from_json(self.observation_space), ob.obs_space_from_json(
            self.action_space
        )


@dataclass(frozen=True, eq=False)
class Dataset:
    """Transitions of episodes, stored back to back (complete unless collected on a budget).

    Attributes:
        obs: ``[N, *obs_shape]`` observations ``s_t``: float32 for float Box spaces, else
            each leaf in its storage dtype (uint8 images stay uint8), a dict / tuple of
            such arrays for Dict / Tuple spaces (:mod:`imitate.observations`).
        actions: ``[N, *action_shape]`` actions ``a_t`` taken (or labelled) in ``s_t``.
        rewards: ``[N]`` float32 rewards ``r_t``.
        terminated: ``[N]`` bool, true on an episode's terminal step.
        truncated: ``[N]`` bool, true on an episode's time-limit step.
        episode_starts: ``[E]`` int64, index of each episode's first transition.
        meta: provenance and spaces.
        teacher_logits: optional ``[N, K]`` float32 teacher outputs (distillation).
        weights: optional ``[N]`` float32 per-sample loss weights.
        final_obs: optional ``[E, *obs_shape]`` observation after each episode's
            last step (``s_T``; Minari stores ``T + 1`` observations per episode), of the
            same structure and dtypes as ``obs``.
        expert_acted: optional ``[N]`` bool, true where the expert chose the action taken
            (a DAgger mixture's expert steps; its queries are counted from this column).
    """

    obs: ob.AnyObs
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode_starts: np.ndarray
    meta: DatasetMeta
    teacher_logits: np.ndarray | None = None
    weights: np.ndarray | None = None
    final_obs: ob.AnyObs | None = None
    expert_acted: np.ndarray | None = None

    def __len__(self) -> int:
        return ob.obs_len(self.obs)

    def __repr__(self) -> str:
        """One line: env, size, array shapes and dtypes, source (never the arrays)."""

        def shape(a: ob.ObsBatch) -> str:
            if isinstance(a, dict):
                return "{" + ", ".join(f"{k}: {shape(v)}" for k, v in a.items()) + "}"
            if isinstance(a, tuple):
                return "(" + ", ".join(shape(v) for v in a) + ")"
            return f"{a.dtype}[{', '.join(map(str, a.shape))}]"

        extras = [
            f"{name}={shape(getattr(self, name))}"
            for name in ("teacher_logits", "weights", "final_obs", "expert_acted")
            if getattr(self, name) is not None
        ]
        return (
            f"Dataset({self.meta.env_id!r}, episodes={self.n_episodes}, transitions={len(self)}, "
            f"obs={shape(self.obs)}, actions={shape(self.actions)}, "
            + "".join(f"{e}, " for e in extras)
            + f"source={self.meta.source!r})"
        )

    @property
    def n_episodes(self) -> int:
        return int(self.episode_starts.shape[0])

    @property
    def episode_ends(self) -> np.ndarray:
        """``[E]`` one past each episode's last transition."""
        return np.append(self.episode_starts[1:], len(self)).astype(np.int64)

    @property
    def episode_lengths(self) -> np.ndarray:
        """``[E]`` number of transitions per episode."""
        return self.episode_ends - self.episode_starts

    @property
    def episode_returns(self) -> np.ndarray:
        """``[E]`` undiscounted return of each episode."""
        return np.add.reduceat(self.rewards.astype(np.float64), self.episode_starts)

    def episode_ids(self) -> np.ndarray:
        """``[N]`` episode number of each transition."""
        return np.repeat(np.arange(self.n_episodes), self.episode_lengths)

    def select_episodes(self, episodes: np.ndarray | list[int]) -> Dataset:
        """A new dataset with the chosen episodes, in the order given."""
        chosen = np.asarray(episodes, dtype=np.int64)
        starts, ends = self.episode_starts[chosen], self.episode_ends[chosen]
        index = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
        new_starts = np.concatenate([[0], np.cumsum(ends - starts)[:-1]]).astype(np.int64)
        final_obs = None if self.final_obs is None else ob.take(self.final_obs, chosen)
        return replace(self._take(index, new_starts), final_obs=final_obs)

    def select_transitions(self, index: np.ndarray) -> Dataset:
        """A new dataset with the transitions at ``index`` (sorted); episodes stay grouped.

        Final observations are dropped: a thinned episode no longer ends in them."""
        index = np.sort(np.asarray(index, dtype=np.int64))
        episode_of = self.episode_ids()[index]
        return self._take(index, np.flatnonzero(np.diff(episode_of, prepend=-1)).astype(np.int64))

    def _take(self, index: np.ndarray, episode_starts: np.ndarray) -> Dataset:
        """Rows ``index`` of every per-transition array, with a new episode index."""
        return replace(
            self,
            obs=ob.take(self.obs, index),
            actions=self.actions[index],
            rewards=self.rewards[index],
            terminated=self.terminated[index],
            truncated=self.truncated[index],
            episode_starts=episode_starts,
            teacher_logits=None if self.teacher_logits is None else self.teacher_logits[index],
            weights=None if self.weights is None else self.weights[index],
            expert_acted=None if self.expert_acted is None else self.expert_acted[index],
            final_obs=None,
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """All arrays by ``.npz`` member name (optional ones only when present); Dict and
        Tuple observations are one array per leaf, ``obs/<key>`` (and ``final_obs/<key>``)."""
        out = {name: getattr(self, name) for name in _REQUIRED if name != "obs"}
        for name in (*_OPTIONAL, *_FLAGS, *_PER_EPISODE):
            if getattr(self, name) is not None and name != "final_obs":
                out[name] = getattr(self, name)
        space = ob.obs_space_from_json(self.meta.observation_space)
        out.update(ob.obs_to_arrays(self.obs, space, "obs"))
        if self.final_obs is not None:
            out.update(ob.obs_to_arrays(self.final_obs, space, "final_obs"))
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Validate, then write atomically to ``path`` (npz with embedded JSON metadata)."""
        validate(self, source=str(path))
        payload = dict(self.arrays())
        payload["meta_json"] = np.array(json.dumps(asdict(self.meta)))

        def write(f: IO[bytes]) -> None:
            np.savez_compressed(f, allow_pickle=False, **payload)

        return atomic_write(path, write)


def concatenate(datasets: list[Dataset], meta: DatasetMeta | None = None) -> Dataset:
    """Join datasets of the same spaces end to end, in memory (DAgger aggregation)."""
    if not datasets:
        raise ValueError("concatenate needs at least one dataset")
    first = datasets[0]
    for other in datasets[1:]:
        if (other.meta.observation_space, other.meta.action_space) != (
            first.meta.observation_space,
            first.meta.action_space,
        ):
            raise DatasetError("cannot concatenate datasets with different spaces")
    offsets = np.cumsum([0] + [len(d) for d in datasets[:-1]])

    def optional(name: str) -> np.ndarray | None:
        values = [getattr(d, name) for d in datasets]
        if any(v is None for v in values):
            return None
        return np.concatenate(values)

    final_obs = None
    if all(d.final_obs is not None for d in datasets):
        final_obs = ob.concatenate([d.final_obs for d in datasets if d.final_obs is not None])
    return Dataset(
        obs=ob.concatenate([d.obs for d in datasets]),
        actions=np.concatenate([d.actions for d in datasets]),
        rewards=np.concatenate([d.rewards for d in datasets]),
        terminated=np.concatenate([d.terminated for d in datasets]),
        truncated=np.concatenate([d.truncated for d in datasets]),
        episode_starts=np.concatenate(
            [d.episode_starts + off for d, off in zip(datasets, offsets, strict=True)]
        ).astype(np.int64),
        meta=meta or first.meta,
        teacher_logits=optional("teacher_logits"),
        weights=optional("weights"),
        final_obs=final_obs,
        expert_acted=optional("expert_acted"),
    )


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read and validate a dataset file; any problem raises ``DatasetError`` naming the field."""
    path = Path(path)
    if path.is_dir():
        raise DatasetError(f"{path}: a folder, not a dataset file (give the .npz inside it)")
    if not path.is_file():
        raise DatasetError(f"{path}: dataset file not found")
    _check_headers(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DatasetError(f"{path}: not a readable dataset file ({scrub(str(exc))})") from None
    structured = any(name.startswith(f"obs{ob.SEP}") for name in arrays)
    for name in (*_REQUIRED, "meta_json"):
        if name not in arrays and not (name == "obs" and structured):
            raise DatasetError(f"{path}: field '{name}' is missing")
    try:
        meta_dict = json.loads(str(arrays.pop("meta_json")))
        meta = DatasetMeta(**meta_dict)
    except (json.JSONDecodeError, TypeError) as exc:
        raise DatasetError(f"{path}: field 'meta_json' is not valid metadata ({exc})") from exc
    try:
        obs_space = ob.obs_space_from_json(meta.observation_space)
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: field 'meta_json' has an unreadable space ({exc})") from exc
    obs = ob.obs_from_arrays(arrays, obs_space, "obs", where=str(path))
    final_obs = None
    if "final_obs" in arrays or any(n.startswith(f"final_obs{ob.SEP}") for n in arrays):
        final_obs = ob.obs_from_arrays(arrays, obs_space, "final_obs", where=str(path))
    dataset = Dataset(
        obs=obs,
        actions=arrays["actions"],
        rewards=arrays["rewards"],
        terminated=arrays["terminated"],
        truncated=arrays["truncated"],
        episode_starts=arrays["episode_starts"],
        meta=meta,
        teacher_logits=arrays.get("teacher_logits"),
        weights=arrays.get("weights"),
        final_obs=final_obs,
        expert_acted=arrays.get("expert_acted"),
    )
    validate(dataset, source=str(path))
    return dataset


def _check_headers(path: Path) -> None:
    """Read every member's ``.npy`` header (not its data) and refuse, before any allocation,
    object arrays and shapes that claim more bytes than the member holds."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    header_end = member.tell()
                if dtype.hasobject:
                    raise DatasetError(
                        f"{path}: field '{name}' holds pickled objects, which imitate never loads"
                    )
                claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if claimed > info.file_size - header_end:
                    raise DatasetError(
                        f"{path}: field '{name}' claims shape {shape} ({claimed:,} bytes), but "
                        f"the file holds {info.file_size - header_end:,}"
                    )
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DatasetError(f"{path}: not a readable dataset file ({scrub(str(exc))})") from None


def validate(dataset: Dataset, source: str = "dataset") -> None:
    """Check shapes, dtypes, finiteness, action bounds and the episode index."""

    def fail(name: str, problem: str) -> DatasetError:
        return DatasetError(f"{source}: field '{name}' {problem}")

    if dataset.meta.format_version != FORMAT_VERSION:
        raise fail("meta_json", f"has format version {dataset.meta.format_version}")
    try:
        obs_space, action_space = dataset.meta.spaces()
    except (ValueError, KeyError, TypeError) as exc:
        raise fail("meta_json", f"has an unreadable space ({exc})") from exc
    try:
        n = len(dataset)
    except (ValueError, IndexError, AttributeError, TypeError) as exc:
        raise fail("obs", f"is not a batch of observations ({exc})") from exc
    if n == 0:
        raise fail("obs", "is empty: the dataset has no transitions")
    if _flat_box(obs_space, dataset.obs):
        _check_box_obs(dataset.obs, obs_space, "obs", fail)
    else:
        ob.validate(dataset.obs, obs_space, n, source)
    _check_actions(dataset.actions, action_space, n, fail)
    for name, dtype_ok in (
        ("rewards", np.issubdtype(dataset.rewards.dtype, np.floating)),
        ("terminated", dataset.terminated.dtype == np.bool_),
        ("truncated", dataset.truncated.dtype == np.bool_),
    ):
        values = getattr(dataset, name)
        if values.shape != (n,):
            raise fail(name, f"has shape {values.shape}, expected ({n},)")
        if not dtype_ok:
            raise fail(name, f"has dtype {values.dtype}")
    if not np.isfinite(dataset.rewards).all():
        raise fail("rewards", "contains NaN or inf")
    starts = dataset.episode_starts
    if starts.ndim != 1 or not np.issubdtype(starts.dtype, np.integer) or len(starts) == 0:
        raise fail("episode_starts", "must be a non-empty 1-D integer array")
    if starts[0] != 0 or np.any(np.diff(starts) <= 0) or starts[-1] >= n:
        raise fail("episode_starts", "is inconsistent: must start at 0 and increase below N")
    for name in _OPTIONAL:
        values = getattr(dataset, name)
        if values is None:
            continue
        if values.shape[0] != n or (name == "weights" and values.ndim != 1):
            raise fail(name, f"has shape {values.shape}, inconsistent with {n} transitions")
        if not np.isfinite(values).all():
            raise fail(name, "contains NaN or inf")
    if dataset.weights is not None and np.any(dataset.weights < 0):
        raise fail("weights", "contains negative weights")
    for name in _FLAGS:
        values = getattr(dataset, name)
        if values is not None and (values.shape != (n,) or values.dtype != np.bool_):
            raise fail(name, f"must be bool of shape ({n},), got {values.dtype}{values.shape}")
    final_obs = dataset.final_obs
    if final_obs is not None:
        if not _flat_box(obs_space, final_obs):
            ob.validate(final_obs, obs_space, len(starts), source, name="final_obs")
            return
        assert isinstance(dataset.obs, np.ndarray)
        if final_obs.shape != (len(starts), *dataset.obs.shape[1:]):
            expected = _shape_text(len(starts), obs_space.shape)
            raise fail("final_obs", f"has shape {final_obs.shape}, expected {expected}")
        if not np.isfinite(final_obs).all():
            raise fail("final_obs", "contains NaN or inf")


def _shape_text(n: int | str, shape: tuple[int, ...] | None) -> str:
    """``(100,)``, ``(N, 4)``: an array shape with ``n`` rows, written as numpy prints one."""
    dims = [str(n), *(str(d) for d in shape or ())]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _flat_box(space: gym.Space[Any], obs: ob.ObsBatch) -> bool:
    """Box observations held in one array: checked as before (float, or the Box's own
    integer dtype), every other space leaf by leaf (:func:`imitate.observations.validate`)."""
    return isinstance(space, gym.spaces.Box) and isinstance(obs, np.ndarray)


def _check_box_obs(obs: np.ndarray, space: gym.Space[Any], name: str, fail: Any) -> None:
    integer_space = np.issubdtype(np.dtype(space.dtype), np.integer)  # uint8 images
    if not np.issubdtype(obs.dtype, np.floating) and not (
        integer_space and np.issubdtype(obs.dtype, np.integer)
    ):
        raise fail(name, f"has dtype {obs.dtype}, expected a float type")
    if obs.shape[1:] != space.shape:
        raise fail(name, f"has shape {obs.shape}, expected {_shape_text('N', space.shape)}")
    if obs.dtype.kind == "f" and not np.isfinite(obs).all():
        raise fail(name, "contains NaN or inf")


def _check_actions(actions: np.ndarray, space: gym.Space[Any], n: int, fail: Any) -> None:
    """Vectorised membership test of every action in ``space`` (the head's check:
    :meth:`imitate.spaces.ActionHead.validate_actions`)."""
    if actions.shape != (n, *tuple(space.shape or ())):
        expected = _shape_text(n, space.shape or ())
        raise fail("actions", f"has shape {actions.shape}, expected {expected}")
    try:
        problem = validate_actions(space, actions)
    except UnsupportedSpaceError:
        raise fail("meta_json", f"has unsupported action space {space}") from None
    if problem is not None:
        raise fail("actions", problem)


def make_meta(
    env_id: str | dict[str, Any],
    observation_space: gym.Space[Any],
    action_space: gym.Space[Any],
    source: str,
    seed: int | None,
    seeding: str,
) -> DatasetMeta:
    """Metadata for a dataset collected now, with library versions; ``env_id`` is an id or
    an :func:`imitate.environments.env_record`."""
    from imitate.version import __version__

    record: dict[str, Any] = {"env_id": env_id} if isinstance(env_id, str) else env_id
    return DatasetMeta(
        env_id=record["env_id"],
        env_kwargs=dict(record.get("env_kwargs") or {}),
        env_wrappers=list(record.get("env_wrappers") or []),
        observation_space=ob.obs_space_to_json(observation_space),
        action_space=space_to_json(action_space),
        source=source,
        seed=seed,
        seeding=seeding,
        versions={"imitate": __version__, "numpy": np.__version__, "gymnasium": gym.__version__},
    )


WARN_COLLECT_BYTES = 1 << 30
"""``collect`` warns when a collection may hold more than this in memory (1 GiB)."""


def dataset_warnings(dataset: Dataset) -> list[str]:
    """Suspicious but valid data, one sentence each: a single action, constant observation
    features (not for images), observations outside the space's bounds, episode
    boundaries that contradict the terminated/truncated flags."""
    out: list[str] = []
    obs_space, action_space = dataset.meta.spaces()
    n = len(dataset)
    if isinstance(action_space, gym.spaces.Discrete) and n > 1:
        actions = np.unique(dataset.actions)
        if len(actions) == 1:
            out.append(
                f"all {n} transitions take action {int(actions[0])}: a clone can only learn "
                "a constant policy"
            )
    if not isinstance(dataset.obs, np.ndarray) or dataset.obs.dtype.kind not in "biuf":
        return out + _episode_warnings(dataset)
    flat = dataset.obs.reshape(n, -1)
    # constant pixels (a background) are what frames are made of, not a fault in the data
    if n > 1 and not ob.is_image_space(obs_space):
        constant = np.flatnonzero(flat.min(axis=0) == flat.max(axis=0))
        if len(constant):
            shown = ", ".join(str(i) for i in constant[:8]) + (" ..." if len(constant) > 8 else "")
            out.append(
                f"observation features [{shown}] are constant over all {n} transitions "
                "(the clone learns nothing from them)"
            )
    if isinstance(obs_space, gym.spaces.Box):
        low = np.broadcast_to(obs_space.low, obs_space.shape).reshape(-1)
        high = np.broadcast_to(obs_space.high, obs_space.shape).reshape(-1)
        outside = ((flat < low) | (flat > high)).any(axis=1)
        if outside.any():
            out.append(
                f"{int(outside.sum())} of {n} observations lie outside the observation space's "
                f"bounds (first at index {int(np.argmax(outside))})"
            )
    return out + _episode_warnings(dataset)


def _episode_warnings(dataset: Dataset) -> list[str]:
    """Episode boundaries that contradict the terminated/truncated flags."""
    out: list[str] = []
    done = dataset.terminated | dataset.truncated
    ends = dataset.episode_ends - 1
    inside = done.copy()
    inside[ends] = False
    if inside.any():
        out.append(
            f"{int(inside.sum())} transitions are flagged terminated/truncated inside an "
            f"episode (first at index {int(np.argmax(inside))}): episode_starts disagree"
        )
    unflagged = ~done[ends[:-1]]  # the last episode may end on a step budget
    if unflagged.any():
        out.append(
            f"{int(unflagged.sum())} episodes end on a step that is neither terminated nor "
            f"truncated (first: episode {int(np.argmax(unflagged))}): episode_starts disagree"
        )
    return out


def collection_estimate(env_id: str, episodes: int) -> str | None:
    """A warning when ``episodes`` of ``env_id`` could exceed :data:`WARN_COLLECT_BYTES` in
    memory (episodes x the env's step limit x bytes per transition), else None."""
    chunk = collection_chunk_episodes(env_id, episodes)
    if chunk is None:
        return None
    limit, per_step = _step_bytes(env_id)  # (not None: a chunk size was found)
    total = episodes * limit * per_step
    return (
        f"{episodes} episodes of up to {limit} steps may hold {total / 2**30:.1f} GiB; "
        f"collect streams them to disk in chunks of {chunk} episodes (per-episode seeding)"
    )


def collection_chunk_episodes(env_id: str, episodes: int) -> int | None:
    """Episodes per chunk when ``episodes`` of ``env_id`` may exceed
    :data:`WARN_COLLECT_BYTES` in memory (each chunk then holds at most a quarter of it),
    else None: the collection fits and is made in one piece."""
    limit, per_step = _step_bytes(env_id)
    if limit is None or episodes * limit * per_step <= WARN_COLLECT_BYTES:
        return None
    return max(1, WARN_COLLECT_BYTES // (4 * limit * per_step))


def _step_bytes(env_id: str) -> tuple[Any, int]:
    """(the env's step limit or None, an upper bound on the bytes of one recorded step)."""
    spec = gym.spec(env_id) if env_id in gym.registry else None
    limit = None if spec is None else spec.max_episode_steps
    if limit is None:
        return None, 0
    env = gym.make(env_id)
    try:
        obs_bytes = ob.step_bytes(env.observation_space)
        act_bytes = max(int(np.prod(env.action_space.shape or (1,))), 1) * 8
    finally:
        env.close()
    return int(limit), obs_bytes + act_bytes + 4 + 2


def save_chunks(path: str | os.PathLike[str], chunks: Iterable[Dataset]) -> Dataset:
    """Write datasets of whole episodes, end to end, as one ``.npz`` dataset at ``path``,
    holding one chunk in memory at a time (what ``collect`` of a very large number of
    episodes needs). Returns a small summary dataset: the last chunk.

    Each chunk is validated, then its arrays are appended to raw spool files in a
    temporary folder beside ``path``; at the end the ``.npz`` (the same members and
    format as :meth:`Dataset.save`, deflated) is streamed from those files and renamed
    into place. numpy's ``savez`` needs every array in memory at once, hence this."""
    import shutil
    import tempfile

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    spool = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.spool-"))
    try:
        first: Dataset | None = None
        last: Dataset | None = None
        shapes: dict[str, tuple[tuple[int, ...], np.dtype[Any]]] = {}
        n, episodes = 0, 0
        for chunk in chunks:
            validate(chunk, source=str(target))
            first = first or chunk
            if (chunk.meta.observation_space, chunk.meta.action_space) != (
                first.meta.observation_space,
                first.meta.action_space,
            ):
                raise DatasetError(f"{target}: chunks of different spaces")
            arrays = chunk.arrays()
            arrays["episode_starts"] = chunk.episode_starts + n
            if shapes and set(arrays) != set(shapes):
                raise DatasetError(f"{target}: chunks with different fields")
            for name, array in arrays.items():
                array = np.ascontiguousarray(array)
                rows, dtype = shapes.get(name, ((0, *array.shape[1:]), array.dtype))
                shapes[name] = ((rows[0] + len(array), *array.shape[1:]), dtype)
                with open(spool / name, "ab") as f:
                    f.write(array.astype(dtype, copy=False).tobytes())
            n += len(chunk)
            episodes += chunk.n_episodes
            last = chunk
        if first is None or last is None:
            raise DatasetError(f"{target}: no episodes to write")
        meta_json = np.array(json.dumps(asdict(first.meta)))

        def write(f: IO[bytes]) -> None:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
                for name, (shape, dtype) in shapes.items():
                    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                        header = {
                            "descr": np.lib.format.dtype_to_descr(dtype),
                            "fortran_order": False,
                            "shape": shape,
                        }
                        np.lib.format.write_array_header_2_0(member, header)
                        with open(spool / name, "rb") as raw:
                            shutil.copyfileobj(raw, member, 1 << 20)
                with archive.open("meta_json.npy", "w") as member:
                    np.lib.format.write_array(member, meta_json, allow_pickle=False)

        atomic_write(target, write)
        return last
    finally:
        shutil.rmtree(spool, ignore_errors=True)
