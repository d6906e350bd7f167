"""Dataset save/load round trip and validation of every bad-input case."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from imitate import Dataset, DatasetError, concatenate, load_dataset


def _write_raw(path: Path, dataset: Dataset, **overrides: object) -> Path:
    """Write a dataset file bypassing Dataset.save, with fields replaced or removed (None)."""
    payload: dict[str, object] = dict(dataset.arrays())
    payload["meta_json"] = np.array(json.dumps(asdict(dataset.meta)))
    for name, value in overrides.items():
        if value is None:
            payload.pop(name)
        else:
            payload[name] = value
    with path.open("wb") as f:
        np.savez(f, **payload)  # type: ignore[arg-type]
    return path


def test_round_trip_is_exact(tmp_path: Path, cartpole_demos: Dataset) -> None:
    rng = np.random.default_rng(0)
    n = len(cartpole_demos)
    dataset = replace(
        cartpole_demos,
        teacher_logits=rng.normal(size=(n, 2)).astype(np.float32),
        weights=rng.uniform(size=n).astype(np.float32),
    )
    loaded = load_dataset(dataset.save(tmp_path / "demos.npz"))
    for name, array in dataset.arrays().items():
        np.testing.assert_array_equal(getattr(loaded, name), array)
        assert getattr(loaded, name).dtype == array.dtype
    assert loaded.meta == dataset.meta
    assert list(tmp_path.iterdir()) == [tmp_path / "demos.npz"]  # no temp files left


def test_episode_accounting(cartpole_demos: Dataset) -> None:
    assert cartpole_demos.n_episodes == 10
    assert cartpole_demos.episode_lengths.sum() == len(cartpole_demos)
    np.testing.assert_allclose(cartpole_demos.episode_returns, cartpole_demos.episode_lengths)
    picked = cartpole_demos.select_episodes([3, 1])
    assert picked.n_episodes == 2
    np.testing.assert_array_equal(
        picked.obs[: picked.episode_lengths[0]],
        cartpole_demos.obs[cartpole_demos.episode_starts[3] : cartpole_demos.episode_ends[3]],
    )
    joined = concatenate([picked, cartpole_demos])
    assert joined.n_episodes == 12 and len(joined) == len(picked) + len(cartpole_demos)
    np.testing.assert_array_equal(joined.episode_lengths[2:], cartpole_demos.episode_lengths)


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"missing\.npz: dataset file not found"):
        load_dataset(tmp_path / "missing.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(DatasetError, match=r"corrupt\.npz: not a readable dataset file"):
        load_dataset(corrupt)


BAD_CASES = {
    "missing field": ({"actions": None}, "field 'actions' is missing"),
    "wrong obs shape": (
        {"obs": np.zeros((5000, 3), np.float32)},
        "field 'obs' has shape (5000, 3), expected (N, 4)",
    ),
    "short actions": (
        {"actions": np.zeros(4999, np.int64)},
        "field 'actions' has shape (4999,), expected (5000,)",
    ),
    "NaN obs": ("nan", "field 'obs' contains NaN or inf"),
    "action outside space": ("bad_action", "field 'actions' has actions outside Discrete"),
    "float actions": ({"actions": np.zeros(5000)}, "field 'actions' has dtype float64"),
    "empty": ("empty", "field 'obs' is empty"),
    "episode index": (
        {"episode_starts": np.array([0, 600, 300])},
        "field 'episode_starts' is inconsistent",
    ),
    "rewards shape": ({"rewards": np.zeros(10, np.float32)}, "field 'rewards' has shape"),
    "bad metadata": ({"meta_json": np.array("{not json")}, "field 'meta_json'"),
    "negative weights": ({"weights": -np.ones(5000, np.float32)}, "negative weights"),
    "final obs shape": ({"final_obs": np.zeros((3, 4), np.float32)}, "field 'final_obs' has shape"),
}


@pytest.mark.parametrize("case", BAD_CASES, ids=list(BAD_CASES))
def test_validation_names_file_and_field(
    tmp_path: Path, cartpole_demos: Dataset, case: str
) -> None:
    change, message = BAD_CASES[case]
    if change == "nan":
        obs = cartpole_demos.obs.copy()
        obs[17, 2] = np.nan
        change = {"obs": obs}
    elif change == "bad_action":
        actions = cartpole_demos.actions.copy()
        actions[42] = 5
        change = {"actions": actions}
    elif change == "empty":
        change = {
            name: getattr(cartpole_demos, name)[:0]
            for name in ("obs", "actions", "rewards", "terminated", "truncated")
        }
    path = _write_raw(tmp_path / "bad.npz", cartpole_demos, **change)  # type: ignore[arg-type]
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert "bad.npz" in str(info.value) and message in str(info.value)
    assert "\n" not in str(info.value)


def test_invalid_dataset_is_not_saved(tmp_path: Path, cartpole_demos: Dataset) -> None:
    obs = cartpole_demos.obs.copy()
    obs[0, 0] = np.inf
    with pytest.raises(DatasetError, match="field 'obs' contains NaN or inf"):
        replace(cartpole_demos, obs=obs).save(tmp_path / "demos.npz")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_save_leaves_previous_file_intact(
    tmp_path: Path, cartpole_demos: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "demos.npz"
    cartpole_demos.save(target)
    before = target.read_bytes()

    def crash_midway(f: object, **arrays: object) -> None:
        f.write(b"PK partial")  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        cartpole_demos.save(target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demos.npz"]


def test_final_obs_follow_episodes(cartpole_demos: Dataset) -> None:
    """Collection records the state after each episode's last step; selections keep it in step."""
    import gymnasium as gym

    from agents.heuristics import heuristic_expert
    from imitate import collect

    final = cartpole_demos.final_obs
    assert final is not None and final.shape == (10, 4)
    # Replaying episode 2's actions from its reset seed ends in the recorded final state.
    lander = collect(heuristic_expert("LunarLander-v3"), "LunarLander-v3", 3, 7, num_envs=2)
    env = gym.make("LunarLander-v3")
    obs, _ = env.reset(seed=7 + 2)
    start, end = lander.episode_starts[2], lander.episode_ends[2]
    np.testing.assert_array_equal(obs, lander.obs[start])
    for action in lander.actions[start:end]:
        obs, *_ = env.step(int(action))
    np.testing.assert_array_equal(obs, lander.final_obs[2])  # type: ignore[index]
    picked = cartpole_demos.select_episodes([4, 2])
    np.testing.assert_array_equal(picked.final_obs, final[[4, 2]])  # type: ignore[index]
    assert cartpole_demos.select_transitions(np.arange(0, 100)).final_obs is None
    joined = concatenate([picked, cartpole_demos])
    np.testing.assert_array_equal(joined.final_obs[2:], final)  # type: ignore[index]
