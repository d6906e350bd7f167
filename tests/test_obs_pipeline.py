"""``imitate run`` end to end on observation envs: expert, BC curve, DAgger, an encoded
distilled student and its exports, drift report in per-key units; the stages that do not
apply are skipped with their reason, never an error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from envs.obs_envs import DIRECTIONS, N_ACTIONS, ObsExpert, correct_dict, correct_text
from tests.cli_helpers import run_cli


class SoftDictExpert:
    """The Dict env's correct action, with logits (a SoftPolicy: distillation applies)."""

    def logits(self, obs: Any) -> np.ndarray:
        return 5.0 * np.eye(N_ACTIONS, dtype=np.float32)[correct_dict(obs)]

    def act(self, obs: Any) -> np.ndarray:
        return correct_dict(obs)


class SoftTextExpert:
    """The Text env's correct action, with logits (any string of the space: "stay" when no
    direction word is in it, as in a random sample)."""

    def act(self, obs: Any) -> np.ndarray:
        strings = np.asarray(obs, dtype=np.str_).reshape(-1)
        known = [any(w in DIRECTIONS for w in str(s).split()) for s in strings]
        actions = np.full(len(strings), 2, np.int64)
        if any(known):
            actions[np.asarray(known)] = correct_text(strings[np.asarray(known)])
        return actions

    def logits(self, obs: Any) -> np.ndarray:
        return 5.0 * np.eye(N_ACTIONS, dtype=np.float32)[self.act(obs)]


SMALL = [
    "--episodes", "3", "--demo-counts", "1", "3", "--eval-episodes", "5",
    "--drift-episodes", "2", "--horizons", "10", "50", "--bc.max-steps", "300",
    "--dagger.rounds", "2", "--dagger.steps-per-round", "100", "--dagger.eval-episodes", "2",
    "--dagger.bc.max-steps", "300", "--distill.episodes", "3", "--distill.max-steps", "300",
    "--distill.rounds", "2", "--distill.steps-per-round", "100", "--json",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env_id", "expert"),
    [
        ("imitate/ObsDict-v0", "tests.test_obs_pipeline:SoftDictExpert"),
        ("imitate/ObsText-v0", "tests.test_obs_pipeline:SoftTextExpert"),
    ],
)
def test_run_on_an_observation_env(env_id: str, expert: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    argv = ["run", "--env", env_id, "--expert", expert, "--out", str(out), *SMALL]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    result = json.loads(stdout)
    assert set(result["bc"]) == {"1", "3"} and result["dagger"]["rounds"]
    assert result["bc"]["3"]["eval"]["mean_return"] >= 0.8 * 50  # the expert earns 50
    assert "Per-key normalised" in result["drift"]["distance"]
    assert set(result["drift"]["clones"]) == {"BC-1", "BC-3", "DAgger"}
    skipped = result["skipped"]
    assert "videos" in skipped  # videos replay flat Box observations only
    # an encoded student, exported to every format that takes its encoder (the default
    # formats: onnx and int8 C); C has no text encoder, so the Text student skips it
    assert result["student"]["student_return"] >= 0.5 * 50  # chance: 50 / 3
    assert "onnx" in result["exports"]
    if env_id == "imitate/ObsText-v0":
        assert "c" not in result["exports"] and "export c" in skipped
    else:
        assert "c" in result["exports"] and "export c" not in skipped
    report = (out / "report.md").read_text()
    assert "## Skipped" in report and "| DAgger |" in report
    cells = [line.split(" | ") for line in report.splitlines() if line.startswith("| ")]
    rows = {c[0]: c[1] for c in cells if len(c) > 1}
    student = next(v for k, v in rows.items() if k.startswith("| distilled student"))
    assert rows["| student exported: onnx"] == student  # same actions: same returns
    assert (out / "report.html").is_file() and (out / "student" / "policy.pt").is_file()


def test_a_teacher_without_logits_is_skipped_with_its_reason() -> None:
    from envs.pixel_cartpole import PixelCartPoleExpert
    from imitate.pipeline import distill_unsupported

    reason = distill_unsupported(ObsExpert("text"), "heuristic")
    assert reason is not None and "no logits" in reason and "`heuristic`" in reason
    assert distill_unsupported(SoftTextExpert(), "soft") is None
    assert distill_unsupported(PixelCartPoleExpert(), "state") is None  # a privileged teacher
