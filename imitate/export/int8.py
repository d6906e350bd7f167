"""Integer-only int8 quantisation of an MLPPolicy, and a bit-exact numpy model of the C code.

The scheme is the one TFLite Micro and CMSIS-NN use (Jacob et al. 2018):

* weights: symmetric int8 per output channel, ``w = s_w[j] * q``, rounded by GPTQ
  (:func:`gptq_round`) on the calibration inputs;
* hidden activations: int8 (int16 for Box actions or on request: CMSIS-NN's 16x8
  kernels, the same int8 weights), ``x = s * (q - z)``, the range of each layer the best
  (by agreement with the float policy on the student's own states) of min/max, a few
  quantiles (:data:`CLIP_QUANTILES`) and, for ReLU / hard-tanh, one scale per channel at
  its MSE-optimal clip (:func:`channel_ranges`; free in the C: the requantisation
  multipliers are per channel already and the next layer's weights absorb the scales);
  zero always representable;
* the observation: int16 by default (int8 on request; see :func:`quantize_policy`);
* the observation normalisation and the input quantisation are folded into one
  per-feature multiplier and offset;
* int32 accumulators with the zero points folded into the bias;
* fixed-point requantisation ``y = round(acc * M * 2^(shift - 31))``: an int32
  multiplier ``M`` per output channel and one shift per layer, the int64 product
  rounded once, half up (TFLM's / CMSIS-NN's single-rounding
  ``MultiplyByQuantizedMultiplier``);
* ReLU and hard-tanh are the requantisation clamp (exact); tanh is a lookup table,
  linearly interpolated on the pre-activation's 8 low bits: 129 int8 entries for
  ``t >= 0`` with zero points 0 (tanh is odd), or 257 int16 entries with int16 units;
* the last layer is requantised to int32 at one common scale, so the decision (argmax,
  sign) compares integers.

Hand-written because the input quantisation must not use a float instruction either:
on an FPU-less Cortex-M0 a float multiply is a soft-float library call (about 1 KB of
flash and ~50 instructions each). :func:`quantize_obs` reads the IEEE-754 bits of the
observation (sign, exponent, 16 mantissa bits) and multiplies them by an int32 multiplier,
all in integers. :class:`QuantizedMLP` computes exactly what the generated C computes,
so the C export can be tested for bit-exact equality, not only for action parity.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from imitate.errors import ImitateError
from imitate.policy import MLPPolicy
from imitate.spaces import ActionHead

ODD_LUT = 129
"""Entries of the int8 tanh table: ``tanh`` at ``t = 0..128`` steps, the negative half by
symmetry (a 16-bit table has all 257)."""
Q_LIMIT = 1 << 30
"""Saturation of the input's fixed-point product ``obs * m`` (2^30 in fixed point)."""
OUT_TARGET = 1 << 29
"""Largest |int32 logit| the last layer's common scale allows."""


