"""Observation encoders: one per observation space, chosen from the space by one factory.

An encoder turns a batch of observations into features ``[B, out_dim]`` for the
policy's trunk (a policy is encoder + trunk + head, the head chosen from the action
space by :func:`imitate.spaces.head_for_space`). :func:`encoder_for_space` picks it:

================================  ==================================================
observation space                 encoder
================================  ==================================================
Box, not an image                 :class:`BoxEncoder`: flatten, ``(x - mean) / std``
                                  (fitted on data, stored as buffers)
Box uint8 ``HxW``, ``HxWxC``,     :class:`ImageEncoder`: ``x / 255``, per-channel
``CxHxW``, stacked ``KxHxW(xC)``  standardisation (fitted), a small Nature-CNN-shaped
                                  conv stack (Mnih et al. 2015), a dense layer + ReLU;
                                  stacked frames become channels
Discrete(n)                       :class:`DiscreteEncoder`: one-hot ``[B, n]``
MultiDiscrete(nvec)               :class:`MultiDiscreteEncoder`: one-hot per factor
MultiBinary                       :class:`MultiBinaryEncoder`: the bits as floats
Text                              :class:`TextEncoder`: a word tokenizer fitted on the
                                  dataset's strings (vocabulary in the checkpoint's
                                  JSON), mean of word embeddings (bag of words)
Dict / Tuple                      :class:`DictEncoder`: one encoder per entry, the
                                  features concatenated in the space's order
================================  ==================================================

Options (:class:`EncoderConfig`) for symbolic grids and instructions (BabyAI):
``grid="embedding"`` encodes a symbolic image with :class:`GridEncoder` (an embedding
per channel value, summed per cell, same-padded 3x3 convolutions, dense + ReLU) instead
of the one-hot CNN; ``film=True`` makes a Dict's grid conditioned on its Text entry
(:class:`FiLMEncoder`: ``gamma, beta = Linear(text)`` scale and shift every grid
convolution's channels; with ``film_embedding=True`` the summed cell embeddings too).
Both are embedding lookups, convolutions, linear layers and elementwise products,
nothing else.

Every encoder has

* ``to_json()``: its constructor as JSON (the checkpoint records it; the weights,
  normalisation buffers included, are in the state dict); :func:`encoder_from_json`
  rebuilds the module, so checkpoints still load with no pickle;
* ``inputs(obs)``: the observation batch (:mod:`imitate.observations`) as the list of
  arrays the module takes, one per leaf (text becomes token ids ``int64 [B, L]``;
  uint8 images stay uint8, cast inside the model), so an exported graph takes the
  same arrays (ONNX inputs ``obs/<key>``);
* ``forward(*inputs)``: torch, traceable by the ONNX exporter;
* ``forward_numpy(*inputs)``: the same maths in numpy (float32), for the numpy runtime
  and as the reference for C exports.

The tokenizer and the numpy convolution are hand-written: the tokenizer is a regular
expression and a vocabulary list (a library tokenizer would need its own file format
in the checkpoint), and the convolution is ``sliding_window_view`` + ``tensordot``
(the numpy runtime does not import torch).
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from imitate.errors import UnsupportedSpaceError, ValueCheckError
from imitate.observations import (
    ObsBatch,
    canonical_space,
    describe_unsupported,
    is_image_space,
    obs_space_from_json,
    obs_space_to_json,
)

PAD, UNKNOWN = 0, 1
"""Token ids of padding and of words not in the vocabulary; words start at 2."""
_WORD = re.compile(r"[a-z0-9]+")
SYMBOLIC_MAX_LEVELS = 32
"""``image_mode="auto"`` reads a uint8 image as symbolic when all its values are below this."""


@dataclass(frozen=True)
class EncoderConfig:
    """How observations are encoded (the space picks the encoder; this sizes it)."""

    image_features: int = 128
    """Width of the dense layer after the convolutions."""
    cnn: Literal["auto", "nature", "small", "tiny"] = "auto"
    """``nature``: 8x8/4, 4x4/2, 3x3/1 convolutions (32, 64, 64 channels; images of at
    least 36 px); ``small``: two 3x3/1 convolutions (16, 32; e.g. BabyAI's 7x7 grid);
    ``tiny``: 8x8/4, 4x4/2 (8, 16 channels; a distilled pixel student, images of at least
    20 px); ``auto``: nature when the image is at least 36 px on both sides."""
    cnn_init: Literal["auto", "orthogonal", "torch"] = "auto"
    """Initial weights of the CNN's convolutions and dense layer. ``orthogonal``: gain
    sqrt(2) and zero biases, as SB3's NatureCNN and the Atari PPO baselines; ``torch``:
    PyTorch's default (uniform, He-style with a = sqrt(5)), which shrinks the signal at each
    layer: on pixel CartPole its features varied by ~2e-3 across a batch and the loss sat at
    ln 2 for ~750 Adam steps (orthogonal: ~0.13 and learning from the first hundreds);
    ``auto``: orthogonal for pixels, torch for symbolic grids (BabyAI's results were measured
    with it)."""
    text_dim: int = 32
    """Word-embedding width of Text encoders."""
    max_tokens: int = 16
    """Words kept per string (the rest are dropped)."""
    image_mode: Literal["auto", "pixels", "symbolic"] = "auto"
    """``pixels``: intensities scaled to [0, 1]; ``symbolic``: each channel's values are
    categories (BabyAI's grid: object, colour, state), one-hot per channel before the
    convolutions; ``auto``: symbolic when every value in the fitting data is below
    :data:`SYMBOLIC_MAX_LEVELS` (a frame of real pixels has brighter ones), else pixels."""
    grid: Literal["cnn", "embedding"] = "cnn"
    """How a *symbolic* image is encoded: ``cnn``: :class:`ImageEncoder` (one-hot per
    channel into its CNN); ``embedding``: :class:`GridEncoder` (one learned embedding per
    channel value, summed per cell, then same-padded 3x3 convolutions). Pixel images
    always get the :class:`ImageEncoder`."""
    grid_embedding: int = 32
    """Embedding width per cell of a :class:`GridEncoder`."""
    grid_channels: tuple[int, ...] = (32, 64)
    """Output channels of a :class:`GridEncoder`'s 3x3 convolutions."""
    film: bool = False
    """Condition a Dict's symbolic grid on its Text entry (:class:`FiLMEncoder`: every
    grid convolution scaled and shifted per channel by a linear map of the text
    features); needs ``grid="embedding"`` and a Dict with exactly one symbolic grid and
    one Text entry."""
    film_embedding: bool = False
    """With ``film``: also scale and shift the summed cell embeddings (before the first
    convolution) by the text, so a cell's embedding is compared with the instruction
    directly. On BabyAI-GoToLocal it learns the mission sooner (30,000 bot
    demonstrations, 2,000 Adam steps: held-out action accuracy 93 % instead of 81 %) and
    BC success from 10,000 demonstrations was 97.4 % instead of 91.4 % (from 30,000: 99.4 %
    and 99.6 %; README, BabyAI rows). Off by default: FiLM's other users keep their
    architecture."""


class ObsEncoder(nn.Module):
    """Base of the encoders: ``forward(*inputs) -> [B, out_dim]`` (see the module doc)."""

    out_dim: int
    space: gym.Space[Any]

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """Constructor arguments as JSON (:func:`encoder_from_json` is the inverse)."""

    def input_names(self, name: str = "obs") -> list[str]:
        """One name per input array (``obs`` or ``obs/<key>``)."""
        return [name]

    def inputs(self, obs: ObsBatch) -> list[np.ndarray]:
        """The arrays ``forward`` takes for an observation batch."""
        return [np.asarray(obs)]

    def example_inputs(self, batch: int = 2) -> list[np.ndarray]:
        """Zero inputs of the right shapes and dtypes (for tracing an export)."""
        return [np.zeros((batch, *(self.space.shape or ())), self.input_dtype())]

    def input_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.float32)

    def fit(self, obs: ObsBatch) -> None:
        """Fit data-dependent buffers (normalisation) on a batch; default: nothing."""

    @abstractmethod
    def forward_numpy(self, *inputs: np.ndarray) -> np.ndarray:
        """``forward`` in numpy: float32 ``[B, out_dim]``."""

    def encode(self, obs: ObsBatch) -> Tensor:
        """Features ``[B, out_dim]`` of an observation batch (torch)."""
        return self(*(torch.as_tensor(a) for a in self.inputs(obs)))

    def encode_numpy(self, obs: ObsBatch) -> np.ndarray:
        """Features ``[B, out_dim]`` of an observation batch (numpy)."""
        return self.forward_numpy(*self.inputs(obs))


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


class BoxEncoder(ObsEncoder):
    """A vector (or any non-image Box): flatten and standardise with fitted mean/std."""

    mean: Tensor
    std: Tensor

    space: gym.spaces.Box

    def __init__(self, space: gym.spaces.Box) -> None:
        super().__init__()
        self.space = space
        self.out_dim = int(np.prod(space.shape))
        self.register_buffer("mean", torch.zeros(self.out_dim))
        self.register_buffer("std", torch.ones(self.out_dim))

    def to_json(self) -> dict[str, Any]:
        return {"type": "box", "space": obs_space_to_json(self.space)}

    def input_dtype(self) -> np.dtype[Any]:
        return (
            np.dtype(self.space.dtype)
            if np.dtype(self.space.dtype).kind != "f"
            else np.dtype(np.float32)
        )

    def fit(self, obs: ObsBatch) -> None:
        flat = np.asarray(obs, dtype=np.float64).reshape(-1, self.out_dim)
        std = flat.std(axis=0)
        std[std < 1e-6] = 1.0
        self.mean.copy_(torch.as_tensor(flat.mean(axis=0), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, *inputs: Tensor) -> Tensor:
        (x,) = inputs
        return (x.reshape(x.shape[0], -1).to(torch.float32) - self.mean) / self.std

    def forward_numpy(self, *inputs: np.ndarray) -> np.ndarray:
        (x,) = inputs
        flat = np.asarray(x).reshape(len(x), -1).astype(np.float32)
        return ((flat - _np(self.mean)) / _np(self.std)).astype(np.float32)


class DiscreteEncoder(ObsEncoder):
    """``Discrete(n, start)``: one-hot ``[B, n]`` (an equality against ``arange``, which
    exports to ONNX as one ``Equal``)."""

    levels: Tensor

    space: gym.spaces.Discrete

    def __init__(self, space: gym.spaces.Discrete) -> None:
        super().__init__()
        self.space = space
        self.out_dim = int(space.n)
        self.register_buffer(
            "levels", torch.arange(int(space.start), int(space.start + space.n)), persistent=False
        )

    def to_json(self) -> dict[str, Any]:
        return {"type": "discrete", "space": obs_space_to_json(self.space)}

    def input_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.int64)

    def example_inputs(self, batch: int = 2) -> list[np.ndarray]:
        return [np.full(batch, int(self.space.start), np.int64)]

    def forward(self, *inputs: Tensor) -> Tensor:
        (x,) = inputs
        return (x.reshape(-1, 1).to(torch.int64) == self.levels).to(torch.float32)

    def forward_numpy(self, *inputs: np.ndarray) -> np.ndarray:
        (x,) = inputs
        levels = _np(self.levels)
        return (np.asarray(x).reshape(-1, 1) == levels).astype(np.float32)


class MultiDiscreteEncoder(ObsEncoder):
    """``MultiDiscrete(nvec)`` (any shape): one one-hot per factor, concatenated."""

    levels: Tensor
    valid: Tensor

    space: gym.spaces.MultiDiscrete

    def __init__(self, space: gym.spaces.MultiDiscrete) -> None:
        super().__init__()
        self.space = space
        nvec = space.nvec.reshape(-1).astype(np.int64)
        start = np.asarray(space.start).reshape(-1).astype(np.int64)
        width = int(nvec.max())
        # factor i's one-hot is x_i == start_i + j for j < nvec_i; padded levels never match
        levels = start[:, None] + np.arange(width)[None, :]
        self.out_dim = int(nvec.sum())
        self.register_buffer("levels", torch.as_tensor(levels), persistent=False)
        self.register_buffer(
            "valid", torch.as_tensor(np.arange(width)[None, :] < nvec[:, None]), persistent=False
        )

    def to_json(self) -> dict[str, Any]:
        return {"type": "multi_discrete", "space": obs_space_to_json(self.space)}

    def input_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.int64)

    def example_inputs(self, batch: int = 2) -> list[np.ndarray]:
        start = np.broadcast_to(np.asarray(self.space.start), self.space.shape)
        return [np.broadcast_to(start, (batch, *self.space.shape)).astype(np.int64)]

    def forward(self, *inputs: Tensor) -> Tensor:
        (x,) = inputs
        flat = x.reshape(x.shape[0], -1, 1).to(torch.int64)
        hot = (flat == self.levels).to(torch.float32)  # [B, F, width]
        return hot.reshape(x.shape[0], -1)[:, self.valid.reshape(-1)]

    def forward_numpy(self, *inputs: np.ndarray) -> np.ndarray:
        (x,) = inputs
        flat = np.asarray(x).reshape(len(x), -1, 1)
        hot = (flat == _np(self.levels)).astype(np.float32)
        return hot.reshape(len(x), -1)[:, _np(self.valid).reshape(-1)]


