"""Wall time of one side-by-side video of a paired CartPole episode (target: < 10 s).

The clone is BC on one expert demonstration of the shipped PPO expert, so the pair
diverges; the episode is the first evaluation seed (10000). Timed: the whole
:func:`imitate.video.side_by_side` call (two plain rollouts, two rendering replays,
compositing, GIF and, with imageio-ffmpeg, MP4). Baseline in the same run: the env's own
``rgb_array`` rendering of as many frames as the video keeps, for both policies, which
no video can avoid. The machine is shared: the CPU seconds of this process are recorded
too (the MP4 encoder runs in an ffmpeg subprocess and is not in them).

    python -m benchmarks.bench_video
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import gymnasium as gym
import torch

from agents.zoo import load_zoo_teacher
from benchmarks.common import emit
from imitate import BCConfig, collect, train_bc
from imitate.video import mp4_available, side_by_side

ENV = "CartPole-v1"
SEED = 10_000


def render_only(frames: int) -> float:
    """Seconds to render ``frames`` frames of the env (random actions)."""
    env = gym.make(ENV, render_mode="rgb_array")
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(frames):
        env.render()
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return elapsed


def main() -> None:
    torch.set_num_threads(1)
    expert = load_zoo_teacher(ENV)
    demos = collect(expert, ENV, 1, seed=0)
    clone, _ = train_bc(demos, BCConfig(seed=0))
    scale = demos.obs.std(axis=0)
    scale[scale < 1e-8] = 1.0
    runs, cpu = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(3):
            start, start_cpu = time.perf_counter(), time.process_time()
            episode, files = side_by_side(
                expert, clone, "BC-1", ENV, SEED, scale, Path(tmp) / f"v{repeat}"
            )
            runs.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)  # this process (ffmpeg not counted)
        sizes = {f.suffix: f.stat().st_size for f in files}
    frames = len(episode.frame_steps)
    baseline = render_only(2 * frames)
    result = {
        "env": ENV,
        "steps": episode.steps,
        "frames": frames,
        "first_divergence": episode.first_divergence,
        "mp4": mp4_available(),
        "seconds_best_of_3": min(runs),
        "seconds_each": runs,
        "cpu_seconds_each": cpu,
        "render_only_seconds": baseline,
        "ratio_to_render_only": min(runs) / baseline,
        "bytes": sizes,
        "target_seconds": 10.0,
        "meets_target": bool(min(runs) < 10.0),
    }
    emit("bench_video", result)


if __name__ == "__main__":
    main()
