"""Start-up of the command line: median wall time of fresh processes (issue 18).

Each case runs ``python -m imitate.cli ...`` as a new process ``--repeats`` times
(default 5) and reports the median and minimum wall time and the median CPU time
(user + sys of the child, which a loaded machine inflates less than wall time):

- ``help``: ``imitate --help``
- ``expert_list``: ``imitate expert list``
- ``eval``: ``imitate eval --policy P --episodes 1`` of a CartPole BC policy (with the
  default calibration against the zoo expert that labelled its demonstrations)
- ``collect``: ``imitate collect --env CartPole-v1 --expert zoo --episodes 1``

Baselines in the same run: the bare interpreter (``python -c pass``), ``import torch``
(what every command paid before), and, when a virtualenv with the ``imitation``
package is given (``--peer-python``; made with ``python -m venv /tmp/peer &&
/tmp/peer/bin/pip install imitation``), the peer library's import of its BC and DAgger
modules. ``--distill`` also times the README's CartPole distillation from Python
(``distill(teacher, "CartPole-v1", DistillConfig(student=PolicyConfig((8,))))`` in a
fresh process with imitate's default thread policy) against the same through the CLI
(``imitate distill --env CartPole-v1 --teacher zoo --hidden 8``). Child processes get
the environment without ``OMP_NUM_THREADS``/``IMITATE_THREADS``, as a new user has it.
The load average before and after is recorded: other work on the machine slows every
number down.

    python -m benchmarks.bench_startup [--repeats 5] [--distill] [--peer-python PATH]
    python -m benchmarks.bench_startup --skip-startup --distill --name bench_startup_distill

Writes ``benchmarks/results/bench_startup.json`` (or ``NAME.json``).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import emit

REPO = Path(__file__).resolve().parents[1]
TARGETS_S = {"help": 0.3, "expert_list": 0.5, "eval": 1.0, "collect": 1.5}
DISTILL_PY = (
    "from agents.zoo import load_zoo_teacher\n"
    "from imitate.distill import DistillConfig, distill\n"
    "from imitate.policy import PolicyConfig\n"
    "teacher = load_zoo_teacher('CartPole-v1')\n"
    "student, info = distill(teacher, 'CartPole-v1', DistillConfig(student=PolicyConfig((8,))))\n"
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "IMITATE_THREADS")}
    env["PYTHONPATH"] = str(REPO)
    return env


def _timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one fresh process; it must exit 0."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(argv: list[str], cwd: Path, repeats: int) -> dict[str, Any]:
    runs = [_timed(argv, cwd) for _ in range(repeats)]
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    return {
        "command": " ".join(argv[2:] if argv[1] == "-m" else argv),
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "median_cpu_s": statistics.median(cpus),
        "wall_s": walls,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--distill", action="store_true", help="also time the distill parity")
    parser.add_argument("--distill-repeats", type=int, default=3)
    parser.add_argument(
        "--name", default="bench_startup", help="results file benchmarks/results/NAME.json"
    )
    parser.add_argument("--skip-startup", action="store_true", help="only the distill parity")
    parser.add_argument("--peer-python", type=Path, default=Path("/tmp/i18_peer_venv/bin/python"))
    args = parser.parse_args(argv)
    py = sys.executable
    cli = [py, "-m", "imitate.cli"]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # a CartPole BC policy, as a new user would make it
        subprocess.run([*cli, "collect", "--expert", "zoo", "--episodes", "5", "--out", "d.npz"],
                       cwd=work, env=_env(), check=True, capture_output=True)  # fmt: skip
        subprocess.run(
            [*cli, "bc", "--data", "d.npz", "--out", "bc", "--max-steps", "2000",
             "--eval-episodes", "0"],
            cwd=work, env=_env(), check=True, capture_output=True,
        )  # fmt: skip
        cases = {
            "help": [*cli, "--help"],
            "expert_list": [*cli, "expert", "list"],
            "eval": [*cli, "eval", "--policy", "bc/policy.pt", "--episodes", "1"],
            "collect": [
                *cli,
                "collect",
                "--env",
                "CartPole-v1",
                "--expert",
                "zoo",
                "--episodes",
                "1",
                "--out",
                "c.npz",
            ],
        }
        results: dict[str, Any] = {}
        for name, command in {} if args.skip_startup else cases.items():
            results[name] = measure(command, work, args.repeats)
            results[name]["target_s"] = TARGETS_S[name]
            results[name]["meets_target"] = results[name]["median_s"] <= TARGETS_S[name]
            print(f"{name}: median {results[name]['median_s']:.3f} s", file=sys.stderr)
        baselines = {
            "python": measure([py, "-c", "pass"], work, args.repeats),
            "import_torch": measure([py, "-c", "import torch"], work, args.repeats),
        }
        if args.peer_python.is_file() and not args.skip_startup:
            peer = "import imitation.algorithms.bc, imitation.algorithms.dagger"
            baselines["peer_imitation_import"] = measure(
                [str(args.peer_python), "-c", peer], work, args.repeats
            )
            version = subprocess.run(
                [str(args.peer_python), "-c", "import imitation; print(imitation.__version__)"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip
            baselines["peer_imitation_import"]["version"] = version
        distill_result: dict[str, Any] | None = None
        if args.distill:
            n = args.distill_repeats
            python_side = measure([py, "-c", DISTILL_PY], work, n)
            cli_side = measure(
                [*cli, "distill", "--env", "CartPole-v1", "--teacher", "zoo", "--hidden", "8",
                 "--out", "student"],
                work, n,
            )  # fmt: skip
            distill_result = {
                "python": python_side,
                "cli": cli_side,
                "python_over_cli": python_side["median_s"] / cli_side["median_s"],
                "target_ratio": 1.3,
            }
    payload: dict[str, Any] = {
        "repeats": args.repeats,
        "cases": results,
        "baselines": baselines,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    if distill_result is not None:
        payload["distill"] = distill_result
    emit(args.name, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
