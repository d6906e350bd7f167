"""Arithmetic coding of a dataset's actions with a policy's action distribution.

Cross-entropy is a code length: coding the expert's action ``a_t`` with a code built
for the policy's distribution ``q(. | s_t)`` costs ``-log2 q(a_t | s_t)`` bits, so a
dataset's actions compress to (almost exactly) the policy's summed cross-entropy.
This module makes that literal: :func:`compress_actions` range-codes the actions of a
dataset given its observations and a policy, :func:`decompress_actions` inverts it bit
for bit, and the ``.imz`` file holds the result.

What it owns:

* **Symbol tables per head.** Discrete: one categorical per step. MultiDiscrete: one
  categorical per factor (the head's factors are independent given the state).
  MultiBinary: one Bernoulli per button, ``[1 - sigmoid(x), sigmoid(x)]``. Box (bounded
  only): each dimension is quantised to a grid of step ``resolution`` from ``low``
  (centres ``low + k * resolution``, the last one clipped to ``high``); a value is coded
  as its nearest centre ``k`` with the probability that the head's Gaussian puts on that
  centre's cell (cells bounded by the midpoints between centres; the mass beyond the
  bounds goes to the end cells, because the head clips its samples into the box). Box
  coding is therefore lossless for the *quantised* actions only: decompression returns
  the centres, within ``resolution / 2`` of the originals (:func:`quantize_box_actions`
  gives the same values).
* **Deterministic quantisation.** Probabilities are computed in float64 from the
  policy's float32 outputs and turned into integer frequencies summing to ``2**24``
  (each at least 1; the rounding remainder goes to the first most likely symbol), the
  same way at both ends. The header stores a SHA-256 of all frequency tables, so if
  another machine or torch build computes different outputs, decompression stops with
  an error instead of returning wrong actions.
* **The .imz format** (no pickle): ``b"IMZ1"``, a little-endian uint32 header length,
  a UTF-8 JSON header (policy fingerprint, dataset identity, counts, resolution,
  coder, hashes truncated to 128 bits: about 500 bytes, a fixed cost that dominates
  streams of a few hundred actions), then the coder's uint32 words, little-endian.

The coder is not hand-written: ``constriction`` (Bamler, 2022; Rust core, numpy API)
provides ``stream.queue.RangeEncoder`` / ``RangeDecoder`` with 32-bit words and
24-bit probabilities, and codes a whole array of symbols, each with its own
categorical distribution, in one call (tens of nanoseconds per symbol). It is a
maintained PyPI package with wheels for the usual platforms, so it beats a
hand-written range coder on speed and on the risk of carry/underflow bugs. The
queue (FIFO) variant is used so that groups decode in the order they were encoded.
It is in the ``compress`` extra and imported only when coding.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imitate.errors import CompressedFileError, UnsupportedSpaceError
from imitate.fileio import write_bytes
from imitate.policy import MLPPolicy
from imitate.spaces import (
    ActionHead,
    BernoulliHead,
    CategoricalHead,
    GaussianHead,
    MultiCategoricalHead,
    space_to_json,
)

MAGIC = b"IMZ1"
FORMAT = "imitate-actions"
FORMAT_VERSION = 1
PRECISION_BITS = 24
"""constriction's range coder works with probabilities of 24 bits."""
TOTAL = 1 << PRECISION_BITS
HASH_HEX = 32
"""Identity hashes in the header are SHA-256 truncated to 128 bits (32 hex digits)."""
CHUNK_ROWS = 8192
"""Steps whose tables are held in memory at once (coding order: block, then group)."""
MAX_BOX_CELLS = 1 << 16
"""Upper bound on the grid size of one Box dimension (keeps the tables in memory)."""


# ---- symbol tables ---------------------------------------------------------------------


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


def policy_fingerprint(policy: MLPPolicy) -> str:
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