class MultiBinaryEncoder(ObsEncoder):
    """``MultiBinary``: the bits, flattened, as floats in {0, 1}."""

    space: gym.spaces.MultiBinary

    def __init__(self, space: gym.spaces.MultiBinary) -> None:
        super().__init__()
        self.space = space
        self.out_dim = int(np.prod(space.shape))

    def to_json(self) -> dict[str, Any]:
        return {"type": "multi_binary", "space": obs_space_to_json(self.space)}

    def input_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.int8)

    def forward(self, *inputs: Tensor) -> Tensor:
        (x,) = inputs
        return x.reshape(x.shape[0], -1).to(torch.float32)

    def forward_numpy(self, *inputs: np.ndarray) -> np.ndarray:
        (x,) = inputs
        return np.asarray(x).reshape(len(x), -1).astype(np.float32)


ImageLayout = Literal["HW", "HWC", "CHW", "KHW", "KHWC"]


def image_layout(shape: tuple[int, ...]) -> ImageLayout:
    """The layout of an image shape: channels last when the last axis has 1, 3 or 4
    entries and the first does not (``7x7x3``, ``64x64x1``), channels first when the
    first has, else the shorter of the two end axes is the channels;
    4-D shapes are frame stacks ``KxHxWxC``; 2-D ``HxW`` is one gray channel."""
    if len(shape) == 2:
        return "HW"
    if len(shape) == 4:
        return "KHWC"
    if shape[-1] in (1, 3, 4) and shape[0] not in (1, 3, 4):
        return "HWC"
    if shape[0] in (1, 3, 4):
        return "CHW"
    return "CHW" if shape[0] < shape[-1] else "HWC"


