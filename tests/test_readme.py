"""The README's Python quick start runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.slow
def test_readme_python_quick_start_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has a python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["result"].mean_return >= 475  # type: ignore[attr-defined]
    assert (tmp_path / "policy.pt").is_file()


@pytest.mark.slow
def test_readme_bc_to_ppo_fine_tuning_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hand-off example: the SB3 model's first evaluation is the clone's, then PPO trains."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    [block] = [b for b in blocks if "PPO.load" in b]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), namespace)  # its assert: first eval == clone's
    assert (tmp_path / "handoff" / "policy_sb3.zip").is_file()
    assert namespace["model"].num_timesteps >= 4096  # type: ignore[attr-defined]
    assert "PPO fine-tuned" in capsys.readouterr().out
