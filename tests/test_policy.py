"""MLPPolicy, its numpy snapshot, and checkpoints."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from cli_helpers import run_cli
from safetensors import safe_open

from imitate import CheckpointError, MLPPolicy, PolicyConfig, load_policy, save_policy
from imitate import observations as ob
from imitate.encoded import EncodedPolicy, load_encoded_policy
from imitate.errors import UnsupportedSpaceError
from imitate.policy import (
    JSGatedPolicy,
    Policy,
    RecurrentPolicy,
    SoftPolicy,
    fast_policy,
    load_checkpoint,
)
from imitate.runtime import load_numpy_policy, write_checkpoint
from imitate.spaces import CategoricalHead

OBS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
ACTION_SPACES = [
    gym.spaces.Discrete(3),
    gym.spaces.MultiDiscrete([3, 2]),
    gym.spaces.MultiBinary(3),
    gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
]


def _policy(action_space: gym.Space, activation: str = "tanh") -> MLPPolicy:
    torch.manual_seed(0)
    policy = MLPPolicy(OBS, action_space, PolicyConfig((32, 16), activation))  # type: ignore[arg-type]
    policy.fit_normalizer(np.random.default_rng(0).normal(2.0, 3.0, (500, 4)))
    return policy


@pytest.mark.parametrize("action_space", ACTION_SPACES, ids=str)
def test_act_shapes_protocols_and_space(action_space: gym.Space) -> None:
    policy = _policy(action_space)
    obs = np.random.default_rng(1).normal(size=(7, 4)).astype(np.float32)
    actions = policy.act(obs)
    assert actions.shape == (7, *action_space.shape)
    assert all(action_space.contains(a) for a in actions)
    assert policy.logits(obs).shape == (7, policy.head.n_outputs)
    assert isinstance(policy, SoftPolicy) and isinstance(policy.numpy_snapshot(), SoftPolicy)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("action_space", ACTION_SPACES, ids=str)
def test_numpy_snapshot_has_action_parity(action_space: gym.Space, activation: str) -> None:
    policy = _policy(action_space, activation)
    obs = np.random.default_rng(2).normal(2.0, 3.0, size=(10_000, 4)).astype(np.float32)
    snapshot = policy.numpy_snapshot()
    np.testing.assert_allclose(snapshot.logits(obs), policy.logits(obs), rtol=1e-4, atol=1e-4)
    if policy.head.discrete:
        agree = (snapshot.act(obs) == policy.act(obs)).reshape(len(obs), -1).all(axis=1)
        assert agree.mean() >= 0.9999  # float32 rounding can only flip exact ties
    else:
        np.testing.assert_allclose(snapshot.act(obs), policy.act(obs), atol=1e-5)


def test_snapshot_is_frozen_copy() -> None:
    policy = _policy(gym.spaces.Discrete(3))
    snapshot = fast_policy(policy)
    obs = np.ones((3, 4), np.float32)
    before = snapshot.logits(obs).copy()  # type: ignore[attr-defined]
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(1.0)
    np.testing.assert_array_equal(snapshot.logits(obs), before)  # type: ignore[attr-defined]
    other: Policy = object.__new__(type("P", (), {"act": lambda self, o: o}))
    assert fast_policy(other) is other


@pytest.mark.parametrize("action_space", ACTION_SPACES, ids=str)
def test_checkpoint_round_trip(tmp_path: Path, action_space: gym.Space) -> None:
    policy = _policy(action_space)
    path = save_policy(policy, tmp_path / "p.pt", config={"env_id": "X", "bc": {"lr": 0.1}})
    loaded = load_policy(path)
    obs = np.random.default_rng(3).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.logits(obs), policy.logits(obs))
    # a safetensors file: named tensors plus a JSON header, read here without imitate
    with safe_open(str(path), framework="np") as f:
        header = json.loads(f.metadata()["imitate"])
        assert set(f.keys()) == set(policy.state_dict())
        np.testing.assert_array_equal(f.get_tensor("obs_std"), policy.obs_std.numpy())
    assert header["config"]["env_id"] == "X"
    assert set(header) >= {"format", "kind", "constructor", "config", "versions"}
    assert set(load_checkpoint(path)) >= {"state_dict", "constructor", "config", "versions"}
    fast = load_numpy_policy(path)  # the torch-free inference path
    np.testing.assert_allclose(fast.logits(obs), policy.logits(obs), rtol=1e-5, atol=1e-5)
    if np.issubdtype(policy.act(obs).dtype, np.floating):
        np.testing.assert_allclose(fast.act(obs), policy.act(obs), rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(fast.act(obs), policy.act(obs))
    assert fast.action_space == action_space


def test_reads_checkpoints_of_the_torch_save_format(tmp_path: Path) -> None:
    """Files written before the safetensors format (torch.save of a plain dict) still load."""
    policy = _policy(gym.spaces.Discrete(3))
    legacy = {
        "format": "imitate-policy",
        "format_version": 1,
        "kind": "mlp",
        "state_dict": {k: v.clone() for k, v in policy.state_dict().items()},
        "constructor": policy.constructor_args(),
        "config": {"env_id": "X"},
        "versions": {},
    }
    torch.save(legacy, tmp_path / "old.pt")
    obs = np.random.default_rng(4).normal(size=(20, 4)).astype(np.float32)
    np.testing.assert_array_equal(load_policy(tmp_path / "old.pt").logits(obs), policy.logits(obs))
    fast = load_numpy_policy(tmp_path / "old.pt")
    np.testing.assert_array_equal(fast.act(obs), policy.act(obs))
    assert load_checkpoint(tmp_path / "old.pt")["config"] == {"env_id": "X"}


def test_load_missing_corrupt_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_policy(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable policy checkpoint") as info:
        load_policy(corrupt)
    assert str(info.value).endswith("(neither the safetensors nor the torch.save format)")
    truncated_json = tmp_path / "half.pt"
    truncated_json.write_bytes((5).to_bytes(8, "little") + b'{"a":')
    with pytest.raises(CheckpointError, match=r"neither the safetensors nor the torch\.save"):
        load_policy(truncated_json)  # (not the JSON parser's own words)
    from safetensors.numpy import save_file

    plain = tmp_path / "plain.pt"
    save_file({"w": np.zeros(3, np.float32)}, str(plain))
    with pytest.raises(CheckpointError, match="safetensors file without imitate's header"):
        load_policy(plain)
    bf16 = tmp_path / "bf16.pt"
    torch.save(
        {"kind": "mlp", "state_dict": {"net.0.weight": torch.zeros(2, dtype=torch.bfloat16)}}, bf16
    )
    with pytest.raises(CheckpointError, match=r"'state_dict.net.0.weight' is torch.bfloat16"):
        load_policy(bf16)  # (numpy has no bfloat16: torch raised TypeError)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not an imitate policy checkpoint"):
        load_policy(foreign)


def test_load_checkpoint_of_another_architecture(tmp_path: Path) -> None:
    path = save_policy(_policy(gym.spaces.Discrete(3)), tmp_path / "p.pt")
    checkpoint = load_checkpoint(path)
    checkpoint["constructor"]["hidden"] = [8]
    weights = {k: v.numpy() for k, v in checkpoint.pop("state_dict").items()}
    write_checkpoint(path, weights, checkpoint)
    with pytest.raises(CheckpointError, match="does not match its architecture"):
        load_policy(path)
    with pytest.raises(CheckpointError, match="does not match its architecture"):
        load_numpy_policy(path)
    torch.save({**checkpoint, "state_dict": {}}, tmp_path / "old.pt")  # the older format too
    with pytest.raises(CheckpointError, match="does not match its architecture"):
        load_numpy_policy(tmp_path / "old.pt")


def _encoded_policy() -> EncodedPolicy:
    """An encoded policy of imitate/ObsDict-v0's spaces (a Box, a Discrete, a MultiBinary key)."""
    torch.manual_seed(0)
    space = gym.make("imitate/ObsDict-v0").observation_space
    space.seed(0)
    obs = ob.batch([space.sample() for _ in range(64)], space)
    return EncodedPolicy.for_data(space, gym.spaces.Discrete(3), obs, PolicyConfig((32, 16)))


