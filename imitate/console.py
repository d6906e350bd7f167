"""The terminal contract of the ``imitate`` command, apart from its wiring (:mod:`imitate.cli`).

* Bad input: one line ``imitate: error: ...`` on stderr (and ``{"error": ...}`` on stdout
  under ``--json``), exit 2. tyro reports parse errors in a box of several rows;
  :func:`error_message` condenses it to the one informative line and adds a did-you-mean
  from the command's own vocabulary (tyro lists near matches across all commands).
* Warnings: one line ``imitate: warning: ...`` each, Python warnings included.
* SIGINT/SIGTERM: ``imitate: interrupted`` and exit 130/143 (:func:`guarded`), with any Ray
  this process started shut down.
* Human output: :func:`print_human` prints a result dict as indented ``key: value`` lines.

Hand-written because tyro has no option for a one-line error; the rules are tested in
tests/test_cli.py and tests/test_faults.py.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any, get_args

import tyro

from imitate.errors import Interrupted

_BOX = r"[│╭╮╰╯┃]"
_RULE = r"[-─━ ]+"
_TITLES = ("Value error", "Parsing error", "Required options", "Unrecognized options")


def stderr_line(text: str) -> None:
    with contextlib.suppress(BrokenPipeError, ValueError, OSError):
        print(text, file=sys.stderr, flush=True)


def warn(warnings: list[str], message: str) -> None:
    """One warning line on stderr now; the list goes into the result (``--json``)."""
    print(f"imitate: warning: {message}", file=sys.stderr)
    warnings.append(message)


def with_warnings(warnings: list[str], result: dict[str, Any]) -> dict[str, Any]:
    return {**result, "warnings": warnings} if warnings else result


def warning_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Python warnings raised while a command runs (e.g. DAgger's PartialRoundWarning) as
    one line ``imitate: warning: ...``, like the command's own data warnings."""
    stderr_line(f"imitate: warning: {message}")


def route_mujoco_warnings(env: Any) -> None:
    """For a MuJoCo env: MuJoCo's C warnings (printed at every model compile, e.g.
    HalfCheetah's deprecated ``settotalmass``, once per env made) as one line
    ``imitate: warning: mujoco: ...`` each, once per distinct message. The command owns the
    process, as it owns ``warnings.showwarning``; other envs leave MuJoCo unimported."""
    import gymnasium as gym

    try:
        entry = gym.spec(env).entry_point if isinstance(env, str) else env.entry_point
    except (gym.error.Error, AttributeError):
        return  # an unknown id is reported by the caller's own check
    if "mujoco" not in str(entry):
        return
    import mujoco

    seen: set[str] = set()

    def once(message: str) -> None:
        if message not in seen:
            seen.add(message)
            stderr_line(f"imitate: warning: mujoco: {message}")

    mujoco.set_mju_user_warning(once)


def report_error(message: str, as_json: bool) -> None:
    """The error line on stderr and, under ``--json``, ``{"error": message}`` on stdout."""
    if as_json:
        print(json.dumps({"error": message}))
    print(f"imitate: error: {message}", file=sys.stderr)


def command_names(command: Any) -> list[str]:
    """The subcommand names of a tyro union of ``Annotated[..., subcommand(name)]``."""
    names = []
    for member in get_args(command):
        for marker in get_args(member)[1:]:
            name = getattr(marker, "name", None)
            if isinstance(name, str):
                names.append(name)
    return names


def command_types(command: Any) -> list[type]:
    """The dataclasses of a tyro union of ``Annotated[Dataclass, subcommand(name)]``."""
    return [get_args(member)[0] for member in get_args(command)]


def _one_line(text: str) -> str:
    """Condense tyro's boxed error message into one line: the first informative row."""
    rows = [re.sub(_BOX, " ", line).strip() for line in text.splitlines()]
    rows = [row for row in rows if row and not re.fullmatch(_RULE, row)]
    rows = [row for row in rows if row not in _TITLES and not row.startswith("usage:")]
    if not rows:
        return "invalid arguments (see imitate --help)"
    if rows[0].startswith("Error parsing "):  # a value refused by imitate.validate, wrapped
        message = []
        for row in rows:
            if row.startswith("For full helptext"):
                break
            message.append(row)
        return re.sub(r"^Error parsing [^:]*: ", "", " ".join(message))
    if rows[0].endswith(":") and len(rows) > 1:
        return f"{rows[0]} {rows[1]}"
    return rows[0]


