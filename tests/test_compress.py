"""Arithmetic coding of actions: exact round trips, code length = cross-entropy, bad input."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imitate import Dataset
from imitate.bc import BCConfig, train_bc
from imitate.cli import main
from imitate.compress import (
    TOTAL,
    Compressed,
    action_symbols,
    compress_actions,
    decode,
    decompress_actions,
    encode,
    ideal_bits,
    probability_tables,
    quantize,
    quantize_box_actions,
    read_imz,
    write_imz,
)
from imitate.configs import OptimConfig
from imitate.errors import CompressedFileError, UnsupportedSpaceError
from imitate.losses import nats_to_bits
from imitate.policy import MLPPolicy, PolicyConfig, save_policy

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
SPACES: dict[str, gym.Space] = {
    "discrete": gym.spaces.Discrete(4, start=-1),
    "multi_discrete": gym.spaces.MultiDiscrete([2, 5, 3]),
    "multi_binary": gym.spaces.MultiBinary(3),
    "box": gym.spaces.Box(-1.0, 2.0, (2,), np.float32),
}


def random_policy(space: gym.Space, seed: int, scale: float = 1.0) -> MLPPolicy:
    """A small random MLP; ``scale`` multiplies the last layer (large: near-certain outputs)."""
    torch.manual_seed(seed)
    policy = MLPPolicy(OBS, space, PolicyConfig((8,)))
    with torch.no_grad():
        policy.net[-1].weight.mul_(scale)
        policy.net[-1].bias.mul_(scale)
    return policy.eval()


def sampled(policy: MLPPolicy, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` observations and actions drawn from the policy itself."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    with torch.no_grad():
        outputs = policy(torch.as_tensor(obs))
        actions = policy.head.sample(outputs, torch.Generator().manual_seed(seed))
    return obs, policy.head.to_env_actions(actions)


def arbitrary_actions(space: gym.Space, n: int, seed: int) -> np.ndarray:
    """Actions anywhere in the space (not the policy's), including its extremes."""
    space.seed(seed)
    actions = np.stack([space.sample() for _ in range(n)])
    if isinstance(space, gym.spaces.Box):
        actions[: min(n, 2)] = space.high  # the clipped ends of the grid
    return actions


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(SPACES)),
    n=st.integers(1, 300),
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([0.1, 1.0, 30.0, 300.0]),
    from_policy=st.booleans(),
)
def test_round_trip_is_exact(kind: str, n: int, seed: int, scale: float, from_policy: bool) -> None:
    """Any actions of the space, likely or (at scale 300) nearly impossible under the
    policy, come back bit for bit through the byte format."""
    space = SPACES[kind]
    policy = random_policy(space, seed % 7, scale)
    obs, actions = sampled(policy, n, seed)
    if not from_policy:
        actions = arbitrary_actions(space, n, seed).astype(actions.dtype)
    resolution = 0.05 if kind == "box" else None
    compressed = compress_actions(policy, obs, actions, resolution)
    decoded = decompress_actions(policy, obs, Compressed.from_bytes(compressed.to_bytes()))
    expected = quantize_box_actions(policy.head, actions, 0.05) if kind == "box" else actions
    assert decoded.dtype == expected.dtype and decoded.shape == expected.shape
    assert decoded.tobytes() == expected.tobytes()


@pytest.mark.parametrize("kind", sorted(SPACES))
def test_compressed_size_is_the_cross_entropy(kind: str) -> None:
    """Payload bits = the policy's summed cross-entropy in bits, within 1 % + one 32-bit
    flush word; and that cross-entropy is the head's own NLL (what BC reports)."""
    space = SPACES[kind]
    policy = random_policy(space, 1, scale=3.0)
    if kind == "box":  # interior Gaussians of std 0.1 (5 grid steps), rarely clipped
        with torch.no_grad():
            policy.net[-1].weight[:2] *= 0.1
            policy.net[-1].weight[2:] = 0.0
            policy.net[-1].bias[2:] = math.log(0.1)
    obs, actions = sampled(policy, 3000, 0)
    resolution = 0.02 if kind == "box" else None
    compressed = compress_actions(policy, obs, actions, resolution)
    ce_bits = compressed.stats["cross_entropy_bits"]
    assert ce_bits > 500  # a non-trivial stream
    assert abs(compressed.payload_bits - ce_bits) <= 0.01 * ce_bits + 32
    assert compressed.payload_bits >= compressed.stats["quantized_bits"] - 1e-6
    coded = quantize_box_actions(policy.head, actions, 0.02) if kind == "box" else actions
    with torch.no_grad():
        outputs = policy(torch.as_tensor(obs))
        nll_nats = float(policy.head.nll(outputs, policy.head.actions_to_tensor(coded)).sum())
    if kind == "box":
        # cell probability ~ density x step for interior cells: CE ~ NLL - N D log2(step)
        continuous = nats_to_bits(nll_nats) - coded.size * math.log2(0.02)
        assert abs(ce_bits - continuous) <= 0.03 * ce_bits
    else:
        assert ce_bits == pytest.approx(nats_to_bits(nll_nats), rel=1e-4)


