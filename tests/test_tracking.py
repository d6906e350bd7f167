"""Run logging: metrics.jsonl in one vocabulary, TensorBoard event files, W&B offline."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from imitate.cli import main
from imitate.tracking import RunLogger, training_curves


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the TensorBoard event files of ``folder``, read by tensorboard."""
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def _metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_tensorboard_scalars_read_back_equal_metrics_jsonl(tmp_path: Path) -> None:
    records = [
        {"step": s, "train_loss": 1.0 / s, "holdout_bits_per_action": 2.0 / s} for s in (1, 2, 4)
    ]
    with RunLogger(tmp_path, "tensorboard") as log:
        log.log_records("bc", records)
        log.log("dagger", {"round": 0, "learner_return": 21.5, "expert_labels": 500})
    scalars = _scalars(tmp_path)
    assert [step for step, _ in scalars["bc/train_loss"]] == [1, 2, 4]
    assert [v for _, v in scalars["bc/holdout_bits_per_action"]] == pytest.approx([2.0, 1.0, 0.5])
    assert scalars["dagger/learner_return"] == [(0, 21.5)]
    assert [r["stage"] for r in _metrics(tmp_path)] == ["bc", "bc", "bc", "dagger"]
    assert (tmp_path / "training_curves.png").is_file()  # bc has a curve
    assert set(training_curves(_metrics(tmp_path))) == {
        ("train_loss", "step"),
        ("holdout_bits_per_action", "step"),
    }


def test_unknown_logger_is_a_user_error(tmp_path: Path) -> None:
    from imitate.errors import ImitateError

    with pytest.raises(ImitateError, match="--logger must be one of"):
        RunLogger(tmp_path, "mlflow")  # type: ignore[arg-type]


@pytest.mark.slow
def test_imitate_run_curves_in_tensorboard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tensorboard --logdir runs/` shows the BC and DAgger curves of `imitate run`."""
    out = tmp_path / "runs" / "run"
    args = [
        "run", "--env", "CartPole-v1", "--expert", "zoo", "--out", str(out),
        "--episodes", "2", "--demo-counts", "1", "2", "--eval-episodes", "3",
        "--drift-episodes", "2", "--horizons", "10", "20", "--dagger.rounds", "2",
        "--dagger.steps-per-round", "200", "--dagger.eval-episodes", "2", "--bc.max-steps", "300",
        "--bc.eval-every", "50", "--distill.rounds", "2", "--distill.steps-per-round", "200",
        "--distill.max-steps", "200", "--exports", "numpy", "--logger", "tensorboard", "--json",
    ]  # fmt: skip
    assert main(args) == 0
    json.loads(capsys.readouterr().out)  # still one JSON object on stdout
    scalars = _scalars(out)
    metrics = _metrics(out)
    for stage in ("bc_1", "bc_2"):  # the BC curves: held-out bits per gradient step
        logged = [(r["step"], r["holdout_bits_per_action"]) for r in metrics if r["stage"] == stage]
        assert len(logged) == 6
        read = scalars[f"{stage}/holdout_bits_per_action"]
        assert [s for s, _ in read] == [s for s, _ in logged]
        assert [v for _, v in read] == pytest.approx([v for _, v in logged], rel=1e-6)
    dagger = [r for r in metrics if r["stage"] == "dagger"]
    assert [s for s, _ in scalars["dagger/learner_return"]] == [0, 1]
    assert [v for _, v in scalars["dagger/expert_labels"]] == [r["expert_labels"] for r in dagger]
    assert all("wall_time_s" in r for r in metrics if r["stage"] != "distill")
    assert "![training curves](training_curves.png)" in (out / "report.md").read_text()


def test_bc_with_wandb_offline_and_no_network(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline is the default
    monkeypatch.delenv("WANDB_DISABLE_WEAVE", raising=False)  # (restored after the test)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    data = tmp_path / "d.npz"
    assert main(["collect", "--episodes", "2", "--out", str(data)]) == 0
    capfd.readouterr()
    args = ["bc", "--data", str(data), "--out", str(tmp_path / "bc"), "--max-steps", "300"]
    assert (
        main([*args, "--eval-every", "50", "--eval-episodes", "0", "--logger", "wandb", "--json"])
        == 0
    )
    captured = capfd.readouterr()
    assert json.loads(captured.out)["policy"].endswith("policy.pt")  # W&B: nothing on stdout
    assert "Weave" not in captured.err  # nor its tip (it takes our `agents` for an LLM SDK)
    runs = list((tmp_path / "bc" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    assert [r["stage"] for r in _metrics(tmp_path / "bc")] == ["bc"] * 6
    assert (tmp_path / "bc" / "training_curves.png").is_file()
    assert os.environ.get("WANDB_MODE") is None


def test_collect_writes_config_and_metrics_in_its_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["collect", "--episodes", "1", "--json"]) == 0
    folder = Path(json.loads(capsys.readouterr().out)["data"]).parent
    assert json.loads((folder / "config.json").read_text())["episodes"] == 1
    (record,) = _metrics(folder)
    assert record["stage"] == "collect" and "wall_time_s" in record and "seconds" not in record
