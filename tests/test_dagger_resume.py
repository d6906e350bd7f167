"""DAgger runs that persist every round and resume after an interruption, exactly."""

from __future__ import annotations

import importlib
import json
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from envs.tightrope import TightropeExpert
from imitate import BCConfig
from imitate.bc import train_bc
from imitate.configs import EarlyStopConfig, OptimConfig, refit_training
from imitate.dagger import BetaSchedule, DAggerConfig, DAggerRound, RoundStore, dagger
from imitate.data import concatenate, load_dataset
from imitate.errors import ImitateError, Interrupted, ResumeError
from imitate.policy import MLPPolicy, load_policy
from tests.cli_helpers import run_cli

ENV = "imitate/Tightrope-v0"
# A mixture (coins), a gate (tie-breaks) and an ensemble (bootstrap weights): every random
# stream of a round must come back on resume.
CONFIG = DAggerConfig(
    rounds=5,
    steps_per_round=200,
    beta=BetaSchedule("constant", 0.5),
    gate="ensemble",
    ensemble_size=2,
    query_rate=0.5,
    eval_episodes=2,
    patience=None,
    bc=BCConfig(
        optim=OptimConfig(max_steps=200), early_stop=EarlyStopConfig(eval_every=100, patience=3)
    ),
)


class CountingExpert:
    """The Tightrope expert, counting the states it is asked about."""

    def __init__(self) -> None:
        self.expert, self.asked = TightropeExpert(), 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        self.asked += len(obs)
        return self.expert.act(obs)


class Killed(Exception):
    pass


def same_weights(a: MLPPolicy, b: MLPPolicy) -> bool:
    left, right = a.state_dict(), b.state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def without_time(records: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in records]


def test_a_run_killed_after_round_3_resumes_to_the_same_learner_and_labels(
    tmp_path: Path,
) -> None:
    whole_expert = CountingExpert()
    asked_by_round: list[int] = []
    whole, whole_history = dagger(
        ENV,
        whole_expert,
        CONFIG,
        run_dir=tmp_path / "whole",
        on_round=lambda record: asked_by_round.append(whole_expert.asked),
    )

    def kill_after_round_3(record: DAggerRound) -> None:
        if record.round == 3:
            raise Killed

    with pytest.raises(Killed):
        dagger(
            ENV, TightropeExpert(), CONFIG, run_dir=tmp_path / "cut", on_round=kill_after_round_3
        )
    assert RoundStore(tmp_path / "cut", ENV, CONFIG, resume=True).rounds() == 4
    resumed_expert = CountingExpert()
    resumed, history = dagger(ENV, resumed_expert, CONFIG, run_dir=tmp_path / "cut", resume=True)

    assert same_weights(resumed, whole)
    assert without_time(history.records) == without_time(whole_history.records)
    for k in range(CONFIG.rounds):
        mine = load_dataset(tmp_path / "cut" / f"round_{k:03d}" / "labels.npz")
        theirs = load_dataset(tmp_path / "whole" / f"round_{k:03d}" / "labels.npz")
        assert mine.arrays().keys() == theirs.arrays().keys()
        for name, array in theirs.arrays().items():
            np.testing.assert_array_equal(mine.arrays()[name], array, err_msg=f"{k} {name}")
        assert mine.expert_acted is not None and (k > 0) == (not mine.expert_acted.all())
        members = [tmp_path / run / f"round_{k:03d}" / "member_0.pt" for run in ("cut", "whole")]
        assert same_weights(load_policy(members[0]), load_policy(members[1]))
    # the finished rounds were loaded: the expert was asked only about round 4's states
    assert resumed_expert.asked == whole_expert.asked - asked_by_round[3] > 0


REFIT = replace(CONFIG, rounds=2, gate="none", final_refit=True)


