"""The main job writes one run folder with a report, figures and checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imitate.cli import main


@pytest.mark.slow
def test_run_command_produces_report_and_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = [
        "run", "--env", "CartPole-v1", "--expert", "zoo", "--out", str(out),
        "--episodes", "2", "--demo-counts", "1", "2", "--eval-episodes", "5",
        "--drift-episodes", "3", "--horizons", "10", "20", "40",
        "--dagger.rounds", "2", "--dagger.steps-per-round", "200", "--dagger.eval-episodes", "3",
        "--bc.max-steps", "500", "--distill.rounds", "2", "--distill.steps-per-round", "300",
        "--distill.max-steps", "600", "--videos-per-clone", "1", "--json",
    ]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    stages = [line for line in captured.err.splitlines() if line.startswith("imitate run [")]
    assert len(stages) >= 7 and all(line.endswith(" s)") for line in stages), captured.err
    html = (out / "report.html").read_text()
    videos = result["drift"]["videos"]
    assert {v["clone"] for v in videos} == {"BC-1", "BC-2", "DAgger"}
    for video in videos:
        assert all(Path(f).is_file() for f in video["files"])
    assert html.count("data:image/gif;base64") == len(videos) and "plot-trajectories" in html
    report = (out / "report.md").read_text()
    figures = sorted(p.name for p in out.glob("*.png"))
    assert len(figures) >= 4, figures
    for figure in figures:
        assert f"({figure})" in report
    assert "| DAgger |" in report and "BC, 1 demonstration |" in report
    assert "distilled student" in report and "student exported: onnx" in report
    assert (out / "export" / "c" / "policy.c").is_file() and result["student"][
        "student_parameters"
    ] > 0
    assert set(result["bc"]) == {"1", "2"} and result["dagger"]["rounds"]
    assert (out / "dagger" / "policy.pt").is_file() and (out / "demos.npz").is_file()
    assert json.loads((out / "results.json").read_text())["env"] == "CartPole-v1"


def test_the_console_summary_keeps_every_table() -> None:
    from imitate.pipeline import console_summary

    report = "# t\n\n| a |\n|---|\n| 1 |\n\n![fig](f.png)\n\n## Drift\n\n| b |\n\n![g](g.png)\n"
    assert console_summary(report) == "# t\n\n| a |\n|---|\n| 1 |\n\n## Drift\n\n| b |"


def test_a_report_html_failure_keeps_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HTML report is the last step: a figure it cannot draw (BabyAI's 138 features
    once made plotly refuse) must not discard the finished stages with the run folder."""
    import imitate.report

    def broken(analysis: object, episodes: int = 3) -> object:
        raise ValueError("Vertical spacing cannot be greater than 0.007")

    monkeypatch.setattr(imitate.report, "trajectories_figure", broken)
    out = tmp_path / "run"
    args = [
        "run", "--env", "CartPole-v1", "--expert", "heuristic", "--out", str(out),
        "--episodes", "1", "--demo-counts", "1", "--eval-episodes", "1",
        "--drift-episodes", "1", "--horizons", "10", "20", "--bc.max-steps", "20",
        "--dagger.rounds", "1", "--dagger.steps-per-round", "50", "--dagger.bc.max-steps", "20",
        "--videos-per-clone", "0", "--json",
    ]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "imitate: warning: report.html not written: ValueError: Vertical" in captured.err
    result = json.loads(captured.out)
    assert "report_html" not in result and not (out / "report.html").exists()
    saved = json.loads((out / "results.json").read_text())
    assert saved["skipped"]["report.html"].startswith("not written: ValueError")
    report = (out / "report.md").read_text()
    assert "- report.html: not written" in report and "`report.html`" not in report
    assert (out / "bc_1" / "policy.pt").is_file() and (out / "dagger" / "policy.pt").is_file()
