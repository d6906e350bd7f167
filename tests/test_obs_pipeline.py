"""``imitate run`` end to end on observation envs: expert, BC curve, DAgger, drift report in
per-key units; the stages that do not apply are skipped with their reason, never an error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from envs.obs_envs import N_ACTIONS, correct_dict
from tests.cli_helpers import run_cli


class SoftDictExpert:
    """The Dict env's correct action, with logits (a SoftPolicy: distillation applies)."""

    def logits(self, obs: Any) -> np.ndarray:
        return 5.0 * np.eye(N_ACTIONS, dtype=np.float32)[correct_dict(obs)]

    def act(self, obs: Any) -> np.ndarray:
        return correct_dict(obs)


SMALL = [
    "--episodes", "3", "--demo-counts", "1", "3", "--eval-episodes", "5",
    "--drift-episodes", "2", "--horizons", "10", "50", "--bc.max-steps", "300",
    "--dagger.rounds", "2", "--dagger.steps-per-round", "100", "--dagger.eval-episodes", "2",
    "--dagger.bc.max-steps", "300",
    "--distill.episodes", "3", "--distill.max-steps", "300", "--json",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env_id", "expert"),
    [
        ("imitate/ObsDict-v0", "tests.test_obs_pipeline:SoftDictExpert"),
        ("imitate/ObsText-v0", "heuristic"),
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
    from imitate.pipeline import DISTILLS_ENCODED

    if expert == "heuristic":
        assert "no logits" in skipped["distillation and exports"]
    elif not DISTILLS_ENCODED:
        assert "needs an encoder" in skipped["distillation and exports"]
    else:  # an encoded student: exported where the format takes encoders, else skipped
        assert "student" in result and "onnx" in result["exports"]
        from imitate.export import ENCODED_FORMATS

        for fmt in ("onnx", "c"):
            assert (fmt in result["exports"]) == (fmt in ENCODED_FORMATS)
            assert (f"export {fmt}" in skipped) == (fmt not in ENCODED_FORMATS)
    report = (out / "report.md").read_text()
    assert "## Skipped" in report and "| DAgger |" in report
    assert (out / "report.html").is_file() and (out / "dagger" / "policy.pt").is_file()