def test_final_refit_asks_no_labels_is_saved_and_resumes_to_the_same_learner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain_expert, refit_expert = CountingExpert(), CountingExpert()
    _, plain = dagger(ENV, plain_expert, replace(REFIT, final_refit=False))
    learner, history = dagger(ENV, refit_expert, REFIT, run_dir=tmp_path / "whole")
    assert plain.refit is None and history.refit is not None
    # no new labels: the rounds are the same and the expert was asked nothing more
    assert refit_expert.asked == plain_expert.asked > 0
    assert without_time(history.records) == without_time(plain.records)
    assert history.refit.expert_labels == history.expert_labels == plain.expert_labels
    assert history.refit.dataset_size == history.records[-1]["dataset_size"]
    assert history.refit.learner_return is not None
    assert history.refit.wall_time_s >= history.records[-1]["wall_time_s"]
    # a new learner trained with BC's length of training on the whole aggregate, saved
    whole = tmp_path / "whole"
    aggregate = concatenate(
        [load_dataset(whole / f"round_{k:03d}" / "labels.npz") for k in range(REFIT.rounds)]
    )
    refit_config = replace(refit_training(REFIT.bc), seed=REFIT.bc.seed + REFIT.rounds)
    assert refit_config.optim.max_steps == BCConfig().optim.max_steps != REFIT.bc.optim.max_steps
    assert same_weights(learner, train_bc(aggregate, refit_config)[0])
    assert same_weights(learner, load_policy(whole / "refit" / "policy.pt"))
    assert not same_weights(
        learner, load_policy(whole / f"round_{REFIT.rounds - 1:03d}" / "policy.pt")
    )
    saved = json.loads((whole / "refit" / "record.json").read_text())
    assert saved == history.refit.to_json()

    def killed_before_the_refit_is_saved(*args: object) -> Path:
        raise Killed

    monkeypatch.setattr(RoundStore, "save_refit", killed_before_the_refit_is_saved)
    with pytest.raises(Killed):
        dagger(ENV, TightropeExpert(), REFIT, run_dir=tmp_path / "cut")
    monkeypatch.undo()
    assert not (tmp_path / "cut" / "refit").exists()
    resumed_expert = CountingExpert()
    resumed, resumed_history = dagger(
        ENV, resumed_expert, REFIT, run_dir=tmp_path / "cut", resume=True
    )
    assert resumed_expert.asked == 0  # every round was loaded; the refit asks nothing
    assert same_weights(resumed, learner)
    assert resumed_history.refit is not None
    assert {k: v for k, v in resumed_history.refit.to_json().items() if k != "wall_time_s"} == {
        k: v for k, v in history.refit.to_json().items() if k != "wall_time_s"
    }
    # a finished run resumed: the saved refit is loaded, not trained again
    monkeypatch.setattr(importlib.import_module("imitate.dagger"), "train_bc", None)
    again, again_history = dagger(ENV, TightropeExpert(), REFIT, run_dir=whole, resume=True)
    assert same_weights(again, learner) and again_history.refit == history.refit


