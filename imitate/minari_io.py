"""Minari interop (the ``minari`` extra): imitate datasets to and from Minari datasets.

Minari (Farama's offline-RL standard) stores per episode ``T + 1`` observations (the
last is the state after the final step), ``T`` actions, rewards, terminations and
truncations, and per-step infos with ``T + 1`` entries (the reset info first). The
mapping is therefore one to one with :class:`~imitate.data.Dataset` once it carries
``final_obs``:

* ``observations[:T]`` = ``obs`` of the episode, ``observations[T]`` = ``final_obs[e]``;
* ``infos["teacher_logits"][t]`` = the teacher outputs for ``observations[t]``
  (the final observation has none: that row is NaN); ``infos["weights"]`` likewise;
* imitate's metadata (source, seed, seeding, versions) rides along as JSON in the
  dataset description, so an import restores it;
* Dict, Tuple, Discrete, MultiBinary and Text observations map to Minari's own nested
  form (a dict / tuple of per-step arrays, a list of strings for Text) and back to
  :mod:`imitate.observations` batches in their storage dtypes, so they round-trip
  exactly. (Minari stores ``uint8`` image spaces of at least 32x32 as JPEG, which is
  lossy; frame stacks like PixelCartPole's ``4x40x60`` are not such images and stay exact.)

Datasets live where Minari keeps them (``MINARI_DATASETS_PATH`` or ``~/.minari``);
nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from imitate import observations as ob
from imitate.data import Dataset, DatasetMeta, validate
from imitate.errors import DatasetError, ImitateError, OutputError, UnsupportedSpaceError, os_error
from imitate.fileio import remove_stale_temporaries
from imitate.runs import check_out, out_lock

_META_MARK = "imitate-meta:"
_PER_STEP_INFOS = ("teacher_logits", "weights")


def _minari() -> Any:
    try:
        import minari
    except ImportError as exc:
        raise ImitateError(
            "Minari interop needs the minari extra: pip install 'imitate[minari]'"
        ) from exc
    return minari


def export_minari(
    dataset: Dataset,
    dataset_id: str,
    author: str = "imitate",
    description: str = "",
) -> str:
    """Write ``dataset`` as the local Minari dataset ``dataset_id``; returns its path.

    Needs ``final_obs`` (datasets collected by :func:`imitate.collect.collect` have it).
    An existing dataset of the same id is an error (Minari never overwrites).
    """
    minari = _minari()
    from minari.data_collector.episode_buffer import EpisodeBuffer
    from minari.dataset.minari_dataset import parse_dataset_id
    from minari.storage import get_dataset_path

    try:
        parse_dataset_id(dataset_id)
    except ValueError:
        raise DatasetError(
            f"bad Minari dataset id {dataset_id!r}: use (namespace/)name-v<version>, "
            "e.g. imitate/cartpole/expert-v0"
        ) from None
    if dataset.final_obs is None:
        raise DatasetError(
            "the dataset has no final observations (field 'final_obs'), which Minari needs "
            "(T + 1 observations per episode): collect it again with imitate collect"
        )
    target = get_dataset_path(dataset_id)
    if target.exists():
        raise DatasetError(f"a Minari dataset {dataset_id!r} already exists; choose another id")
    root = get_dataset_path()
    check_out(root, "dir", expected_bytes=_expected_bytes(dataset))
    observation_space, action_space = dataset.meta.spaces()
    buffers = []
    for e, (start, end) in enumerate(
        zip(dataset.episode_starts, dataset.episode_ends, strict=True)
    ):
        infos: dict[str, np.ndarray] = {}
        for name in _PER_STEP_INFOS:
            values = getattr(dataset, name)
            if values is not None:
                tail = np.full((1, *values.shape[1:]), np.nan, values.dtype)
                infos[name] = np.concatenate([values[start:end], tail])
        buffers.append(
            EpisodeBuffer(
                id=e,
                observations=_to_minari(
                    ob.concatenate(
                        [
                            ob.take(dataset.obs, slice(start, end)),
                            ob.take(dataset.final_obs, slice(e, e + 1)),
                        ]
                    )
                ),
                actions=dataset.actions[start:end],
                rewards=dataset.rewards[start:end],
                terminations=dataset.terminated[start:end],
                truncations=dataset.truncated[start:end],
                infos=infos,
            )
        )
    try:  # kwargs and wrappers included, so that Minari's recovered env is the one used
        env_spec = dataset.meta.env()
    except ImitateError:
        env_spec = None
    meta_json = json.dumps(asdict(dataset.meta))
    with out_lock(root / f"{dataset_id.replace('/', '__')}"), _temporary_root(root) as scratch:
        kwargs = {
            "dataset_id": dataset_id,
            "buffer": buffers,
            "env": env_spec,
            "eval_env": env_spec,
            "algorithm_name": dataset.meta.source,
            "author": author,
            "author_email": "",
            "code_permalink": "",
            "observation_space": observation_space,
            "action_space": action_space,
            "description": f"{description}\n{_META_MARK}{meta_json}".lstrip(),
        }
        _write_in_child(minari, kwargs, root)
        if target.exists():
            raise DatasetError(f"a Minari dataset {dataset_id!r} already exists; choose another id")
        built = scratch / dataset_id
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(built, target)  # one step: the dataset is whole or absent
        except OSError as exc:
            raise os_error(exc, target) from None
    return str(target / "data")


def _to_minari(obs: ob.ObsBatch) -> Any:
    """A batch in Minari's episode form: dicts and tuples as they are, Text leaves as
    lists of Python strings (HDF5 stores those as UTF-8), other leaves as arrays."""
    if isinstance(obs, dict):
        return {k: _to_minari(v) for k, v in obs.items()}
    if isinstance(obs, tuple):
        return tuple(_to_minari(v) for v in obs)
    array = np.asarray(obs)
    return [str(v) for v in array] if array.dtype.kind == "U" else array


def _from_minari(observations: Any, space: Any) -> ob.ObsBatch:
    """Minari's per-episode observations (nested dicts / tuples; Text: a list of strings)
    as an :data:`imitate.observations.ObsBatch` in the storage dtypes of ``space``."""
    if isinstance(space, gym.spaces.Box | gym.spaces.Discrete) and not isinstance(
        observations, np.ndarray
    ):
        raise DatasetError(f"observations of {space} should be one array per episode")
    try:
        leaves = ob.leaf_arrays(observations, space)
    except (TypeError, KeyError, ValueError) as exc:
        raise DatasetError(f"observations do not match {space}: {exc}") from exc
    converted = [ob.as_leaf(a, leaf) for a, (_, leaf) in zip(leaves, ob.leaves(space), strict=True)]
    return ob.from_leaf_arrays(converted, space)


def _write_in_child(minari: Any, kwargs: dict[str, Any], root: Path) -> None:
    """Run ``minari.create_dataset_from_buffers`` in a forked child process.

    HDF5 does not survive a failed write: on a full disk h5py raises, then crashes the
    interpreter (SIGSEGV, thousands of lines of tracebacks). In a child, that crash costs
    only the child; the parent reports one line and removes the scratch folder."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def child() -> None:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # HDF5's own diagnostics go nowhere
        try:
            with warnings.catch_warnings():  # Minari warns about every optional field left empty
                warnings.simplefilter("ignore", UserWarning)
                minari.create_dataset_from_buffers(**kwargs)
        except BaseException as exc:
            send.send(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
            os._exit(1)
        os._exit(0)

    process = context.Process(target=child, daemon=True)
    process.start()
    send.close()
    try:
        process.join()
    finally:
        if process.is_alive():
            process.kill()
            process.join()
    if process.exitcode == 0:
        return
    reason = f"the HDF5 writer died (exit {process.exitcode})"
    # poll() is also true at end of file: a child that crashed before sending left nothing
    with contextlib.suppress(EOFError):
        if receive.poll():
            reason = receive.recv()
    if shutil.disk_usage(root).free < (1 << 16):
        reason = f"No space left on device ({reason})"
    raise OutputError(f"{root}: writing the Minari dataset failed: {reason}")


def _expected_bytes(dataset: Dataset) -> int:
    """Roughly what the HDF5 file takes: the arrays (observations once more per episode)
    plus a few kB of structure per episode."""
    arrays = sum(a.nbytes for a in dataset.arrays().values())
    return int(arrays * 1.1) + 8192 * dataset.n_episodes + (1 << 16)


@contextlib.contextmanager
def _temporary_root(root: Path) -> Iterator[Path]:
    """A scratch Minari root ``root/.imitate-export.<pid>.<random>.tmp`` (Minari writes there,
    then the dataset folder is renamed into ``root``); removed on success and on failure,
    and removed by the next export if its process died."""
    remove_stale_temporaries(root / "imitate-export")
    try:
        scratch = Path(tempfile.mkdtemp(dir=root, prefix=f".imitate-export.{os.getpid()}."))
        scratch = scratch.rename(scratch.with_name(scratch.name + ".tmp"))
    except OSError as exc:
        raise os_error(exc, root) from None
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(scratch)
    try:
        yield scratch
    except OSError as exc:
        raise os_error(exc, root) from None
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous
        shutil.rmtree(scratch, ignore_errors=True)


def import_minari(dataset_id: str) -> Dataset:
    """Read the local Minari dataset ``dataset_id`` as an imitate :class:`Dataset`."""
    minari = _minari()
    from minari.storage import get_dataset_path

    if not get_dataset_path(dataset_id).exists():
        root = get_dataset_path()
        raise DatasetError(
            f"no Minari dataset {dataset_id!r} in {root} (set --root or MINARI_DATASETS_PATH)"
        )
    try:
        source = minari.load_dataset(dataset_id)
    except (FileNotFoundError, ValueError, KeyError, OSError) as exc:
        raise DatasetError(f"cannot load Minari dataset {dataset_id!r}: {exc}") from exc
    try:
        space = ob.check_supported(source.observation_space)
    except UnsupportedSpaceError as exc:
        raise UnsupportedSpaceError(f"Minari dataset {dataset_id!r}: {exc}") from None
    episodes = list(source.iterate_episodes())
    if not episodes:
        raise DatasetError(f"Minari dataset {dataset_id!r} has no episodes")
    try:
        observations = [_from_minari(ep.observations, space) for ep in episodes]
    except DatasetError as exc:
        raise DatasetError(f"Minari dataset {dataset_id!r}: {exc}") from None
    meta = _meta_of(source, dataset_id)
    lengths = np.array([len(ep) for ep in episodes], np.int64)
    optional: dict[str, np.ndarray | None] = {}
    for name in _PER_STEP_INFOS:
        if all(name in (ep.infos or {}) for ep in episodes):  # a foreign dataset may have none
            optional[name] = np.concatenate([np.asarray(ep.infos[name])[:-1] for ep in episodes])
        else:
            optional[name] = None
    dataset = Dataset(
        obs=ob.compact(ob.concatenate([ob.take(o, slice(0, -1)) for o in observations])),
        actions=np.concatenate([np.asarray(ep.actions) for ep in episodes]),
        rewards=np.concatenate([np.asarray(ep.rewards) for ep in episodes]),
        terminated=np.concatenate([np.asarray(ep.terminations, np.bool_) for ep in episodes]),
        truncated=np.concatenate([np.asarray(ep.truncations, np.bool_) for ep in episodes]),
        episode_starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        meta=meta,
        teacher_logits=optional["teacher_logits"],
        weights=optional["weights"],
        final_obs=ob.compact(ob.concatenate([ob.take(o, slice(-1, None)) for o in observations])),
    )
    validate(dataset, source=f"Minari dataset {dataset_id!r}")
    return dataset


def _meta_of(source: Any, dataset_id: str) -> DatasetMeta:
    """imitate's metadata if the dataset was exported by imitate, else built from Minari's."""
    description = source.storage.metadata.get("description") or ""
    if _META_MARK in description:
        meta_json = description.split(_META_MARK, 1)[1]
        return DatasetMeta(**json.loads(meta_json))
    spec = source.env_spec
    record: dict[str, Any] = {"env_id": dataset_id}
    if spec is not None:  # Minari keeps the env's kwargs in its spec: keep them too
        from imitate.environments import env_record

        record = env_record(spec)
    return DatasetMeta(
        env_id=record["env_id"],
        env_kwargs=record.get("env_kwargs") or {},
        env_wrappers=record.get("env_wrappers") or [],
        observation_space=ob.obs_space_to_json(source.observation_space),
        action_space=ob.obs_space_to_json(source.action_space),
        source=f"minari:{dataset_id}",
    )
