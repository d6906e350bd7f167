"""Regenerate the README's figures from a real run: ``python docs/make_figures.py``.

Runs the main job on CartPole-v1 into a temporary folder and copies its figures
into docs/figures/ (nothing here is drawn by hand).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from imitate.cli import main

FIGURES = Path(__file__).resolve().parent / "figures"


def run() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        code = main(["run", "--env", "CartPole-v1", "--out", tmp])
        if code != 0:
            return code
        FIGURES.mkdir(exist_ok=True)
        for figure in Path(tmp).glob("*.png"):
            shutil.copy(figure, FIGURES / f"cartpole_{figure.name}")
            print(FIGURES / f"cartpole_{figure.name}")
    return 0


if __name__ == "__main__":
    sys.exit(run())
