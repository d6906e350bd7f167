"""imitate sweep: typed axes, clear errors, one table and one plot per sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imitate.errors import ImitateError
from imitate.sweep import SweepConfig, parse_axis, summarise, trials


def test_axes_are_typed_and_validated() -> None:
    assert parse_axis("lr=1e-3, 3e-3").values == (1e-3, 3e-3)
    assert parse_axis("episodes=1,5").values == (1, 5)
    assert parse_axis("hidden=16,64x64").values == ((16,), (64, 64))
    assert parse_axis("class_weights=none,balanced").values == ("none", "balanced")
    # settings whose default is None (resolved per head) sweep by their own type
    assert parse_axis("batch_size=64,256").values == (64, 256)
    assert parse_axis("patience=8,40,None").values == (8, 40, None)  # None: by the head
    assert parse_axis("box_loss=mse,nll").values == ("mse", "nll")
    for bad, message in (
        ("lr", "expected name=value"),
        ("colour=1,2", "cannot sweep 'colour'"),
        ("label_smoothing=0,1.5", "label_smoothing must be in"),
        ("episodes=0,2", "episodes must be >= 1"),
        ("batch_size=a", "invalid literal"),
        ("patience=0", "patience must be >= 1"),
        ("max_steps=None", "invalid literal"),  # not an optional setting
        ("energy_margins=1", "cannot sweep 'energy_margins'"),
    ):
        with pytest.raises(ImitateError, match=message):
            parse_axis(bad)
    with pytest.raises(ImitateError, match="one or two axes"):
        SweepConfig("CartPole-v1", axes=())


def test_trials_cover_the_grid_and_summaries_average_seeds() -> None:
    config = SweepConfig(
        "CartPole-v1", axes=(parse_axis("episodes=1,2"), parse_axis("lr=0.1,0.2")), seeds=(0, 1)
    )
    points = trials(config)
    assert len(points) == 8 and points[0] == {"seed": 0, "episodes": 1, "lr": 0.1}
    rows = [
        {**p, "mean_return": float(p["seed"] * 10), "holdout_bits_per_action": 0.5} for p in points
    ]
    summary = summarise(rows, config.axes)
    assert len(summary) == 4
    assert summary[0]["mean_return"] == 5.0 and summary[0]["std_over_seeds"] == 5.0


def test_cli_sweep_writes_table_plot_and_trials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from imitate.cli import main

    out = tmp_path / "sweep"
    args = ["sweep", "--env", "CartPole-v1", "--grid", "episodes=1,2", "--seeds", "0", "1"]
    args += ["--eval-episodes", "2", "--max-steps", "100", "--eval-every", "50"]
    assert main([*args, "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["trials"] == 4 and len(result["summary"]) == 2
    assert (out / "sweep.png").stat().st_size > 0
    assert "| episodes | seeds | mean return |" in (out / "sweep.md").read_text()
    assert len((out / "trials.jsonl").read_text().splitlines()) == 4
    # every trial's BC curve (2 held-out evaluations: steps 50 and 100) is logged and drawn
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for index in range(4):
        steps = [r["step"] for r in records if r["stage"] == f"trial {index}"]
        assert steps == [50, 100]
    assert (out / "training_curves.png").stat().st_size > 0
    assert main(["sweep", "--grid", "colour=1", "--out", str(tmp_path / "bad")]) == 2
    assert "cannot sweep 'colour'" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
