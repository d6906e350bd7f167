"""User-facing error types.

Every error a user can cause (bad file, bad env id, mismatched spaces) is an
``ImitateError``; the CLI prints its message as one line and exits with code 2.
Programming errors stay ordinary exceptions.
"""

from __future__ import annotations


class ImitateError(Exception):
    """Base class for errors caused by user input; the message is one line."""


class DatasetError(ImitateError):
    """A dataset file is missing, corrupt or inconsistent (the message names file and field)."""


class CheckpointError(ImitateError):
    """A policy checkpoint is missing, corrupt or of an unsupported kind."""


class EnvError(ImitateError):
    """An environment id is unknown or its spaces do not match the data or policy."""


class UnsupportedSpaceError(ImitateError):
    """An observation or action space that imitate has no head for."""


class BackendError(ImitateError):
    """The rollout backend cannot run: Ray missing, unreachable, or its workers keep dying."""


class ResumeError(ImitateError):
    """A run cannot be resumed: nothing saved there, or it was started with another config."""


class CompressedFileError(ImitateError):
    """A ``.imz`` compressed-actions file is corrupt, or does not match its policy or data."""


class OutputError(ImitateError):
    """A file or folder cannot be written or read: disk full, read-only, permission, path kind.

    The message is ``<path>: <what>``; :func:`os_error` builds it from an ``OSError``."""


class ConfigFileError(ImitateError):
    """A ``config.json`` given to ``--from`` does not describe the command's config."""


class ValueCheckError(ImitateError, ValueError):
    """A setting is out of its range (a negative seed, a zero temperature, ...)."""


class HorizonError(ValueCheckError):
    """The ``--horizons`` of a cost-vs-horizon fit leave fewer than 2 distinct horizons
    within the env's time limit (checked before any rollout)."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: unwinds (``finally`` blocks run) to ``main``, which exits
    with ``128 + signum``. A ``BaseException`` so that ``except Exception`` does not eat it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.resume_hint: str | None = None  # set by a resumable command: how to continue


def interrupted_in(exc: BaseException) -> Interrupted | None:
    """The ``Interrupted`` that is ``exc`` or caused it (its cause/context chain), if any.

    A signal landing inside a library can come back wrapped: torch's zip writer or a
    ``zipfile`` closing after the signal raises its own error with ``Interrupted`` as its
    context. That is still an interruption (exit 128 + signum, resume state kept)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, Interrupted):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


# Phrases with which torch and numpy suggest loading a file unsafely (running its pickle).
_UNSAFE_ADVICE = ("weights_only", "allow_pickle", "unsafe", "trust the source", "pickle")


def scrub(message: str) -> str:
    """The first line of a library's error message, or, when the message advises loading
    the file unsafely, a plain statement that the file holds pickled objects.

    torch (``Re-running torch.load with weights_only set to False will likely succeed``)
    and numpy (``load it unsafely using allow_pickle=``) suggest running the file's
    pickle; imitate never passes that advice on."""
    if any(phrase in message.lower() for phrase in _UNSAFE_ADVICE):
        return "it holds pickled objects, which imitate never loads"
    lines = message.strip().splitlines()
    return lines[0] if lines else ""


def os_error(exc: OSError, path: object = None) -> OutputError:
    """``OutputError('<path>: <what>')`` for an ``OSError`` (disk full, read-only, ...)."""
    where = exc.filename if exc.filename is not None else path
    what = exc.strerror or str(exc) or type(exc).__name__
    return OutputError(f"{where}: {what}" if where is not None else what)
