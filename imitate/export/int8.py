"""Integer-only int8 quantisation of an MLPPolicy, and a bit-exact numpy model of the C code.

The scheme is the one TFLite Micro and CMSIS-NN use (Jacob et al. 2018):

* weights: symmetric int8 per output channel, ``w = s_w[j] * q``;
* activations: int8, or int16 (the default: CMSIS-NN's 16x8 kernels, same int8 weights),
  with a per-tensor scale and zero point, ``x = s * (q - z)``, the ranges calibrated on
  the student's own states (min/max, zero always representable);
* the observation normalisation and the input quantisation are folded into one
  per-feature multiplier and offset;
* int32 accumulators with the zero points folded into the bias;
* fixed-point requantisation ``y = round(acc * M * 2^(shift - 31))``: an int32
  multiplier ``M`` per output channel and one shift per layer, the int64 product
  rounded once, half up (TFLM's / CMSIS-NN's single-rounding
  ``MultiplyByQuantizedMultiplier``);
* ReLU and hard-tanh are the requantisation clamp (exact); tanh is a 257-entry lookup
  table, linearly interpolated on the pre-activation's 8 low bits;
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
from dataclasses import dataclass

import numpy as np
import torch

from imitate.errors import ImitateError
from imitate.policy import MLPPolicy
from imitate.spaces import ActionHead

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
    ``shift [out]`` in ``[-33, 30]``, the same for every channel). Hidden layers add ``zero`` and
    clamp to ``[lo, hi]`` (the activation); a tanh layer (``lut [257]`` int8 set) instead
    requantises to 8 more fractional bits and interpolates linearly between neighbouring
    table entries; the last layer (``lo is None``) keeps the int32 value."""

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
    bits: int = 16

    @property
    def frac_bits(self) -> int:
        """Fractional bits of the input's fixed-point product (16 for int8, 8 for int16)."""
        return 24 - self.bits

    @property
    def obs_dim(self) -> int:
        return len(self.in_mult)

    def quantize_obs(self, obs: np.ndarray) -> np.ndarray:
        """Float32 observations ``[B, obs_dim]`` -> int8 (int16 with ``bits=16``)
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
        top = (1 << (self.bits - 1)) - 1
        return np.clip(y, -top - 1, top).astype(np.int8 if self.bits == 8 else np.int16)

    def outputs_q(self, obs_q: np.ndarray) -> np.ndarray:
        """Quantised observations ``[B, obs_dim]`` -> int32 outputs ``[B, n_outputs]``."""
        x = np.asarray(obs_q, dtype=np.int64)
        for layer in self.layers:
            acc = x @ layer.weight.astype(np.int64).T + layer.bias.astype(np.int64)
            y = requantize(acc, layer.multiplier, layer.shift)
            if layer.lut is not None:
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


def _affine(lo: float, hi: float, bits: int = 8) -> tuple[float, int]:
    """Scale and zero point of a ``bits`` range covering ``[min(lo, 0), max(hi, 0)]``."""
    lo, hi, half = min(lo, 0.0), max(hi, 0.0), 1 << (bits - 1)
    scale = (hi - lo) / (2 * half - 1) if hi > lo else 1.0
    zero = int(np.clip(np.rint(-half - lo / scale), -half, half - 1))
    return scale, zero


def _check_requant(acc_bound: np.ndarray, real: np.ndarray, shift: np.ndarray, where: str) -> None:
    if np.any(acc_bound * real >= 2**30) or np.any(shift > 30) or np.any(shift < -33):
        raise ImitateError(f"int8 export: {where} is out of the fixed-point range")


def quantize_policy(policy: MLPPolicy, calibration: np.ndarray, bits: int = 16) -> QuantizedMLP:
    """Post-training quantisation of ``policy``, ranges from ``calibration [N, *obs_shape]``
    (the student's own states). ``bits``: the activations' (observation and hidden) width,
    8, or 16 (int8 weights all the same: CMSIS-NN's 16x8 kernels): a balancing policy's own
    states sit close to its decision boundaries, where 8-bit activations flip actions."""
    if bits not in (8, 16):
        raise ImitateError(f"int8 export: activation bits must be 8 or 16, got {bits}")
    frac_bits, half = 24 - bits, 1 << (bits - 1)
    store = np.int8 if bits == 8 else np.int16
    calib = np.asarray(calibration, dtype=np.float32).reshape(len(calibration), -1)
    if len(calib) == 0 or calib.shape[1] != policy.obs_dim or not np.isfinite(calib).all():
        raise ImitateError(
            f"int8 export needs finite calibration states [N, {policy.obs_dim}] (got {calib.shape})"
        )
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
        column = h[:, i] if bits == 8 else h
        in_scale[i], in_zero[i] = _affine(float(column.min()), float(column.max()), bits)
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
        wq, w_scale = quantize_weights(folded)
        wq64 = wq.astype(np.int64)
        bq = np.rint(bias / w_scale).astype(np.int64) - wq64 @ x_zero.astype(np.int64)
        acc_bound = np.abs(bq) + half * np.abs(wq64).sum(axis=1)
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
        lut = None
        if activation == "tanh":
            p_scale, p_zero = _affine(float(pre.min()), float(pre.max()))
            h = np.tanh(pre)
            y_scale, y_zero = _affine(float(h.min()), float(h.max()), bits)
            real = np.tanh(p_scale * (np.arange(257) - 128 - p_zero))
            lut = np.clip(np.rint(real / y_scale) + y_zero, -half, half - 1).astype(store)
            real = w_scale / (p_scale / 256)
            mult, shift = quantize_multiplier(real)
            zero, lo, hi = p_zero, -half, half - 1
        else:
            bound = (0.0, np.inf) if activation == "relu" else (-1.0, 1.0)
            h = np.clip(pre, *bound)
            y_scale, y_zero = _affine(float(h.min()), float(h.max()), bits)
            real = w_scale / y_scale
            mult, shift = quantize_multiplier(real)
            zero = y_zero
            lo = int(max(-half, y_zero + np.ceil(bound[0] / y_scale - 1e-9)))
            hi = int(min(half - 1, y_zero + np.floor(bound[1] / y_scale + 1e-9)))
        _check_requant(acc_bound, real, shift, f"layer {index}")
        layers.append(QuantLayer(wq, bq.astype(np.int32), mult, shift, zero, lo, hi, lut))
        x_scale = np.full(weight.shape[0], y_scale)
        x_zero = np.full(weight.shape[0], float(y_zero))
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
    )


def _fake_quant(weight: torch.Tensor) -> torch.Tensor:
    """Symmetric per-row int8 rounding with a straight-through gradient."""
    scale = weight.detach().abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
    snapped = torch.clamp(torch.round(weight / scale), -127, 127) * scale
    return weight + (snapped - weight).detach()


def quantization_aware_finetune(
    policy: MLPPolicy, states: np.ndarray, steps: int = 300, lr: float = 1e-3, seed: int = 0
) -> MLPPolicy:
    """A copy of ``policy`` fine-tuned with fake-quantised int8 weights (per output channel,
    straight-through estimator) to reproduce the original's outputs on ``states`` (its own,
    ``[N, *obs_shape]``; mean squared error of the outputs), its weights then stored on the
    int8 grid: the int8 export computes the returned student's dot products exactly, so only
    the activations' rounding is left between them (QAT, Jacob et al. 2018, on the weights;
    with 16-bit activations the activations' fake quantisation is below float noise)."""
    student = copy.deepcopy(policy)
    obs = torch.as_tensor(np.asarray(states, dtype=np.float32))
    with torch.no_grad():
        target = policy(obs)
    names = [n for n, m in student.named_modules() if isinstance(m, torch.nn.Linear)]
    weights = {f"{n}.weight" for n in names}
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.randint(0, len(obs), (min(256, len(obs)),), generator=generator)
        params = {k: (_fake_quant(v) if k in weights else v) for k, v in student.named_parameters()}
        out = torch.func.functional_call(student, params, (obs[batch],))
        loss = torch.nn.functional.mse_loss(out, target[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        for name, param in student.named_parameters():
            if name in weights:
                param.copy_(_fake_quant(param))
    student.eval()
    return student
