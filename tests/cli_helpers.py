"""The one way tests call the ``imitate`` command in-process (imported by the CLI tests)."""

from __future__ import annotations

import pytest


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``imitate <args>`` through ``main``: (exit code, stdout, stderr). Argument errors
    exit from the parser with ``SystemExit``, which becomes the code."""
    from imitate.cli import main

    try:
        code = main(args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