def image_geometry(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(channels, height, width)`` of an image shape (stacked frames are channels)."""
    layout = image_layout(shape)
    if layout == "HW":
        return 1, shape[0], shape[1]
    if layout == "HWC":
        return shape[2], shape[0], shape[1]
    if layout == "CHW":
        return shape[0], shape[1], shape[2]
    return shape[0] * shape[3], shape[1], shape[2]  # KHWC


def to_nchw(x: np.ndarray) -> np.ndarray:
    """A batch of images ``[B, *shape]`` as ``[B, channels, height, width]`` (numpy)."""
    shape = tuple(int(s) for s in x.shape[1:])
    layout = image_layout(shape)
    if layout == "HW":
        return x[:, None]
    if layout == "HWC":
        return x.transpose(0, 3, 1, 2)
    if layout == "KHWC":
        return x.transpose(0, 1, 4, 2, 3).reshape(len(x), *image_geometry(shape))
    return x


def _conv_plan(
    height: int, width: int, cnn: Literal["auto", "nature", "small", "tiny"]
) -> list[tuple[int, int, int]]:
    """``(out_channels, kernel, stride)`` per convolution."""
    plans = {
        "nature": [(32, 8, 4), (64, 4, 2), (64, 3, 1)],
        "small": [(16, 3, 1), (32, 3, 1)],
        "tiny": [(8, 8, 4), (16, 4, 2)],
    }
    if cnn == "auto":
        cnn = "nature" if min(height, width) >= 36 else "small"
    plan = plans[cnn]
    h, w = height, width
    for _, k, s in plan:
        h, w = (h - k) // s + 1, (w - k) // s + 1
        if h < 1 or w < 1:
            raise UnsupportedSpaceError(
                f"an image of {height}x{width} is too small for the {cnn} CNN"
            )
    return plan


class ImageEncoder(ObsEncoder):
    """uint8 images: ``x / 255`` and per-channel standardisation (fitted; 0 and 1 before
    fitting), or, with ``levels`` (symbolic grids), a one-hot of each channel's value
    (``levels[c]`` categories; larger values are all-zero); then convolutions + ReLU
    (Nature-CNN shaped, sized to the image), flatten, ``Linear(features) + ReLU``.
    Stacked frames (``KxHxW`` or ``KxHxWxC``) are channels. BabyAI 1.1 (Hui et al. 2020)
    found such per-value embeddings of the symbolic grid better than raw integers."""

    mean: Tensor
    std: Tensor
    one_hot_source: Tensor
    one_hot_value: Tensor

    space: gym.spaces.Box

    def __init__(
        self,
        space: gym.spaces.Box,
        config: EncoderConfig = EncoderConfig(),
        levels: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if not is_image_space(space):
            raise UnsupportedSpaceError(f"{space} is not a uint8 image space")
        self.space = space
        self.config = config
        self.layout = image_layout(tuple(space.shape))
        channels, height, width = image_geometry(tuple(int(s) for s in space.shape))
        self.channels, self.height, self.width = channels, height, width
        self.levels = None if levels is None else tuple(int(v) for v in levels)
        if self.levels is not None and (len(self.levels) != channels or min(self.levels) < 1):
            raise ValueError(f"levels {self.levels} must give >= 1 category per channel")
        levels_ = self.levels or ()
        source = [c for c, n in enumerate(levels_) for _ in range(n)]
        value = [v for n in levels_ for v in range(n)]
        self.register_buffer("one_hot_source", torch.tensor(source, dtype=torch.int64))
        self.register_buffer("one_hot_value", torch.tensor(value, dtype=torch.int64))
        self.plan = _conv_plan(height, width, config.cnn)
        layers: list[nn.Module] = []
        c_in, h, w = (len(source) if self.levels else channels), height, width
        for c_out, k, s in self.plan:
            layers += [nn.Conv2d(c_in, c_out, k, s), nn.ReLU()]
            c_in, h, w = c_out, (h - k) // s + 1, (w - k) // s + 1
        self.convs = nn.Sequential(*layers)
        self.dense = nn.Linear(c_in * h * w, config.image_features)
        self.out_dim = config.image_features
        init = config.cnn_init
        if init == "orthogonal" or (init == "auto" and self.levels is None):
            for module in [*self.convs, self.dense]:
                if isinstance(module, nn.Conv2d | nn.Linear) and module.bias is not None:
                    nn.init.orthogonal_(module.weight, gain=float(np.sqrt(2.0)))
                    nn.init.zeros_(module.bias)
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "image",
            "space": obs_space_to_json(self.space),
            "image_features": self.config.image_features,
            "cnn": self.config.cnn,
            "levels": None if self.levels is None else list(self.levels),
        }

    def input_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.uint8)

    def _nchw_numpy(self, x: np.ndarray) -> np.ndarray:
        return to_nchw(np.asarray(x))

    def _nchw(self, x: Tensor) -> Tensor:
        if self.layout == "HW":
            return x.unsqueeze(1)
        if self.layout == "HWC":
            return x.permute(0, 3, 1, 2)
        if self.layout == "KHWC":
            return x.permute(0, 1, 4, 2, 3).reshape(
                x.shape[0], self.channels, self.height, self.width
            )
        return x

    def fit(self, obs: ObsBatch) -> None:
        x = self._nchw_numpy(np.asarray(obs)).astype(np.float64) / 255.0
        mean = x.mean(axis=(0, 2, 3))
        std = x.std(axis=(0, 2, 3))
        std[std < 1e-6] = 1.0
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, *inputs: Tensor) -> Tensor:
        (x,) = inputs
        if self.levels is not None:
            codes = self._nchw(x).to(torch.int64)[:, self.one_hot_source]
            h = (codes == self.one_hot_value[None, :, None, None]).to(torch.float32)
        else:
            h = self._nchw(x).to(torch.float32) / 255.0
            h = (h - self.mean[:, None, None]) / self.std[:, None, None]
        h = self.convs(h)
        return torch.relu(self.dense(h.reshape(h.shape[0], -1)))

    def forward_numpy(self, *inputs: np.ndarray) -> np.ndarray:
        (x,) = inputs
        if self.levels is not None:
            codes = self._nchw_numpy(x).astype(np.int64)[:, _np(self.one_hot_source)]
            h = (codes == _np(self.one_hot_value)[None, :, None, None]).astype(np.float32)
        else:
            h = self._nchw_numpy(x).astype(np.float32) / np.float32(255.0)
            h = (h - _np(self.mean)[:, None, None]) / _np(self.std)[:, None, None]
        for module in self.convs:
            if isinstance(module, nn.Conv2d):
                assert module.bias is not None
                h = conv2d_numpy(h, _np(module.weight), _np(module.bias), int(module.stride[0]))
            else:
                h = np.maximum(h, 0.0)
        flat = h.reshape(len(h), -1)
        return np.maximum(flat @ _np(self.dense.weight).T + _np(self.dense.bias), 0.0).astype(
            np.float32
        )


def conv2d_numpy(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """A valid (unpadded) 2-D convolution: ``x [B, C, H, W]``, ``weight [O, C, k, k]``,
    ``bias [O]`` -> ``[B, O, H', W']`` (float32), as ``torch.nn.functional.conv2d``."""
    k = weight.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]  # [B, C, H', W', k, k]
    out = np.tensordot(windows, weight, axes=([1, 4, 5], [1, 2, 3]))  # [B, H', W', O]
    return (out.transpose(0, 3, 1, 2) + bias[None, :, None, None]).astype(np.float32)


def tokenize_words(text: str) -> list[str]:
    """Lower-case alphanumeric words of a string (everything else separates)."""
    return _WORD.findall(text.lower())


def fit_vocabulary(strings: Sequence[str] | np.ndarray) -> list[str]:
    """The sorted set of words in ``strings`` (the Text encoder's vocabulary)."""
    words: set[str] = set()
    for s in np.unique(np.asarray(strings, dtype=np.str_)):
        words.update(tokenize_words(str(s)))
    return sorted(words)


class TextEncoder(ObsEncoder):
    """``Text``: words -> ids (0 padding, 1 unknown, the vocabulary from 2), the mean of
    the word embeddings of the non-padding tokens (bag of words; all padding: zeros).

    ``vocabulary`` is fitted on the dataset's strings (:func:`fit_vocabulary`) and saved
    in the constructor JSON; ``inputs`` tokenizes (outside the model, so the exported
    graph takes ``int64 [B, max_tokens]`` ids)."""

    space: gym.spaces.Text

    def __init__(
        self,
        space: gym.spaces.Text,
        vocabulary: Sequence[str],
        config: EncoderConfig = EncoderConfig(),
    ) -> None:
        super().__init__()
        self.space = space
        self.vocabulary = list(vocabulary)
        self.config = config
        self.index = {w: i + 2 for i, w in enumerate(self.vocabulary)}
        self.max_tokens = config.max_tokens
        self.embedding = nn.Embedding(len(self.vocabulary) + 2, config.text_dim)
        self.out_dim = config.text_dim

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "text",
            "space": obs_space_to_json(self.space),
            "vocabulary": self.vocabulary,
            "text_dim": self.config.text_dim,
            "max_tokens": self.max_tokens,
        }

    def input_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.int64)

    def tokenizer_json(self) -> dict[str, Any]:
        """Everything :meth:`tokenize` does, as JSON (what an exported graph's user needs to
        turn raw strings into its ``int64 [B, max_tokens]`` input without imitate)."""
        return {
            "lowercase": True,
            "word_pattern": _WORD.pattern,
            "max_tokens": self.max_tokens,
            "pad_id": PAD,
            "unknown_id": UNKNOWN,
            "first_word_id": 2,
            "vocabulary": list(self.vocabulary),
            "steps": (
                "lower-case the string; its words are the matches of word_pattern, in order; "
                "keep the first max_tokens; vocabulary[i] has id first_word_id + i, any other "
                "word unknown_id; right-pad with pad_id to max_tokens ids (int64)"
            ),
        }

    def tokenize(self, strings: Sequence[str] | np.ndarray) -> np.ndarray:
        """``[B]`` strings -> ``int64 [B, max_tokens]`` token ids (right-padded with 0)."""
        strings = np.asarray(strings, dtype=np.str_).reshape(-1)
        ids = np.zeros((len(strings), self.max_tokens), np.int64)
        cache: dict[str, list[int]] = {}
        for row, s in enumerate(strings):
            key = str(s)
            if key not in cache:
                words = tokenize_words(key)[: self.max_tokens]
                cache[key] = [self.index.get(w, UNKNOWN) for w in words]
            tokens = cache[key]
            ids[row, : len(tokens)] = tokens
        return ids

    def inputs(self, obs: ObsBatch) -> list[np.ndarray]:
        return [self.tokenize(np.asarray(obs))]

    def example_inputs(self, batch: int = 2) -> list[np.ndarray]:
        return [np.zeros((batch, self.max_tokens), np.int64)]

    def forward(self, *inputs: Tensor) -> Tensor:
        (ids,) = inputs
        mask = (ids != PAD).to(torch.float32).unsqueeze(-1)
        total = (self.embedding(ids) * mask).sum(dim=1)
        return total / mask.sum(dim=1).clamp(min=1.0)

    def forward_numpy(self, *inputs: np.ndarray) -> np.ndarray:
        (ids,) = inputs
        mask = (ids != PAD).astype(np.float32)[..., None]
        total = (_np(self.embedding.weight)[ids] * mask).sum(axis=1)
        return (total / np.maximum(mask.sum(axis=1), 1.0)).astype(np.float32)


