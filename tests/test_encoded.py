"""EncodedPolicy (encoder + trunk + head): learnable on every observation env, numpy
snapshot == torch, checkpoint round trip, ONNX action parity."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from imitate import observations as ob
from imitate.configs import PolicyConfig
from imitate.encoded import EncodedPolicy, load_encoded_policy
from imitate.encoders import EncoderConfig
from imitate.errors import CheckpointError
from imitate.policy import load_policy, save_policy


def _demos(env_id: str, n: int, seed: int) -> tuple[gym.Space, ob.ObsBatch, np.ndarray]:
    """``n`` (obs, expert action) pairs of an observation env (i.i.d. observations)."""
    expert = envs.EXPERTS[env_id]()
    vec = gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(10)])
    space = ob.canonical_space(vec.single_observation_space)
    raw, _ = vec.reset(seed=seed)
    batches, actions = [], []
    for _ in range(n // 10):
        obs = ob.from_vector(raw, space)
        act = expert.act(obs)
        batches.append(obs)
        actions.append(act)
        raw, *_ = vec.step(act)
    vec.close()
    return space, ob.concatenate(batches), np.concatenate(actions)


def _fit(policy: EncodedPolicy, obs: ob.ObsBatch, actions: np.ndarray, steps: int) -> None:
    """A plain Adam loop on the head's NLL (BC proper comes with the trainer integration)."""
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    generator = np.random.default_rng(0)
    targets = policy.head.actions_to_tensor(actions)
    for _ in range(steps):
        index = generator.integers(0, len(actions), 64)
        loss = policy.head.nll(policy.outputs(ob.take(obs, index)), targets[index]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize("env_id", list(envs.OBS_ENVS))
def test_learns_each_observation_env_and_exports(env_id: str, tmp_path) -> None:
    torch.manual_seed(0)
    space, obs, actions = _demos(env_id, 2000, seed=0)
    policy = EncodedPolicy.for_data(
        space, gym.spaces.Discrete(3), obs, PolicyConfig(hidden=(64, 64)), EncoderConfig()
    )
    _fit(policy, obs, actions, steps=600)
    _, test_obs, test_actions = _demos(env_id, 500, seed=1)
    accuracy = float((policy.act(test_obs) == test_actions).mean())
    assert accuracy >= 0.95, accuracy
    # numpy snapshot == torch
    snapshot = policy.numpy_snapshot()
    np.testing.assert_allclose(snapshot.logits(test_obs), policy.logits(test_obs), atol=1e-4)
    np.testing.assert_array_equal(snapshot.act(test_obs), policy.act(test_obs))
    # checkpoint round trip: same logits, the vocabulary in the JSON header
    path = save_policy(policy, tmp_path / "policy.safetensors", {"env_id": env_id})
    loaded = load_encoded_policy(path)
    assert isinstance(load_policy(path), EncodedPolicy)
    np.testing.assert_array_equal(loaded.logits(test_obs), policy.logits(test_obs))
    assert loaded.provenance["env_id"] == env_id
    # ONNX: the same actions on every held-out observation
    pytest.importorskip("onnxruntime")
    from imitate.export.onnx import OnnxEncodedPolicy, export_onnx

    onnx_path = export_onnx(policy, tmp_path / "policy.onnx")
    onnx_actions = OnnxEncodedPolicy(onnx_path, loaded.encoder).act(test_obs)
    np.testing.assert_array_equal(onnx_actions, policy.act(test_obs))


def test_pixel_policy_numpy_and_onnx_parity(tmp_path) -> None:
    torch.manual_seed(0)
    space = gym.spaces.Box(0, 255, (4, 40, 60), np.uint8)
    frames = np.random.default_rng(0).integers(0, 256, (32, 4, 40, 60), dtype=np.uint8)
    policy = EncodedPolicy.for_data(space, gym.spaces.Discrete(2), frames)
    assert type(policy.encoder).__name__ == "ImageEncoder"
    np.testing.assert_allclose(
        policy.numpy_snapshot().logits(frames), policy.logits(frames), rtol=1e-4, atol=1e-4
    )
    pytest.importorskip("onnxruntime")
    from imitate.export.onnx import OnnxEncodedPolicy, export_onnx

    onnx_path = export_onnx(policy, tmp_path / "pixels.onnx")
    onnx = OnnxEncodedPolicy(onnx_path, policy.encoder)
    np.testing.assert_array_equal(onnx.act(frames), policy.act(frames))


def test_checkpoint_of_another_kind_is_refused(tmp_path) -> None:
    from imitate.policy import MLPPolicy

    path = save_policy(
        MLPPolicy(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(2)), tmp_path / "p"
    )
    with pytest.raises(CheckpointError, match="not an encoded policy"):
        load_encoded_policy(path)


def test_indexed_net_gathers_rows_and_needs_encoder() -> None:
    from imitate.encoded import IndexedNet, needs_encoder

    assert needs_encoder(gym.spaces.Discrete(3))
    assert needs_encoder(gym.spaces.Box(0, 255, (8, 8, 3), np.uint8))
    assert not needs_encoder(gym.spaces.Box(-1.0, 1.0, (4,), np.float32))
    space, obs, _ = _demos("imitate/ObsDict-v0", 40, seed=0)
    policy = EncodedPolicy.for_data(space, gym.spaces.Discrete(3), obs)
    net = IndexedNet(policy, obs)
    index = torch.tensor([5, 0, 17])
    with torch.no_grad():
        np.testing.assert_array_equal(
            net(index).numpy(), policy.outputs(ob.take(obs, [5, 0, 17])).numpy()
        )