@dataclass(frozen=True)
class QuantLayer:
    """One dense layer in integers.

    ``acc[j] = bias[j] + sum_i weight[j, i] * x[i]`` (int32; ``weight [out, in]`` int8,
    ``bias [out]`` int32 with the input zero points folded in), then
    ``requantize(acc, multiplier[j], shift[j])`` (``multiplier [out]`` int32 ``< 2^31``,
    ``shift [out]`` in ``[-33, 30]``, the same for every channel). Hidden layers add
    ``zero`` and clamp to ``[lo, hi]`` (the activation); a tanh layer (``lut`` set: 129 odd
    int8 or 257 int16 entries) instead requantises to 8 more fractional bits and
    interpolates linearly between neighbouring table entries; the last layer
    (``lo is None``) keeps the int32 value."""

    weight: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    zero: int = 0
    lo: int | None = None
    hi: int | None = None
    lut: np.ndarray | None = None

    @property
    def in_dim(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_dim(self) -> int:
        return int(self.weight.shape[0])


@dataclass(frozen=True)
class QuantizedMLP:
    """An MLPPolicy in integers, observation -> action, exactly as the generated C.

    Input ``[obs_dim]`` per feature: ``in_mult`` int32 in ``[2^14, 2^15)``, ``in_exp``
    int32 (the float exponent at which the product is in Q16) and ``in_offset`` int32
    (fixed point) give ``obs_q = clamp(round(obs * m + c))``;
    equivalently ``obs_q = round(((obs - mean) / std) / in_scale) + in_zero``
    (``in_scale [obs_dim]`` float, ``in_zero [obs_dim]`` int, for callers that quantise
    themselves). ``layers``: the dense layers; ``out_scale``: the real value of one unit of
    the int32 outputs ``[n_outputs]``."""

    in_mult: np.ndarray
    in_exp: np.ndarray
    in_offset: np.ndarray
    in_scale: np.ndarray
    in_zero: np.ndarray
    layers: tuple[QuantLayer, ...]
    out_scale: float
    head: ActionHead
    bits: int = 8
    input_bits: int = 16

    @property
    def frac_bits(self) -> int:
        """Fractional bits of the input's fixed-point product (16 for int8, 8 for int16)."""
        return 24 - self.input_bits

    @property
    def obs_dim(self) -> int:
        return len(self.in_mult)

    def quantize_obs(self, obs: np.ndarray) -> np.ndarray:
        """Float32 observations ``[B, obs_dim]`` -> int16 (int8 with ``input_bits=8``)
        ``[B, obs_dim]``, in integer operations only."""
        flat = np.ascontiguousarray(np.asarray(obs, dtype=np.float32).reshape(len(obs), -1))
        u = flat.view(np.uint32).astype(np.int64)
        e = (u >> 23) & 0xFF
        m16 = ((u & 0x7FFFFF) | 0x800000) >> 8
        p = m16 * self.in_mult.astype(np.int64)
        sh = e - self.in_exp.astype(np.int64)
        left = np.clip(sh, 0, 29)
        right = np.clip(-sh, 0, 62)
        saturate = (e == 255) | ((sh >= 0) & ((sh >= 30) | (p > (Q_LIMIT >> left))))
        t = np.where(sh >= 0, p << left, np.where(sh <= -31, 0, p >> right))
        t = np.where(saturate, Q_LIMIT, t)
        t = np.where(e == 0, 0, t)
        t = np.where(u >> 31 == 1, -t, t)
        y = (t + self.in_offset.astype(np.int64) + (1 << (self.frac_bits - 1))) >> self.frac_bits
        top = (1 << (self.input_bits - 1)) - 1
        return np.clip(y, -top - 1, top).astype(np.int8 if self.input_bits == 8 else np.int16)

    def outputs_q(self, obs_q: np.ndarray) -> np.ndarray:
        """Quantised observations ``[B, obs_dim]`` -> int32 outputs ``[B, n_outputs]``."""
        x = np.asarray(obs_q, dtype=np.int64)
        for layer in self.layers:
            acc = x @ layer.weight.astype(np.int64).T + layer.bias.astype(np.int64)
            y = requantize(acc, layer.multiplier, layer.shift)
            if layer.lut is not None and len(layer.lut) == ODD_LUT:  # tanh(-t) = -tanh(t)
                pos = np.minimum(np.abs(y), 32767)
                lut, index, frac = layer.lut.astype(np.int64), pos >> 8, pos & 255
                r = lut[index] + (((lut[index + 1] - lut[index]) * frac + 128) >> 8)
                y = np.where(y < 0, -r, r)
            elif layer.lut is not None:
                pos = np.clip(y + (layer.zero + 128) * 256, 0, 65535)
                lut, index, frac = layer.lut.astype(np.int64), pos >> 8, pos & 255
                y = lut[index] + (((lut[index + 1] - lut[index]) * frac + 128) >> 8)
            elif layer.lo is not None and layer.hi is not None:
                y = np.clip(y + layer.zero, layer.lo, layer.hi)
            x = y
        return x.astype(np.int32)

    def decide(self, out: np.ndarray) -> np.ndarray:
        """int32 outputs -> env actions, as the C decision (integer compare; Box: float)."""
        return self.head.mode_numpy_int32(out, self.out_scale)

    def logits(self, obs: np.ndarray) -> np.ndarray:
        """The dequantised outputs ``[B, n_outputs]`` (float32, ``out * out_scale``)."""
        out = self.outputs_q(self.quantize_obs(obs))
        return out.astype(np.float32) * np.float32(self.out_scale)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Float observations -> env actions through the integer path."""
        return self.decide(self.outputs_q(self.quantize_obs(obs)))


def requantize(acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``round(acc * multiplier * 2^(shift - 31))``, half up: CMSIS-NN's single-rounding
    ``arm_nn_requantize``, ``((acc * multiplier) >> (30 - shift)) + 1) >> 1``."""
    product = np.asarray(acc, dtype=np.int64) * multiplier.astype(np.int64)
    high = (product >> (30 - shift.astype(np.int64))).astype(np.int32).astype(np.int64)
    return (high + 1) >> 1


def quantize_multiplier(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive reals ``[out]`` -> (int32 multipliers ``< 2^31``, the largest in
    ``[2^30, 2^31)``; one shift for the layer, repeated ``[out]``) with
    ``real ~= multiplier * 2^(shift - 31)``. One shift per layer lets the generated C
    shift by a constant (no 64-bit variable shift); the smaller channels keep
    ``31 - log2(max / real)`` bits of multiplier."""
    real = np.asarray(real, dtype=np.float64)
    shift = int(np.frexp(real.max())[1])  # max = frac * 2^shift, frac in [0.5, 1)
    mult = np.rint(real * 2.0 ** (31 - shift)).astype(np.int64)
    if mult.max() >= 1 << 31:  # rounded up to 2^31
        shift += 1
        mult = np.rint(real * 2.0 ** (31 - shift)).astype(np.int64)
    return mult.astype(np.int32), np.full(len(real), shift, dtype=np.int32)


def quantize_weights(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel int8 ``[out, in]`` and float64 scales ``[out]``."""
    amax = np.abs(weight).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    return np.clip(np.rint(weight / scale[:, None]), -127, 127).astype(np.int8), scale


def gptq_round(
    weight: np.ndarray, inputs: np.ndarray, damp: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """int8 ``[out, in]`` and per-row scales of ``weight`` rounded in sequence, each
    column's rounding error compensated on the columns not yet rounded through the
    calibration inputs' second moments ``H = X^T X`` (``inputs [N, in]``; GPTQ, Frantar
    et al. 2023, exact for one layer's output error under H)."""
    w = np.array(weight, dtype=np.float64)
    amax = np.abs(w).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    x = np.asarray(inputs, dtype=np.float64)
    h = x.T @ x / len(x)
    h += damp * np.mean(np.diag(h)) * np.eye(len(h)) + 1e-12 * np.eye(len(h))
    u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper: inv(H) = u^T u
    q = np.zeros(w.shape, dtype=np.int64)
    for i in range(w.shape[1]):
        q[:, i] = np.clip(np.rint(w[:, i] / scale), -127, 127)
        err = (w[:, i] - q[:, i] * scale) / u[i, i]
        w[:, i + 1 :] -= err[:, None] * u[i, i + 1 :][None, :]
    return q.astype(np.int8), scale


def _affine(lo: float, hi: float, bits: int = 8) -> tuple[float, int]:
    """Scale and zero point of a ``bits`` range covering ``[min(lo, 0), max(hi, 0)]``."""
    lo, hi, half = min(lo, 0.0), max(hi, 0.0), 1 << (bits - 1)
    scale = (hi - lo) / (2 * half - 1) if hi > lo else 1.0
    zero = int(np.clip(np.rint(-half - lo / scale), -half, half - 1))
    return scale, zero


def _check_requant(acc_bound: np.ndarray, real: np.ndarray, shift: np.ndarray, where: str) -> None:
    if np.any(acc_bound * real >= 2**30) or np.any(shift > 30) or np.any(shift < -33):
        raise ImitateError(f"int8 export: {where} is out of the fixed-point range")


CLIP_QUANTILES = (1.0, 0.9999, 0.999, 0.995, 0.99)
"""Candidate calibration ranges of a hidden layer: the quantile of its activations that
becomes the top of the int range (1.0: min/max); :func:`quantize_policy` keeps the one
whose model agrees best with the float policy on the calibration states (ReLU and
hard-tanh layers also try :data:`PER_CHANNEL`)."""
PER_CHANNEL = 0.0
"""The ``clip`` entry of a ReLU / hard-tanh layer quantised with one scale per channel, each
channel's clip the one of :data:`CHANNEL_CLIPS` that minimises its own mean squared
rounding + clipping error on the calibration states (:func:`channel_ranges`)."""
CHANNEL_CLIPS = np.linspace(0.25, 1.0, 61)
"""Candidate clips of one channel, as fractions of its largest |activation|."""


def channel_ranges(h: np.ndarray, relu: bool, bits: int = 8) -> tuple[np.ndarray, int, int, int]:
    """Per-channel scales ``[out]`` of activations ``h [N, out]`` and the zero point and
    clamp shared by all channels: ReLU ``[0, c_j]`` on the whole int range (zero point
    ``-2^(bits-1)``), hard-tanh symmetric ``[-c_j, c_j]`` (zero point 0, clamp
    ``+-(2^(bits-1) - 1)``), so the generated C's one zero point and clamp per layer still
    hold and only the requantisation multipliers (already per channel) and the next
    layer's folded weights change. ``c_j``: the MSE-optimal clip of channel ``j`` among
    :data:`CHANNEL_CLIPS` (the calibration states' error of clipping plus rounding)."""
    half = 1 << (bits - 1)
    levels, zero = (2 * half - 1, -half) if relu else (half - 1, 0)
    lo, hi = (-half, half - 1) if relu else (-(half - 1), half - 1)
    top = np.abs(h).max(axis=0)
    scales = np.ones(h.shape[1])
    for j in range(h.shape[1]):
        if top[j] <= 0:
            continue
        column, best = h[:, j], np.inf
        for c in CHANNEL_CLIPS * top[j]:
            s = c / levels
            q = np.clip(np.rint(column / s) + zero, lo, hi)
            error = float(np.mean(((q - zero) * s - column) ** 2))
            if error < best:
                best, scales[j] = error, s
    return scales, zero, lo, hi


CLAMPS = {"relu": (0.0, np.inf), "hardtanh": (-1.0, 1.0)}
"""The activations that are a clamp, and their bounds."""


def clamp_grid(
    h: np.ndarray, activation: str, q: float, bits: int
) -> tuple[np.ndarray, int, int, int]:
    """The int grid of a ReLU / hard-tanh layer's activations ``h [N, out]`` (already
    clamped): scales ``[out]`` (one value repeated for a per-tensor range), zero point and
    clamp ``[lo, hi]`` in int units. ``q``: the quantile of ``h`` that becomes the top of
    the range (and ``1 - q`` the bottom), or :data:`PER_CHANNEL`."""
    if q == PER_CHANNEL:
        return channel_ranges(h, activation == "relu", bits)
    half, bound = 1 << (bits - 1), CLAMPS[activation]
    scale, zero = _affine(float(np.quantile(h, 1 - q)), float(np.quantile(h, q)), bits)
    lo = int(max(-half, zero + np.ceil(bound[0] / scale - 1e-9)))
    hi = int(min(half - 1, zero + np.floor(bound[1] / scale + 1e-9)))
    return np.full(h.shape[1], scale), zero, lo, hi


def action_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the rows where two batches of actions ``[B]`` or ``[B, k]`` are equal (every
    factor). (``np.all(a == b, axis=-1)`` on ``[B]`` Discrete actions would be one bool.)"""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.all(a.reshape(len(a), -1) == b.reshape(len(b), -1), axis=1).mean())


def default_bits(policy: MLPPolicy) -> int:
    """Hidden activation width by default: 8, but 16 for Box actions, whose int8 output
    error goes straight into the action with no argmax margin to absorb it (two HalfCheetah
    students, 50 episodes each: -5.5 +- 5.1 and -0.3 +- 4.3 points vs the float student
    with 8 bits, +0.7 +- 4.3 and +1.1 +- 3.9 with 16; README, embedded section)."""
    return 8 if policy.head.discrete else 16


def quantize_policy(
    policy: MLPPolicy,
    calibration: np.ndarray,
    bits: int | None = None,
    input_bits: int = 16,
    clip: tuple[float, ...] | None = None,
) -> QuantizedMLP:
    """Post-training quantisation of ``policy``, ranges from ``calibration [N, *obs_shape]``
    (the student's own states). ``bits``: the hidden activations' width, 8 (int8) or 16
    (CMSIS-NN's 16x8 kernels); None: :func:`default_bits`. ``input_bits``: the
    observation's, 16 (the default) or 8. The weights are int8 either way, rounded by
    :func:`gptq_round`. ``clip``: one quantile per hidden layer for its range, or
    :data:`PER_CHANNEL` for a ReLU / hard-tanh layer (None: the best of
    :data:`CLIP_QUANTILES` and :data:`PER_CHANNEL` per layer, by agreement with the float
    policy on ``calibration``).

    Why 16-bit observations: a balancing policy's own states sit close to its decision
    boundaries, and rounding the observation to 8 bits flips 3.4-4.5 % of its actions
    against the float policy (about 12 bits are needed for 99 %; clipping the input range
    at a percentile does not recover it); 8-bit hidden units cost 0.2-1.6 %."""
    bits = default_bits(policy) if bits is None else bits
    for name, value in (("activation", bits), ("input", input_bits)):
        if value not in (8, 16):
            raise ImitateError(f"int8 export: {name} bits must be 8 or 16, got {value}")
    calib = np.asarray(calibration, dtype=np.float32).reshape(len(calibration), -1)
    if len(calib) == 0 or calib.shape[1] != policy.obs_dim or not np.isfinite(calib).all():
        raise ImitateError(
            f"int8 export needs finite calibration states [N, {policy.obs_dim}] (got {calib.shape})"
        )
    n_hidden = sum(1 for kind, _, _ in policy.numpy_snapshot().layers.ops if kind == "linear") - 1
    activation = policy.config.activation
    if clip is not None:
        per_channel_ok = activation != "tanh"
        if len(clip) != n_hidden or not all(
            0.5 < q <= 1.0 or (q == PER_CHANNEL and per_channel_ok) for q in clip
        ):
            raise ImitateError(f"int8 export: clip needs {n_hidden} quantiles in (0.5, 1]")
        return _quantize(policy, calib, bits, input_bits, clip)
    return _search(policy, calib, bits, input_bits)[1]


def _search(
    policy: MLPPolicy, calib: np.ndarray, bits: int, input_bits: int
) -> tuple[tuple[float, ...], QuantizedMLP]:
    """The best clip per hidden layer, greedily layer by layer (agreement with the float
    policy's actions on ``calib [N, obs_dim]``, then the outputs' squared error), and its
    model."""
    activation = policy.config.activation
    n_hidden = len(policy.config.hidden)
    reference = policy.act(calib)
    logits = np.asarray(policy.logits(calib), dtype=np.float64)
    chosen = [1.0] * n_hidden
    best = _quantize(policy, calib, bits, input_bits, tuple(chosen))
    candidates = CLIP_QUANTILES + ((PER_CHANNEL,) if activation != "tanh" else ())
    for layer in range(n_hidden):
        scores = {}
        for q in candidates:
            trial = (*chosen[:layer], q, *chosen[layer + 1 :])
            same = q == chosen[layer]
            model = best if same else _quantize(policy, calib, bits, input_bits, trial)
            agree = action_agreement(model.act(calib), reference)
            error = float(((model.logits(calib) - logits) ** 2).mean())
            scores[q] = (agree if policy.head.discrete else 0.0, -error, model)
        chosen[layer] = max(scores, key=lambda q: scores[q][:2])
        best = scores[chosen[layer]][2]
    return tuple(chosen), best


def _quantize(
    policy: MLPPolicy, calib: np.ndarray, bits: int, input_bits: int, clip: tuple[float, ...]
) -> QuantizedMLP:
    frac_bits, half, in_half = 24 - input_bits, 1 << (bits - 1), 1 << (input_bits - 1)
    store = np.int8 if bits == 8 else np.int16
    ops = policy.numpy_snapshot().layers.ops
    linears = [(w.T.astype(np.float64), b.astype(np.float64)) for k, w, b in ops if k == "linear"]
    activation = policy.config.activation
    mean = policy.obs_mean.numpy().astype(np.float64)
    std = policy.obs_std.numpy().astype(np.float64)
    h = (calib.astype(np.float64) - mean) / std

    # Input: one scale and zero point for the normalised observation (per-feature scales
    # folded into the first layer would distort its per-channel weight grids), and the
    # normalisation folded into one multiplier and offset per feature.
    # 8 bits: one per feature all the same (resolution matters more there).
    in_scale, in_zero = np.ones(policy.obs_dim), np.zeros(policy.obs_dim, dtype=np.int64)
    for i in range(policy.obs_dim):
        column = h[:, i] if input_bits == 8 else h
        in_scale[i], in_zero[i] = _affine(float(column.min()), float(column.max()), input_bits)
    m = 1.0 / (std * in_scale)
    frac, exp = np.frexp(m)  # m = frac * 2^exp; mult = frac * 2^15 in [2^14, 2^15)
    in_mult = np.rint(frac * 2.0**15).astype(np.int64)
    carry = in_mult == 1 << 15
    in_mult, exp = np.where(carry, 1 << 14, in_mult), exp + carry
    # v * m = m16 * mult * 2^(E - 157 + exp), so the fixed point is at shift E - in_exp
    in_exp = 157 - frac_bits - exp
    c = -mean * m + in_zero
    in_offset = np.clip(np.rint(c * 2.0**frac_bits), -(2**29), 2**29).astype(np.int64)

    x_scale, x_zero = in_scale, in_zero.astype(np.float64)
    layers: list[QuantLayer] = []
    for index, (weight, bias) in enumerate(linears):
        folded = weight * x_scale[None, :]
        wq, w_scale = gptq_round(folded, h / x_scale[None, :])  # inputs in integer units
        wq64 = wq.astype(np.int64)
        bq = np.rint(bias / w_scale).astype(np.int64) - wq64 @ x_zero.astype(np.int64)
        acc_bound = np.abs(bq) + (in_half if index == 0 else half) * np.abs(wq64).sum(axis=1)
        if np.any(acc_bound >= 2**31):
            raise ImitateError(f"int8 export: layer {index} accumulator may overflow int32")
        pre = h @ weight.T + bias
        if index == len(linears) - 1:
            out_scale = float((acc_bound * w_scale).max() / OUT_TARGET)
            real = w_scale / out_scale
            mult, shift = quantize_multiplier(real)
            _check_requant(acc_bound, real, shift, f"layer {index}")
            layers.append(QuantLayer(wq, bq.astype(np.int32), mult, shift))
            break
        lut, q = None, clip[index]
        if activation == "tanh":
            h = np.tanh(pre)
            if bits == 8:  # odd table: zero points 0, 129 entries for t >= 0 (tanh(-t) = -tanh(t))
                p_scale, p_zero = max(float(np.quantile(np.abs(pre), q)), 1e-6) / 128, 0
                scale, out_zero = float(np.tanh(128 * p_scale)) / 127, 0
                real = np.tanh(p_scale * np.arange(ODD_LUT))
            else:
                p_lo, p_hi = float(np.quantile(pre, 1 - q)), float(np.quantile(pre, q))
                p_scale, p_zero = _affine(p_lo, p_hi)
                scale, out_zero = _affine(float(h.min()), float(h.max()), bits)
                real = np.tanh(p_scale * (np.arange(257) - 128 - p_zero))
            lut = np.clip(np.rint(real / scale) + out_zero, -half, half - 1).astype(store)
            real = w_scale / (p_scale / 256)
            mult, shift = quantize_multiplier(real)
            zero, lo, hi = p_zero, -half, half - 1
            next_scale = np.full(weight.shape[0], scale)
        else:  # ReLU / hard-tanh: the clamp (a scale per tensor or per channel)
            h = np.clip(pre, *CLAMPS[activation])
            next_scale, zero, lo, hi = clamp_grid(h, activation, q, bits)
            real = w_scale / next_scale
            mult, shift = quantize_multiplier(real)
            out_zero = zero
        _check_requant(acc_bound, real, shift, f"layer {index}")
        layers.append(QuantLayer(wq, bq.astype(np.int32), mult, shift, zero, lo, hi, lut))
        x_scale = next_scale
        x_zero = np.full(weight.shape[0], float(out_zero))
    return QuantizedMLP(
        in_mult=in_mult.astype(np.int32),
        in_exp=in_exp.astype(np.int32),
        in_offset=in_offset.astype(np.int32),
        in_scale=in_scale.astype(np.float32),
        in_zero=in_zero.astype(np.int32),
        layers=tuple(layers),
        out_scale=out_scale,
        head=policy.head,
        bits=bits,
        input_bits=input_bits,
    )


def _fake_quant(weight: torch.Tensor) -> torch.Tensor:
    """Symmetric per-row int8 rounding with a straight-through gradient."""
    scale = weight.detach().abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
    snapped = torch.clamp(torch.round(weight / scale), -127, 127) * scale
    return weight + (snapped - weight).detach()


def _range_fake_quant(lo: float, hi: float, bits: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x`` rounded onto the ``bits`` grid of ``[lo, hi]`` (as :func:`_affine`),
    straight-through."""
    scale, zero = _affine(lo, hi, bits)
    half = 1 << (bits - 1)
    return _clamp_fake_quant(torch.tensor(scale), zero, -half, half - 1)


def _clamp_fake_quant(
    scale: torch.Tensor, zero: int, lo: int, hi: int
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Fake quantisation onto the export's grid of a clamp layer: ``scale`` per channel
    (``[out]`` or a scalar), the int value ``clamp(floor(x / scale + 1/2) + zero, lo, hi)``
    (round half up, as the requantisation), dequantised; straight-through gradient."""
    scale = scale.to(torch.float32)

    def fake(x: torch.Tensor) -> torch.Tensor:
        q = torch.clamp(torch.floor(x / scale + 0.5) + zero, lo, hi)
        return x + ((q - zero) * scale - x).detach()

    return fake


def _on_grid(policy: MLPPolicy) -> MLPPolicy:
    """A copy of ``policy`` with every Linear weight rounded onto its int8 grid."""
    snapped = copy.deepcopy(policy)
    with torch.no_grad():
        for module in snapped.net:
            if isinstance(module, torch.nn.Linear):
                module.weight.copy_(_fake_quant(module.weight))
    snapped.eval()
    return snapped


def quantization_aware_finetune(
    policy: MLPPolicy,
    states: np.ndarray,
    steps: int = 600,
    lr: float = 3e-4,
    seed: int = 0,
    bits: int | None = None,
    check_every: int = 50,
) -> MLPPolicy:
    """A copy of ``policy`` fine-tuned through the int8 scheme (QAT, Jacob et al. 2018) to
    reproduce the original's outputs on ``states`` (its own, ``[N, *obs_shape]``; mean
    squared error of the outputs), its weights then stored on the int8 grid: the int8
    export computes the returned student's dot products exactly.

    The forward pass fake-quantises (straight-through) the weights per output channel and
    the hidden activations to ``bits`` on the grid the export gives the original (ReLU /
    hard-tanh: the same scales per tensor or per channel, zero point, clamp and half-up
    rounding as the requantisation, from the same calibration search; tanh: the output
    range). Every
    ``check_every`` steps (and before the first) the candidate is snapped onto the grid,
    post-training quantised (:func:`quantize_policy`) and scored by how often its int8
    form takes the original's action on ``states`` (Box heads: output error); the best
    candidate is returned, so the fine-tune cannot end further from the original than
    where it started (a low learning rate and this choice keep the return: an earlier
    fixed 300 steps at 1e-3 once cost a LunarLander student 15 % of its return)."""
    bits = default_bits(policy) if bits is None else bits
    obs = torch.as_tensor(np.asarray(states, dtype=np.float32))
    flat = obs.reshape(len(obs), -1).numpy()
    student = copy.deepcopy(policy)
    activation = policy.config.activation
    clip = _search(policy, flat, bits, 16)[0] if activation in CLAMPS else ()
    with torch.no_grad():
        target = policy(obs)
        grids: list[Callable[[torch.Tensor], torch.Tensor]] = []
        x = policy.normalize(obs)
        for module in policy.net:
            x = module(x)
            if isinstance(module, torch.nn.Linear):
                continue
            if activation in CLAMPS:  # the export's own grid: scale, zero point, clamp
                scale, zero, lo, hi = clamp_grid(x.numpy(), activation, clip[len(grids)], bits)
                grids.append(_clamp_fake_quant(torch.as_tensor(scale), zero, lo, hi))
            else:  # tanh: the export quantises the pre-activation and reads a table
                grids.append(_range_fake_quant(float(x.min()), float(x.max()), bits))
    reference, logits = policy.act(flat), target.numpy().astype(np.float64)

    def score(candidate: MLPPolicy) -> tuple[float, float]:
        model = quantize_policy(candidate, flat, bits)
        error = float(((model.logits(flat) - logits) ** 2).mean())
        agree = action_agreement(model.act(flat), reference)
        return (agree if policy.head.discrete else 0.0, -error)

    best = _on_grid(student)
    best_score = score(best)
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        batch = torch.randint(0, len(obs), (min(256, len(obs)),), generator=generator)
        x, hidden = student.normalize(obs[batch]), 0
        for module in student.net:
            if isinstance(module, torch.nn.Linear):
                x = torch.nn.functional.linear(x, _fake_quant(module.weight), module.bias)
            else:
                x = grids[hidden](module(x))
                hidden += 1
        loss = torch.nn.functional.mse_loss(x, target[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % check_every == 0 or step == steps:
            candidate = _on_grid(student)
            candidate_score = score(candidate)
            if candidate_score > best_score:
                best, best_score = candidate, candidate_score
    return best


EXP2_Q15 = np.rint(32768.0 * 2.0 ** (-np.arange(65) / 64.0)).astype(np.int64)
"""``2^(-i/64)`` in Q15, ``i = 0..64``: the integer JS gate's exponential (range-reduced:
``2^-(n + f) = 2^-f >> n``, linear interpolation on 10 more bits of ``f``)."""
LOG2_Q16 = np.rint(65536.0 * np.log2(1.0 + np.arange(65) / 64.0)).astype(np.int64)
"""``log2(1 + i/64)`` in Q16, ``i = 0..64``: the integer JS gate's logarithm (mantissa
after the leading bit, linear interpolation on 10 more bits)."""
LN2_Q15 = 22713
"""``round(ln 2 * 2^15)``: bits to nats in the gate's threshold comparison."""
GATE_UNSET = -(2**31)
"""``anchor[0]`` of a gate with no action chosen yet (the int32 outputs never reach it)."""


def gate_multiplier(out_scale: float) -> tuple[int, int]:
    """(int32 multiplier, right shift) with ``d * multiplier >> shift`` ~= the logit
    difference ``d`` (int32 output units) in Q16 bits: ``d * out_scale / ln 2 * 2^16``."""
    mult, shift = quantize_multiplier(np.array([out_scale * 65536.0 / np.log(2.0)]))
    return int(mult[0]), 31 - int(shift[0])


def softmax_q16(out: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """int32 outputs ``[B, K]`` -> probabilities ``[B, K]`` in Q16 (int64 values), as the
    generated C: ``e_k = 2^-(u_k)`` in Q15 with ``u_k`` the difference to the largest
    output in Q16 bits, then ``p_k = (e_k << 16) / sum(e)`` (unsigned integer division)."""
    out = np.asarray(out, dtype=np.int64)
    d = out.max(axis=1, keepdims=True) - out
    u = (d * multiplier) >> shift
    n, f = u >> 16, u & 0xFFFF
    i, r = f >> 10, f & 1023
    e = EXP2_Q15[i] + (((EXP2_Q15[i + 1] - EXP2_Q15[i]) * r + 512) >> 10)
    e = np.where(n >= 16, 0, e >> np.minimum(n, 15))
    return (e << 16) // e.sum(axis=1, keepdims=True)


def _log2_q16(p: np.ndarray) -> np.ndarray:
    """``log2(p)`` in Q16 of integers ``1 <= p < 2^18`` (int64 arrays)."""
    msb = np.floor(np.log2(np.maximum(p, 1))).astype(np.int64)  # exact for these integers
    f = ((p << (30 - msb)) >> 14) & 0xFFFF
    i, r = f >> 10, f & 1023
    return (msb << 16) + LOG2_Q16[i] + (((LOG2_Q16[i + 1] - LOG2_Q16[i]) * r + 512) >> 10)


def js_raw(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """``JS(pa, pb) * 2^33 / ln 2`` (int64 ``[B]``) of Q16 probabilities ``[B, K]``:
    ``H(m) - (H(pa) + H(pb)) / 2`` with ``m = (pa + pb) / 2`` kept exact in Q17 and
    ``-p log2 p`` from :func:`_log2_q16` (0 for ``p = 0``)."""

    def plogp(p: np.ndarray, frac: int) -> np.ndarray:  # p (frac - log2 p) in Q16 * Q(frac)
        return np.where(p > 0, p * ((frac << 16) - _log2_q16(p)), 0).sum(axis=1)

    pa, pb = np.asarray(pa, dtype=np.int64), np.asarray(pb, dtype=np.int64)
    return plogp(pa + pb, 17) - plogp(pa, 16) - plogp(pb, 16)


def threshold_q16(threshold: float) -> int:
    """The gate's threshold (nats) in Q16, as the header's ``<P>_GATE_THRESHOLD``."""
    return int(threshold * 65536.0 + 0.5)


def gate_step(out: np.ndarray, anchor: np.ndarray, threshold: int, out_scale: float) -> np.ndarray:
    """The integer JS gate's next anchors ``[B, K]`` (int32 outputs; ``anchor [B, K]``,
    row ``[GATE_UNSET, ...]``: none yet): the current outputs where the anchor is unset or
    ``JS(softmax(out), softmax(anchor)) > threshold`` (Q16 nats), compared exactly in
    integers as ``js_raw * LN2_Q15 > threshold << 32``; else the anchor. The held action
    is the anchor's argmax (:class:`imitate.policy.JSGatedPolicy` in integers)."""
    out, anchor = np.asarray(out, dtype=np.int64), np.asarray(anchor, dtype=np.int64)
    multiplier, shift = gate_multiplier(out_scale)
    fresh = anchor[:, 0] == GATE_UNSET
    safe = np.where(fresh[:, None], out, anchor)
    raw = js_raw(softmax_q16(out, multiplier, shift), softmax_q16(safe, multiplier, shift))
    switch = fresh | (raw * LN2_Q15 > (int(threshold) << 32))
    return np.where(switch[:, None], out, anchor).astype(np.int32)


def gate_replay(
    model: QuantizedMLP, obs: np.ndarray, episode_starts: np.ndarray, threshold: float
) -> np.ndarray:
    """Actions ``[T]`` of the integer JS gate of ``model`` (bit-exact with the C
    ``<prefix>_act_gated``) along recorded episodes ``obs [T, obs_dim]``, its anchor reset
    at each of ``episode_starts`` (indices into ``obs``)."""
    outputs = model.outputs_q(model.quantize_obs(obs))
    starts = np.zeros(len(outputs), dtype=bool)
    starts[np.asarray(episode_starts, dtype=np.int64)] = True
    q_threshold = threshold_q16(threshold)
    anchor = np.full((1, outputs.shape[1]), GATE_UNSET, dtype=np.int32)
    actions = np.empty(len(outputs), dtype=np.int64)
    for t, row in enumerate(outputs):
        if starts[t]:
            anchor[:] = GATE_UNSET
        anchor = gate_step(row[None], anchor, q_threshold, model.out_scale)
        actions[t] = int(anchor[0].argmax())
    return actions


@dataclass(frozen=True)
class GateEpisodes:
    """Episodes of the Python JS gate (:class:`imitate.policy.JSGatedPolicy` on the float
    policy) that the int8 gate is checked along: ``obs [T, obs_dim]``, the Python gate's
    ``actions [T]``, ``episode_starts [E]`` (indices), at ``threshold`` nats."""

    obs: np.ndarray
    actions: np.ndarray
    episode_starts: np.ndarray
    threshold: float


@dataclass(frozen=True)
class WidthChoice:
    """The hidden activation width the int8 export chose (``--activation-bits auto``) and
    why: ``agreement`` per width tried, the action agreement with the float policy on
    held-out calibration states (two halves, each half's model measured on the other);
    ``gate_agreement`` per width tried, the int8 gate's action agreement with the Python
    gate along :class:`GateEpisodes` (None: no gate requested); ``target``: the parity
    both must reach; ``reason``: one line."""

    bits: int
    reason: str
    target: float
    agreement: dict[int, float]
    gate_agreement: dict[int, float] | None = None
    gate_threshold: float | None = None
    gate_episodes: int = 0
    auto: bool = True
    """False: one width given (``--activation-bits 8|16 --js-gate``), checked, not chosen."""

    def as_dict(self) -> dict[str, object]:
        """JSON form (the export's result and header comment)."""
        return {
            "activation_bits": self.bits,
            "reason": self.reason,
            "min_parity": self.target,
            # None: not measured (Box actions take 16 bits without a parity check)
            "heldout_agreement": {str(k): v for k, v in self.agreement.items()} or None,
            "gate_agreement": None
            if self.gate_agreement is None
            else {str(k): v for k, v in self.gate_agreement.items()},
            "gate_threshold": self.gate_threshold,
            "gate_episodes": self.gate_episodes,
            "auto": self.auto,
        }


class GateRefused(ImitateError):
    """The int8 gate misses the parity target with 8- and 16-bit hidden units."""


def heldout_agreement(
    policy: MLPPolicy, calibration: np.ndarray, bits: int, input_bits: int = 16
) -> float:
    """Action agreement of the int8 model with ``policy`` on calibration states it was not
    calibrated on: the states split into two contiguous halves (whole episodes, mostly),
    each half's model (ranges, clip search and GPTQ on that half) measured on the other
    half; the pooled share of equal actions."""
    calib = np.asarray(calibration, dtype=np.float32).reshape(len(calibration), -1)
    half = len(calib) // 2
    if half == 0:
        raise ImitateError("--activation-bits auto needs at least 2 calibration states")
    same = 0
    for fit, test in ((calib[:half], calib[half:]), (calib[half:], calib[:half])):
        model = quantize_policy(policy, fit, bits, input_bits)
        same += round(action_agreement(model.act(test), policy.act(test)) * len(test))
    return same / len(calib)


def choose_bits(
    policy: MLPPolicy,
    calibration: np.ndarray,
    min_parity: float = 0.99,
    input_bits: int = 16,
    gate: GateEpisodes | None = None,
    widths: tuple[int, ...] = (8, 16),
) -> WidthChoice:
    """``--activation-bits auto``: the narrowest hidden width of ``widths`` whose int8 model
    agrees with ``policy`` on ``min_parity`` of held-out calibration states
    (:func:`heldout_agreement`) and, when ``gate`` is given, whose integer gate (the model
    calibrated on all of ``calibration``, the one exported) agrees with the Python gate on
    ``min_parity`` of the steps of ``gate``'s episodes. Box actions: 16 (no argmax margin,
    see :func:`default_bits`), not measured. No width reaches the target: the widest
    without a gate; with a gate, :class:`GateRefused` (one line: the measured agreement
    and what to do)."""
    if not 0.0 < min_parity <= 1.0:
        raise ImitateError(f"--min-parity must be in (0, 1], got {min_parity}")
    if not policy.head.discrete:
        if gate is not None:
            raise ImitateError("--js-gate needs a policy with Discrete actions")
        return WidthChoice(
            16, "16-bit hidden units for Box actions (no argmax margin)", min_parity, {}
        )
    agreement: dict[int, float] = {}
    gate_agreement: dict[int, float] | None = None if gate is None else {}
    threshold = None if gate is None else gate.threshold
    n_episodes = 0 if gate is None else len(gate.episode_starts)
    for bits in widths:
        agreement[bits] = heldout_agreement(policy, calibration, bits, input_bits)
        if gate is not None and gate_agreement is not None:
            model = quantize_policy(policy, calibration, bits, input_bits)
            actions = gate_replay(model, gate.obs, gate.episode_starts, gate.threshold)
            gate_agreement[bits] = action_agreement(actions, gate.actions)
        gate_ok = gate_agreement is None or gate_agreement[bits] >= min_parity
        if agreement[bits] >= min_parity and gate_ok:
            why = (
                f"{bits}-bit hidden units, {100 * agreement[bits]:.2f} % agreement on held-out "
                "calibration states"
            )
            if gate_agreement is not None:
                why += f", gate {100 * gate_agreement[bits]:.2f} % with the Python gate"
            if bits != widths[0]:
                why += f" ({widths[0]}-bit: {_misses(agreement, gate_agreement, widths[0])})"
            return WidthChoice(bits, f"{why}, target {100 * min_parity:.2f} %", min_parity,
                               agreement, gate_agreement, threshold, n_episodes,
                               len(widths) > 1)  # fmt: skip
    if gate_agreement is not None:
        measured = " / ".join(
            f"{100 * a:.2f} % ({b}-bit hidden units)" for b, a in gate_agreement.items()
        )
        plain = " / ".join(f"{100 * a:.2f} %" for a in agreement.values())
        raise GateRefused(
            f"the int8 JS gate agrees with the Python gate on {measured} of the steps of "
            f"{n_episodes} calibration episodes (ungated: {plain} "
            f"on held-out states), below --min-parity {min_parity:g}: export without "
            "--js-gate, or use the float32 C export's gate, or fine-tune the student first "
            "(imitate distill --qat --qat-activation-bits 16, then --activation-bits 16)"
        )
    bits = max(widths, key=lambda b: (agreement[b], b))
    which = (
        f"the best of ({', '.join(f'{b}-bit {100 * a:.2f} %' for b, a in agreement.items())})"
        if len(widths) > 1
        else "the width given (--activation-bits)"
    )
    return WidthChoice(
        bits,
        f"{bits}-bit hidden units, {100 * agreement[bits]:.2f} % agreement on held-out "
        f"calibration states: below the target {100 * min_parity:.2f} %, {which}",
        min_parity, agreement, gate_agreement, threshold, n_episodes, len(widths) > 1,
    )  # fmt: skip


def _misses(agreement: dict[int, float], gate_agreement: dict[int, float] | None, bits: int) -> str:
    """What the narrower width measured (the reason it was not chosen)."""
    text = f"{100 * agreement[bits]:.2f} %"
    if gate_agreement is not None:
        text += f", gate {100 * gate_agreement[bits]:.2f} %"
    return text
