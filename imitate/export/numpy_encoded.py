"""Numpy export of an :class:`~imitate.encoded.EncodedPolicy`: one .npz, a numpy forward.

The file holds every array of the encoder (normalisation, one-hot levels, convolution
and embedding weights), the trunk ``W0, b0, ...`` (``W`` as ``[in, out]``) and a JSON
``spec``: the encoder tree (per leaf its kind, layout and array names; Text: the
vocabulary), the trunk's layer kinds and the action space. :func:`load_encoded_numpy`
rebuilds :class:`NumpyEncodedRuntime`, which evaluates it from the arrays alone: the
encoder modules are not rebuilt, so the file runs wherever numpy does (the decision uses
:mod:`imitate.spaces`' numpy ``mode_numpy``).

Hand-written (rather than reusing the torch modules' ``forward_numpy``): the runtime must
not depend on the torch module classes to evaluate a file; each leaf's maths is the
few lines of the encoder's own ``forward_numpy`` (tests check action parity with the
torch policy on recorded states for every encoder).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import gymnasium as gym
import numpy as np

from imitate.errors import ImitateError
from imitate.fileio import atomic_write
from imitate.observations import ObsBatch
from imitate.runtime import NumpyLayers
from imitate.spaces import ActionHead, head_for_space, space_from_json, space_to_json

MAGIC = "imitate-encoded-numpy-1"


def _a(t: Any) -> np.ndarray:
    return np.asarray(t.detach().cpu().numpy())


def _leaf_spec(encoder: Any, name: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The JSON of one encoder (recursively for Dict/Tuple), its arrays put in ``arrays``."""
    from torch import nn

    from imitate import encoders as enc

    def put(key: str, value: np.ndarray) -> str:
        arrays[f"{name}.{key}"] = np.ascontiguousarray(value)
        return f"{name}.{key}"

    if isinstance(encoder, enc.FiLMEncoder):
        inner = _leaf_spec(encoder.inner, name, arrays)
        return {
            **inner,
            "type": "film",
            "grid_key": encoder.grid_key,
            "text_key": encoder.text_key,
            "film_weight": put("film.weight", _a(encoder.film.weight).T),
            "film_bias": put("film.bias", _a(encoder.film.bias)),
        }
    if isinstance(encoder, enc.GridEncoder):
        convs: list[dict[str, Any]] = []
        for i, conv in enumerate(encoder.convs):
            assert isinstance(conv, nn.Conv2d) and conv.bias is not None
            convs.append(
                {
                    "weight": put(f"conv{i}.weight", _a(conv.weight)),
                    "bias": put(f"conv{i}.bias", _a(conv.bias)),
                }
            )
        return {
            "type": "grid",
            "offset": put("offset", _a(encoder.offset)),
            "limit": put("limit", _a(encoder.limit)),
            "pad_row": int(encoder.pad_row),
            "embedding": put("embedding", _a(encoder.embedding.weight)),
            "convs": convs,
            "dense_weight": put("dense.weight", _a(encoder.dense.weight).T),
            "dense_bias": put("dense.bias", _a(encoder.dense.bias)),
            "film_embedding": bool(encoder.film_embedding),
        }
    if isinstance(encoder, enc.DictEncoder):
        parts = [
            _leaf_spec(encoder.parts[k], f"{name}.{i}", arrays) for i, k in enumerate(encoder.keys)
        ]
        kind = "tuple" if isinstance(encoder.space, gym.spaces.Tuple) else "dict"
        return {"type": kind, "keys": list(encoder.keys), "parts": parts}
    if isinstance(encoder, enc.BoxEncoder):
        return {
            "type": "box",
            "mean": put("mean", _a(encoder.mean)),
            "std": put("std", _a(encoder.std)),
        }
    if isinstance(encoder, enc.DiscreteEncoder):
        return {"type": "discrete", "levels": put("levels", _a(encoder.levels))}
    if isinstance(encoder, enc.MultiDiscreteEncoder):
        return {
            "type": "multi_discrete",
            "levels": put("levels", _a(encoder.levels)),
            "valid": put("valid", _a(encoder.valid)),
        }
    if isinstance(encoder, enc.MultiBinaryEncoder):
        return {"type": "multi_binary"}
    if isinstance(encoder, enc.TextEncoder):
        return {
            "type": "text",
            "vocabulary": list(encoder.vocabulary),
            "max_tokens": int(encoder.max_tokens),
            "embedding": put("embedding", _a(encoder.embedding.weight)),
        }
    if isinstance(encoder, enc.ImageEncoder):
        convs = []
        for i, module in enumerate(encoder.convs):
            if isinstance(module, nn.Conv2d):
                assert module.bias is not None
                convs.append(
                    {
                        "kind": "conv",
                        "weight": put(f"conv{i}.weight", _a(module.weight)),
                        "bias": put(f"conv{i}.bias", _a(module.bias)),
                        "stride": int(module.stride[0]),
                    }
                )
            elif isinstance(module, nn.ReLU):
                convs.append({"kind": "relu"})
            else:
                raise ImitateError(f"numpy export: no numpy layer for {type(module).__name__}")
        spec: dict[str, Any] = {
            "type": "image",
            "shape": [int(s) for s in encoder.space.shape],
            "layers": convs,
            "dense_weight": put("dense.weight", _a(encoder.dense.weight).T),
            "dense_bias": put("dense.bias", _a(encoder.dense.bias)),
        }
        if encoder.levels is not None:
            spec["one_hot_source"] = put("one_hot_source", _a(encoder.one_hot_source))
            spec["one_hot_value"] = put("one_hot_value", _a(encoder.one_hot_value))
        else:
            spec["mean"] = put("mean", _a(encoder.mean))
            spec["std"] = put("std", _a(encoder.std))
        return spec
    raise ImitateError(f"numpy export: no numpy encoder for {type(encoder).__name__}")


