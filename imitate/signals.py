"""SIGINT and SIGTERM for the ``imitate`` command: one line ``imitate: interrupted``, exit
``128 + signum`` (130, 143), never a traceback.

Two phases. While the command is still importing (torch alone takes seconds) nothing has
been written, so :func:`exit_quietly_on_signals` makes a signal print the line and leave
at once (``os._exit``). From ``main`` on, :func:`signals_raise` turns the signal into
:class:`~imitate.errors.Interrupted`, which unwinds: every ``finally`` runs, temporary
artefact folders are removed, Ray is shut down. Later signals during that unwinding are
ignored, so clean-up finishes. A signal that lands while Python runs a callback whose
exceptions it ignores (a weakref callback inside an import, a ``__del__``) would be lost
with the handlers already disarmed, and the command would run on; the unraisable hook
installed with the handlers catches that ``Interrupted`` and delivers the signal again a
moment later (from a timer thread), so it raises at an ordinary line. Handlers are
process-wide, so only the command installs them (a library user's program keeps its own).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from imitate.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _quiet_exit(signum: int, frame: Any) -> None:
    os.write(2, b"imitate: interrupted\n")
    os._exit(128 + signum)


def exit_quietly_on_signals() -> None:
    """Phase one (imports): a signal prints ``imitate: interrupted`` and exits."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _quiet_exit)


def quiet_while_the_command_starts() -> None:
    """Phase one, but only when this process is the ``imitate`` command (the console script,
    or ``python -m imitate.cli``, whose ``argv[0]`` is ``-m`` while the package imports)."""
    argv0 = sys.argv[0] if sys.argv else ""
    command = argv0 == "-m" or os.path.basename(argv0) == "imitate"
    if command and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        exit_quietly_on_signals()


def _raise(signum: int, frame: Any) -> None:
    for other in SIGNALS:  # unwinding must not be cut short by a second Ctrl-C
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signum)


_raise.imitate = True  # type: ignore[attr-defined]  # recognised by restore_after()


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Phase two (``main``): SIGINT/SIGTERM raise ``Interrupted``; previous handlers return
    afterwards (tests call ``main`` in-process)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    previous_hook = sys.unraisablehook

    def redeliver(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, Interrupted):  # swallowed: raise it again
            signum = unraisable.exc_value.signum
            signal.signal(signum, _raise)
            # from another thread, a moment later: raised here, it would be swallowed again
            threading.Timer(0.01, os.kill, (os.getpid(), signum)).start()
        else:
            previous_hook(unraisable)

    for signum in SIGNALS:
        signal.signal(signum, _raise)
    sys.unraisablehook = redeliver
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while a write that must not be cut in half runs (a training
    snapshot: the model zip and its replay buffer are one state): a signal arriving
    meanwhile raises :class:`~imitate.errors.Interrupted` once the block has finished.
    Only where imitate's handlers are installed (the command, main thread); elsewhere
    the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    if not all(getattr(handler, "imitate", False) for handler in previous.values()):
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        pending.append(signum)

    for signum in SIGNALS:
        signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if pending:
        _raise(pending[0], None)


@contextlib.contextmanager
def keep_handlers() -> Iterator[None]:
    """Restore imitate's handlers after a library (``ray.init``) installed its own."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    ours = getattr(previous[signal.SIGTERM], "imitate", False)
    if ours:  # Ray's native (absl) handler would dump a stack and abort on SIGTERM (exit 134)
        os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    try:
        yield
    except SystemExit as exc:  # ray.init's own handler turns SIGTERM into sys.exit(15)
        if ours and exc.code == signal.SIGTERM:
            raise Interrupted(signal.SIGTERM) from None
        raise
    finally:
        for signum, handler in previous.items():
            if getattr(handler, "imitate", False):
                signal.signal(signum, handler)
