"""Format 2 of imitate.compress: the big-integer range coder (known vectors, hypothesis
round trips, carries), code length = cross-entropy where the policy is confidently
wrong, the compact header, and format 1 files still decoding."""

from __future__ import annotations

import bisect
import itertools
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imitate.compress import (
    MAGIC,
    Compressed,
    FrequencyTable,
    RangeDecoder,
    RangeEncoder,
    compress_actions,
    decompress_actions,
    log2_probability_tables,
    state_bits_for,
    table_precision,
)
from imitate.errors import CompressedFileError
from imitate.losses import nats_to_bits
from imitate.policy import MLPPolicy, PolicyConfig

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)


def random_policy(space: gym.Space, seed: int, scale: float = 1.0) -> MLPPolicy:
    torch.manual_seed(seed)
    policy = MLPPolicy(OBS, space, PolicyConfig((8,)))
    with torch.no_grad():
        policy.net[-1].weight.mul_(scale)
        policy.net[-1].bias.mul_(scale)
    return policy.eval()


def code(steps: list[tuple[list[int], int]]) -> tuple[bytes, list[int], float, int]:
    """Encode ``(frequencies, symbol)`` steps; returns (bytes, decoded symbols, ideal bits,
    state bits)."""
    totals = [sum(freqs) for freqs, _ in steps]
    bits = -(-(max(totals, default=1).bit_length() + 40) // 8) * 8
    encoder = RangeEncoder(bits)
    ideal = 0.0
    for freqs, s in steps:
        encoder.encode(sum(freqs[:s]), freqs[s], sum(freqs))
        ideal += math.log2(sum(freqs)) - math.log2(freqs[s])
    data = encoder.finish()
    decoder = RangeDecoder(data, bits)
    decoded = []
    for freqs, _ in steps:
        t = decoder.target(sum(freqs))
        cum = [0, *itertools.accumulate(freqs)]  # Python ints: frequencies exceed int64
        s = bisect.bisect_right(cum, t) - 1
        decoder.consume(cum[s], freqs[s])
        decoded.append(s)
    return data, decoded, ideal, bits


def test_known_vectors() -> None:
    # uniform quarters: the stream is the base-4 digits, 2 bits each, nothing else
    data, decoded, ideal, _ = code([([1, 1, 1, 1], i % 4) for i in range(64)])
    assert data == b"\x1b" * 16 and decoded == [i % 4 for i in range(64)] and ideal == 128
    # one symbol of probability 2^-200 (the last): 200 one bits
    data, decoded, ideal, bits = code([([2**200 - 1, 1], 1)])
    assert bits == state_bits_for(200) and ideal == pytest.approx(200.0)
    assert data.rstrip(b"\0") == b"\xff" * 25 and len(data) <= 26 and decoded == [1]
    # thirds: n log2 3 bits, within the coder's 10-bit bound
    steps = [([1, 1, 1], i % 3) for i in range(300)]
    data, decoded, ideal, _ = code(steps)
    assert decoded == [s for _, s in steps]
    assert 300 * math.log2(3) <= 8 * len(data) <= 300 * math.log2(3) + 10
    # nothing to code: no bytes beyond the first
    assert len(RangeEncoder(48).finish()) <= 1


class CarryCounter(RangeEncoder):
    carries = 0

    def _shift(self) -> None:
        CarryCounter.carries += self.low > self.mask and self.pending > 0
        super()._shift()


def test_carries_through_pending_ff_bytes() -> None:
    """Non-power-of-two totals make carries into runs of held-back 0xFF bytes."""
    rng = np.random.default_rng(0)
    steps = [
        ([int(f) for f in rng.integers(1, 9, 3)], int(rng.integers(0, 3))) for _ in range(5000)
    ]
    encoder = CarryCounter(48)
    for freqs, s in steps:
        encoder.encode(sum(freqs[:s]), freqs[s], sum(freqs))
    assert CarryCounter.carries > 0
    data = encoder.finish()
    assert code(steps)[0] == data and code(steps)[1] == [s for _, s in steps]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.lists(
                st.one_of(
                    st.integers(1, 3),
                    st.integers(1, 2**32),
                    st.integers(1, 2**300),
                    st.just(1),
                ),
                min_size=1,
                max_size=6,
            ),
            st.integers(0, 5),
        ),
        max_size=120,
    )
)
def test_round_trip_and_length(raw: list[tuple[list[int], int]]) -> None:
    """Any frequencies (1 to 2^300, so probabilities down to ~2^-300) and symbols come back
    exactly, in at least the ideal code length and at most 9 bits more (+ rounding)."""
    steps = [(freqs, s % len(freqs)) for freqs, s in raw]
    data, decoded, ideal, _ = code(steps)
    assert decoded == [s for _, s in steps]
    assert ideal - 1e-9 <= 8 * len(data) <= ideal + 10


