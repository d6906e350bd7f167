"""Atomic file writes: a reader never sees a half-written file.

Each writer writes to a temporary file in the destination folder, flushes it to
disk and renames it over the target (``os.replace`` is atomic on POSIX). Temporary
names carry the writer's pid, so a later write removes those a killed writer left.
Every ``OSError`` leaves here as one :class:`~imitate.errors.OutputError`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from imitate.errors import os_error


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(f)`` on a temporary binary file, then rename it to ``path``.

    The temporary file is ``.<name>.<pid>.<random>.tmp`` beside the target; those left by
    a process that no longer runs (a SIGKILL between write and rename) are removed here.
    An ``OSError`` (disk full, read-only, permission, a parent that is a file) becomes
    :class:`~imitate.errors.OutputError` ``<path>: <what>``."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target)
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp"
        )
    except OSError as exc:
        raise os_error(exc, target) from None
    try:
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, target)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise os_error(exc, target) from None
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (on this host)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Delete ``.<name>.<pid>.*.tmp`` files and ``.<name>.tmp-<pid>-*`` folders beside
    ``target`` whose writer process is gone; returns what was removed."""
    removed: list[Path] = []
    parent = target.parent
    if not parent.is_dir():
        return removed
    for prefix in (f".{target.name}.", f".{target.name}.tmp-", f".{target.name}.old-"):
        for entry in parent.glob(glob_escape(prefix) + "*"):
            rest = entry.name[len(prefix) :]
            pid_text = rest.replace("-", ".").split(".", 1)[0]
            if not pid_text.isdigit() or pid_alive(int(pid_text)):
                continue
            if prefix == f".{target.name}." and not entry.name.endswith(".tmp"):
                continue
            try:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed.append(entry)
            except OSError:
                continue  # someone else's, or already gone: not ours to fail on
    return removed


def glob_escape(text: str) -> str:
    """``text`` with glob metacharacters escaped."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically write ``data``."""

    def write(f: IO[bytes]) -> None:
        f.write(data)

    return atomic_write(path, write)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically write UTF-8 text."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_jsonl(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> Path:
    """Atomically write one JSON object per line."""
    lines = [json.dumps(r, sort_keys=True, default=_json_default) for r in records]
    return write_text(path, "".join(line + "\n" for line in lines))


def _json_default(obj: Any) -> Any:
    """Serialise numpy scalars/arrays and paths, which json does not know."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
