"""A zoo training run's state across processes: snapshots, replay buffer, resume, lineage.

A 1M-step SAC run takes longer here than one process lives (a session ends, a machine
restarts), so :func:`agents.zoo.train_expert` can save its training state every N steps
into a snapshot folder and continue from the newest snapshot later (``imitate expert
train --snapshots DIR --resume``). A snapshot is ``<steps>.zip`` (SB3's own save, with
the optimisers) plus, for off-policy algorithms, ``<steps>.buffer.npz``: the filled part
of the replay buffer as plain arrays. Written by hand because SB3's
``save_replay_buffer`` pickles the whole buffer object, and a resume must not unpickle.

What a resume cannot restore: the random generators' and the environments' states (the
environments restart from a reset, the generators are reseeded with ``seed + steps``),
so a resumed run is not the same run as an uninterrupted one. ``lineage.json`` in the
folder records every resume (the step, whether the buffer was restored), and a snapshot
taken after one ships with that lineage instead of a one-command reproduction
(:func:`agents.zoo.record_snapshot`). Without a saved buffer (snapshots of an older
run) the resumed run refills it for ``FRESH_BUFFER_WARMUP`` steps with the loaded actor
before it trains again: a few hundred transitions would otherwise be replayed thousands
of times.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from imitate.errors import ImitateError

BUFFER_SUFFIX = ".buffer.npz"
LINEAGE = "lineage.json"
FRESH_BUFFER_WARMUP = 5_000
BUFFER_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def snapshot_zips(folder: Path) -> list[Path]:
    """The ``<steps>.zip`` snapshots in ``folder``, in step order."""
    zips = [z for z in folder.glob("*.zip") if z.stem.isdigit()]
    return sorted(zips, key=lambda z: int(z.stem))


def buffer_file(snapshot: Path) -> Path:
    """Where ``<steps>.zip``'s replay buffer is saved."""
    return snapshot.with_name(snapshot.stem + BUFFER_SUFFIX)


def save_replay_buffer(model: Any, path: Path) -> None:
    """The filled part of ``model``'s replay buffer as arrays (one env), atomically."""
    buffer = model.replay_buffer
    if buffer.n_envs != 1:
        raise ImitateError("a saved replay buffer holds one env's transitions")
    filled = buffer.buffer_size if buffer.full else buffer.pos
    arrays = {name: getattr(buffer, name)[:filled] for name in BUFFER_ARRAYS}
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("wb") as file:
        np.savez(file, pos=np.int64(buffer.pos), full=np.bool_(buffer.full), **arrays)
    tmp.replace(path)


def load_replay_buffer(model: Any, path: Path) -> None:
    """Fill ``model``'s (empty, same-sized) replay buffer from :func:`save_replay_buffer`."""
    buffer = model.replay_buffer
    with np.load(path, allow_pickle=False) as saved:
        for name in BUFFER_ARRAYS:
            target, values = getattr(buffer, name), saved[name]
            if values.shape[1:] != target.shape[1:] or len(values) > len(target):
                raise ImitateError(f"{path}: {name} {values.shape} does not fit {target.shape}")
            target[: len(values)] = values
        buffer.pos, buffer.full = int(saved["pos"]), bool(saved["full"])


def save_snapshot(model: Any, zip_path: Path) -> None:
    """``model`` as ``zip_path`` (written beside it, then renamed: a resume never finds a
    half-written zip) and, off-policy, its replay buffer; older buffers are removed."""
    tmp = zip_path.with_name(zip_path.name + ".partial")
    with tmp.open("wb") as file:
        model.save(file)
    tmp.replace(zip_path)
    if getattr(model, "replay_buffer", None) is not None:
        save_replay_buffer(model, buffer_file(zip_path))
        for old in zip_path.parent.glob("*" + BUFFER_SUFFIX):
            if old != buffer_file(zip_path):
                old.unlink()


def snapshot_callback(every: int, folder: Path) -> Any:
    """An SB3 callback saving the training state every ``every`` steps: the model as
    ``<folder>/<steps>.zip`` (with the optimisers) and, for off-policy models, the replay
    buffer beside it (only the newest buffer is kept: each is up to ~100 MB)."""
    from stable_baselines3.common.callbacks import BaseCallback

    from imitate.signals import deferred

    class Snapshots(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % every == 0:
                with deferred():  # a signal now would leave a zip without its buffer
                    save_snapshot(self.model, folder / f"{self.num_timesteps}.zip")
            return True

    folder.mkdir(parents=True, exist_ok=True)
    return Snapshots()


def read_lineage(folder: Path) -> list[dict[str, Any]]:
    """The resumes recorded in ``folder`` (empty: one uninterrupted run)."""
    path = folder / LINEAGE
    return list(json.loads(path.read_text())) if path.exists() else []


def resumes_before(folder: Path, steps: int) -> list[dict[str, Any]]:
    """The resumes a snapshot at ``steps`` descends from."""
    return [r for r in read_lineage(folder) if r["resumed_at"] < steps]


def resume(model: Any, folder: Path, seed: int, total_steps: int, env_id: str | None = None) -> int:
    """Load the newest snapshot of ``folder`` into ``model`` (built as the run was, not
    trained, on ``env_id``): weights, optimisers, entropy coefficient, step and update
    counters and, when saved, the replay buffer; reseed with ``seed + steps``; record the
    resume in ``lineage.json``. Returns the snapshot's step count. Refused (nothing
    recorded) when the snapshot is of another env or algorithm (said first: the field list
    would only repeat it), model or seed, or already at ``total_steps``."""
    from stable_baselines3.common.save_util import load_from_zip_file

    from agents.zoo import _zip_data, differing_fields, other_training

    zips = snapshot_zips(folder)
    if not zips:
        raise ImitateError(
            f"{folder}: no <steps>.zip snapshot to resume from (start the run without --resume)"
        )
    latest = zips[-1]
    data = _zip_data(latest)
    other = other_training(model, data, env_id)
    if other is not None:
        raise ImitateError(f"{latest} is {other}")
    if data.get("seed") != seed:
        raise ImitateError(f"{latest}: trained with seed {data.get('seed')}, not {seed}")
    # learning_starts: a resume without its buffer moves it (below)
    differ = differing_fields(model, data, frozenset({"learning_starts"}))
    if differ:
        raise ImitateError(
            f"{latest} is not a snapshot of this training (differs in {', '.join(differ)})"
        )
    if int(data["num_timesteps"]) >= total_steps:
        raise ImitateError(
            f"{folder}: the newest snapshot is at {data['num_timesteps']} of {total_steps} steps"
        )
    _, params, variables = load_from_zip_file(latest, load_data=False, device="cpu")
    model.set_parameters(params, exact_match=True, device="cpu")
    for name, value in (variables or {}).items():  # SAC's log_ent_coef
        getattr(model, name).data.copy_(value.data)
    steps = int(data["num_timesteps"])
    model.num_timesteps = steps
    model._n_updates = int(data.get("_n_updates", 0))
    model._episode_num = int(data.get("_episode_num", 0))
    off_policy = getattr(model, "replay_buffer", None) is not None
    restored = off_policy and buffer_file(latest).exists()
    if restored:
        load_replay_buffer(model, buffer_file(latest))
    elif off_policy:
        model.learning_starts = steps + FRESH_BUFFER_WARMUP
    model.set_random_seed(seed + steps)
    lineage = [*read_lineage(folder), {"resumed_at": steps, "buffer_restored": restored}]
    (folder / LINEAGE).write_text(json.dumps(lineage, indent=1) + "\n")
    return steps
