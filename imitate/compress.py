"""Arithmetic coding of a dataset's actions with a policy's action distribution.

Cross-entropy is a code length: coding the expert's action ``a_t`` with a code built
for the policy's distribution ``q(. | s_t)`` costs ``-log2 q(a_t | s_t)`` bits, so a
dataset's actions compress to the policy's summed cross-entropy (plus a few bits).
This module makes that literal: :func:`compress_actions` range-codes the actions of a
dataset given its observations and a policy, :func:`decompress_actions` inverts it bit
for bit, and the ``.imz`` file holds the result.

What it owns:

* **Symbol tables per head.** Discrete: one categorical per step. MultiDiscrete: one
  categorical per factor (the head's factors are independent given the state).
  MultiBinary: one Bernoulli per button. Box (bounded only): each dimension is
  quantised to a grid of step ``resolution`` from ``low`` (centres ``low + k *
  resolution``, the last one clipped to ``high``); a value is coded as its nearest
  centre ``k`` with the probability that the head's Gaussian puts on that centre's cell
  (cells bounded by the midpoints between centres; the mass beyond the bounds goes to
  the end cells, because the head clips its samples into the box). Box coding is
  therefore lossless for the *quantised* actions only: decompression returns the
  centres, within ``resolution / 2`` of the originals (:func:`quantize_box_actions`).
* **Integer tables with the precision the policy needs (format 2).** Each step's
  log2-probabilities (float64, from the policy's float32 outputs) become integer
  frequencies ``max(1, floor(2**(P + log2 p)))`` with ``P = 32 + ceil(-log2 p_min)``
  bits, ``p_min`` the step's least likely symbol (at most :data:`MAX_PRECISION_BITS`;
  Box: :data:`BOX_PRECISION_BITS`, see below). So every symbol, however unlikely,
  gets its probability to a relative 2^-32, and coding it costs its cross-entropy to
  about 2^-31 bits. The tables are a pure function of the float64 inputs, computed the
  same way at both ends; the header stores a hash of them, so if another machine or
  torch build computes different outputs, decompression stops with an error instead of
  returning wrong actions.
* **The range coder** (:class:`RangeEncoder` / :class:`RangeDecoder`), hand-written
  on Python integers. Why not a library: a clone's confident mistakes put expert
  actions at probabilities far below 2^-32, and the coders on PyPI that fit take
  fixed-precision integer tables: ``constriction`` (format 1) at 2^-24 through its
  Python API (32 bits in its Rust core), ``distribution-coder`` at 2^-32 (its
  documentation), ``torchac`` at 2^-16. A floored action costs the floor, not its cross-entropy,
  so the code length stops being the cross-entropy exactly where the clone is worst
  (8-28 % short for the BC-1 clones in docs/compression.md). Python integers have no
  such limit: the coder's state is as wide as the largest table needs (``state_bits``
  in the header). It is tested against known vectors and with hypothesis round trips,
  including carries through runs of 0xFF bytes. Its cost is speed: 3-11x the time of
  constriction's coder (``benchmarks/bench_compress.py``).
* **Box tables** are the Gaussian's log cell masses from ``log_ndtr`` (in the lower
  tail, mirrored for cells above the mean), so even cells far out in a tail get their
  mass. Coding them with big integers would take too long over grids of up to 65,536
  cells, so Box steps use fixed 62-bit tables (numpy int64): a Box cell costs at most
  62 bits, and the code length is the cross-entropy only where no coded cell is below
  2^-62 (format 1's ``probability_tables`` keeps its own float64 ``ndtr`` differences,
  so that its files still decode).
* **Observations of any kind** the library supports (:data:`imitate.observations.ObsBatch`:
  arrays, Dict/Tuple batches, Text strings), for an ``MLPPolicy`` or an
  :class:`~imitate.encoded.EncodedPolicy`: steps are the batch's rows (every leaf must
  have as many), and the header's observation hash covers every leaf (strings as UTF-8,
  whatever their storage width). A numeric array is hashed as its float32 values, as
  before, so older files still decode.
* **The .imz format** (no pickle). Format 2: ``b"IMZ2"``, a compact binary header
  (flags, LEB128 counts, the action dtype, the resolution as float64, optional deflated
  JSON metadata such as the env id, and four 64-bit truncated SHA-256 hashes: policy,
  observations, frequency tables, decoded actions), then the coder's bytes. About 45
  bytes without metadata. Format 1 (``b"IMZ1"``, JSON header, constriction's 24-bit
  coder, see :func:`encode`) is still decoded (``constriction`` needed); other magic
  bytes or versions are refused with one line.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from imitate.encoded import EncodedPolicy
from imitate.errors import CompressedFileError, UnsupportedSpaceError
from imitate.fileio import write_bytes
from imitate.observations import ObsBatch, batch_leaves, canonical_space
from imitate.policy import MLPPolicy
from imitate.spaces import (
    ActionHead,
    BernoulliHead,
    CategoricalHead,
    GaussianHead,
    MultiCategoricalHead,
    space_to_json,
)

MAGIC = b"IMZ2"
MAGIC_V1 = b"IMZ1"
FORMAT = "imitate-actions"
FORMAT_VERSION = 2
MARGIN_BITS = 32
"""Format 2: bits of precision below a step's least likely symbol (its relative error)."""
MAX_PRECISION_BITS = 4096
"""Format 2: at most this many bits per table (a probability below 2^-4064 is raised)."""
BOX_PRECISION_BITS = 62
"""Format 2: Box tables have 62-bit frequencies (numpy int64), whatever the cell masses."""
HASH_HEX_V2 = 16
"""Format 2: identity hashes are SHA-256 truncated to 64 bits (16 hex digits)."""
PRECISION_BITS = 24
"""Format 1: constriction's range coder works with probabilities of 24 bits."""
TOTAL = 1 << PRECISION_BITS
HASH_HEX = 32
"""Format 1: identity hashes are SHA-256 truncated to 128 bits (32 hex digits)."""
CHUNK_ROWS = 8192
"""Steps whose tables are held in memory at once (coding order: block, then group)."""
MAX_BOX_CELLS = 1 << 16
"""Upper bound on the grid size of one Box dimension (keeps the tables in memory)."""
_LN2 = math.log(2.0)
_LOG2_TINY = -1022.0
"""Cross-entropy statistics count a float64 probability that underflowed as 2^-1022."""


