"""Run folders: ``runs/<env>__<command>__<seed>__<time>/`` and the files inside.

A run folder holds ``config.json`` (what was asked), ``metrics.jsonl`` (one
record per evaluation), checkpoints, figures and ``report.md``. All files are
written atomically (:mod:`imitate.fileio`), and so is the set: :func:`artefact_dir`
has a command write into a temporary sibling folder ``.<name>.tmp-<pid>-<random>``
that replaces the target in one rename (``renameat2(RENAME_EXCHANGE)`` where the
target exists, so a reader sees the old set or the new one, never a mix). A lock file
``.<name>.lock`` (``flock``) keeps two writers of one ``--out`` apart, and temporaries
whose writer is gone are removed by the next writer. An existing folder is replaced
only when it is empty or carries imitate's marker ``.imitate-run.json``: a ``--out``
naming somebody's own folder is refused, never emptied.

:func:`check_out` tests an output path before any work: its kind, that its nearest
existing parent is a folder, writable (a probe file) and has room for what is known.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from imitate.errors import OutputError, os_error
from imitate.fileio import remove_stale_temporaries

RUNS_ROOT = Path("runs")


def run_name(env_id: str, command: str, seed: int, timestamp: float | None = None) -> str:
    """``<env>__<command>__<seed>__<YYYYmmdd-HHMMSS>`` with the env id made path-safe."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(timestamp))
    safe_env = re.sub(r"[^A-Za-z0-9._-]+", "-", env_id)
    return f"{safe_env}__{command}__{seed}__{stamp}"


def default_run_dir(env_id: str, command: str, seed: int, root: Path = RUNS_ROOT) -> Path:
    """``root/<env>__<command>__<seed>__<time>`` (not created)."""
    return root / run_name(env_id, command, seed)


def make_run_dir(
    env_id: str, command: str, seed: int, out: Path | None = None, root: Path = RUNS_ROOT
) -> Path:
    """Create and return ``out`` if given, else a new folder under ``root``."""
    path = out if out is not None else root / run_name(env_id, command, seed)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def run_folder(
    env_id: str, command: str, seed: int, out: Path | None = None, root: Path = RUNS_ROOT
) -> Iterator[Path]:
    """:func:`make_run_dir` for the body of a command: the folders it created are removed
    again if the body fails or is interrupted before writing anything into them."""
    path = out if out is not None else root / run_name(env_id, command, seed)
    created = _missing_folders(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        yield path
    except BaseException:
        _remove_if_empty(created)
        raise


def config_to_json(config: Any) -> Any:
    """A dataclass (possibly nested, with paths and tuples) as JSON-safe data."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: config_to_json(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [config_to_json(v) for v in config]
    if isinstance(config, dict):
        return {str(k): config_to_json(v) for k, v in config.items()}
    if isinstance(config, Path):
        return str(config)
    return config


MARKER = ".imitate-run.json"
"""Written into every artefact set: which command wrote it, its run id, that it is whole."""


def _nearest_existing(path: Path) -> Path:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def check_out(
    path: Path, kind: Literal["dir", "file"], expected_bytes: int = 0, replace_file: bool = True
) -> None:
    """Raise ``OutputError`` now if ``path`` cannot receive output of ``kind``.

    Checks: an existing ``path`` of the other kind; a parent that is a file; a read-only or
    unwritable nearest existing folder (found by creating and removing a probe file);
    fewer free bytes than ``expected_bytes``; with ``replace_file=False``, any existing file.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        if kind == "dir" and not path.is_dir():
            raise OutputError(f"{path}: exists and is not a folder")
        if kind == "file" and path.is_dir():
            raise OutputError(f"{path}: is a folder, expected a file name")
        if kind == "file" and not replace_file:
            raise OutputError(f"{path}: exists; imitate does not overwrite it (choose a new name)")
    parent = _nearest_existing(path.parent if kind == "file" or not path.exists() else path)
    if not parent.is_dir():
        raise OutputError(f"{parent}: is not a folder, so {path} cannot be created")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".imitate-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{path}: {exc.strerror or exc} (in {parent})") from None
    if expected_bytes > 0:
        free = shutil.disk_usage(parent).free
        if free < expected_bytes:
            raise OutputError(
                f"{path}: {errno.errorcode.get(errno.ENOSPC, 'ENOSPC')}: needs about "
                f"{expected_bytes / 1e6:.1f} MB, {free / 1e6:.1f} MB free"
            )


