"""Observation batches: storage dtypes, .npz keys without pickle, per-key validation,
concatenation, vector-env batches, the JSON form of Dict/Tuple/Text spaces."""

from __future__ import annotations

import io
import json

import gymnasium as gym
import numpy as np
import pytest

from imitate import observations as ob
from imitate.errors import DatasetError, UnsupportedSpaceError

TEXT = gym.spaces.Text(24, min_length=0, charset="abcdefghijklmnopqrstuvwxyz ")
SPACE = gym.spaces.Dict(
    [
        ("image", gym.spaces.Box(0, 255, (4, 4, 3), np.uint8)),
        ("direction", gym.spaces.Discrete(4)),
        ("mission", TEXT),
        (
            "arm",
            gym.spaces.Tuple(
                (gym.spaces.Box(-1.0, 1.0, (2,), np.float64), gym.spaces.MultiBinary(3))
            ),
        ),
    ]
)


def _obs(n: int, seed: int = 0) -> ob.ObsBatch:
    rng = np.random.default_rng(seed)
    singles = [
        {
            "image": rng.integers(0, 256, (4, 4, 3), dtype=np.uint8),
            "direction": int(rng.integers(4)),
            "mission": ["go to the ball", "open the door"][int(rng.integers(2))],
            "arm": (rng.uniform(-1, 1, 2), rng.integers(0, 2, 3)),
        }
        for _ in range(n)
    ]
    return ob.batch(singles, SPACE)


def test_batch_keeps_each_key_in_its_storage_dtype() -> None:
    obs = _obs(5)
    assert isinstance(obs, dict)
    assert obs["image"].dtype == np.uint8 and obs["image"].shape == (5, 4, 4, 3)
    assert obs["direction"].dtype == np.int64 and obs["direction"].shape == (5,)
    assert obs["mission"].dtype == np.dtype("<U24")
    box, bits = obs["arm"]
    assert box.dtype == np.float32 and bits.dtype == np.int8
    assert ob.obs_len(obs) == 5