# ---- coding ------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Compressed:
    """A coded action stream: ``header`` (JSON-safe dict) and ``words`` ``[W]`` uint32.

    ``stats`` (not written to the file; empty after reading one): ``cross_entropy_bits``,
    the policy's summed cross-entropy of the coded symbols in bits (float64; Box: of the
    quantised actions under the cell probabilities), and ``quantized_bits``, the ideal
    code length under our 24-bit integer tables (constriction rounds the tables it is given
    once more, so the payload can be slightly shorter where symbols sit at the 2^-24 floor)."""

    header: dict[str, Any]
    words: np.ndarray
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def payload_bits(self) -> int:
        return 32 * len(self.words)

    def header_bytes(self) -> bytes:
        return json.dumps(self.header, sort_keys=True, separators=(",", ":")).encode()

    def to_bytes(self) -> bytes:
        header = self.header_bytes()
        words = np.ascontiguousarray(self.words, dtype="<u4").tobytes()
        return MAGIC + struct.pack("<I", len(header)) + header + words

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "compressed file") -> Compressed:
        """Parse and check an ``.imz`` byte string; ``CompressedFileError`` on any problem."""
        if len(data) < 8 or data[:4] != MAGIC:
            raise CompressedFileError(f"{source}: not an imitate .imz file (bad magic bytes)")
        (length,) = struct.unpack("<I", data[4:8])
        if 8 + length > len(data):
            raise CompressedFileError(f"{source}: truncated header")
        try:
            header = json.loads(data[8 : 8 + length].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CompressedFileError(f"{source}: unreadable header ({exc})") from exc
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CompressedFileError(f"{source}: not an imitate compressed-actions file")
        if header.get("format_version") != FORMAT_VERSION:
            raise CompressedFileError(
                f"{source}: format version {header.get('format_version')} is not supported"
            )
        body = data[8 + length :]
        if len(body) % 4 or len(body) // 4 != header.get("n_words"):
            raise CompressedFileError(
                f"{source}: {len(body)} payload bytes, header says {header.get('n_words')} words"
            )
        return cls(header, np.frombuffer(body, dtype="<u4").astype(np.uint32))


def _policy_outputs(policy: MLPPolicy, obs: np.ndarray) -> np.ndarray:
    """Raw head outputs ``[N, n_outputs]`` in one batch (the same call at both ends)."""
    return np.asarray(policy.logits(np.asarray(obs, dtype=np.float32)), dtype=np.float32)


def compress_actions(
    policy: MLPPolicy,
    obs: np.ndarray,
    actions: np.ndarray,
    resolution: float | None = None,
    dataset: dict[str, Any] | None = None,
) -> Compressed:
    """Code ``actions`` ``[N, *action_shape]`` given ``obs`` ``[N, *obs_shape]`` and the
    policy's action distribution. ``dataset`` (JSON-safe) is recorded in the header."""
    head = policy.head
    if len(obs) != len(actions):
        raise CompressedFileError(f"{len(obs)} observations but {len(actions)} actions")
    if isinstance(head, GaussianHead):
        actions = quantize_box_actions(head, actions, resolution)  # type: ignore[arg-type]
    elif resolution is not None:
        raise CompressedFileError("--resolution applies to Box actions only")
    outputs = _policy_outputs(policy, obs)
    symbols = action_symbols(head, actions, resolution)
    digest = hashlib.sha256()
    stats = {"cross_entropy_bits": 0.0, "quantized_bits": 0.0}

    def pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for rows, tables, freqs in _chunks(head, outputs, resolution):
            for group, table, freq in zip(symbols, tables, freqs, strict=True):
                syms = group[rows]
                if len(syms) and (syms.min() < 0 or syms.max() >= table.shape[1]):
                    raise CompressedFileError(
                        f"actions outside the policy's action space {head.space()}"
                    )
                digest.update(np.ascontiguousarray(freq, dtype="<i8").tobytes())
                stats["cross_entropy_bits"] += ideal_bits([syms], [table])
                stats["quantized_bits"] += ideal_bits([syms], [freq], TOTAL)
                yield syms, freq

    words = encode(pairs())
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "coder": _coder_json(),
        "policy_sha256": policy_fingerprint(policy),
        "action_space": space_to_json(head.space()),
        "action_dtype": np.asarray(actions).dtype.str,
        "resolution": resolution,
        "dataset": {
            **(dataset or {}),
            "n_actions": len(actions),
            "obs_sha256": _array_sha256(np.asarray(obs, dtype=np.float32)),
        },
        "frequencies_sha256": digest.hexdigest()[:HASH_HEX],
        "actions_sha256": _array_sha256(np.asarray(actions)),
        "n_words": len(words),
    }
    return Compressed(header, words, stats)


def decompress_actions(policy: MLPPolicy, obs: np.ndarray, compressed: Compressed) -> np.ndarray:
    """The actions ``[N, *action_shape]`` coded in ``compressed``, bit for bit (Box: the
    grid centres). ``CompressedFileError`` when policy, observations or the recomputed
    probabilities differ from those at compression time."""
    header = compressed.header
    try:
        expected_policy = header["policy_sha256"]
        n = int(header["dataset"]["n_actions"])
        obs_hash = header["dataset"]["obs_sha256"]
        resolution = header["resolution"]
        dtype = np.dtype(header["action_dtype"])
        freqs_hash, actions_hash = header["frequencies_sha256"], header["actions_sha256"]
    except (KeyError, TypeError, ValueError) as exc:
        raise CompressedFileError(f"compressed header lacks a field ({exc})") from exc
    if not all(isinstance(h, str) for h in (expected_policy, obs_hash, freqs_hash, actions_hash)):
        raise CompressedFileError("compressed header has a hash that is not a string")
    if resolution is not None and (
        isinstance(resolution, bool) or not isinstance(resolution, int | float)
    ):
        raise CompressedFileError(f"compressed header has a bad resolution {resolution!r}")
    if policy_fingerprint(policy) != expected_policy:
        raise CompressedFileError(
            f"the file was compressed with another policy (sha256 {expected_policy[:12]}...); "
            "decompression needs the same weights"
        )
    if len(obs) != n or _array_sha256(np.asarray(obs, dtype=np.float32)) != obs_hash:
        raise CompressedFileError(
            f"the observations differ from those at compression time ({len(obs)} given, {n} coded)"
        )
    head = policy.head
    outputs = _policy_outputs(policy, obs)
    # first pass: the tables must be those of compression time, else refuse to decode
    digest = hashlib.sha256()
    for _, _, freqs in _chunks(head, outputs, resolution):
        for freq in freqs:
            digest.update(np.ascontiguousarray(freq, dtype="<i8").tobytes())
    if digest.hexdigest()[:HASH_HEX] != freqs_hash:
        raise CompressedFileError(
            "the policy's probabilities differ from those at compression time "
            "(another torch build or CPU?): cannot decode safely"
        )
    n_groups = len(probability_tables(head, np.zeros((0, head.n_outputs)), resolution))
    tables = (freq for _, _, freqs in _chunks(head, outputs, resolution) for freq in freqs)
    try:
        flat = decode(compressed.words, tables)
    except (ValueError, RuntimeError, AssertionError) as exc:
        raise CompressedFileError(f"corrupt compressed payload ({exc})") from exc
    symbols = [
        np.concatenate(flat[g::n_groups]) if flat else np.zeros(0, np.int32)
        for g in range(n_groups)
    ]
    actions = symbols_to_actions(head, symbols, resolution, dtype)
    if _array_sha256(actions) != actions_hash:
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