def text_encoders(encoder: ObsEncoder, name: str = "obs") -> list[tuple[str, TextEncoder]]:
    """The Text encoders inside ``encoder`` with their input names (as
    :meth:`ObsEncoder.input_names` gives them: ``obs``, ``obs/mission``), in input order."""
    if isinstance(encoder, TextEncoder):
        return [(name, encoder)]
    if isinstance(encoder, FiLMEncoder):
        return text_encoders(encoder.inner, name)
    if isinstance(encoder, DictEncoder):
        return [
            pair
            for k, e in zip(encoder.keys, encoder._encoders(), strict=True)
            for pair in text_encoders(e, f"{name}/{k}")
        ]
    return []


class DictEncoder(ObsEncoder):
    """``Dict`` or ``Tuple``: one encoder per entry (keys ``"0"``, ``"1"``, ... for a
    Tuple), inputs in the space's order, features concatenated."""

    space: gym.spaces.Dict | gym.spaces.Tuple

    def __init__(self, space: gym.spaces.Dict | gym.spaces.Tuple, parts: dict[str, ObsEncoder]):
        super().__init__()
        self.space = space
        self.keys = list(parts)
        self.parts = nn.ModuleDict(parts)
        self.out_dim = sum(p.out_dim for p in parts.values())
        self._arity = [len(p.example_inputs(1)) for p in parts.values()]

    def _encoders(self) -> list[ObsEncoder]:
        return [self.parts[k] for k in self.keys]  # type: ignore[misc]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "tuple" if isinstance(self.space, gym.spaces.Tuple) else "dict",
            "keys": self.keys,
            "parts": [e.to_json() for e in self._encoders()],
        }

    def _entries(self, obs: ObsBatch) -> list[ObsBatch]:
        if isinstance(self.space, gym.spaces.Tuple):
            if not isinstance(obs, tuple | list):
                raise TypeError(f"a Tuple observation batch is a tuple, got {type(obs).__name__}")
            return list(obs)
        if not isinstance(obs, dict):
            raise TypeError(f"a Dict observation batch is a dict, got {type(obs).__name__}")
        return [obs[k] for k in self.keys]

    def input_names(self, name: str = "obs") -> list[str]:
        return [
            n
            for k, e in zip(self.keys, self._encoders(), strict=True)
            for n in e.input_names(f"{name}/{k}")
        ]

    def inputs(self, obs: ObsBatch) -> list[np.ndarray]:
        return [
            a
            for e, o in zip(self._encoders(), self._entries(obs), strict=True)
            for a in e.inputs(o)
        ]

    def example_inputs(self, batch: int = 2) -> list[np.ndarray]:
        return [a for e in self._encoders() for a in e.example_inputs(batch)]

    def fit(self, obs: ObsBatch) -> None:
        for encoder, entry in zip(self._encoders(), self._entries(obs), strict=True):
            encoder.fit(entry)

    def _split(self, inputs: Sequence[Any]) -> list[Sequence[Any]]:
        out, i = [], 0
        for n in self._arity:
            out.append(inputs[i : i + n])
            i += n
        return out

    def forward(self, *inputs: Tensor) -> Tensor:
        parts = [e(*x) for e, x in zip(self._encoders(), self._split(inputs), strict=True)]
        return torch.cat(parts, dim=-1)

    def forward_numpy(self, *inputs: np.ndarray) -> np.ndarray:
        parts = [
            e.forward_numpy(*x) for e, x in zip(self._encoders(), self._split(inputs), strict=True)
        ]
        return np.concatenate(parts, axis=-1).astype(np.float32)


