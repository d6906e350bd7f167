"""``imitate compress`` / ``decompress`` with every observation kind (Dict, Tuple, Text,
Discrete, MultiBinary): steps counted as rows, not a Dict's keys; strings hashed, not
cast to float; policy and dataset spaces checked before coding."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import envs
from imitate import BCConfig, Dataset, collect, train_bc
from imitate.cli import main
from imitate.compress import Compressed, compress_actions, decompress_actions
from imitate.configs import OptimConfig
from imitate.errors import CompressedFileError
from imitate.observations import compact, obs_len, take
from imitate.policy import save_policy


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[Any, Dataset]]:
    """Per observation env: 3 expert episodes and a BC policy of 100 steps on them."""
    out = {}
    for env_id in envs.OBS_ENVS:
        demos = collect(envs.EXPERTS[env_id](), env_id, 3, seed=0)
        policy, _ = train_bc(demos, BCConfig(seed=0, optim=OptimConfig(max_steps=100)))
        out[env_id] = (policy, demos)
    return out


@pytest.mark.parametrize("env_id", list(envs.OBS_ENVS))
def test_every_observation_kind_round_trips(env_id: str, trained: dict[str, Any]) -> None:
    policy, demos = trained[env_id]
    n = obs_len(demos.obs)
    assert n == len(demos.actions) > 3
    compressed = compress_actions(policy, demos.obs, demos.actions)
    assert compressed.header["dataset"]["n_actions"] == n
    restored = decompress_actions(policy, demos.obs, Compressed.from_bytes(compressed.to_bytes()))
    assert restored.dtype == demos.actions.dtype
    assert restored.tobytes() == demos.actions.tobytes()
    # other observations (the steps in reverse order) are refused, not decoded into garbage
    with pytest.raises(CompressedFileError, match="observations differ"):
        decompress_actions(policy, take(demos.obs, np.arange(n)[::-1]), compressed)
    # a real length mismatch names the number of steps, not of a Dict's keys
    with pytest.raises(CompressedFileError, match=f"^{n - 1} observations but {n} actions$"):
        compress_actions(policy, take(demos.obs, np.arange(n - 1)), demos.actions)


def test_text_observations_are_hashed_as_strings(trained: dict[str, Any]) -> None:
    policy, demos = trained["imitate/ObsText-v0"]
    compressed = compress_actions(policy, demos.obs, demos.actions)
    # the storage width of the strings does not matter, their content does
    wide = np.asarray(demos.obs).astype("<U200")
    assert decompress_actions(policy, wide, compressed).tobytes() == demos.actions.tobytes()
    assert decompress_actions(policy, compact(wide), compressed).tobytes() == (
        demos.actions.tobytes()
    )
    edited = np.array(demos.obs, copy=True)
    edited[0] = edited[0] + "x"
    with pytest.raises(CompressedFileError, match="observations differ"):
        decompress_actions(policy, edited, compressed)


def test_dict_leaves_of_other_lengths_are_refused(trained: dict[str, Any]) -> None:
    policy, demos = trained["imitate/ObsDict-v0"]
    ragged = {**demos.obs, "mode": demos.obs["mode"][:-1]}
    with pytest.raises(CompressedFileError, match="differ in length"):
        compress_actions(policy, ragged, demos.actions)


@pytest.mark.parametrize("kind", ["Dict", "Text"])
def test_cli_compress_decompress_round_trip(
    kind: str, trained: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy, demos = trained[f"imitate/Obs{kind}-v0"]
    demos.save(tmp_path / "d.npz")
    save_policy(policy, tmp_path / "p.pt")
    pt, data, imz = str(tmp_path / "p.pt"), str(tmp_path / "d.npz"), str(tmp_path / "d.imz")
    assert main(["compress", "--policy", pt, "--data", data, "--out", imz, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["actions"] == len(demos.actions) and Path(imz).is_file()
    # decompress must not read the actions of --data: give it a copy with them zeroed
    replace(demos, actions=np.zeros_like(demos.actions)).save(tmp_path / "obs_only.npz")
    out = tmp_path / "r.npz"
    args = ["decompress", "--policy", pt, "--imz", imz, "--data", str(tmp_path / "obs_only.npz")]
    assert main([*args, "--out", str(out)]) == 0
    with np.load(out) as restored, np.load(data) as original:
        assert sorted(restored.files) == sorted(original.files)
        for key in original.files:
            assert np.array_equal(restored[key], original[key]), key


def test_cli_refuses_a_policy_of_another_observation_space(
    trained: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text_policy, _ = trained["imitate/ObsText-v0"]
    _, dict_demos = trained["imitate/ObsDict-v0"]
    dict_demos.save(tmp_path / "d.npz")
    save_policy(text_policy, tmp_path / "text.pt")
    out = tmp_path / "x.imz"
    args = ["compress", "--policy", str(tmp_path / "text.pt"), "--data", str(tmp_path / "d.npz")]
    capsys.readouterr()
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imitate: error: ") and err.count("\n") == 1, err
    assert "Text(" in err and "Dict(" in err
    assert not out.exists()