@contextlib.contextmanager
def out_lock(target: Path) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``target`` (``flock``, not blocking): a second writer of
    the same ``--out`` gets ``OutputError`` instead of interleaving its files."""
    import fcntl

    lock_path = target.parent / f".{target.name}.lock"
    created = _missing_folders(target.parent)  # the default runs/ of a first run, ...
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        _remove_if_empty(created)
        raise os_error(exc, lock_path) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"{target}: another imitate process is writing it") from None
        try:
            yield
        finally:
            # Removed while still held (no litter beside every output). A writer that opened
            # it just before may lock the unlinked file and run alongside a third; each set
            # is still swapped in whole, so the worst case is last-wins, never a mix.
            with contextlib.suppress(OSError):
                os.unlink(lock_path)
    finally:
        os.close(fd)
        _remove_if_empty(created)  # an interrupted or failed command leaves no empty folder


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders (deepest first) that are empty; a folder that holds anything
    (the finished output) stops the walk."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _replaceable(target: Path) -> bool:
    """An existing folder imitate may replace: empty, or an artefact set imitate wrote."""
    return not any(target.iterdir()) or (target / MARKER).is_file()


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Move the finished folder ``tmp`` to ``target``, replacing an old set."""
    if not target.exists():
        os.rename(tmp, target)
        return
    if _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old set
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.rename(target, old)
    os.rename(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _relocate_text(folder: Path, old: str, new: str) -> None:
    """Replace the temporary folder's path by the final one in the set's text files."""
    for path in folder.rglob("*"):
        if path.suffix in (".json", ".jsonl", ".md", ".html", ".txt") and path.is_file():
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
            if old in text:
                path.write_text(text.replace(old, new), encoding="utf-8", errors="surrogateescape")


def relocate(value: Any, old: str, new: str) -> Any:
    """``value`` (nested dicts/lists/strings) with the path prefix ``old`` replaced by ``new``."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: relocate(v, old, new) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(relocate(v, old, new) for v in value)
    return value


@dataclasses.dataclass
class ArtefactSet:
    """The folder a command writes into (``work``) and where it will land (``target``)."""

    work: Path
    target: Path

    def final(self, value: Any) -> Any:
        """``value`` with paths inside ``work`` rewritten to their place in ``target``."""
        return relocate(value, str(self.work), str(self.target))


@contextlib.contextmanager
def artefact_dir(
    target: Path, command: str, inputs: tuple[Path | None, ...] = (), resuming: bool = False
) -> Iterator[ArtefactSet]:
    """Write an artefact set into a temporary sibling of ``target``, then swap it into place.

    On any exception (a full disk, SIGINT as :class:`~imitate.errors.Interrupted`) the
    temporary folder is removed and ``target`` is exactly what it was before (or absent).
    A ``target`` holding an interrupted run's state (``.resume/``, :func:`resumable`) is
    refused unless ``resuming`` (the command continues that run): replacing the folder
    would delete the state, and with it the finished part of that run.
    """
    target = Path(target)
    check_out(target, "dir")
    for source in inputs:
        if source is not None and target.resolve() in Path(source).resolve().parents:
            raise OutputError(
                f"{target}: holds the input {source}, which replacing the folder would delete; "
                "choose another --out"
            )
    if target.is_dir() and not _replaceable(target):
        raise OutputError(
            f"{target}: folder exists, is not empty and was not written by imitate "
            f"(no {MARKER}); choose a new --out"
        )
    if not resuming and (target / RESUME_DIR / "config.json").is_file():
        found = interrupted_command(target)
        how = f"imitate {found} --resume {target}" if found else f"--resume {target}"
        raise OutputError(
            f"{target}: holds an interrupted {found or 'imitate'} run; continue it with: {how} "
            f"(or choose another --out; removing {target / RESUME_DIR} discards that run)"
        )
    with out_lock(target):
        remove_stale_temporaries(target)
        try:
            work = Path(
                tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-{os.getpid()}-")
            )
        except OSError as exc:
            raise os_error(exc, target) from None
        try:
            artefacts = ArtefactSet(work, target)
            yield artefacts
            run_id = uuid.uuid4().hex
            marker = {"command": command, "run_id": run_id, "complete": True}
            (work / MARKER).write_text(json.dumps(marker) + "\n")
            _relocate_text(work, str(work), str(target))
            os.chmod(work, 0o777 & ~_umask())
            _swap_into_place(work, target)
        except OSError as exc:
            shutil.rmtree(work, ignore_errors=True)
            raise os_error(exc, target) from None
        except OutputError as exc:  # name the output, not its temporary folder
            shutil.rmtree(work, ignore_errors=True)
            raise OutputError(str(exc).replace(str(work), str(target))) from None
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


RESUME_DIR = ".resume"
"""Inside a run folder: the state of a long command (DAgger, ``run``) while it runs."""


@contextlib.contextmanager
def resumable(
    target: Path, command: str, config: dict[str, Any], resume: bool
) -> Iterator[tuple[Path, bool]]:
    """The folder ``target/.resume`` where a long command keeps what it has finished, and
    whether there is anything in it to continue from. Enter it inside
    ``artefact_dir(target, resuming=resume)`` (which holds the lock, and refuses a fresh
    run into a folder holding an interrupted one's state); before leaving,
    :func:`keep_state` moves the state into the new set.

    The folder outlives an interruption (SIGINT/SIGTERM as
    :class:`~imitate.errors.Interrupted`, or a kill), which the artefact set's temporary
    folder does not, so ``--resume`` can continue. Any other failure of a fresh run removes
    it again (and the marker and folder made for it): ``target`` is as it was before.
    The state holds ``config.json``: ``resume=True`` needs one written by ``command`` with
    the same ``config`` and raises :class:`~imitate.errors.ResumeError` otherwise.
    ``target`` gets imitate's marker (``complete: false``) when it has none, so that the
    folder stays imitate's to replace.
    """
    from imitate.errors import ResumeError, interrupted_in
    from imitate.fileio import write_json

    state = target / RESUME_DIR
    recorded = json_form({"command": command, "config": config})
    if resume:
        saved_path = state / "config.json"
        if not saved_path.is_file():
            marker = _marker(target)
            written_by = marker.get("command")
            if written_by not in (None, command):  # e.g. a bc folder given to dagger
                why = f"it holds a '{written_by}' run, not a '{command}' one"
            elif marker.get("complete"):
                why = "the run finished"
            else:
                why = "no interrupted run here"
            raise ResumeError(f"{target}: nothing to resume ({why})")
        check_same_settings(saved_path, recorded, target)
        try:
            yield state, True
        except BaseException as exc:
            if (inner := interrupted_in(exc)) is not None:
                inner.resume_hint = f"imitate {command} --resume {target}"
            raise
        return
    made_target = not target.exists()
    made_marker = not (target / MARKER).is_file()
    try:
        try:
            if state.exists():
                shutil.rmtree(state)
            state.mkdir(parents=True)
            if made_marker:
                marker = {"command": command, "complete": False}
                (target / MARKER).write_text(json.dumps(marker) + "\n")
        except OSError as exc:
            raise os_error(exc, target) from None
        write_json(state / "config.json", recorded)
        yield state, False
    except BaseException as exc:
        inner = interrupted_in(exc)  # also when a library wrapped the signal in its own error
        if inner is not None:
            inner.resume_hint = f"imitate {command} --resume {target}"
            raise  # the state stays, for --resume
        if isinstance(exc, KeyboardInterrupt):
            raise  # the state stays, for --resume
        shutil.rmtree(state, ignore_errors=True)
        if made_marker:
            (target / MARKER).unlink(missing_ok=True)
        if made_target:
            with contextlib.suppress(OSError):
                target.rmdir()
        raise


def interrupted_command(target: Path) -> str | None:
    """The command whose interrupted run left its state in ``target/.resume`` (from what
    :func:`resumable` wrote there), None when there is none or it cannot be read."""
    try:
        saved = json.loads((target / RESUME_DIR / "config.json").read_text())
    except (OSError, ValueError):
        return None
    command = saved.get("command") if isinstance(saved, dict) else None
    return command if isinstance(command, str) and command.isidentifier() else None


def json_form(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples as lists, paths as strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def check_same_settings(saved_path: Path, asked: Any, folder: Path) -> None:
    """Raise :class:`~imitate.errors.ResumeError` unless the JSON at ``saved_path`` equals
    ``asked`` (in :func:`json_form`); the message names the first setting that differs."""
    from imitate.errors import ResumeError

    try:
        saved = json.loads(saved_path.read_text())
    except (OSError, ValueError) as exc:
        raise ResumeError(f"{saved_path}: unreadable ({exc})") from None
    started_by, asked_form = _get(saved, "command"), json_form(asked)
    if isinstance(started_by, str) and started_by != _get(asked_form, "command"):
        raise ResumeError(  # e.g. `imitate run --resume` on an interrupted dagger run
            f"{folder}: holds an interrupted '{started_by}' run; resume it with "
            f"imitate {started_by} --resume {folder}"
        )
    difference = first_difference(saved, asked_form)
    if difference is not None:
        raise ResumeError(
            f"{folder}: was started with other settings ({difference}); "
            "resume with the settings it was started with"
        )


def _get(record: Any, key: str) -> Any:
    return record.get(key) if isinstance(record, dict) else None


def keep_state(state: Path, work: Path) -> None:
    """Move what a finished long command kept in ``state`` (but its config) into the artefact
    set being written in ``work``: the set keeps every round, and ``state`` is gone."""
    try:
        for entry in state.iterdir():
            if entry.name != "config.json":
                os.rename(entry, work / entry.name)
        shutil.rmtree(state)
    except OSError as exc:
        raise os_error(exc, work) from None


def _marker(folder: Path) -> dict[str, Any]:
    try:
        value = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def first_difference(saved: Any, asked: Any, where: str = "") -> str | None:
    """``'<key>: saved X, asked Y'`` for the first leaf where two JSON values differ."""
    if isinstance(saved, dict) and isinstance(asked, dict):
        for key in sorted(set(saved) | set(asked)):
            name = f"{where}.{key}" if where else str(key)
            if key not in saved or key not in asked:
                return f"{name}: only in the {'saved' if key in saved else 'new'} settings"
            found = first_difference(saved[key], asked[key], name)
            if found is not None:
                return found
        return None
    if saved != asked:
        return f"{where or 'value'}: saved {json.dumps(saved)}, asked {json.dumps(asked)}"
    return None


def refuse_foreign_file(path: Path) -> None:
    """An existing ``--out`` file is replaced only when it is an imitate dataset."""
    import zipfile

    if path.is_file():
        try:
            with zipfile.ZipFile(path) as archive:
                ours = "meta_json.npy" in archive.namelist()
        except (zipfile.BadZipFile, OSError):
            ours = False
        if not ours:
            raise OutputError(
                f"{path}: exists and is not an imitate dataset; imitate does not overwrite it"
            )


def config_from_json(cls: Any, data: Any, where: str = "config") -> Any:
    """The inverse of :func:`config_to_json` for the frozen config dataclass ``cls``:
    nested dataclasses, tuples, paths, literals and optional values are rebuilt from their
    annotations; missing fields keep their defaults; an unknown field or a value of the
    wrong type raises ``ConfigFileError`` naming it (``where``: its path in the file)."""
    import typing

    from imitate.errors import ConfigFileError

    if not isinstance(data, dict):
        raise ConfigFileError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigFileError(f"{where}: unknown field {unknown[0]!r} of {cls.__name__}")
    values = {
        name: _from_json(hints[name], value, f"{where}.{name}") for name, value in data.items()
    }
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigFileError(f"{where}: {exc}") from None


def _from_json(annotation: Any, value: Any, where: str) -> Any:
    import types
    import typing

    from imitate.errors import ConfigFileError

    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _from_json(args[0], value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for member in (a for a in args if a is not type(None)):
            try:
                return _from_json(member, value, where)
            except ConfigFileError:
                continue
        raise ConfigFileError(f"{where}: {value!r} does not fit {annotation}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigFileError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
    if dataclasses.is_dataclass(annotation):
        return config_from_json(annotation, value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigFileError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigFileError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(
            _from_json(a, v, f"{where}[{i}]")
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if annotation is Path:
        if isinstance(value, str):
            return Path(value)
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif (
        annotation is Any or (isinstance(annotation, type) and isinstance(value, annotation))
    ) and not (annotation is int and isinstance(value, bool)):
        return value
    raise ConfigFileError(
        f"{where}: {value!r} is not a {getattr(annotation, '__name__', annotation)}"
    )


def load_command_config(cls: Any, path: Path) -> Any:
    """The command config recorded in a run folder's ``config.json`` (``--from``)."""
    from imitate.errors import ConfigFileError

    if not path.is_file():
        raise ConfigFileError(f"{path}: config file not found")
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise os_error(exc, path) from None
    except json.JSONDecodeError as exc:
        raise ConfigFileError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise ConfigFileError(f"{path}: not a text file (expected a run's config.json)") from None
    return config_from_json(cls, data, str(path))


def resume_target(out: Path | None, resume: Path | None) -> Path | None:
    """The run folder: ``--resume DIR`` (``--out``, if also given, must name it too)."""
    from imitate.errors import ImitateError

    if resume is None:
        return out
    if out is not None and out.resolve() != resume.resolve():
        raise ImitateError(f"--resume {resume} continues that folder; drop --out {out}")
    return resume


def saved_settings(target: Path, command: str) -> dict[str, Any] | None:
    """The settings an interrupted ``command`` run in ``target`` was started with (what
    :func:`resumable` wrote to ``target/.resume/config.json``), or None when there are none
    (no interrupted run, an unreadable file, another command's)."""
    try:
        saved = json.loads((target / RESUME_DIR / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("command") != command:
        return None
    settings = saved.get("config")
    return settings if isinstance(settings, dict) else None


def resume_settings(command: Any) -> dict[str, Any]:
    """The settings a ``--resume`` must repeat: the command's, without where and how it
    reports (``--out``, ``--resume``, ``--json``, ``--logger``)."""
    recorded = config_to_json(command)
    for key in ("out", "resume", "json", "logger"):
        recorded.pop(key, None)
    return dict(recorded)


@contextlib.contextmanager
def resumable_artefacts(
    target: Path,
    command: str,
    settings: dict[str, Any],
    resume: bool,
    inputs: tuple[Path | None, ...] = (),
) -> Iterator[tuple[ArtefactSet, Path, bool]]:
    """:func:`artefact_dir` and :func:`resumable` together, as a long command (DAgger,
    ``run``) uses them: yields (the artefact set, its state folder, whether it resumes);
    on success the state's rounds move into the new set (:func:`keep_state`)."""
    with (
        artefact_dir(target, command, inputs=inputs, resuming=resume) as artefacts,
        resumable(target, command, settings, resume) as (state, resuming),
    ):
        yield artefacts, state, resuming
        keep_state(state, artefacts.work)
