"""Helpers shared by the benchmark scripts: timing, JSON output, energy scores."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imitate.calibration import energy_score

RESULTS = Path(__file__).parent / "results"


def energy_of(policy: Any, states: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``[N]`` energy scores ``-T logsumexp(f / T)`` of a SoftPolicy on ``states``."""
    logits = torch.as_tensor(policy.logits(states.astype(np.float32)))
    return energy_score(logits, temperature).numpy()


def best_of(repeats: int, run: Callable[[], int]) -> tuple[float, int]:
    """Run ``run`` (returning a work count) ``repeats`` times; the fastest (seconds, count)."""
    best = (float("inf"), 0)
    for _ in range(repeats):
        start = time.perf_counter()
        count = run()
        elapsed = time.perf_counter() - start
        if elapsed < best[0]:
            best = (elapsed, count)
    return best


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "torch_threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
    }


def emit(name: str, result: dict[str, Any]) -> None:
    """Print ``result`` as JSON and write it to ``benchmarks/results/<name>.json``."""
    payload = {"benchmark": name, "machine": machine(), **result}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
