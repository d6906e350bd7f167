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


class CompressedFileError(ImitateError):
    """A ``.imz`` compressed-actions file is corrupt, or does not match its policy or data."""