def _nchw_tensor(x: Tensor, layout: ImageLayout, geometry: tuple[int, int, int]) -> Tensor:
    """:func:`to_nchw` in torch (traceable)."""
    if layout == "HW":
        return x.unsqueeze(1)
    if layout == "HWC":
        return x.permute(0, 3, 1, 2)
    if layout == "KHWC":
        return x.permute(0, 1, 4, 2, 3).reshape(x.shape[0], *geometry)
    return x


class GridEncoder(ObsEncoder):
    """A symbolic grid (uint8 category codes per cell and channel, e.g. BabyAI's 7x7
    object/colour/state view; stacked frames are channels): every channel value has a
    learned embedding (``grid_embedding`` wide; values ``>= levels[c]`` embed to zero)
    and a cell's embeddings are summed, the "bag of words" visual embedding of BabyAI 1.1
    (Hui et al. 2020); then 3x3 convolutions with zero padding of 1 (the grid keeps its
    size) + ReLU, flatten, ``Linear(image_features) + ReLU``.

    :class:`FiLMEncoder` passes ``gamma, beta [B, film_channels]`` (``film_channels`` =
    the convolutions' channels, back to back): each convolution's output becomes
    ``conv * (1 + gamma_i) + beta_i`` before its ReLU. With ``film_embedding`` the first
    ``grid_embedding`` of them scale and shift the summed cell embeddings the same way,
    before the first convolution.

    Made of an embedding lookup (one table; channel c's value v is row ``offset[c] + v``),
    convolutions and a linear layer, so every export composes it from those."""

    offset: Tensor
    limit: Tensor

    space: gym.spaces.Box

    def __init__(
        self, space: gym.spaces.Box, levels: Sequence[int], config: EncoderConfig = EncoderConfig()
    ) -> None:
        super().__init__()
        if not is_image_space(space):
            raise UnsupportedSpaceError(f"{space} is not a uint8 grid space")
        if not config.grid_channels:
            raise ValueError("a grid encoder needs at least one convolution")
        self.space = space
        self.config = config
        self.layout = image_layout(tuple(space.shape))
        self.geometry = image_geometry(tuple(int(s) for s in space.shape))
        channels, height, width = self.geometry
        self.levels = tuple(int(v) for v in levels)
        if len(self.levels) != channels or min(self.levels) < 1:
            raise ValueError(f"levels {self.levels} must give >= 1 category per channel")
        offsets = np.concatenate([[0], np.cumsum(self.levels)[:-1]]).astype(np.int64)
        self.pad_row = int(sum(self.levels))
        self.register_buffer("offset", torch.as_tensor(offsets), persistent=False)
        self.register_buffer(
            "limit", torch.as_tensor(np.asarray(self.levels, np.int64)), persistent=False
        )
        self.embedding = nn.Embedding(self.pad_row + 1, config.grid_embedding, self.pad_row)
        convs: list[nn.Conv2d] = []
        c_in = config.grid_embedding
        for c_out in config.grid_channels:
            convs.append(nn.Conv2d(c_in, c_out, 3, padding=1))
            c_in = c_out
        self.convs = nn.ModuleList(convs)
        self.film_embedding = config.film_embedding
        self.film_channels = sum(config.grid_channels) + (
            config.grid_embedding if config.film_embedding else 0
        )
        self.dense = nn.Linear(c_in * height * width, config.image_features)
        self.out_dim = config.image_features

    def to_json(self) -> dict[str, Any]:
        spec = {
            "type": "grid",
            "space": obs_space_to_json(self.space),
            "levels": list(self.levels),
            "image_features": self.config.image_features,
            "grid_embedding": self.config.grid_embedding,
            "grid_channels": list(self.config.grid_channels),
        }
        return {**spec, "film_embedding": True} if self.film_embedding else spec

    def input_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.uint8)

    def rows(self, x: Tensor) -> Tensor:
        """Embedding rows ``int64 [B, C, H, W]`` of a batch of grids."""
        codes = _nchw_tensor(x, self.layout, self.geometry).to(torch.int64)
        limit = self.limit[None, :, None, None]
        return torch.where(codes < limit, codes + self.offset[None, :, None, None], self.pad_row)

    def rows_numpy(self, x: np.ndarray) -> np.ndarray:
        codes = to_nchw(np.asarray(x)).astype(np.int64)
        limit = _np(self.limit)[None, :, None, None]
        return np.where(codes < limit, codes + _np(self.offset)[None, :, None, None], self.pad_row)

    def features(self, x: Tensor, film: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """``[B, out_dim]``; ``film``: ``(gamma, beta)`` of the convolutions' channels."""
        h = self.embedding(self.rows(x)).sum(dim=1).permute(0, 3, 1, 2)  # [B, D, H, W]
        start = 0
        if film is not None and self.film_embedding:
            start = h.shape[1]
            gamma, beta = film[0][:, :start], film[1][:, :start]
            h = h * (1.0 + gamma[:, :, None, None]) + beta[:, :, None, None]
        for conv in self.convs:
            assert isinstance(conv, nn.Conv2d)
            h = conv(h)
            if film is not None:
                end = start + conv.out_channels
                gamma, beta = film[0][:, start:end], film[1][:, start:end]
                h = h * (1.0 + gamma[:, :, None, None]) + beta[:, :, None, None]
                start = end
            h = torch.relu(h)
        return torch.relu(self.dense(h.reshape(h.shape[0], -1)))

    def features_numpy(
        self, x: np.ndarray, film: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        h = _np(self.embedding.weight)[self.rows_numpy(x)].sum(axis=1).transpose(0, 3, 1, 2)
        start = 0
        if film is not None and self.film_embedding:
            start = h.shape[1]
            gamma, beta = film[0][:, :start], film[1][:, :start]
            h = h * (1.0 + gamma[:, :, None, None]) + beta[:, :, None, None]
        for conv in self.convs:
            assert isinstance(conv, nn.Conv2d) and conv.bias is not None
            padded = np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)))
            h = conv2d_numpy(padded, _np(conv.weight), _np(conv.bias), 1)
            if film is not None:
                end = start + conv.out_channels
                gamma, beta = film[0][:, start:end], film[1][:, start:end]
                h = h * (1.0 + gamma[:, :, None, None]) + beta[:, :, None, None]
                start = end
            h = np.maximum(h, 0.0)
        flat = h.reshape(len(h), -1)
        out = flat @ _np(self.dense.weight).T + _np(self.dense.bias)
        return np.maximum(out, 0.0).astype(np.float32)

    def forward(self, *inputs: Tensor) -> Tensor:
        (x,) = inputs
        return self.features(x)

    def forward_numpy(self, *inputs: np.ndarray) -> np.ndarray:
        (x,) = inputs
        return self.features_numpy(x)