def _boxed_rows(text: str) -> list[str]:
    """tyro's boxed message as rows of text, box drawing removed; '' marks a separator."""
    rows = []
    for line in text.splitlines():
        row = re.sub(_BOX, " ", line).strip()
        if re.fullmatch(_RULE, row):
            row = ""
        elif not row:
            continue
        rows.append(row)
    return rows


def did_you_mean(word: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, else ''."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _subcommand_path(argv: list[str]) -> str:
    """The subcommands the user typed (``expert eval``), i.e. the leading non-flag words."""
    words = []
    for arg in argv:
        if arg.startswith("-"):
            break
        words.append(arg)
    return " ".join(words)


def _unknown_command(word: str, commands: list[str]) -> str:
    hint = did_you_mean(word, commands)
    return f"unknown command {word!r}{hint}; commands: {', '.join(commands)}"


def error_message(
    text: str,
    argv: list[str],
    commands: list[str],
    command_flags: Callable[[], list[str]] | None = None,
) -> str:
    """One line from tyro's error box: an invalid choice names the flag and the choices;
    an unknown command or flag gets a did-you-mean from the command's own vocabulary
    (tyro's near matches, and ``command_flags()``: every flag of the command typed)."""
    if argv and not argv[0].startswith("-") and argv[0] not in commands:
        # (tyro words this differently when a flag follows the word, e.g. `colect --json`)
        return _unknown_command(argv[0], commands)
    rows = _boxed_rows(text)
    body = [r for r in rows if r not in _TITLES and not r.startswith("usage:")]
    if "Invalid choice" in rows and "" in rows:
        paragraph = []  # tyro wraps its sentence over several rows of the box
        for row in rows[rows.index("") + 1 :]:
            if row == "":
                break
            paragraph.append(row)
        return " ".join(paragraph)
    bad_number = _bad_number(rows, argv)
    if bad_number is not None:
        return bad_number
    for row in rows:  # `--episodes` at the end of the line: tyro's title alone names nothing
        missing = re.fullmatch(_MISSING_VALUE, row)
        if missing is not None:
            flag, n = missing.group(1), int(missing.group(2))
            return f"{flag} needs a value" if n == 1 else f"{flag} needs {n} values"
    unknown = next((r for r in body if r.startswith("Unrecognized options:")), None)
    if "Unrecognized or misplaced options:" in body:  # (tyro's words after a subcommand)
        at = body.index("Unrecognized or misplaced options:")
        misplaced = []
        for row in body[at + 1 :]:
            if not row.endswith(")") or "(applied to " not in row:
                break
            misplaced.append(row.split(" (applied to ", 1)[0])
        unknown = "Unrecognized options: " + ", ".join(misplaced)
    if unknown is not None:
        words = [w.strip() for w in unknown.split(":", 1)[1].split(",")]
        flags = [w for w in words if w.startswith("-")]
        available = next((r for r in body if r.startswith("Available subcommands:")), None)
        if available is not None and not words[0].startswith("-"):  # an unknown (sub)command
            at = rows.index(available)
            listed = " ".join(r for r in rows[at : at + 3] if r and not r.startswith("For full"))
            return _unknown_command(
                words[0], [c.strip() for c in listed.split(":", 1)[1].split(",")]
            )
        if flags:
            where = _subcommand_path(argv)
            # tyro lists near matches across all commands: keep this command's own
            candidates, flag = [], None
            for row in body:
                if row.startswith("--"):
                    flag = row.split()[0]
                elif flag and row == f"in imitate {where} --help":
                    candidates.append(flag)
            hint = did_you_mean(flags[0], candidates)
            if not hint and command_flags is not None:
                hint = did_you_mean(flags[0], command_flags())
            return f"unrecognized option {flags[0]}{hint} (see imitate {where} --help)".replace(
                "imitate  --help", "imitate --help"
            )
    return _one_line(text)


_NUMBERS = {"INT": "an integer", "FLOAT": "a number"}
_MISSING_VALUE = r"Missing value for argument '(\S+)'\. Expected (\d+) values?\."
"""tyro's row for a flag given without its value(s) (the box's title says only that)."""


def _bad_number(rows: list[str], argv: list[str]) -> str | None:
    """``--flag: expected an integer, got 'abc'`` for a number flag given a non-number
    (tyro prints Python's conversion errors, one per type of an optional flag)."""
    if "Value error" not in rows or "Argument helptext:" not in rows:
        return None
    at = rows.index("Argument helptext:")
    words = rows[at + 1].split() if at + 1 < len(rows) else []
    if len(words) != 2 or not words[0].startswith("--"):
        return None
    flag, metavar = words
    kind = _NUMBERS.get(metavar.removeprefix("{None}|"))
    if kind is None:
        return None
    given = next(
        (argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag),
        next((arg.split("=", 1)[1] for arg in argv if arg.startswith(flag + "=")), None),
    )
    optional = " (or None: the default)" if metavar.startswith("{None}|") else ""
    return f"{flag}: expected {kind}{optional}, got {given!r}" if given is not None else None


def command_flags(command: Any, argv: list[str], description: str) -> list[str]:
    """Every flag of the (sub)command ``argv`` names, read from its ``--help``."""
    captured = io.StringIO()
    out, err = contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured)
    with out, err, contextlib.suppress(SystemExit):
        tyro.cli(
            command,
            args=[*_subcommand_path(argv).split(), "--help"],
            prog="imitate",
            description=description,
            config=(tyro.conf.OmitSubcommandPrefixes,),
        )
    return re.findall(r"^\s+(--[a-z0-9][a-z0-9_.-]*)", captured.getvalue(), re.MULTILINE)


