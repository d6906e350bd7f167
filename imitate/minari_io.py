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
  dataset description, so an import restores it.

Datasets live where Minari keeps them (``MINARI_DATASETS_PATH`` or ``~/.minari``);
nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import asdict
from typing import Any

import numpy as np

from imitate.data import Dataset, DatasetMeta, validate
from imitate.errors import DatasetError, ImitateError
from imitate.spaces import space_to_json

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
                observations=np.concatenate([dataset.obs[start:end], dataset.final_obs[e : e + 1]]),
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
    try:
        with warnings.catch_warnings():  # Minari warns about every optional field left empty
            warnings.simplefilter("ignore", UserWarning)
            created = minari.create_dataset_from_buffers(
                dataset_id=dataset_id,
                buffer=buffers,
                env=env_spec,
                eval_env=env_spec,
                algorithm_name=dataset.meta.source,
                author=author,
                author_email="",
                code_permalink="",
                observation_space=observation_space,
                action_space=action_space,
                description=f"{description}\n{_META_MARK}{meta_json}".lstrip(),
            )
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # never leave half a dataset behind
        raise
    return str(created.storage.data_path)


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
    episodes = list(source.iterate_episodes())
    if not episodes:
        raise DatasetError(f"Minari dataset {dataset_id!r} has no episodes")
    for episode in episodes:
        if not isinstance(episode.observations, np.ndarray):
            raise DatasetError(
                f"Minari dataset {dataset_id!r}: only flat Box observations are supported"
            )
    meta = _meta_of(source, dataset_id)
    lengths = np.array([len(ep) for ep in episodes], np.int64)
    optional: dict[str, np.ndarray | None] = {}
    for name in _PER_STEP_INFOS:
        if all(name in ep.infos for ep in episodes):
            optional[name] = np.concatenate([np.asarray(ep.infos[name])[:-1] for ep in episodes])
        else:
            optional[name] = None
    dataset = Dataset(
        obs=np.concatenate([ep.observations[:-1] for ep in episodes]),
        actions=np.concatenate([np.asarray(ep.actions) for ep in episodes]),
        rewards=np.concatenate([np.asarray(ep.rewards) for ep in episodes]),
        terminated=np.concatenate([np.asarray(ep.terminations, np.bool_) for ep in episodes]),
        truncated=np.concatenate([np.asarray(ep.truncations, np.bool_) for ep in episodes]),
        episode_starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        meta=meta,
        teacher_logits=optional["teacher_logits"],
        weights=optional["weights"],
        final_obs=np.stack([ep.observations[-1] for ep in episodes]),
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
        observation_space=space_to_json(source.observation_space),
        action_space=space_to_json(source.action_space),
        source=f"minari:{dataset_id}",
    )
