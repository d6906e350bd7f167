"""Exported policy size and time per action (batch 1): torch, TorchScript, ONNX Runtime, numpy, C.

The policy is a CartPole student distilled from the zoo teacher (hidden (8,)).
C is timed by a small compiled C loop (clock_gettime), not through ctypes.

    python -m benchmarks.bench_export
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from agents.zoo import load_zoo_teacher
from benchmarks.common import emit
from imitate import collect
from imitate.distill import DistillConfig, distill
from imitate.export import export_policy, load_exported
from imitate.export.c import CFLAGS, weight_bytes
from imitate.policy import PolicyConfig

C_TIMER = r"""#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <time.h>
#include "policy.h"
int main(void) {
    float obs[POLICY_OBS_DIM] = {0.01f, -0.02f, 0.03f, 0.01f};
    policy_action_t action[POLICY_ACTION_DIM];
    const long n = 2000000;
    long checksum = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; ++i) {
        obs[0] = (float)(i % 100) * 0.001f;
        policy_act(obs, action);
        checksum += (long)action[0];
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n;
    printf("%.3f %ld\n", ns, checksum);
    return 0;
}
"""


def per_action_us(policy: object, obs: np.ndarray, calls: int = 3000) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(calls):
            policy.act(obs[i % len(obs)][None])  # type: ignore[attr-defined]
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best


def c_ns_per_action(folder: Path) -> float:
    (folder / "timer.c").write_text(C_TIMER)
    exe = folder / "timer"
    cc = shutil.which("cc") or "gcc"
    subprocess.run(
        [cc, *CFLAGS, str(folder / "timer.c"), str(folder / "policy.c"), "-o", str(exe), "-lm"],
        check=True,
    )
    return float(
        subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()[0]
    )


def main() -> None:
    torch.set_num_threads(1)
    teacher = load_zoo_teacher("CartPole-v1")
    student, _ = distill(teacher, "CartPole-v1", DistillConfig(student=PolicyConfig((8,))))
    obs = collect(student, "CartPole-v1", 2, seed=0).obs
    results: dict[str, dict[str, float]] = {
        "torch": {
            "bytes": 4 * (student.n_parameters() + 2 * student.obs_dim),
            "us_per_action": per_action_us(student, obs),
        }
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for fmt in ("torchscript", "onnx", "numpy"):
            files = export_policy(student, fmt, root / fmt)
            results[fmt] = {
                "bytes": files[0].stat().st_size,  # the policy (ONNX also writes a JS gate)
                "us_per_action": per_action_us(load_exported(files[0]), obs),
            }
        for int8 in (False, True):
            export_policy(student, "c", root / f"c{int8}", int8=int8, calibration=obs)
            results["c_int8" if int8 else "c_float32"] = {
                "bytes": weight_bytes(student, int8),
                "us_per_action": c_ns_per_action(root / f"c{int8}") / 1000,
            }
    emit(
        "bench_export",
        {
            "policy": "CartPole student, hidden (8,)",
            "parameters": student.n_parameters(),
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