class FiLMEncoder(ObsEncoder):
    """A Dict with one :class:`GridEncoder` entry and one :class:`TextEncoder` entry
    (BabyAI: the view and the mission): the grid is conditioned on the text, FiLM style
    (Perez et al. 2018; the BabyAI papers' agents condition their image convolutions on
    the instruction the same way). ``gamma, beta = Linear(text features)`` (zero at
    initialisation: the plain grid features) scale and shift every grid convolution's
    output per channel (modulating the first one lets a single layer match each cell
    against the instruction); every entry's features (the text's included) are
    concatenated in the space's order, as :class:`DictEncoder` does.

    The per-entry encoders, inputs and fitting are those of an inner
    :class:`DictEncoder` (``inner``); this adds one linear layer (``film``)."""

    space: gym.spaces.Dict

    def __init__(
        self, space: gym.spaces.Dict, parts: dict[str, ObsEncoder], grid_key: str, text_key: str
    ) -> None:
        super().__init__()
        grid, text = parts.get(grid_key), parts.get(text_key)
        if not isinstance(grid, GridEncoder) or not isinstance(text, TextEncoder):
            raise UnsupportedSpaceError(
                f"FiLM needs a grid entry {grid_key!r} and a Text entry {text_key!r}"
            )
        self.space = space
        self.inner = DictEncoder(space, parts)
        self.grid_key, self.text_key = grid_key, text_key
        self.film = nn.Linear(text.out_dim, 2 * grid.film_channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.out_dim = self.inner.out_dim

    def to_json(self) -> dict[str, Any]:
        return {**self.inner.to_json(), "type": "film", "grid_key": self.grid_key,
                "text_key": self.text_key}  # fmt: skip

    def input_names(self, name: str = "obs") -> list[str]:
        return self.inner.input_names(name)

    def inputs(self, obs: ObsBatch) -> list[np.ndarray]:
        return self.inner.inputs(obs)

    def example_inputs(self, batch: int = 2) -> list[np.ndarray]:
        return self.inner.example_inputs(batch)

    def fit(self, obs: ObsBatch) -> None:
        self.inner.fit(obs)

    def forward(self, *inputs: Tensor) -> Tensor:
        split = dict(zip(self.inner.keys, self.inner._split(inputs), strict=True))
        parts = self.inner.parts
        text = parts[self.text_key](*split[self.text_key])
        gamma, beta = self.film(text).chunk(2, dim=-1)
        out = []
        for key in self.inner.keys:
            if key == self.text_key:
                out.append(text)
            elif key == self.grid_key:
                grid = parts[key]
                assert isinstance(grid, GridEncoder)
                out.append(grid.features(split[key][0], (gamma, beta)))
            else:
                out.append(parts[key](*split[key]))
        return torch.cat(out, dim=-1)

    def forward_numpy(self, *inputs: np.ndarray) -> np.ndarray:
        split = dict(zip(self.inner.keys, self.inner._split(inputs), strict=True))
        parts = self.inner.parts
        text = parts[self.text_key].forward_numpy(*split[self.text_key])  # type: ignore[operator]
        film = text @ _np(self.film.weight).T + _np(self.film.bias)
        gamma, beta = np.split(film, 2, axis=-1)
        out = []
        for key in self.inner.keys:
            if key == self.text_key:
                out.append(text)
            elif key == self.grid_key:
                grid = parts[key]
                assert isinstance(grid, GridEncoder)
                out.append(grid.features_numpy(split[key][0], (gamma, beta)))
            else:
                out.append(parts[key].forward_numpy(*split[key]))  # type: ignore[operator]
        return np.concatenate(out, axis=-1).astype(np.float32)


def encoder_for_space(
    space: gym.Space[Any], obs: ObsBatch | None = None, config: EncoderConfig = EncoderConfig()
) -> ObsEncoder:
    """The encoder for an observation space, fitted on ``obs`` (a batch) when given.

    Text encoders need ``obs`` (their vocabulary is fitted on it; without it the
    vocabulary is empty and every word is unknown). Unsupported spaces raise
    ``UnsupportedSpaceError`` naming the space."""
    if config.film_embedding and not config.film:
        raise ValueCheckError("film_embedding conditions the FiLM grid: it needs film=True")
    space = canonical_space(space)
    encoder = _build(space, obs, config)
    if obs is not None:
        encoder.fit(obs)
    return encoder


class UnusedSettingWarning(UserWarning):
    """An encoder setting was given that no part of the observation space uses (e.g. a
    grid setting for pixel frames): it changes nothing, which the user may not expect."""


def unused_settings(encoder: ObsEncoder, config: EncoderConfig) -> list[tuple[str, str]]:
    """The settings of ``config`` that differ from the defaults and that no part of
    ``encoder`` (an encoder tree :func:`encoder_for_space` built) uses, as ``(name, why)``."""
    parts = list(encoder.modules())
    images = [p for p in parts if isinstance(p, ImageEncoder)]
    grids = [p for p in parts if isinstance(p, GridEncoder)]
    symbolic = bool(grids) or any(p.levels is not None for p in images)
    uses = {
        "cnn": (bool(images), "no image goes through a CNN"),
        "image_features": (bool(images), "no image goes through a CNN"),
        "cnn_init": (bool(images), "no image goes through a CNN"),
        "grid": (symbolic, "no symbolic grid in the observations"),
        "grid_channels": (bool(grids), "no grid embedding (grid='embedding')"),
        "grid_embedding": (bool(grids), "no grid embedding (grid='embedding')"),
        "film": (any(isinstance(p, FiLMEncoder) for p in parts), "no FiLM-conditioned grid"),
        "text_dim": (any(isinstance(p, TextEncoder) for p in parts), "no Text observation"),
        "max_tokens": (any(isinstance(p, TextEncoder) for p in parts), "no Text observation"),
    }
    default = EncoderConfig()
    return [
        (name, why)
        for name, (used, why) in uses.items()
        if not used and getattr(config, name) != getattr(default, name)
    ]


def _build(
    space: gym.Space[Any],
    obs: ObsBatch | None,
    config: EncoderConfig,
    path: tuple[str | int, ...] = (),
) -> ObsEncoder:
    """The encoder of ``space``, at ``path`` in the whole observation space (the Dict keys
    and Tuple indices an unsupported leaf's message names)."""
    if isinstance(space, gym.spaces.Dict | gym.spaces.Tuple):
        steps: list[str | int]
        if isinstance(space, gym.spaces.Dict):
            items = [(str(k), s) for k, s in space.spaces.items()]
            steps = [k for k, _ in items]
            entries: list[Any] = [None] * len(items)
            if isinstance(obs, dict):
                entries = [obs[k] for k, _ in items]
        else:
            items = [(str(i), s) for i, s in enumerate(space.spaces)]
            steps = list(range(len(items)))
            entries = [None] * len(items)
            if isinstance(obs, tuple | list):
                entries = list(obs)
        if not items:
            raise UnsupportedSpaceError(f"observation space {space} has no entries")
        parts = {
            k: _build(s, e, config, (*path, step))
            for (k, s), e, step in zip(items, entries, steps, strict=True)
        }
        if config.film and isinstance(space, gym.spaces.Dict):
            return _film(space, parts)
        return DictEncoder(space, parts)
    if isinstance(space, gym.spaces.Box):
        if is_image_space(space):
            levels = _symbolic_levels(space, obs, config)
            if config.grid == "embedding" and levels is not None:
                return GridEncoder(space, levels, config)
            return ImageEncoder(space, config, levels)
        return BoxEncoder(space)
    if isinstance(space, gym.spaces.Discrete):
        return DiscreteEncoder(space)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return MultiDiscreteEncoder(space)
    if isinstance(space, gym.spaces.MultiBinary):
        return MultiBinaryEncoder(space)
    if isinstance(space, gym.spaces.Text):
        vocabulary = [] if obs is None else fit_vocabulary(np.asarray(obs))
        return TextEncoder(space, vocabulary, config)
    raise UnsupportedSpaceError(describe_unsupported(space, path))


def _film(space: gym.spaces.Dict, parts: dict[str, ObsEncoder]) -> FiLMEncoder:
    """``EncoderConfig.film``: the Dict's one grid conditioned on its one Text entry."""
    grids = [k for k, p in parts.items() if isinstance(p, GridEncoder)]
    texts = [k for k, p in parts.items() if isinstance(p, TextEncoder)]
    if len(grids) != 1 or len(texts) != 1:
        raise UnsupportedSpaceError(
            f"film needs one symbolic grid (grid='embedding') and one Text entry in {space}; "
            f"found grids {grids} and texts {texts}"
        )
    return FiLMEncoder(space, parts, grids[0], texts[0])


def _symbolic_levels(
    space: gym.spaces.Box, obs: ObsBatch | None, config: EncoderConfig
) -> list[int] | None:
    """Categories per channel for a symbolic image (see ``EncoderConfig.image_mode``):
    the largest value of each channel in ``obs`` + 1; None for pixels."""
    if config.image_mode == "pixels" or (obs is None and config.image_mode == "auto"):
        return None
    channels = image_geometry(tuple(int(s) for s in space.shape))[0]
    if obs is None:  # symbolic without data: every value of a uint8 channel
        return [256] * channels
    x = to_nchw(np.asarray(obs))
    top = x.max(axis=(0, 2, 3)).astype(np.int64) if len(x) else np.zeros(channels, np.int64)
    if config.image_mode == "auto" and int(top.max(initial=0)) >= SYMBOLIC_MAX_LEVELS:
        return None
    return [int(t) + 1 for t in top]


def encoder_from_json(spec: dict[str, Any]) -> ObsEncoder:
    """Rebuild an (unfitted, untrained) encoder from ``to_json()``; load the state dict
    next. ``ValueError``/``KeyError`` on a malformed spec."""
    kind = spec["type"]
    if kind in ("dict", "tuple", "film"):
        pairs = zip(spec["keys"], spec["parts"], strict=True)
        parts = {str(k): encoder_from_json(p) for k, p in pairs}
        composite: gym.spaces.Dict | gym.spaces.Tuple
        if kind == "tuple":
            composite = gym.spaces.Tuple(tuple(p.space for p in parts.values()))
        else:
            composite = gym.spaces.Dict([(k, p.space) for k, p in parts.items()])
        if kind == "film":
            assert isinstance(composite, gym.spaces.Dict)
            return FiLMEncoder(composite, parts, str(spec["grid_key"]), str(spec["text_key"]))
        return DictEncoder(composite, parts)
    space = obs_space_from_json(spec["space"])
    if kind == "box" and isinstance(space, gym.spaces.Box):
        return BoxEncoder(space)
    if kind == "image" and isinstance(space, gym.spaces.Box):
        config = EncoderConfig(image_features=int(spec["image_features"]), cnn=spec["cnn"])
        levels = spec.get("levels")
        return ImageEncoder(space, config, None if levels is None else [int(v) for v in levels])
    if kind == "grid" and isinstance(space, gym.spaces.Box):
        config = EncoderConfig(
            image_features=int(spec["image_features"]),
            grid_embedding=int(spec["grid_embedding"]),
            grid_channels=tuple(int(c) for c in spec["grid_channels"]),
            film_embedding=bool(spec.get("film_embedding", False)),
        )
        return GridEncoder(space, [int(v) for v in spec["levels"]], config)
    if kind == "discrete" and isinstance(space, gym.spaces.Discrete):
        return DiscreteEncoder(space)
    if kind == "multi_discrete" and isinstance(space, gym.spaces.MultiDiscrete):
        return MultiDiscreteEncoder(space)
    if kind == "multi_binary" and isinstance(space, gym.spaces.MultiBinary):
        return MultiBinaryEncoder(space)
    if kind == "text" and isinstance(space, gym.spaces.Text):
        config = EncoderConfig(text_dim=int(spec["text_dim"]), max_tokens=int(spec["max_tokens"]))
        return TextEncoder(space, [str(w) for w in spec["vocabulary"]], config)
    raise ValueError(f"unknown encoder {kind!r} for space {spec.get('space')}")


def parameter_count(encoder: ObsEncoder) -> int:
    """Trainable parameters of an encoder."""
    return sum(p.numel() for p in encoder.parameters())