def parse(command: Any, argv: list[str], description: str, default: Any = None) -> Any:
    """Parse ``argv`` into one of ``command``'s dataclasses (tyro, ``prog`` imitate); bad
    flags exit 2 with one line on stderr. ``default``: an instance whose values become the
    defaults (``--from config.json``)."""
    from imitate.tyro_hooks import install

    install()  # plain help text; no typeguard import for default checks
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            extra = {} if default is None else {"default": default}
            return tyro.cli(
                command,
                args=argv,
                prog="imitate",
                description=description,
                config=(tyro.conf.OmitSubcommandPrefixes,),
                **extra,
            )
    except SystemExit as exc:
        if exc.code in (0, None):
            sys.stdout.write(captured.getvalue())
            raise
        names = command_names(command)

        def flags() -> list[str]:
            return command_flags(command, argv, description)

        message = error_message(captured.getvalue(), argv, names, flags)
        report_error(message, "--json" in argv)
        raise SystemExit(2) from None
    except ValueError as exc:
        report_error(str(exc), "--json" in argv)
        raise SystemExit(2) from None


def _is_table(rows: list[dict[str, Any]]) -> bool:
    """Rows that print as one table: the same keys in each, every value a scalar."""
    scalar = (str, int, float, bool, type(None))
    keys = list(rows[0])
    return all(list(r) == keys and all(isinstance(v, scalar) for v in r.values()) for r in rows)