def test_confident_policy_codes_its_own_mode_in_almost_nothing() -> None:
    """A near-deterministic policy and its mode actions: a few words for 2,000 actions."""
    policy = random_policy(SPACES["discrete"], 2, scale=300.0)
    obs, _ = sampled(policy, 2000, 1)
    compressed = compress_actions(policy, obs, policy.act(obs))
    assert compressed.payload_bits <= 64


@pytest.mark.parametrize("kind", ["multi_discrete", "box"])
def test_blocks_of_steps_round_trip(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Coding in blocks (here of 7 steps, several groups each) is still exact."""
    import imitate.compress

    monkeypatch.setattr(imitate.compress, "CHUNK_ROWS", 7)
    policy = random_policy(SPACES[kind], 3)
    obs, actions = sampled(policy, 50, 3)
    resolution = 0.1 if kind == "box" else None
    compressed = compress_actions(policy, obs, actions, resolution)
    expected = quantize_box_actions(policy.head, actions, 0.1) if kind == "box" else actions
    assert decompress_actions(policy, obs, compressed).tobytes() == expected.tobytes()
    ce_bits = compressed.stats["cross_entropy_bits"]
    assert abs(compressed.payload_bits - ce_bits) <= 0.01 * ce_bits + 32


def test_quantize_is_exact_and_deterministic() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(5, 0.05), size=500)
    probs[0] = [1.0, 0.0, 0.0, 0.0, 0.0]
    freqs = quantize(probs)
    assert freqs.dtype == np.int64 and (freqs.sum(axis=1) == TOTAL).all() and freqs.min() >= 1
    assert np.array_equal(freqs, quantize(probs.copy()))
    assert freqs[0, 0] == TOTAL - 4
    np.testing.assert_allclose(freqs / TOTAL, probs, atol=5 / TOTAL)


def test_coder_on_known_vectors() -> None:
    """Hand-checkable streams: uniform 1/4 symbols cost exactly 2 bits each (+ flush)."""
    freqs = [np.full((64, 4), TOTAL // 4, dtype=np.int64)]
    symbols = [np.arange(64, dtype=np.int32) % 4]
    words = encode(zip(symbols, freqs, strict=True))
    assert ideal_bits(symbols, freqs, TOTAL) == 128.0
    assert 128 <= 32 * len(words) <= 128 + 64
    assert np.array_equal(decode(words, freqs)[0], symbols[0])
    assert len(encode([(np.zeros(0, np.int32), np.zeros((0, 2), np.int64))])) <= 1


def test_box_grid_and_tables() -> None:
    head = random_policy(SPACES["box"], 0).head
    actions = np.array([[-1.0, 2.0], [0.013, 1.99], [-0.99, 0.5]], dtype=np.float32)
    symbols = action_symbols(head, actions, 0.1)
    assert [s.tolist() for s in symbols] == [[0, 10, 0], [30, 30, 15]]
    back = quantize_box_actions(head, actions, 0.1)
    assert np.abs(back - actions).max() <= 0.05 + 1e-6
    tables = probability_tables(head, np.zeros((3, 4), np.float32), 0.1)
    assert [t.shape for t in tables] == [(3, 31), (3, 31)]
    np.testing.assert_allclose([t.sum(axis=1) for t in tables], 1.0)
    with pytest.raises(CompressedFileError, match="resolution"):
        probability_tables(head, np.zeros((3, 4), np.float32), None)
    unbounded = MLPPolicy(OBS, gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)).head
    with pytest.raises(UnsupportedSpaceError, match="bounded"):
        probability_tables(unbounded, np.zeros((1, 2), np.float32), 0.1)


def test_decoding_refuses_another_policy_other_obs_or_corrupt_bytes(tmp_path: Path) -> None:
    policy = random_policy(SPACES["discrete"], 0)
    obs, actions = sampled(policy, 200, 0)
    path = write_imz(tmp_path / "a.imz", compress_actions(policy, obs, actions))
    compressed = read_imz(path)
    with pytest.raises(CompressedFileError, match="another policy"):
        decompress_actions(random_policy(SPACES["discrete"], 1), obs, compressed)
    with pytest.raises(CompressedFileError, match="observations differ"):
        decompress_actions(policy, obs + 1e-3, compressed)
    data = path.read_bytes()
    for bad, message in (
        (b"PK\x03\x04" + data[4:], "magic"),
        (data[:20], "truncated"),
        (data[:-4], "words"),
    ):
        with pytest.raises(CompressedFileError, match=message):
            Compressed.from_bytes(bad)
    # what a machine whose torch computes other logits would see: refuse, do not guess
    other_tables = replace(compressed, header={**compressed.header, "frequencies_sha256": "0" * 32})
    with pytest.raises(CompressedFileError, match="probabilities differ"):
        decompress_actions(policy, obs, other_tables)
    for field, value, message in (
        ("policy_sha256", 5, "not a string"),
        ("resolution", "fine", "bad resolution"),
        ("dataset", None, "lacks a field"),
    ):
        with pytest.raises(CompressedFileError, match=message):
            decompress_actions(
                policy, obs, replace(compressed, header={**compressed.header, field: value})
            )
    flipped = replace(compressed, words=compressed.words ^ np.uint32(0x5A5A5A5A))
    with pytest.raises(CompressedFileError, match="corrupt"):
        decompress_actions(policy, obs, flipped)


def test_cli_compress_decompress_round_trip(
    tmp_path: Path, cartpole_demos: Dataset, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    demos = cartpole_demos.select_episodes([0, 1])
    demos.save(tmp_path / "d.npz")
    policy, _ = train_bc(demos, BCConfig(seed=0, optim=OptimConfig(max_steps=300)))
    save_policy(policy, tmp_path / "p.pt")
    pt, data, imz = str(tmp_path / "p.pt"), str(tmp_path / "d.npz"), str(tmp_path / "d.imz")
    assert main(["compress", "--policy", pt, "--data", data, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["out"] == imz and result["actions"] == len(demos)
    assert result["file_bytes"] == Path(imz).stat().st_size
    # decompress must not read the actions of --data: give it a copy with them zeroed
    replace(demos, actions=np.zeros_like(demos.actions)).save(tmp_path / "obs_only.npz")
    out = str(tmp_path / "r.npz")
    args = ["decompress", "--policy", pt, "--imz", imz, "--data", str(tmp_path / "obs_only.npz")]
    assert main([*args, "--out", out]) == 0
    restored = np.load(out)["actions"]
    assert restored.dtype == demos.actions.dtype
    assert restored.tobytes() == demos.actions.tobytes()

    # bad input: one line, exit 2, no output file
    other = random_policy(gym.spaces.Discrete(2), 0)
    save_policy(other, tmp_path / "other.pt")
    for bad in (
        ["decompress", "--policy", pt, "--imz", data, "--data", data, "--out", out + "x"],
        [
            "decompress",
            "--policy",
            str(tmp_path / "other.pt"),
            "--imz",
            imz,
            "--data",
            data,
            "--out",
            out + "y",
        ],
        ["compress", "--policy", pt, "--data", data, "--resolution", "0.1", "--out", imz + "z"],
        ["compress", "--policy", pt, "--data", str(tmp_path / "missing.npz")],
    ):
        capsys.readouterr()
        assert main(bad) == 2
        err = capsys.readouterr().err
        assert err.startswith("imitate: error: ") and err.count("\n") == 1, err
    assert not any(Path(p).exists() for p in (out + "x", out + "y", imz + "z"))


def test_cli_box_actions_need_a_resolution_and_come_back_quantised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from envs import EXPERTS
    from imitate import collect

    demos = collect(EXPERTS["imitate/LabelBox-v0"](), "imitate/LabelBox-v0", 4, 0)
    demos.save(tmp_path / "box.npz")
    policy, _ = train_bc(demos, BCConfig(seed=0, optim=OptimConfig(max_steps=200)))
    save_policy(policy, tmp_path / "p.pt")
    pt, data, imz = str(tmp_path / "p.pt"), str(tmp_path / "box.npz"), str(tmp_path / "b.imz")
    assert main(["compress", "--policy", pt, "--data", data, "--out", imz]) == 2
    assert "resolution" in capsys.readouterr().err and not Path(imz).exists()
    assert (
        main(["compress", "--policy", pt, "--data", data, "--out", imz, "--resolution", "0.01"])
        == 0
    )
    out = str(tmp_path / "r.npz")
    assert main(["decompress", "--policy", pt, "--imz", imz, "--data", data, "--out", out]) == 0
    restored = np.load(out)["actions"]
    assert restored.tobytes() == quantize_box_actions(policy.head, demos.actions, 0.01).tobytes()
    assert np.abs(restored - demos.actions).max() <= 0.005 + 1e-6