def test_cli_dagger_final_refit_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["dagger", "--env", ENV, "--expert", "heuristic", "--rounds", "2",
            "--steps-per-round", "200", "--eval-episodes", "2", "--bc.max-steps", "100",
            "--no-compare-bc", "--json"]  # fmt: skip
    code, out, err = run_cli([*args, "--final-refit", "--out", str(tmp_path / "on")], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["refit"]["expert_labels"] == result["expert_labels"]
    assert "learner_return" in result["refit"]
    on = tmp_path / "on"
    assert same_weights(
        load_policy(on / "policy.pt"), load_policy(on / "rounds" / "refit" / "policy.pt")
    )
    code, out, err = run_cli([*args, "--no-final-refit", "--out", str(tmp_path / "off")], capsys)
    assert code == 0, err
    assert "refit" not in json.loads(out) and not (tmp_path / "off" / "rounds" / "refit").exists()


def test_expert_acted_counts_the_mixture_labels(tmp_path: Path) -> None:
    """The query accounting comes from the data's expert_acted column, not a counter."""
    config = replace(CONFIG, rounds=2, gate="none", eval_episodes=0, whole_episodes=False)
    with pytest.warns(UserWarning, match="no complete episode"):
        _, history = dagger(ENV, TightropeExpert(), config, run_dir=tmp_path)
    labels = load_dataset(tmp_path / "round_001" / "labels.npz")
    record = history.records[1]
    assert labels.expert_acted is not None
    assert record["labelled"] + int(labels.expert_acted.sum()) == round(
        record["query_rate"] * record["states"]
    )
    assert 0.35 < labels.expert_acted.mean() < 0.65  # beta = 0.5


def test_resume_refuses_another_config_or_an_empty_folder(tmp_path: Path) -> None:
    config = replace(CONFIG, rounds=1, gate="none", eval_episodes=0)
    dagger(ENV, TightropeExpert(), config, run_dir=tmp_path / "run")
    with pytest.raises(ResumeError, match=r"other settings \(config.rounds: saved 1, asked 2\)"):
        dagger(
            ENV, TightropeExpert(), replace(config, rounds=2), run_dir=tmp_path / "run", resume=True
        )
    with pytest.raises(ResumeError, match="no DAgger run to resume"):
        dagger(ENV, TightropeExpert(), config, run_dir=tmp_path / "empty", resume=True)


def test_cli_dagger_resume_after_an_interrupt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["dagger", "--env", ENV, "--expert", "heuristic", "--rounds", "3",
            "--steps-per-round", "200", "--eval-episodes", "0", "--bc.max-steps", "100",
            "--gate", "entropy", "--query-rate", "0.5"]  # fmt: skip
    assert run_cli([*args, "--out", str(tmp_path / "whole")], capsys)[0] == 0
    save = RoundStore.save

    def interrupted_after_round_1(self: RoundStore, round_index: int, *rest: object) -> Path:
        path = save(self, round_index, *rest)  # type: ignore[arg-type]
        if round_index == 1:
            raise Interrupted(signal.SIGINT)
        return path

    monkeypatch.setattr(RoundStore, "save", interrupted_after_round_1)
    cut = tmp_path / "cut"
    code, _, err = run_cli([*args, "--out", str(cut)], capsys)
    assert code == 130
    assert err == f"imitate: interrupted; continue with: imitate dagger --resume {cut}\n"
    assert sorted(p.name for p in (cut / ".resume" / "rounds").glob("round_*")) == [
        "round_000",
        "round_001",
    ]
    monkeypatch.undo()
    before = sorted(str(p.relative_to(cut)) for p in cut.rglob("*"))
    code, out, err = run_cli([*args, "--out", str(cut)], capsys)  # a fresh run: refused
    assert (code, out) == (2, "")
    assert err == (
        f"imitate: error: {cut}: holds an interrupted dagger run; continue it with: imitate "
        f"dagger --resume {cut} (or choose another --out; removing {cut / '.resume'} "
        "discards that run)\n"
    )
    assert sorted(str(p.relative_to(cut)) for p in cut.rglob("*")) == before  # nothing deleted
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cut")]  # nor left
    code, _, err = run_cli([*args[:-2], "--query-rate", "0.4", "--resume", str(cut)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("imitate: error: ") and "query_rate: saved 0.5, asked 0.4" in err
    code, _, err = run_cli(["run", "--resume", str(cut)], capsys)  # the other command
    assert (code, err) == (2, (
        f"imitate: error: {cut}: holds an interrupted 'dagger' run; resume it with imitate "
        f"dagger --resume {cut}\n"
    ))  # fmt: skip
    code, _, err = run_cli([*args, "--resume", str(cut)], capsys)
    assert code == 0 and f"imitate: resuming {cut}: rounds 0-1 loaded; running round 2\n" in err
    assert same_weights(
        load_policy(cut / "policy.pt"), load_policy(tmp_path / "whole" / "policy.pt")
    )
    assert sorted(p.name for p in (cut / "rounds").glob("round_*")) == [
        "round_000",
        "round_001",
        "round_002",
    ]
    assert not (cut / ".resume").exists()
    code, _, err = run_cli([*args, "--resume", str(cut)], capsys)
    assert code == 2 and "nothing to resume (the run finished)" in err


@pytest.mark.slow
def test_cli_run_resume_loads_the_demonstrations_and_finished_rounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib
    import json

    args = ["run", "--env", "CartPole-v1", "--expert", "heuristic", "--episodes", "2",
            "--demo-counts", "1", "--eval-episodes", "2", "--drift-episodes", "2",
            "--horizons", "10", "20", "--dagger.rounds", "3", "--dagger.steps-per-round", "200",
            "--dagger.eval-episodes", "0", "--bc.max-steps", "100",
            "--videos-per-clone", "0"]  # fmt: skip
    assert run_cli([*args, "--out", str(tmp_path / "whole")], capsys)[0] == 0
    save = RoundStore.save

    def interrupted_after_round_1(self: RoundStore, round_index: int, *rest: object) -> Path:
        path = save(self, round_index, *rest)  # type: ignore[arg-type]
        if round_index == 1:
            raise Interrupted(signal.SIGTERM)
        return path

    monkeypatch.setattr(RoundStore, "save", interrupted_after_round_1)
    cut = tmp_path / "cut"
    assert run_cli([*args, "--out", str(cut)], capsys)[0] == 143
    state = cut / ".resume"
    assert (state / "demos.npz").is_file() and (state / "dagger_rounds" / "round_001").is_dir()
    monkeypatch.undo()

    pipeline = importlib.import_module("imitate.pipeline")
    real_collect = pipeline.collect

    def no_demonstrations(*a: object, source: str = "policy", **kw: object) -> object:
        assert source != "heuristic", "the demonstrations were collected again"
        return real_collect(*a, source=source, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "collect", no_demonstrations)
    assert run_cli([*args, "--resume", str(cut)], capsys)[0] == 0
    mine, theirs = (json.loads((d / "results.json").read_text()) for d in (cut, tmp_path / "whole"))
    assert without_time(mine["dagger"]["rounds"]) == without_time(theirs["dagger"]["rounds"])
    assert mine["dagger"]["eval"] == theirs["dagger"]["eval"]
    assert same_weights(
        load_policy(cut / "dagger" / "policy.pt"),
        load_policy(tmp_path / "whole" / "dagger" / "policy.pt"),
    )
    assert (cut / "demos.npz").is_file() and (cut / "dagger_rounds" / "round_002").is_dir()
    assert not state.exists()


def test_cli_dagger_resume_alone_restores_the_saved_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``imitate dagger --resume DIR`` with no other flag continues with the settings the
    run was started with; a flag repeating its saved value is accepted, another refused."""
    args = ["dagger", "--env", ENV, "--expert", "heuristic", "--rounds", "3",
            "--steps-per-round", "200", "--eval-episodes", "0", "--bc.max-steps", "100",
            "--seed", "3"]  # fmt: skip
    assert run_cli([*args, "--out", str(tmp_path / "whole")], capsys)[0] == 0
    save = RoundStore.save

    def interrupted_after_round_0(self: RoundStore, round_index: int, *rest: object) -> Path:
        path = save(self, round_index, *rest)  # type: ignore[arg-type]
        if round_index == 0:
            raise Interrupted(signal.SIGINT)
        return path

    monkeypatch.setattr(RoundStore, "save", interrupted_after_round_0)
    cut = tmp_path / "cut"
    assert run_cli([*args, "--out", str(cut)], capsys)[0] == 130
    monkeypatch.undo()
    code, _, err = run_cli(["dagger", "--resume", str(cut), "--rounds", "4"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "config.rounds: saved 3, asked 4" in err and "alone restores them" in err
    code, _, err = run_cli(["dagger", "--resume", str(cut), "--seed", "3", "--json"], capsys)
    assert code == 0, err
    assert same_weights(
        load_policy(cut / "policy.pt"), load_policy(tmp_path / "whole" / "policy.pt")
    )
    assert json.loads((cut / "config.json").read_text()) == json.loads(
        (tmp_path / "whole" / "config.json").read_text()
    ) | {"out": None, "resume": str(cut), "json": True}


def test_run_resume_alone_parses_to_the_saved_settings(tmp_path: Path) -> None:
    """``imitate run --resume DIR``: the command is rebuilt from ``DIR/.resume/config.json``
    (what :func:`imitate.runs.resumable` writes), so no flag has to be repeated."""
    from imitate.cli import parse
    from imitate.runs import RESUME_DIR, config_to_json, json_form, resume_settings

    started = parse(["run", "--env", "Acrobot-v1", "--episodes", "3", "--dagger.rounds", "2",
                     "--bc.max-steps", "50", "--seed", "4"])  # fmt: skip
    state = tmp_path / RESUME_DIR
    state.mkdir()
    (state / "config.json").write_text(
        json.dumps(json_form({"command": "run", "config": resume_settings(started)}))
    )
    resumed = parse(["run", "--resume", str(tmp_path)])
    assert resumed == replace(started, resume=tmp_path)
    assert parse(["run", "--resume", str(tmp_path), "--episodes", "3"]) == resumed
    with pytest.raises(ResumeError, match=r"config\.episodes: saved 3, asked 4"):
        parse(["run", "--resume", str(tmp_path), "--episodes", "4"])
    (tmp_path / "config.json").write_text(json.dumps(config_to_json(started)))
    with pytest.raises(ImitateError, match="drop --from"):
        parse(["run", "--resume", str(tmp_path), "--from", str(tmp_path / "config.json")])