def _overwrite_tensor_bytes(path: Path, name: str, count: int) -> None:
    """What a corrupted file looks like: the first ``count`` bytes of tensor ``name`` set
    to 0xFF (a float32 NaN), in place in the safetensors file."""
    data = bytearray(path.read_bytes())
    size = int.from_bytes(data[:8], "little")
    start = 8 + size + json.loads(data[8 : 8 + size])[name]["data_offsets"][0]
    data[start : start + count] = b"\xff" * count
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", [*map(str, ACTION_SPACES), "encoded", "encoded torch.save"])
def test_non_finite_weights_are_refused_for_every_checkpoint_kind(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every kind read_checkpoint dispatches to (MLPs with each action head, encoded
    policies, in both file formats) refuses NaN weights in one line naming the field."""
    if kind.startswith("encoded"):
        policy: MLPPolicy | EncodedPolicy = _encoded_policy()
        env, loaders = "imitate/ObsDict-v0", [load_policy, load_encoded_policy]
    else:
        policy = _policy(next(s for s in ACTION_SPACES if str(s) == kind))
        env, loaders = "CartPole-v1", [load_policy, load_numpy_policy]
    path = save_policy(policy, tmp_path / "p.pt", config={"env_id": env})
    if kind == "encoded torch.save":  # the older format: a NaN set in the state dict
        checkpoint = load_checkpoint(path)
        checkpoint["state_dict"]["net.2.weight"][3, 1] = float("nan")
        torch.save(checkpoint, path)
    else:  # as a corrupted file: bytes of one weight overwritten with 0xFF
        _overwrite_tensor_bytes(path, "net.2.weight", 64)
    message = f"{path}: field 'state_dict.net.2.weight' contains NaN or inf"
    for load in loaders:
        with pytest.raises(CheckpointError, match=re.escape(message)):
            load(path)
    for args in (["eval", "--env", env, "--episodes", "1"], ["export", "--format", "c"]):
        code, _, err = run_cli([*args, "--policy", str(path), "--out", str(tmp_path / "o")], capsys)
        assert code == 2 and err == f"imitate: error: {message}\n", err
    assert not (tmp_path / "o").exists()


def test_an_encoder_std_of_zero_is_refused(tmp_path: Path) -> None:
    """An encoder's normalisation divides by its std, as an MLP's by obs_std: > 0 too."""
    path = save_policy(_encoded_policy(), tmp_path / "p.pt")
    checkpoint = load_checkpoint(path)
    checkpoint["state_dict"]["encoder.parts.vec.std"][0] = 0.0
    weights = {k: v.numpy() for k, v in checkpoint.pop("state_dict").items()}
    write_checkpoint(path, weights, checkpoint)
    with pytest.raises(
        CheckpointError, match=r"'state_dict\.encoder\.parts\.vec\.std' must be > 0"
    ):
        load_policy(path)


def test_normalizer_handles_constant_features() -> None:
    policy = _policy(gym.spaces.Discrete(3))
    obs = np.zeros((10, 4))
    obs[:, 0] = np.arange(10)
    policy.fit_normalizer(obs)
    assert torch.all(policy.obs_std[1:] == 1.0)
    assert np.isfinite(policy.logits(obs.astype(np.float32))).all()


class LogitsAreObs:
    """A SoftPolicy whose logits are its observations (2 actions)."""

    head = CategoricalHead(2)

    def logits(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(obs, dtype=np.float32)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.logits(obs).argmax(axis=1)


def _js_nats(logits_p: list[float], logits_q: list[float]) -> float:
    p, q = (np.exp(x) / np.exp(x).sum() for x in (np.array(logits_p), np.array(logits_q)))
    m = (p + q) / 2
    return float(0.5 * (p * np.log(p / m)).sum() + 0.5 * (q * np.log(q / m)).sum())


def test_js_gate_holds_the_action_until_the_distribution_moves() -> None:
    steps = [[0.0, 0.2], [0.2, 0.0], [0.0, 0.3], [5.0, 0.0], [4.0, 0.0]]
    # by hand: step 2 is 0.0050 nats from the anchor (step 1), step 4 0.2271 nats
    assert _js_nats(steps[1], steps[0]) < 0.1 < _js_nats(steps[3], steps[0])
    for threshold, expected in ((0.0, [1, 0, 1, 0, 0]), (0.1, [1, 1, 1, 0, 0])):
        gate = JSGatedPolicy.wrap(LogitsAreObs(), threshold)  # type: ignore[arg-type]
        assert isinstance(gate, RecurrentPolicy)
        state, actions = gate.initial_state(1), []
        for logits in steps:
            action, state = gate.step(np.array([logits]), state)
            actions.append(int(action[0]))
        assert actions == expected
    np.testing.assert_array_equal(gate.act(np.array(steps)), [1, 0, 1, 0, 0])  # first steps
    with pytest.raises(ValueError, match="threshold"):
        JSGatedPolicy.wrap(LogitsAreObs(), 0.7)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedSpaceError):
        JSGatedPolicy.wrap(_policy(gym.spaces.Box(-1.0, 1.0, (2,), np.float32)), 0.1)


def test_fast_gated_policy_acts_like_the_torch_one() -> None:
    policy = _policy(gym.spaces.Discrete(3))
    gate = JSGatedPolicy.wrap(policy, 0.05)
    fast = fast_policy(gate)
    assert isinstance(fast, JSGatedPolicy) and not isinstance(fast.policy, MLPPolicy)
    obs = np.random.default_rng(0).normal(size=(20, 1, 4)).astype(np.float32) * 3
    state_torch, state_fast = gate.initial_state(1), fast.initial_state(1)
    for row in obs:
        (a, state_torch), (b, state_fast) = gate.step(row, state_torch), fast.step(row, state_fast)
        np.testing.assert_array_equal(a, b)