def export_encoded_numpy(policy: Any, path: str | os.PathLike[str]) -> Path:
    """Write an :class:`~imitate.encoded.EncodedPolicy` (encoder, trunk, head) to .npz."""
    arrays: dict[str, np.ndarray] = {}
    encoder_spec = _leaf_spec(policy.encoder, "enc", arrays)
    layers = NumpyLayers.from_modules(policy.net)
    index = 0
    for kind, weight, bias in layers.ops:
        if kind == "linear":
            arrays[f"W{index}"], arrays[f"b{index}"] = weight, bias
            index += 1
    spec = {
        "format": MAGIC,
        "encoder": encoder_spec,
        "ops": [kind for kind, _, _ in layers.ops],
        "action_space": space_to_json(policy.action_space),
    }
    arrays["spec"] = np.array(json.dumps(spec))

    def write(f: IO[bytes]) -> None:
        np.savez(f, allow_pickle=False, **arrays)

    return atomic_write(path, write)


def _conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """Valid 2-D convolution ``[B, C, H, W]`` * ``[O, C, k, k]`` -> ``[B, O, H', W']``."""
    k = weight.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]
    out = np.tensordot(windows, weight, axes=([1, 4, 5], [1, 2, 3]))
    return (out.transpose(0, 3, 1, 2) + bias[None, :, None, None]).astype(np.float32)


def _to_nchw(x: np.ndarray) -> np.ndarray:
    from imitate.encoders import to_nchw  # pure numpy (the layout rules live there)

    return to_nchw(x)


_WORD = r"[a-z0-9]+"


@dataclass(frozen=True)
class _Leaf:
    """One leaf's spec and the file's arrays; ``__call__(obs) -> features [B, d]``."""

    spec: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def arr(self, key: str) -> np.ndarray:
        return self.arrays[self.spec[key]]

    def __call__(self, obs: ObsBatch) -> np.ndarray:
        kind = self.spec["type"]
        x = np.asarray(obs)
        if kind == "box":
            flat = x.reshape(len(x), -1).astype(np.float32)
            return ((flat - self.arr("mean")) / self.arr("std")).astype(np.float32)
        if kind == "discrete":
            return (x.reshape(-1, 1) == self.arr("levels")).astype(np.float32)
        if kind == "multi_discrete":
            hot = (x.reshape(len(x), -1, 1) == self.arr("levels")).astype(np.float32)
            return hot.reshape(len(x), -1)[:, self.arr("valid").reshape(-1)]
        if kind == "multi_binary":
            return x.reshape(len(x), -1).astype(np.float32)
        if kind == "text":
            ids = self._tokenize(x)
            mask = (ids != 0).astype(np.float32)[..., None]
            total = (self.arr("embedding")[ids] * mask).sum(axis=1)
            return (total / np.maximum(mask.sum(axis=1), 1.0)).astype(np.float32)
        if kind == "image":
            return self._image(x)
        if kind == "grid":
            return self.grid(x)
        raise ImitateError(f"numpy export: unknown encoder {kind!r} in the file")

    def _tokenize(self, strings: np.ndarray) -> np.ndarray:
        import re

        index = {w: i + 2 for i, w in enumerate(self.spec["vocabulary"])}
        length = int(self.spec["max_tokens"])
        strings = np.asarray(strings, dtype=np.str_).reshape(-1)
        ids = np.zeros((len(strings), length), np.int64)
        for row, s in enumerate(strings):
            tokens = [index.get(w, 1) for w in re.findall(_WORD, str(s).lower())[:length]]
            ids[row, : len(tokens)] = tokens
        return ids

    def grid(self, x: np.ndarray, film: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """A symbolic grid: summed value embeddings, same-padded 3x3 convolutions + ReLU
        (``film``: ``(gamma, beta)`` of every convolution's channels, back to back, after
        those of the summed embeddings when ``film_embedding``), dense + ReLU."""
        codes = _to_nchw(x).astype(np.int64)
        limit = self.arr("limit")[None, :, None, None]
        offset = self.arr("offset")[None, :, None, None]
        rows = np.where(codes < limit, codes + offset, int(self.spec["pad_row"]))
        h = self.arr("embedding")[rows].sum(axis=1).transpose(0, 3, 1, 2)
        convs = self.spec["convs"]
        start = 0
        if film is not None and self.spec.get("film_embedding", False):
            start = h.shape[1]
            gamma, beta = film[0][:, :start], film[1][:, :start]
            h = h * (1.0 + gamma[:, :, None, None]) + beta[:, :, None, None]
        for conv in convs:
            padded = np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)))
            h = _conv2d(padded, self.arrays[conv["weight"]], self.arrays[conv["bias"]], 1)
            if film is not None:
                end = start + h.shape[1]
                gamma, beta = film[0][:, start:end], film[1][:, start:end]
                h = h * (1.0 + gamma[:, :, None, None]) + beta[:, :, None, None]
                start = end
            h = np.maximum(h, 0.0)
        out = h.reshape(len(h), -1) @ self.arr("dense_weight") + self.arr("dense_bias")
        return np.maximum(out, 0.0).astype(np.float32)

    def _image(self, x: np.ndarray) -> np.ndarray:
        nchw = _to_nchw(x)
        if "one_hot_source" in self.spec:
            codes = nchw.astype(np.int64)[:, self.arr("one_hot_source")]
            h = (codes == self.arr("one_hot_value")[None, :, None, None]).astype(np.float32)
        else:
            h = nchw.astype(np.float32) / np.float32(255.0)
            h = (h - self.arr("mean")[:, None, None]) / self.arr("std")[:, None, None]
        for layer in self.spec["layers"]:
            if layer["kind"] == "conv":
                weight = self.arrays[layer["weight"]]
                h = _conv2d(h, weight, self.arrays[layer["bias"]], int(layer["stride"]))
            else:
                h = np.maximum(h, 0.0)
        flat = h.reshape(len(h), -1)
        out = flat @ self.arr("dense_weight") + self.arr("dense_bias")
        return np.maximum(out, 0.0).astype(np.float32)