@pytest.mark.parametrize(
    "space",
    [gym.spaces.Discrete(4), gym.spaces.MultiDiscrete([3, 5]), gym.spaces.MultiBinary(3)],
    ids=["discrete", "multi_discrete", "multi_binary"],
)
def test_confident_mistakes_cost_their_cross_entropy(space: gym.Space) -> None:
    """Actions the policy gives probabilities far below 2^-24 (the old coder's floor) cost
    their full cross-entropy: payload = the head's own NLL within 0.1 % + 16 bits."""
    policy = random_policy(space, 4, scale=200.0)
    rng = np.random.default_rng(1)
    obs = rng.uniform(-1, 1, (400, 3)).astype(np.float32)
    space.seed(2)
    actions = np.stack([space.sample() for _ in range(400)]).astype(
        np.int64 if not isinstance(space, gym.spaces.MultiBinary) else np.int8
    )
    with torch.no_grad():
        outputs = policy(torch.as_tensor(obs))
        nll = policy.head.nll(outputs, policy.head.actions_to_tensor(actions))
    ce_bits = nats_to_bits(float(nll.sum()))
    assert int((nll > 64 * math.log(2.0)).sum()) >= 20  # below 2^-64: beyond any fixed table
    compressed = compress_actions(policy, obs, actions)
    assert abs(compressed.payload_bits - ce_bits) <= 0.001 * ce_bits + 16
    assert compressed.stats["cross_entropy_bits"] == pytest.approx(ce_bits, rel=1e-4)
    restored = decompress_actions(policy, obs, Compressed.from_bytes(compressed.to_bytes()))
    assert restored.tobytes() == actions.tobytes()


def test_tables_have_the_precision_of_the_least_likely_symbol() -> None:
    log2p = np.log2(np.array([[0.5, 0.5], [1 - 2.0**-100, 2.0**-100], [0.25, 0.75]]))
    head = random_policy(gym.spaces.Discrete(2), 0).head
    precision = table_precision(head, log2p)
    assert precision.tolist() == [33, 132, 34]
    table = FrequencyTable.build(log2p, precision)
    rows = table.rows()
    assert rows[0] == [0, 2**32, 2**33]
    assert rows[2][:2] == [0, 2**32] and abs(rows[2][2] - 2**34) <= 1  # float64 log2(0.75)
    assert rows[1][1] - rows[1][0] == pytest.approx(2**132 * (1 - 2.0**-100), rel=1e-15)
    assert rows[1][2] - rows[1][1] == 2**32
    assert set(table.big) == {1}