def test_npz_round_trip_without_pickle() -> None:
    obs = _obs(6)
    arrays = ob.obs_to_arrays(obs, SPACE)
    assert sorted(arrays) == ["obs/arm/0", "obs/arm/1", "obs/direction", "obs/image", "obs/mission"]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as data:
        loaded = ob.obs_from_arrays(dict(data), SPACE)
    ob.validate(loaded, SPACE, 6, "x.npz")
    for a, b in zip(ob.leaf_arrays(loaded, SPACE), ob.leaf_arrays(obs, SPACE), strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    assert isinstance(loaded, dict) and isinstance(loaded["arm"], tuple)
    # a flat space is stored under "obs" itself
    flat = gym.spaces.Discrete(3)
    assert list(ob.obs_to_arrays(np.array([0, 2]), flat)) == ["obs"]


def test_missing_key_names_it() -> None:
    arrays = ob.obs_to_arrays(_obs(2), SPACE)
    del arrays["obs/mission"]
    with pytest.raises(DatasetError, match=r"x.npz: field 'obs/mission' is missing"):
        ob.obs_from_arrays(arrays, SPACE, where="x.npz")


@pytest.mark.parametrize(
    ("key", "bad", "match"),
    [
        ("direction", np.array([0, 4, 1]), r"field 'obs/direction' holds values outside \[0, 3\]"),
        ("direction", np.array([0.5, 1, 1]), "fractional"),
        ("image", np.zeros((3, 4, 4), np.uint8), r"field 'obs/image' has shape"),
        ("image", np.zeros((3, 4, 4, 3), np.float32), "must be integers"),
        ("mission", np.zeros(3, np.float32), "must hold strings"),
        ("arm", (np.full((3, 2), np.nan), np.zeros((3, 3), np.int8)), "NaN or inf"),
        ("mission", np.array(["x" * 30] * 3), "longer than 24"),
    ],
)
def test_validate_per_key(key: str, bad: np.ndarray, match: str) -> None:
    obs = _obs(3)
    assert isinstance(obs, dict)
    obs[key] = bad
    with pytest.raises(DatasetError, match=match):
        ob.validate(obs, SPACE, 3, "x.npz")


def test_validate_nested_tuple_and_row_count() -> None:
    obs = _obs(3)
    assert isinstance(obs, dict)
    obs["arm"] = (obs["arm"][0], np.full((3, 3), 2, np.int8))
    with pytest.raises(DatasetError, match=r"field 'obs/arm/1' holds values outside \[0, 1\]"):
        ob.validate(obs, SPACE, 3, "x.npz")
    with pytest.raises(DatasetError, match="has shape"):
        ob.validate(_obs(3), SPACE, 4, "x.npz")
    with pytest.raises(DatasetError, match="does not match"):
        ob.validate(np.zeros((3, 2)), SPACE, 3, "x.npz")


def test_concatenate_take_and_text_widening() -> None:
    a, b = _obs(2, 0), _obs(3, 1)
    both = ob.concatenate([a, b])
    assert ob.obs_len(both) == 5
    np.testing.assert_array_equal(ob.take(both, slice(2, None))["image"], b["image"])  # type: ignore[index]
    wide = ob.concatenate([np.array(["ab"]), np.array(["abcdef"])])
    assert list(wide) == ["ab", "abcdef"]
    narrow = ob.compact({"t": np.array(["ab", "abc"], dtype="<U256"), "x": np.zeros(2)})
    assert narrow["t"].dtype == np.dtype("<U3") and list(narrow["t"]) == ["ab", "abc"]  # type: ignore[index]


def test_empty_assign_and_vector_env_batches() -> None:
    buffer = ob.empty(SPACE, (3, 2))
    assert isinstance(buffer, dict)
    assert buffer["mission"].shape == (3, 2) and buffer["mission"].dtype.kind == "U"
    envs = gym.vector.SyncVectorEnv([lambda: _DictEnv() for _ in range(2)])
    raw, _ = envs.reset(seed=0)
    assert isinstance(raw["mission"], tuple)  # gymnasium batches Text as a tuple of str
    obs = ob.from_vector(raw, envs.single_observation_space)
    ob.validate(obs, SPACE, 2, "vector env")
    ob.assign(buffer, 1, obs)
    np.testing.assert_array_equal(buffer["image"][1], obs["image"])  # type: ignore[index]
    assert list(buffer["mission"][1]) == ["go to the ball"] * 2
    envs.close()


class _DictEnv(gym.Env):
    observation_space = SPACE
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return {
            "image": np.full((4, 4, 3), 7, np.uint8),
            "direction": 1,
            "mission": "go to the ball",
            "arm": (np.zeros(2), np.zeros(3, np.int8)),
        }, {}

    def step(self, action):
        return self.reset()[0], 0.0, True, False, {}


def test_space_json_round_trip_keeps_order_and_text() -> None:
    spec = json.loads(json.dumps(ob.obs_space_to_json(SPACE)))
    assert spec["keys"] == ["image", "direction", "mission", "arm"]
    space = ob.obs_space_from_json(spec)
    assert space == SPACE
    assert list(space.spaces) == list(SPACE.spaces)


def test_check_supported_names_the_space() -> None:
    seq = gym.spaces.Sequence(TEXT)
    for space, where in (  # Dict entries by key, Tuple ones by index, nested ones by path
        (gym.spaces.Dict({"ok": gym.spaces.Discrete(2), "seq": seq}), "observation key 'seq': "),
        (gym.spaces.Tuple((gym.spaces.Discrete(2), seq)), "observation index 1: "),
        (gym.spaces.Dict({"arm": gym.spaces.Tuple((TEXT, seq))}), "observation key 'arm/1': "),
        (seq, ""),  # a space of its own: no path
    ):
        with pytest.raises(UnsupportedSpaceError) as info:
            ob.check_supported(space)
        assert str(info.value).startswith(f"{where}unsupported observation space Sequence")
    with pytest.raises(UnsupportedSpaceError, match="no /"):
        ob.check_supported(gym.spaces.Dict({"a/b": gym.spaces.Discrete(2)}))
    assert ob.check_supported(SPACE) == SPACE


def test_dataset_with_dict_observations_round_trips_through_npz(tmp_path) -> None:
    from imitate.data import Dataset, concatenate, load_dataset, make_meta
    from imitate.errors import DatasetError

    n = 6
    obs = _obs(n)
    meta = make_meta("x", SPACE, gym.spaces.Discrete(2), "test", 0, "per-episode")
    data = Dataset(
        obs=obs,
        actions=np.zeros(n, np.int64),
        rewards=np.ones(n, np.float32),
        terminated=np.array([0, 0, 1, 0, 0, 1], bool),
        truncated=np.zeros(n, bool),
        episode_starts=np.array([0, 3]),
        meta=meta,
        final_obs=_obs(2, seed=5),
    )
    assert len(data) == n and "image: uint8[6, 4, 4, 3]" in repr(data)
    path = data.save(tmp_path / "d.npz")
    with np.load(path, allow_pickle=False) as npz:
        assert "obs/image" in npz.files and "final_obs/mission" in npz.files
        assert npz["obs/image"].dtype == np.uint8
    loaded = load_dataset(path)
    assert loaded.meta.spaces()[0] == SPACE
    for a, b in zip(ob.leaf_arrays(loaded.obs, SPACE), ob.leaf_arrays(obs, SPACE), strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    second = loaded.select_episodes([1])
    assert len(second) == 3
    np.testing.assert_array_equal(second.obs["image"], obs["image"][3:])
    np.testing.assert_array_equal(second.final_obs["direction"], data.final_obs["direction"][1:])
    both = concatenate([loaded, second])
    assert len(both) == 9 and both.final_obs["mission"].shape == (3,)
    # a bad key fails the load naming it
    arrays = {k: v for k, v in np.load(path, allow_pickle=False).items()}
    arrays["obs/direction"] = np.full(n, 9)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError, match=r"bad.npz: field 'obs/direction' holds values"):
        load_dataset(tmp_path / "bad.npz")