def _cell(value: Any) -> str:
    """A table cell: large numbers in full with thousands separators (4,680.4, 1,000,000),
    small floats to 4 significant figures, booleans as yes/no, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def _table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """``rows`` as a header line and aligned columns (numbers right-aligned)."""
    keys = list(rows[0])
    cells = [[_cell(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    numeric = [all(isinstance(r[k], (int, float)) or r[k] is None for r in rows) for k in keys]

    def line(values: list[str]) -> str:
        padded = (
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    return [line(keys), *(line(c) for c in cells)]


def print_human(result: dict[str, Any], indent: str = "") -> None:
    """A result as ``key: value`` lines, nested dicts indented, rows of dicts as a table
    (or as ``key=value`` cells where a row holds nested values); per-episode lists are
    left to ``--json``."""
    for key, value in result.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            print_human(value, indent + "  ")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            print(f"{indent}{key}:")
            if _is_table(value):
                for line in _table_lines(value):
                    print(f"{indent}  {line}")
                continue
            for row in value:
                cells = (
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                )
                print(f"{indent}  " + "  ".join(cells))
        elif isinstance(value, list):
            continue  # per-episode lists are in --json output
        elif isinstance(value, float):
            print(f"{indent}{key}: {value:.4g}")
        else:
            print(f"{indent}{key}: {value}")


def emit(result: dict[str, Any], as_json: bool) -> None:
    """A command's result on stdout: one JSON object, or its ``summary`` text (the main
    job's tables) and report paths, or ``key: value`` lines."""
    if as_json:
        print(json.dumps(result, default=float))
    elif isinstance(result.get("summary"), str):  # the main job's tables; it names its reports
        print(result["summary"])
        paths = [
            f"{k.replace('_', '.')}: {result[k]}" for k in ("report", "report_html") if k in result
        ]
        if paths:
            print("\n" + "\n".join(paths))
    else:
        print_human(result)


def run_handler(handler: Callable[[], dict[str, Any]], as_json: bool) -> int:
    """Run a command's handler: its result printed (:func:`emit`) and exit code 0, or one
    error line and 2 for bad input (``ImitateError``) and file-system faults (``OSError``).

    stdout holds the result alone: what the handler's libraries print there (minigrid's
    "Sampling rejected: ..." at BabyAI resets, SB3's training logs) goes to stderr, so
    that ``--json`` output stays one JSON object."""
    from imitate.errors import ImitateError, interrupted_in, os_error

    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = handler()
    except ImitateError as exc:
        if interrupted_in(exc) is not None:  # e.g. a backend error wrapping the signal
            raise
        report_error(str(exc), as_json)
        return 2
    except OSError as exc:  # disk full, read-only, permission, path kind: one line too
        report_error(str(os_error(exc)), as_json)
        return 2
    try:
        emit(result, as_json)
    except BrokenPipeError:  # e.g. piped into `head`: the reader has gone, nothing to report
        sys.stderr.close()
    return 0


def shutdown_ray() -> None:
    """Stop the Ray this command started (or joined): no Ray process outlives the driver."""
    ray = sys.modules.get("ray")
    if ray is None:
        return
    try:
        if ray.is_initialized():
            ray.shutdown()
    except Exception:  # shutting down after a failure: nothing more to report
        pass


def guarded(body: Callable[[], int], own_process: bool) -> int:
    """Run ``body`` with SIGINT/SIGTERM raising; an interrupt prints ``imitate:
    interrupted`` and returns 128 + signal. ``own_process``: the console script (not a
    caller of ``main``), whose teardown is skipped after Ray ran and a signal arrived."""
    from imitate.errors import interrupted_in
    from imitate.signals import signals_raise

    code: int | None = None
    hint: str | None = None
    with signals_raise():
        try:
            return body()
        except Interrupted as exc:
            code, hint = 128 + exc.signum, exc.resume_hint
        except KeyboardInterrupt:  # raised by code that caught our handler's signal itself
            code = 130
        except BaseException as exc:  # Ray's Cython, torch's zip writer wrap our Interrupted
            inner = interrupted_in(exc)
            if inner is None:
                raise
            code, hint = 128 + inner.signum, inner.resume_hint
        finally:
            if code is not None:  # one line; a resumable command says how to continue
                stderr_line("imitate: interrupted" + (f"; continue with: {hint}" if hint else ""))
            ray_used = "ray" in sys.modules
            shutdown_ray()
            if code is not None and ray_used and own_process:
                # The process is ending on a signal after Ray ran in it: skip the interpreter's
                # teardown, where Ray's native objects sometimes crash (SIGSEGV) afterwards.
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
    return code
