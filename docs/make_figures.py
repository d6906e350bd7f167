"""Regenerate the README's figures from a real run: ``python docs/make_figures.py [RUN]``.

Runs the main job on CartPole-v1 into a temporary folder and copies its figures
into docs/figures/ (nothing here is drawn by hand), with one frame of a side-by-side
video (the earliest-diverging BC-1 episode, at its first divergence) and a screenshot
of report.html taken by headless Chromium when it is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from imitate.cli import main
from imitate.report import HEADLESS_CHROMIUM_FLAGS

FIGURES = Path(__file__).resolve().parent / "figures"


def video_still(run: Path, target: Path) -> None:
    """A frame of the earliest-diverging BC-1 video: the last one before the clone's
    episode ends (its pane is greyed after that), where the drift is plainest."""
    results = json.loads((run / "results.json").read_text())
    video = next(v for v in results["drift"]["videos"] if v["clone"] == "BC-1")
    gif = next(Path(f) for f in video["files"] if f.endswith(".gif"))
    with Image.open(gif) as image:
        chosen = image.n_frames - 1
        for index in range(image.n_frames):
            image.seek(index)
            frame = np.asarray(image.convert("RGB"))
            width = (frame.shape[1] - 6) // 2
            background = frame[30, width + 6 + 10]  # top-left of the clone's pane
            if background.min() < 230:  # greyed: the clone's episode is over
                chosen = max(index - 1, 0)
                break
        image.seek(chosen)
        image.convert("RGB").save(target)


def screenshot(page: Path, target: Path) -> bool:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return False
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, *HEADLESS_CHROMIUM_FLAGS, "--hide-scrollbars", f"--user-data-dir={profile}",
             "--window-size=1200,2400", f"--screenshot={target}", page.as_uri()],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    return True


def copy_figures(run: Path) -> None:
    FIGURES.mkdir(exist_ok=True)
    for figure in run.glob("*.png"):
        shutil.copy(figure, FIGURES / f"cartpole_{figure.name}")
        print(FIGURES / f"cartpole_{figure.name}")
    video_still(run, FIGURES / "cartpole_video_frame.png")
    print(FIGURES / "cartpole_video_frame.png")
    if screenshot(run / "report.html", FIGURES / "cartpole_report.png"):
        print(FIGURES / "cartpole_report.png")


def run(existing: Path | None = None) -> int:
    """Copy from ``existing`` (a CartPole ``imitate run`` folder), else run the job."""
    if existing is not None:
        copy_figures(existing)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        code = main(["run", "--env", "CartPole-v1", "--out", tmp])
        if code == 0:
            copy_figures(Path(tmp))
        return code


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
