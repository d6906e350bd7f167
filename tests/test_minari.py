"""Minari interop: exact round trip, metadata, errors, and BC from a Minari copy (no downloads)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from agents.heuristics import heuristic_expert
from imitate import DatasetError, collect, evaluate, load_dataset, train_bc
from imitate.bc import BCConfig
from imitate.configs import EarlyStopConfig, OptimConfig
from imitate.minari_io import export_minari, import_minari

# minari[hdf5] is part of the dev install: without it these tests fail rather than skip.


@pytest.fixture(autouse=True)
def minari_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def test_round_trip_is_exact_with_teacher_logits_and_weights() -> None:
    demos = collect(heuristic_expert("LunarLander-v3"), "LunarLander-v3", 4, seed=1)
    rng = np.random.default_rng(0)
    demos = replace(
        demos,
        teacher_logits=rng.normal(size=(len(demos), 4)).astype(np.float32),
        weights=rng.uniform(size=len(demos)).astype(np.float32),
    )
    export_minari(demos, "imitate/lander/test-v0")
    back = import_minari("imitate/lander/test-v0")
    assert back.arrays().keys() == demos.arrays().keys()
    for name, array in demos.arrays().items():
        np.testing.assert_array_equal(getattr(back, name), array, err_msg=name)
        assert getattr(back, name).dtype == array.dtype
    assert back.meta == demos.meta


def test_minari_sees_t_plus_one_observations_and_logits_in_infos() -> None:
    import minari

    demos = collect(heuristic_expert("CartPole-v1"), "CartPole-v1", 2, seed=0)
    demos = replace(demos, teacher_logits=np.zeros((len(demos), 2), np.float32))
    export_minari(demos, "imitate/cartpole/layout-v0")
    episode = next(minari.load_dataset("imitate/cartpole/layout-v0").iterate_episodes())
    length = int(demos.episode_lengths[0])
    assert episode.observations.shape == (length + 1, 4)
    np.testing.assert_array_equal(episode.observations[-1], demos.final_obs[0])  # type: ignore[index]
    assert episode.actions.shape == (length,)
    logits = episode.infos["teacher_logits"]
    assert logits.shape == (length + 1, 2) and np.isnan(logits[-1]).all()


def test_export_errors_leave_nothing_behind(minari_root: Path) -> None:
    demos = collect(heuristic_expert("CartPole-v1"), "CartPole-v1", 2, seed=0)
    with pytest.raises(DatasetError, match="no final observations"):
        export_minari(replace(demos, final_obs=None), "imitate/cartpole/nofinal-v0")
    with pytest.raises(DatasetError, match="bad Minari dataset id"):
        export_minari(demos, "not an id")
    assert not (minari_root / "imitate" / "cartpole" / "nofinal-v0").exists()
    export_minari(demos, "imitate/cartpole/once-v0")
    with pytest.raises(DatasetError, match="already exists"):
        export_minari(demos, "imitate/cartpole/once-v0")
    with pytest.raises(DatasetError, match="no Minari dataset 'imitate/missing-v0'"):
        import_minari("imitate/missing-v0")


def test_bc_from_minari_copy_of_zoo_demos_matches_native(tmp_path: Path) -> None:
    from agents.zoo import load_zoo_teacher

    demos = collect(load_zoo_teacher("CartPole-v1"), "CartPole-v1", 4, seed=0, source="zoo")
    native = demos.save(tmp_path / "demos.npz")
    export_minari(load_dataset(native), "imitate/cartpole/zoo-v0")
    config = BCConfig(
        seed=0, optim=OptimConfig(max_steps=1500), early_stop=EarlyStopConfig(eval_every=250)
    )
    returns = []
    for data in (load_dataset(native), import_minari("imitate/cartpole/zoo-v0")):
        policy, _ = train_bc(data, config)
        returns.append(evaluate(policy, "CartPole-v1", 20, seed=10_000).returns)
    np.testing.assert_array_equal(returns[0], returns[1])
    assert returns[0].mean() >= 475


def test_cli_export_and_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from imitate.cli import main

    demos = collect(heuristic_expert("CartPole-v1"), "CartPole-v1", 2, seed=0)
    demos.save(tmp_path / "demos.npz")
    root = tmp_path / "elsewhere"
    export = ["data", "export-minari", "--data", str(tmp_path / "demos.npz")]
    export += ["--dataset-id", "imitate/cartpole/cli-v0", "--root", str(root)]
    assert main(export) == 0
    assert (root / "imitate" / "cartpole" / "cli-v0").is_dir()
    back = tmp_path / "back.npz"
    imp = ["data", "import-minari", "--dataset-id", "imitate/cartpole/cli-v0"]
    assert main([*imp, "--root", str(root), "--out", str(back)]) == 0
    loaded = load_dataset(back)
    for name, array in demos.arrays().items():
        np.testing.assert_array_equal(getattr(loaded, name), array)
    capsys.readouterr()
    assert main(export) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("imitate: error: a Minari dataset") and "\n" not in err