class NumpyEncodedRuntime:
    """An exported encoded policy evaluated in numpy: ``act(obs: ObsBatch)``."""

    def __init__(self, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.spec = spec
        self.arrays = arrays
        self.layers = NumpyLayers.from_arrays(spec["ops"], arrays)
        self.head: ActionHead = head_for_space(space_from_json(spec["action_space"]))

    def features(self, obs: ObsBatch) -> np.ndarray:
        """The encoder's output ``[B, out_dim]`` (float32)."""
        return self._encode(self.spec["encoder"], obs)

    def _encode(self, spec: dict[str, Any], obs: ObsBatch) -> np.ndarray:
        if spec["type"] == "film":
            return self._film(spec, obs)
        if spec["type"] in ("dict", "tuple"):
            if spec["type"] == "dict":
                if not isinstance(obs, dict):
                    raise TypeError(f"a Dict observation batch is a dict, got {type(obs).__name__}")
                entries = [obs[k] for k in spec["keys"]]
            else:
                if not isinstance(obs, tuple | list):
                    raise TypeError(
                        f"a Tuple observation batch is a tuple, got {type(obs).__name__}"
                    )
                entries = list(obs)
            parts = [self._encode(s, e) for s, e in zip(spec["parts"], entries, strict=True)]
            return np.concatenate(parts, axis=-1).astype(np.float32)
        return _Leaf(spec, self.arrays)(obs)

    def _film(self, spec: dict[str, Any], obs: ObsBatch) -> np.ndarray:
        """A Dict whose grid is conditioned on its text (FiLM): ``gamma, beta`` from the
        text features scale and shift the grid's convolutions (and, with ``film_embedding``,
        its summed embeddings)."""
        if not isinstance(obs, dict):
            raise TypeError(f"a Dict observation batch is a dict, got {type(obs).__name__}")
        parts = dict(zip(spec["keys"], spec["parts"], strict=True))
        text = self._encode(parts[spec["text_key"]], obs[spec["text_key"]])
        film = text @ self.arrays[spec["film_weight"]] + self.arrays[spec["film_bias"]]
        gamma, beta = np.split(film, 2, axis=-1)
        out = []
        for key in spec["keys"]:
            if key == spec["text_key"]:
                out.append(text)
            elif key == spec["grid_key"]:
                out.append(_Leaf(parts[key], self.arrays).grid(np.asarray(obs[key]), (gamma, beta)))
            else:
                out.append(self._encode(parts[key], obs[key]))
        return np.concatenate(out, axis=-1).astype(np.float32)

    def logits(self, obs: ObsBatch) -> np.ndarray:
        return self.layers(self.features(obs))

    def act(self, obs: ObsBatch) -> np.ndarray:
        return self.head.mode_numpy(self.logits(obs))


def is_encoded_spec(spec: dict[str, Any]) -> bool:
    return spec.get("format") == MAGIC


def load_encoded_numpy(path: str | os.PathLike[str]) -> NumpyEncodedRuntime:
    """The runtime of a file written by :func:`export_encoded_numpy`."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        spec = json.loads(str(arrays.pop("spec")))
        if not is_encoded_spec(spec):
            raise KeyError("format")
        return NumpyEncodedRuntime(spec, arrays)
    except (OSError, ValueError, KeyError) as exc:
        raise ImitateError(f"{path}: not an exported numpy encoded policy ({exc})") from exc