def test_compact_header_and_payload_only_file() -> None:
    policy = random_policy(gym.spaces.Discrete(2), 0)
    obs = np.random.default_rng(0).uniform(-1, 1, (500, 3)).astype(np.float32)
    compressed = compress_actions(policy, obs, policy.act(obs))
    data = compressed.to_bytes()
    assert data.startswith(MAGIC) and len(compressed.header_bytes()) <= 48
    assert len(data) == len(compressed.header_bytes()) + compressed.payload_bits // 8
    meta = compress_actions(policy, obs, policy.act(obs), dataset={"env_id": "CartPole-v1"})
    again = Compressed.from_bytes(meta.to_bytes())
    assert again.header == meta.header and again.header["dataset"]["env_id"] == "CartPole-v1"


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.MultiBinary(3),
        gym.spaces.Discrete(3),
        gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
    ],
    ids=["multi_binary", "discrete", "box"],
)
def test_format_1_files_still_decode_and_unknown_formats_are_refused(space: gym.Space) -> None:
    pytest.importorskip("constriction")
    policy = random_policy(space, 1, scale=3.0)
    obs = np.random.default_rng(3).uniform(-1, 1, (300, 3)).astype(np.float32)
    space.seed(4)
    actions = np.stack([space.sample() for _ in range(300)])
    resolution = 0.05 if isinstance(space, gym.spaces.Box) else None
    old = compress_actions(policy, obs, actions, resolution, format_version=1)
    data = old.to_bytes()
    assert data[:4] == b"IMZ1" and old.header["format_version"] == 1
    new = compress_actions(policy, obs, actions, resolution)
    restored = decompress_actions(policy, obs, Compressed.from_bytes(data))
    assert restored.tobytes() == decompress_actions(policy, obs, new).tobytes()
    if resolution is None:
        assert restored.tobytes() == actions.tobytes()
    with pytest.raises(CompressedFileError, match="format '3' is not supported"):
        Compressed.from_bytes(b"IMZ3" + data[4:])
    with pytest.raises(CompressedFileError, match="cannot write"):
        compress_actions(policy, obs, actions, resolution, format_version=3)


def test_cli_refuses_an_unknown_format_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from imitate.cli import main
    from imitate.policy import save_policy

    save_policy(random_policy(gym.spaces.Discrete(2), 0), tmp_path / "p.pt")
    (tmp_path / "new.imz").write_bytes(b"IMZ9" + bytes(40))
    out = tmp_path / "r.npz"
    args = ["--policy", str(tmp_path / "p.pt"), "--imz", str(tmp_path / "new.imz")]
    assert main(["decompress", *args, "--data", str(tmp_path / "d.npz"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imitate: error: ") and err.count("\n") == 1
    assert "format '9' is not supported" in err and not out.exists()


def test_log2_box_tables_keep_the_upper_tail() -> None:
    """Box cell masses far out in either tail are there (from log_ndtr), not 0 as
    torch's float64 ndtr differences make them from ~8.5 standard deviations."""
    head = random_policy(gym.spaces.Box(-1.0, 1.0, (1,), np.float32), 0).head
    outputs = np.array([[-0.5, math.log(0.05)]], dtype=np.float32)  # mean -0.5, std 0.05
    (table,) = log2_probability_tables(head, outputs, 0.1)
    # mean tanh(-0.5) = -0.46: the cell at 0.5 is 18-20 standard deviations above it
    cell = 15  # centre -1 + 15 * 0.1 = 0.5, edges 0.45 and 0.55
    mass = 0.5 * (math.erfc(18.24 / math.sqrt(2)) - math.erfc(20.24 / math.sqrt(2)))
    assert table[0, cell] == pytest.approx(math.log2(mass), abs=0.5)
    assert np.isfinite(table).all() and np.exp2(table).sum() == pytest.approx(1.0)
    assert table[0, -1] < -500  # the end cell at 1.0, ~29 standard deviations out


@pytest.mark.parametrize(
    "space",
    [gym.spaces.Discrete(3), gym.spaces.Box(-1.0, 1.0, (1,), np.float32)],
    ids=["discrete", "box"],
)
def test_non_finite_policy_outputs_are_refused(space: gym.Space) -> None:
    policy = random_policy(space, 0)
    with torch.no_grad():
        policy.net[-1].bias.fill_(math.nan)
    obs = np.zeros((4, 3), np.float32)
    actions = np.stack([space.sample() for _ in range(4)])
    resolution = 0.1 if isinstance(space, gym.spaces.Box) else None
    with pytest.raises(CompressedFileError, match="non-finite"):
        compress_actions(policy, obs, actions, resolution)