# ---- symbol tables (format 1 probabilities, shared grids and symbols) -------------


def _softmax64(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _box_grid(head: GaussianHead, resolution: float | None) -> list[np.ndarray]:
    """Per dimension the grid centres ``[M_d]`` (float64) of a bounded Box head."""
    if not head.bounded:
        raise UnsupportedSpaceError("compressing Box actions needs a bounded Box action space")
    if resolution is None or not math.isfinite(resolution) or resolution <= 0:
        raise CompressedFileError(
            f"Box actions need a positive --resolution (quantisation step), got {resolution}"
        )
    grids = []
    for low, high in zip(head.low, head.high, strict=True):
        cells = math.ceil((high - low) / resolution - 1e-9) + 1
        if cells > MAX_BOX_CELLS:
            raise CompressedFileError(
                f"--resolution {resolution} gives {cells} cells over [{low}, {high}]; "
                f"at most {MAX_BOX_CELLS}"
            )
        grids.append(np.minimum(low + resolution * np.arange(cells), high))
    return grids


def quantize_box_actions(head: GaussianHead, actions: np.ndarray, resolution: float) -> np.ndarray:
    """Box actions ``[N, D]`` -> their nearest grid centres ``[N, D]`` float32 (what a
    compress/decompress round trip returns)."""
    symbols = action_symbols(head, actions, resolution)
    return symbols_to_actions(head, symbols, resolution, np.dtype(np.float32))


def probability_tables(
    head: ActionHead, outputs: np.ndarray, resolution: float | None = None
) -> list[np.ndarray]:
    """The coding distributions, one group per independently coded component.

    ``outputs`` ``[N, n_outputs]`` raw head outputs -> a list of ``[N, K_j]`` float64
    tables whose rows sum to 1: one group (Discrete), one per factor (MultiDiscrete),
    one per button (MultiBinary, K = 2) or one per dimension (Box, K = grid cells).
    """
    out = np.asarray(outputs, dtype=np.float64)
    if isinstance(head, CategoricalHead):
        return [_softmax64(out)]
    if isinstance(head, MultiCategoricalHead):
        bounds = np.cumsum(head.nvec)[:-1]
        return [_softmax64(part) for part in np.split(out, bounds, axis=-1)]
    if isinstance(head, BernoulliHead):
        tables = []
        for j in range(head.n):
            x = out[:, j]
            e = np.exp(-np.abs(x))  # in (0, 1]: no overflow on either side
            big, small = 1.0 / (1.0 + e), e / (1.0 + e)
            p1, p0 = np.where(x >= 0, big, small), np.where(x >= 0, small, big)
            tables.append(np.stack([p0, p1], axis=-1))
        return tables
    if isinstance(head, GaussianHead):
        grids = _box_grid(head, resolution)
        with torch.no_grad():
            mean_t, log_std_t = head.mean_log_std(torch.as_tensor(out, dtype=torch.float64))
            tables = []
            for d, centres in enumerate(grids):
                edges = torch.as_tensor((centres[1:] + centres[:-1]) / 2, dtype=torch.float64)
                z = (edges[None, :] - mean_t[:, d : d + 1]) / log_std_t[:, d : d + 1].exp()
                cdf = torch.special.ndtr(z).numpy()
                n = len(out)
                cdf = np.concatenate([np.zeros((n, 1)), cdf, np.ones((n, 1))], axis=1)
                probs = np.clip(np.diff(cdf, axis=1), 0.0, None)
                tables.append(probs / probs.sum(axis=1, keepdims=True))
        return tables
    raise UnsupportedSpaceError(f"cannot compress actions of head {type(head).__name__}")


def action_symbols(
    head: ActionHead, actions: np.ndarray, resolution: float | None = None
) -> list[np.ndarray]:
    """Env actions ``[N, *action_shape]`` -> one ``[N]`` int32 symbol array per group."""
    a = np.asarray(actions)
    if isinstance(head, CategoricalHead):
        return [(a.astype(np.int64) - head.start).astype(np.int32)]
    if isinstance(head, MultiCategoricalHead | BernoulliHead):
        return [a[:, j].astype(np.int32) for j in range(a.shape[1])]
    if isinstance(head, GaussianHead):
        grids = _box_grid(head, resolution)
        step = float(resolution or 0.0)  # _box_grid has checked it is positive
        return [
            np.clip(np.rint((a[:, d].astype(np.float64) - low) / step), 0, len(g) - 1).astype(
                np.int32
            )
            for d, (low, g) in enumerate(zip(head.low, grids, strict=True))
        ]
    raise UnsupportedSpaceError(f"cannot compress actions of head {type(head).__name__}")


def symbols_to_actions(
    head: ActionHead, symbols: list[np.ndarray], resolution: float | None, dtype: np.dtype[Any]
) -> np.ndarray:
    """Inverse of :func:`action_symbols` (Box: the grid centres), cast to ``dtype``."""
    if isinstance(head, CategoricalHead):
        return (symbols[0].astype(np.int64) + head.start).astype(dtype)
    if isinstance(head, MultiCategoricalHead | BernoulliHead):
        return np.stack(symbols, axis=1).astype(dtype)
    if isinstance(head, GaussianHead):
        grids = _box_grid(head, resolution)
        return np.stack([g[s] for g, s in zip(grids, symbols, strict=True)], axis=1).astype(dtype)
    raise UnsupportedSpaceError(f"cannot decompress actions of head {type(head).__name__}")


def quantize(probs: np.ndarray) -> np.ndarray:
    """``[N, K]`` probabilities -> ``[N, K]`` int64 frequencies, each >= 1, rows sum 2**24.

    ``1 + floor(p * (2**24 - K))`` per symbol; the remainder goes to the first most
    likely symbol. A pure function of the float64 input, so encoder and decoder agree.
    """
    p = np.asarray(probs, dtype=np.float64)
    n, k = p.shape
    if k > TOTAL // 2:
        raise UnsupportedSpaceError(f"{k} symbols exceed the coder's {PRECISION_BITS}-bit tables")
    if not np.isfinite(p).all() or (p < 0).any():
        raise CompressedFileError("the policy produced non-finite or negative probabilities")
    p = p / p.sum(axis=1, keepdims=True)
    freqs = 1 + np.floor(p * (TOTAL - k)).astype(np.int64)
    rows = np.arange(n)
    freqs[rows, freqs.argmax(axis=1)] += TOTAL - freqs.sum(axis=1)
    return freqs


# ---- identities --------------------------------------------------------------------------


def policy_fingerprint(policy: MLPPolicy | EncodedPolicy) -> str:
    """SHA-256 (first 128 bits, hex) of the architecture (constructor JSON) and every weight
    and buffer."""
    digest = hashlib.sha256(json.dumps(policy.constructor_args(), sort_keys=True).encode())
    for key, value in sorted(policy.state_dict().items()):
        array = np.ascontiguousarray(value.detach().cpu().numpy())
        digest.update(f"{key}:{array.dtype}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:HASH_HEX]


def _array_sha256(array: np.ndarray) -> str:
    a = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{a.dtype.str}:{a.shape}".encode())
    digest.update(a.tobytes())
    return digest.hexdigest()[:HASH_HEX]


# ---- the format-2 coder: a range coder on Python integers ----------------------------


class RangeEncoder:
    """Range encoder with a state of ``state_bits`` bits (a multiple of 8), on Python ints.

    The classic byte-oriented range coder (Schindler/Subbotin, carry handled as in
    LZMA: a cached byte plus a count of pending 0xFF bytes), except that ``low`` and
    ``range`` are Python integers of ``state_bits`` bits instead of 32. Each step codes
    ``[cum, cum + freq)`` of ``total`` (``1 <= freq``, ``cum + freq <= total``, any
    size); it needs ``range >= total * 2**32`` (so ``state_bits >= total.bit_length() +
    40``), and then loses at most ``log2(1 / (1 - 2**-32))`` bits to the truncation of
    ``range // total``. :meth:`finish` emits the shortest byte string that identifies the
    final interval, with at least its ideal length: the stream is at most ``sum
    log2(total / freq) + 9`` bits (+ 2^-31 bits per step).
    """

    def __init__(self, state_bits: int) -> None:
        if state_bits % 8 or state_bits < 48:
            raise ValueError(f"state_bits must be a multiple of 8, at least 48: {state_bits}")
        self.bits = state_bits
        self.mask = (1 << state_bits) - 1
        self.top = 1 << (state_bits - 8)
        self.low = 0
        self.range = 1 << state_bits
        self.cache = 0  # the first byte out is this dummy 0, dropped by finish()
        self.pending = 0  # 0xFF bytes held back until a carry is ruled out
        self.out = bytearray()

    def encode(self, cum: int, freq: int, total: int) -> None:
        r = self.range // total
        if r < 1 << 32 or not 0 < freq <= total - cum or cum < 0:
            raise ValueError(f"cannot code [{cum}, {cum + freq}) of {total} in {self.bits} bits")
        self.low += r * cum
        self.range = r * freq
        while self.range < self.top:
            self._shift()
            self.range <<= 8

    def encode_all(self, cums: list[int], freqs: list[int], totals: list[int]) -> None:
        """:meth:`encode` of each step in turn (the same arithmetic, fewer lookups)."""
        for cum, freq, total in zip(cums, freqs, totals, strict=True):
            r = self.range // total
            if r < 1 << 32 or not 0 < freq <= total - cum or cum < 0:
                raise ValueError(
                    f"cannot code [{cum}, {cum + freq}) of {total} in {self.bits} bits"
                )
            self.low += r * cum
            rng = r * freq
            while rng < self.top:
                self._shift()
                rng <<= 8
            self.range = rng

    def _shift(self) -> None:
        low = self.low
        if low < 0xFF << (self.bits - 8) or low > self.mask:
            carry = low >> self.bits
            self.out.append((self.cache + carry) & 0xFF)
            self.out.extend(bytes([(0xFF + carry) & 0xFF]) * self.pending)
            self.pending = 0
            self.cache = (low >> (self.bits - 8)) & 0xFF
        else:
            self.pending += 1
        self.low = (low << 8) & self.mask

    def finish(self) -> bytes:
        """The coded bytes: the value in the final interval whose bits below
        ``floor(log2 range)`` are zero (one always exists), up to the byte that holds
        that bit position; the decoder reads zeros past the end. That is at least the
        interval's ideal length and at most 8 bits more."""
        k = self.range.bit_length() - 1
        self.low = ((self.low + (1 << k) - 1) >> k) << k
        for _ in range(-(-(self.bits - k) // 8) + 1):
            self._shift()
        assert self.out[0] == 0, "the dummy byte cannot take a carry"
        return bytes(self.out[1:])


class RangeDecoder:
    """Inverse of :class:`RangeEncoder`: ``target(total)`` then ``consume(cum, freq)``."""

    def __init__(self, data: bytes, state_bits: int) -> None:
        self.data = data
        self.bits = state_bits
        self.top = 1 << (state_bits - 8)
        self.range = 1 << state_bits
        self.pos = state_bits // 8
        self.code = int.from_bytes(data[: self.pos].ljust(self.pos, b"\0"), "big")
        self.r = 0

    def target(self, total: int) -> int:
        """The value in ``[0, total)`` that names the next symbol (its ``cum <= t < cum +
        freq``); ``ValueError`` when the stream cannot be a coded one."""
        self.r = self.range // total
        t = self.code // self.r
        if t >= total:
            raise ValueError("code value outside the coding interval")
        return t

    def decode_rows(self, rows: list[Any]) -> list[int]:
        """Decode one symbol per cumulative row (a list of ints, or an int64 array)."""
        out = []
        data, top, n = self.data, self.top, len(self.data)
        code, rng, pos = self.code, self.range, self.pos
        for row in rows:
            total = int(row[-1])
            r = rng // total
            t = code // r
            if t >= total:
                raise ValueError("code value outside the coding interval")
            if isinstance(row, list):
                s = bisect.bisect_right(row, t) - 1
                cum, nxt = row[s], row[s + 1]
            else:
                s = int(np.searchsorted(row, t, side="right")) - 1
                cum, nxt = int(row[s]), int(row[s + 1])
            code -= r * cum
            rng = r * (nxt - cum)
            while rng < top:
                code = (code << 8) | (data[pos] if pos < n else 0)
                pos += 1
                rng <<= 8
            out.append(s)
        self.code, self.range, self.pos = code, rng, pos
        return out

    def consume(self, cum: int, freq: int) -> None:
        self.code -= self.r * cum
        self.range = self.r * freq
        while self.range < self.top:
            byte = self.data[self.pos] if self.pos < len(self.data) else 0
            self.code = (self.code << 8) | byte
            self.pos += 1
            self.range <<= 8


# ---- format 2: log2 tables and integer tables of the policy's precision ---------------


def _log_softmax64(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def log2_probability_tables(
    head: ActionHead, outputs: np.ndarray, resolution: float | None = None
) -> list[np.ndarray]:
    """Format 2's coding distributions as log2-probabilities, one group per independently
    coded component: ``outputs`` ``[N, n_outputs]`` -> ``[N, K_j]`` float64 tables
    (``-inf`` only for a Box cell whose float64 mass underflowed)."""
    out = np.asarray(outputs, dtype=np.float64)
    if isinstance(head, CategoricalHead):
        return [_log_softmax64(out) / _LN2]
    if isinstance(head, MultiCategoricalHead):
        bounds = np.cumsum(head.nvec)[:-1]
        return [_log_softmax64(part) / _LN2 for part in np.split(out, bounds, axis=-1)]
    if isinstance(head, BernoulliHead):
        return [
            np.stack([-np.logaddexp(0.0, out[:, j]), -np.logaddexp(0.0, -out[:, j])], -1) / _LN2
            for j in range(head.n)
        ]
    if isinstance(head, GaussianHead):
        grids = _box_grid(head, resolution)
        with torch.no_grad():
            mean_t, log_std_t = head.mean_log_std(torch.as_tensor(out, dtype=torch.float64))
            tables = []
            n = len(out)
            for d, centres in enumerate(grids):
                edges = torch.as_tensor((centres[1:] + centres[:-1]) / 2, dtype=torch.float64)
                z = (edges[None, :] - mean_t[:, d : d + 1]) / log_std_t[:, d : d + 1].exp()
                inf = torch.full((n, 1), math.inf, dtype=torch.float64)
                lower, upper = torch.cat([-inf, z], 1), torch.cat([z, inf], 1)
                # a cell above the mean is measured in the mirrored lower tail, and each
                # mass is log(ndtr(u) - ndtr(l)) from log_ndtr: no cancellation, no
                # underflow (torch's float64 ndtr is 0 from -8.5 standard deviations)
                flip = (lower + upper) > 0
                lo = torch.where(flip, -upper, lower)
                hi = torch.where(flip, -lower, upper)
                log_hi = torch.special.log_ndtr(hi)
                gap = torch.special.log_ndtr(lo) - log_hi
                log_mass = log_hi + torch.log(-torch.expm1(gap))
                log_mass = log_mass - torch.logsumexp(log_mass, dim=1, keepdim=True)
                tables.append((log_mass / _LN2).numpy())
        return tables
    raise UnsupportedSpaceError(f"cannot compress actions of head {type(head).__name__}")


def table_precision(head: ActionHead, log2p: np.ndarray) -> np.ndarray:
    """``[N, K]`` log2-probabilities -> ``[N]`` int64 bits of each step's integer table:
    ``32 + ceil(-log2 p_min)`` (at most :data:`MAX_PRECISION_BITS`); Box: 62."""
    if isinstance(head, GaussianHead):
        if np.isnan(log2p).any():
            raise CompressedFileError("the policy produced non-finite probabilities")
        return np.full(len(log2p), BOX_PRECISION_BITS, dtype=np.int64)
    if not np.isfinite(log2p).all():
        raise CompressedFileError("the policy produced non-finite probabilities")
    need = np.ceil(-log2p.min(axis=1, initial=0.0)).astype(np.int64)
    return np.minimum(MARGIN_BITS + np.maximum(need, 0), MAX_PRECISION_BITS)


@dataclass(frozen=True)
class FrequencyTable:
    """Integer tables of one group over a block of ``n`` steps, ``K`` symbols.

    Row ``i`` holds cumulative frequencies ``cum[0] = 0 < cum[1] < ... < cum[K]`` (the
    total): in ``small`` ``[n, K + 1]`` int64 where the row needs at most 62 bits, else
    (``small`` row all zero) in ``big[i]``, a list of Python ints."""

    small: np.ndarray
    big: dict[int, list[int]]

    @classmethod
    def build(cls, log2p: np.ndarray, precision: np.ndarray) -> FrequencyTable:
        """``max(1, floor(2**(P_i + log2p[i, k])))`` per symbol; a pure function of the
        float64 inputs (the mantissa is taken from ``exp2`` of the fractional part)."""
        n, k = log2p.shape
        v = precision[:, None].astype(np.float64) + log2p
        ok = v >= 0.0  # False for -inf: frequency 1
        vv = np.where(ok, v, 0.0)
        e = np.floor(vv).astype(np.int64)
        mant = np.minimum(np.floor(np.exp2(vv - e) * 2.0**52), 2.0**53 - 1).astype(np.int64)
        fits = precision <= BOX_PRECISION_BITS
        left = np.clip(e - 52, 0, 10)
        right = np.clip(52 - e, 0, 62)
        freq = np.where(e >= 52, mant << left, mant >> right)
        freq = np.where(ok, np.maximum(freq, 1), 1)
        small = np.zeros((n, k + 1), dtype=np.int64)
        np.cumsum(freq, axis=1, out=small[:, 1:])
        small[~fits] = 0
        big: dict[int, list[int]] = {}
        for i in np.flatnonzero(~fits).tolist():
            cum, row = 0, [0]
            for m, x, good in zip(mant[i].tolist(), e[i].tolist(), ok[i].tolist(), strict=True):
                f = max(1, m << (x - 52) if x >= 52 else m >> (52 - x)) if good else 1
                cum += f
                row.append(cum)
            big[i] = row
        return cls(small, big)

    def rows(self) -> list[Any]:
        """Per step its cumulative row: a list of ints, or an int64 array when ``K`` is
        large (Box grids), which is cheaper than converting it."""
        if self.small.shape[1] <= 65:
            out: list[Any] = self.small.tolist()
        else:
            out = list(self.small)
        for i, row in self.big.items():
            out[i] = row
        return out

    def update(self, digest: Any) -> None:
        digest.update(np.ascontiguousarray(self.small, dtype="<i8").tobytes())
        for i in sorted(self.big):
            digest.update(f"{i}:{','.join(map(hex, self.big[i]))};".encode())


def state_bits_for(max_precision: int) -> int:
    """Coder state bits for tables of at most ``max_precision`` bits (total < 2**(P+1);
    the coder needs ``state_bits >= total.bit_length() + 40``), rounded up to bytes."""
    return -(-(max_precision + 1 + 40) // 8) * 8


def _chunks_v2(
    head: ActionHead, outputs: np.ndarray, resolution: float | None
) -> Iterator[tuple[slice, list[np.ndarray], list[FrequencyTable]]]:
    """Per block of ``CHUNK_ROWS`` steps: (rows, log2 tables, integer tables) per group."""
    for start in range(0, len(outputs), CHUNK_ROWS):
        rows = slice(start, min(start + CHUNK_ROWS, len(outputs)))
        tables = log2_probability_tables(head, outputs[rows], resolution)
        yield rows, tables, [FrequencyTable.build(t, table_precision(head, t)) for t in tables]


def _max_precision(head: ActionHead, outputs: np.ndarray, resolution: float | None) -> int:
    if isinstance(head, GaussianHead):
        return BOX_PRECISION_BITS
    best = MARGIN_BITS
    for start in range(0, len(outputs), CHUNK_ROWS):
        for t in log2_probability_tables(head, outputs[start : start + CHUNK_ROWS], resolution):
            if len(t):
                best = max(best, int(table_precision(head, t).max()))
    return best


def encode_v2(
    pairs: Iterable[tuple[np.ndarray, FrequencyTable]], state_bits: int
) -> tuple[np.ndarray, float]:
    """Range-code each ``(symbols [n], table of n rows)`` pair in order. Returns the
    coded bytes ``[W]`` uint8 and the ideal code length ``sum log2(total / freq)`` of the
    integer tables in bits."""
    encoder = RangeEncoder(state_bits)
    ideal = 0.0
    for syms, table in pairs:
        rows = np.arange(len(syms))
        cum = table.small[rows, syms]
        freq = table.small[rows, syms + 1] - cum
        total = table.small[:, -1]
        small = total > 0
        ideal += float((np.log2(total[small]) - np.log2(freq[small])).sum())
        cums, freqs, totals = cum.tolist(), freq.tolist(), total.tolist()
        for i, row in table.big.items():
            s = int(syms[i])
            cums[i], freqs[i], totals[i] = row[s], row[s + 1] - row[s], row[-1]
            ideal += math.log2(row[-1]) - math.log2(freqs[i])
        encoder.encode_all(cums, freqs, totals)
    return np.frombuffer(encoder.finish(), dtype=np.uint8).copy(), ideal


def decode_v2(
    words: np.ndarray, tables: Iterable[FrequencyTable], state_bits: int
) -> list[np.ndarray]:
    """Inverse of :func:`encode_v2`: one ``[n]`` int32 symbol array per table, in order;
    ``ValueError`` on a stream that no table sequence could have produced."""
    decoder = RangeDecoder(np.asarray(words).astype(np.uint8).tobytes(), state_bits)
    return [np.asarray(decoder.decode_rows(t.rows()), dtype=np.int32) for t in tables]


# ---- format 1: constriction's 24-bit range coder (still decoded) -----------------


def _constriction() -> Any:
    try:
        import constriction
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise CompressedFileError(
            "compression needs the 'constriction' package: pip install 'imitate[compress]'"
        ) from exc
    return constriction


def _coder_json() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "name": "constriction.stream.queue.RangeEncoder",
        "version": version("constriction"),
        "precision_bits": PRECISION_BITS,
        "word_bits": 32,
    }


def encode(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Range-code each ``(symbols [n], frequency rows [n, K])`` pair, in order; returns the
    compressed uint32 words."""
    c = _constriction()
    encoder = c.stream.queue.RangeEncoder()
    model = c.stream.model.Categorical(perfect=False)
    for syms, table in pairs:
        if len(syms):
            encoder.encode(np.ascontiguousarray(syms, dtype=np.int32), model, table / TOTAL)
    return np.asarray(encoder.get_compressed(), dtype=np.uint32)


def decode(words: np.ndarray, tables: Iterable[np.ndarray]) -> list[np.ndarray]:
    """Inverse of :func:`encode`: one ``[n]`` symbol array per frequency table, in order."""
    c = _constriction()
    decoder = c.stream.queue.RangeDecoder(np.ascontiguousarray(words, dtype=np.uint32))
    model = c.stream.model.Categorical(perfect=False)
    out = []
    for table in tables:
        if len(table) == 0:
            out.append(np.zeros(0, dtype=np.int32))
            continue
        out.append(np.asarray(decoder.decode(model, table / TOTAL), dtype=np.int32))
    return out


def _chunks(
    head: ActionHead, outputs: np.ndarray, resolution: float | None
) -> Iterator[tuple[slice, list[np.ndarray], list[np.ndarray]]]:
    """Per block of ``CHUNK_ROWS`` steps: (rows, float tables, frequency tables) per group.

    Symbols are coded block by block and, within a block, group by group; so memory
    stays at one block's tables (Box: rows x grid cells per dimension)."""
    for start in range(0, len(outputs), CHUNK_ROWS):
        rows = slice(start, min(start + CHUNK_ROWS, len(outputs)))
        tables = probability_tables(head, outputs[rows], resolution)
        yield rows, tables, [quantize(t) for t in tables]


def ideal_bits(symbols: list[np.ndarray], tables: list[np.ndarray], total: float = 1.0) -> float:
    """``sum -log2(table[t, symbol_t] / total)`` over every group: the code length of a
    perfect arithmetic coder (``total`` = 2**24 for integer frequency tables). A float
    probability that underflowed to 0 counts 1022 bits (the smallest normal double)."""
    bits = 0.0
    for syms, table in zip(symbols, tables, strict=True):
        picked = table[np.arange(len(syms)), syms].astype(np.float64) / total
        bits += float(-np.log2(np.maximum(picked, np.finfo(np.float64).tiny)).sum())
    return bits


# ---- the .imz file -------------------------------------------------------------------


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class _Reader:
    """Sequential reads of a byte string; ``CompressedFileError`` past its end."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data, self.pos, self.source = data, 0, source

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise CompressedFileError(f"{self.source}: truncated header")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uvarint(self) -> int:
        value, shift = 0, 0
        while True:
            (byte,) = self.take(1)
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value
            if shift > 63:
                raise CompressedFileError(f"{self.source}: unreadable header (varint)")


_FLAG_RESOLUTION = 1
_FLAG_METADATA = 2
_HASH_FIELDS = ("policy_sha256", "obs_sha256", "frequencies_sha256", "actions_sha256")


@dataclass(frozen=True)
class Compressed:
    """A coded action stream: ``header`` (JSON-safe dict) and ``words`` ``[W]`` (format 2:
    uint8 bytes of the coder; format 1: constriction's uint32 words).

    ``stats`` (not written to the file; empty after reading one): ``cross_entropy_bits``,
    the policy's summed cross-entropy of the coded symbols in bits (float64; Box: of the
    quantised actions under the cell probabilities), and ``quantized_bits``, the ideal
    code length under the integer tables handed to the coder."""

    header: dict[str, Any]
    words: np.ndarray
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def payload_bits(self) -> int:
        return 8 * np.asarray(self.words).itemsize * len(self.words)

    def header_bytes(self) -> bytes:
        """Everything of the file but the payload (format 2: magic bytes included)."""
        if self.header.get("format_version") == 1:
            return json.dumps(self.header, sort_keys=True, separators=(",", ":")).encode()
        h = self.header
        meta = {k: v for k, v in h["dataset"].items() if k not in ("n_actions", "obs_sha256")}
        resolution = h["resolution"]
        flags = (_FLAG_RESOLUTION if resolution is not None else 0) | (
            _FLAG_METADATA if meta else 0
        )
        dtype = h["action_dtype"].encode("ascii")
        parts = [
            MAGIC,
            bytes([flags]),
            _uvarint(h["dataset"]["n_actions"]),
            _uvarint(h["coder"]["state_bits"]),
            _uvarint(h["n_words"]),
            bytes([len(dtype)]),
            dtype,
        ]
        if resolution is not None:
            parts.append(struct.pack("<d", resolution))
        if meta:
            packed = zlib.compress(
                json.dumps(meta, sort_keys=True, separators=(",", ":")).encode(), 9
            )
            parts += [_uvarint(len(packed)), packed]
        hashes = (
            h["policy_sha256"],
            h["dataset"]["obs_sha256"],
            h["frequencies_sha256"],
            h["actions_sha256"],
        )
        parts += [bytes.fromhex(x) for x in hashes]
        return b"".join(parts)

    def to_bytes(self) -> bytes:
        header = self.header_bytes()
        if self.header.get("format_version") == 1:
            words = np.ascontiguousarray(self.words, dtype="<u4").tobytes()
            return MAGIC_V1 + struct.pack("<I", len(header)) + header + words
        return header + np.ascontiguousarray(self.words, dtype=np.uint8).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "compressed file") -> Compressed:
        """Parse and check an ``.imz`` byte string (format 2 or 1); ``CompressedFileError``
        on any problem."""
        if len(data) >= 4 and data[:4] == MAGIC_V1:
            return cls._from_bytes_v1(data, source)
        if len(data) < 4 or data[:4] != MAGIC:
            if len(data) >= 4 and data[:3] == b"IMZ":
                raise CompressedFileError(
                    f"{source}: .imz format {data[3:4].decode('latin-1')!r} is not supported "
                    f"(this imitate reads formats 1 and 2)"
                )
            raise CompressedFileError(f"{source}: not an imitate .imz file (bad magic bytes)")
        r = _Reader(data, source)
        r.take(4)
        (flags,) = r.take(1)
        n_actions, state_bits, n_words = r.uvarint(), r.uvarint(), r.uvarint()
        try:
            dtype = np.dtype(r.take(r.take(1)[0]).decode("ascii")).str
        except (UnicodeDecodeError, TypeError) as exc:
            raise CompressedFileError(f"{source}: unreadable header (action dtype)") from exc
        resolution = struct.unpack("<d", r.take(8))[0] if flags & _FLAG_RESOLUTION else None
        meta: dict[str, Any] = {}
        if flags & _FLAG_METADATA:
            try:
                meta = json.loads(zlib.decompress(r.take(r.uvarint())))
            except (zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CompressedFileError(f"{source}: unreadable header ({exc})") from exc
            if not isinstance(meta, dict):
                raise CompressedFileError(f"{source}: unreadable header (metadata)")
        hashes = [r.take(HASH_HEX_V2 // 2).hex() for _ in _HASH_FIELDS]
        if state_bits % 8 or not 48 <= state_bits <= state_bits_for(MAX_PRECISION_BITS):
            raise CompressedFileError(
                f"{source}: unreadable header (coder state of {state_bits} bits)"
            )
        body = data[r.pos :]
        if len(body) != n_words:
            raise CompressedFileError(
                f"{source}: {len(body)} payload bytes, header says {n_words} words of 8 bits"
            )
        header = _header_v2(
            policy=hashes[0],
            n_actions=n_actions,
            obs=hashes[1],
            meta=meta,
            resolution=resolution,
            dtype=dtype,
            state_bits=state_bits,
            frequencies=hashes[2],
            actions=hashes[3],
            n_words=n_words,
        )
        return cls(header, np.frombuffer(body, dtype=np.uint8).copy())

    @classmethod
    def _from_bytes_v1(cls, data: bytes, source: str) -> Compressed:
        if len(data) < 8:
            raise CompressedFileError(f"{source}: truncated header")
        (length,) = struct.unpack("<I", data[4:8])
        if 8 + length > len(data):
            raise CompressedFileError(f"{source}: truncated header")
        try:
            header = json.loads(data[8 : 8 + length].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CompressedFileError(f"{source}: unreadable header ({exc})") from exc
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CompressedFileError(f"{source}: not an imitate compressed-actions file")
        if header.get("format_version") != 1:
            raise CompressedFileError(
                f"{source}: format version {header.get('format_version')} is not supported"
            )
        body = data[8 + length :]
        if len(body) % 4 or len(body) // 4 != header.get("n_words"):
            raise CompressedFileError(
                f"{source}: {len(body)} payload bytes, header says {header.get('n_words')} words"
            )
        return cls(header, np.frombuffer(body, dtype="<u4").astype(np.uint32))


def _header_v2(
    *,
    policy: str,
    n_actions: int,
    obs: str,
    meta: dict[str, Any],
    resolution: float | None,
    dtype: str,
    state_bits: int,
    frequencies: str,
    actions: str,
    n_words: int,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "coder": {
            "name": "imitate.compress.RangeEncoder",
            "state_bits": state_bits,
            "word_bits": 8,
        },
        "policy_sha256": policy,
        "action_dtype": dtype,
        "resolution": resolution,
        "dataset": {**meta, "n_actions": n_actions, "obs_sha256": obs},
        "frequencies_sha256": frequencies,
        "actions_sha256": actions,
        "n_words": n_words,
    }


def _policy_outputs(policy: MLPPolicy | EncodedPolicy, obs: ObsBatch) -> np.ndarray:
    """Raw head outputs ``[N, n_outputs]`` in one batch (the same call at both ends).

    Numeric arrays go in as float32 (as format 1 did); strings (Text) and Dict/Tuple
    batches as they are, to the policy's encoder."""
    if _numeric_array(obs):
        return np.asarray(policy.logits(np.asarray(obs, dtype=np.float32)), dtype=np.float32)
    if not isinstance(policy, EncodedPolicy):
        raise UnsupportedSpaceError(
            f"a flat MLP policy (observations {policy.observation_space}) cannot take "
            "Dict, Tuple or Text observations"
        )
    return np.asarray(policy.logits(obs), dtype=np.float32)


def _numeric_array(obs: ObsBatch) -> bool:
    return isinstance(obs, np.ndarray) and obs.dtype.kind in "biuf"


def _obs_sha256(obs: ObsBatch) -> str:
    """Identity hash of an observation batch (hex, :data:`HASH_HEX` digits).

    A numeric array: its float32 values (what formats 1 and 2 always hashed, so older
    files still decode). Text leaves: their strings (UTF-8, length-prefixed: the hash
    does not depend on the storage width ``<U{n}``). Dict/Tuple: every leaf with its
    path (``image``, ``0``, ``arm/1``) in the batch's order, numeric leaves as float32."""
    if _numeric_array(obs):
        return _array_sha256(np.asarray(obs, dtype=np.float32))
    digest = hashlib.sha256(b"imitate-obs-batch")

    def visit(batch: ObsBatch, path: str) -> None:
        if isinstance(batch, dict):
            for key, sub in batch.items():
                visit(sub, f"{path}/{key}")
            return
        if isinstance(batch, tuple | list):
            for i, sub in enumerate(batch):
                visit(sub, f"{path}/{i}")
            return
        a = np.asarray(batch)
        if a.dtype.kind in "US":
            strings = [str(x).encode("utf-8") for x in a.reshape(-1)]
            digest.update(f"{path}:text:{a.shape}".encode())
            for b in strings:
                digest.update(struct.pack("<Q", len(b)) + b)
            return
        if a.dtype.kind not in "biuf":
            raise UnsupportedSpaceError(
                f"cannot compress with observations of dtype {a.dtype} (at {path or 'obs'})"
            )
        digest.update(bytes.fromhex(_array_sha256(a.astype(np.float32))))
        digest.update(path.encode())

    visit(obs, "")
    return digest.hexdigest()[:HASH_HEX]


def observation_signature(space: gym.Space[Any]) -> Any:
    """What must agree between a policy's and a dataset's observation spaces for
    compression: a Box's shape (as before), else the canonical space itself (gymnasium's
    equality: a Dict's keys and leaf spaces, Text's lengths and charset)."""
    if isinstance(space, gym.spaces.Box):
        return space.shape
    return canonical_space(space)


def _n_observations(obs: ObsBatch) -> int:
    """Rows of an observation batch (steps, not a Dict's keys); ``CompressedFileError``
    when it has none or its leaves differ in length."""
    try:
        lengths = {int(np.asarray(a).shape[0]) for a in batch_leaves(obs)}
    except IndexError as exc:  # a 0-d leaf
        raise CompressedFileError("observations must be a batch of rows (one per step)") from exc
    if not lengths:
        raise CompressedFileError("an empty Dict/Tuple observation batch has no steps")
    if len(lengths) > 1:
        raise CompressedFileError(
            f"the observation batch's fields differ in length: {sorted(lengths)} rows"
        )
    return lengths.pop()


def _check_symbols(head: ActionHead, syms: np.ndarray, k: int) -> None:
    if len(syms) and (syms.min() < 0 or syms.max() >= k):
        raise CompressedFileError(f"actions outside the policy's action space {head.space()}")


def compress_actions(
    policy: MLPPolicy | EncodedPolicy,
    obs: ObsBatch,
    actions: np.ndarray,
    resolution: float | None = None,
    dataset: dict[str, Any] | None = None,
    format_version: int = FORMAT_VERSION,
) -> Compressed:
    """Code ``actions`` ``[N, *action_shape]`` given ``obs`` ``[N, *obs_shape]`` and the
    policy's action distribution. ``dataset`` (JSON-safe) is recorded in the header.
    ``format_version=1`` writes the old format (constriction's 24-bit coder)."""
    head = policy.head
    n_obs = _n_observations(obs)
    if n_obs != len(actions):
        raise CompressedFileError(f"{n_obs} observations but {len(actions)} actions")
    if isinstance(head, GaussianHead):
        actions = quantize_box_actions(head, actions, resolution)  # type: ignore[arg-type]
    elif resolution is not None:
        raise CompressedFileError("--resolution applies to Box actions only")
    if format_version == 1:
        return _compress_v1(policy, obs, actions, resolution, dataset)
    if format_version != FORMAT_VERSION:
        raise CompressedFileError(f"cannot write .imz format {format_version}")
    outputs = _policy_outputs(policy, obs)
    symbols = action_symbols(head, actions, resolution)
    state_bits = state_bits_for(_max_precision(head, outputs, resolution))
    digest = hashlib.sha256()
    stats = {"cross_entropy_bits": 0.0, "quantized_bits": 0.0}

    def pairs() -> Iterator[tuple[np.ndarray, FrequencyTable]]:
        for rows, tables, freqs in _chunks_v2(head, outputs, resolution):
            for group, table, freq in zip(symbols, tables, freqs, strict=True):
                syms = group[rows]
                _check_symbols(head, syms, table.shape[1])
                freq.update(digest)
                picked = table[np.arange(len(syms)), syms]
                stats["cross_entropy_bits"] -= float(np.maximum(picked, _LOG2_TINY).sum())
                yield syms, freq

    words, stats["quantized_bits"] = encode_v2(pairs(), state_bits)
    header = _header_v2(
        policy=policy_fingerprint(policy)[:HASH_HEX_V2],
        n_actions=len(actions),
        obs=_obs_sha256(obs)[:HASH_HEX_V2],
        meta=dict(dataset or {}),
        resolution=None if resolution is None else float(resolution),
        dtype=np.asarray(actions).dtype.str,
        state_bits=state_bits,
        frequencies=digest.hexdigest()[:HASH_HEX_V2],
        actions=_array_sha256(np.asarray(actions))[:HASH_HEX_V2],
        n_words=len(words),
    )
    return Compressed(header, words, stats)


def _compress_v1(
    policy: MLPPolicy | EncodedPolicy,
    obs: ObsBatch,
    actions: np.ndarray,
    resolution: float | None,
    dataset: dict[str, Any] | None,
) -> Compressed:
    head = policy.head
    outputs = _policy_outputs(policy, obs)
    symbols = action_symbols(head, actions, resolution)
    digest = hashlib.sha256()
    stats = {"cross_entropy_bits": 0.0, "quantized_bits": 0.0}

    def pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for rows, tables, freqs in _chunks(head, outputs, resolution):
            for group, table, freq in zip(symbols, tables, freqs, strict=True):
                syms = group[rows]
                _check_symbols(head, syms, table.shape[1])
                digest.update(np.ascontiguousarray(freq, dtype="<i8").tobytes())
                stats["cross_entropy_bits"] += ideal_bits([syms], [table])
                stats["quantized_bits"] += ideal_bits([syms], [freq], TOTAL)
                yield syms, freq

    words = encode(pairs())
    header = {
        "format": FORMAT,
        "format_version": 1,
        "coder": _coder_json(),
        "policy_sha256": policy_fingerprint(policy),
        "action_space": space_to_json(head.space()),
        "action_dtype": np.asarray(actions).dtype.str,
        "resolution": resolution,
        "dataset": {
            **(dataset or {}),
            "n_actions": len(actions),
            "obs_sha256": _obs_sha256(obs),
        },
        "frequencies_sha256": digest.hexdigest()[:HASH_HEX],
        "actions_sha256": _array_sha256(np.asarray(actions)),
        "n_words": len(words),
    }
    return Compressed(header, words, stats)


def decompress_actions(
    policy: MLPPolicy | EncodedPolicy, obs: ObsBatch, compressed: Compressed
) -> np.ndarray:
    """The actions ``[N, *action_shape]`` coded in ``compressed`` (format 2 or 1), bit for
    bit (Box: the grid centres). ``CompressedFileError`` when policy, observations or the
    recomputed probabilities differ from those at compression time."""
    header = compressed.header
    try:
        version = header["format_version"]
        expected_policy = header["policy_sha256"]
        n = int(header["dataset"]["n_actions"])
        obs_hash = header["dataset"]["obs_sha256"]
        resolution = header["resolution"]
        dtype = np.dtype(header["action_dtype"])
        freqs_hash, actions_hash = header["frequencies_sha256"], header["actions_sha256"]
        state_bits = int(header["coder"]["state_bits"]) if version == 2 else 0
    except (KeyError, TypeError, ValueError) as exc:
        raise CompressedFileError(f"compressed header lacks a field ({exc})") from exc
    if version not in (1, 2):
        raise CompressedFileError(f".imz format {version} is not supported (formats 1 and 2 are)")
    hex_len = HASH_HEX if version == 1 else HASH_HEX_V2
    if not all(isinstance(h, str) for h in (expected_policy, obs_hash, freqs_hash, actions_hash)):
        raise CompressedFileError("compressed header has a hash that is not a string")
    if resolution is not None and (
        isinstance(resolution, bool) or not isinstance(resolution, int | float)
    ):
        raise CompressedFileError(f"compressed header has a bad resolution {resolution!r}")
    if policy_fingerprint(policy)[:hex_len] != expected_policy:
        raise CompressedFileError(
            f"the file was compressed with another policy (sha256 {expected_policy[:12]}...); "
            "decompression needs the same weights"
        )
    n_obs = _n_observations(obs)
    if n_obs != n or _obs_sha256(obs)[:hex_len] != obs_hash:
        raise CompressedFileError(
            f"the observations differ from those at compression time ({n_obs} given, {n} coded)"
        )
    head = policy.head
    outputs = _policy_outputs(policy, obs)
    # first pass: the tables must be those of compression time, else refuse to decode
    digest = hashlib.sha256()
    if version == 1:
        for _, _, freqs in _chunks(head, outputs, resolution):
            for freq in freqs:
                digest.update(np.ascontiguousarray(freq, dtype="<i8").tobytes())
    else:
        for _, _, tables in _chunks_v2(head, outputs, resolution):
            for table in tables:
                table.update(digest)
    if digest.hexdigest()[:hex_len] != freqs_hash or (
        version == 2 and state_bits != state_bits_for(_max_precision(head, outputs, resolution))
    ):
        raise CompressedFileError(
            "the policy's probabilities differ from those at compression time "
            "(another torch build or CPU?): cannot decode safely"
        )
    n_groups = len(probability_tables(head, np.zeros((0, head.n_outputs)), resolution))
    try:
        if version == 1:
            flat = decode(
                compressed.words,
                (f for _, _, freqs in _chunks(head, outputs, resolution) for f in freqs),
            )
        else:
            flat = decode_v2(
                compressed.words,
                (t for _, _, tables in _chunks_v2(head, outputs, resolution) for t in tables),
                state_bits,
            )
    except (ValueError, RuntimeError, AssertionError) as exc:
        raise CompressedFileError(f"corrupt compressed payload ({exc})") from exc
    symbols = [
        np.concatenate(flat[g::n_groups]) if flat else np.zeros(0, np.int32)
        for g in range(n_groups)
    ]
    actions = symbols_to_actions(head, symbols, resolution, dtype)
    if _array_sha256(actions)[:hex_len] != actions_hash:
        raise CompressedFileError("decoded actions fail their checksum: the payload is corrupt")
    return actions


def write_imz(path: str | os.PathLike[str], compressed: Compressed) -> Path:
    """Write an ``.imz`` file atomically."""
    return write_bytes(path, compressed.to_bytes())


def read_imz(path: str | os.PathLike[str]) -> Compressed:
    """Read and check an ``.imz`` file."""
    path = Path(path)
    if not path.is_file():
        raise CompressedFileError(f"{path}: compressed file not found")
    return Compressed.from_bytes(path.read_bytes(), str(path))
