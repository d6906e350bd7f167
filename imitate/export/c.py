"""C99 export: a header/source pair with float32 or int8 weights, no malloc.

``void policy_act(const float *obs, policy_action_t *action)`` maps one raw
observation to one action (normalisation and decision inside);
``policy_act_batch`` loops over ``n`` observations; ``policy_logits`` gives the raw
outputs. Discrete policies also get the JS gate of :class:`imitate.policy.JSGatedPolicy`
(``policy_act_gated``, with a caller-held anchor per episode). int8 weights are
symmetric, per output channel (or per tensor), activations are quantised per
vector at run time, and dot products accumulate in int32. libm is used for
``tanhf`` (tanh activations and bounded Box actions) and, in the gate, ``expf``/``logf``.

:class:`CPolicy` compiles the source with ``cc -std=c99 -O2 -Wall -Wextra
-Werror`` into a shared library and calls it through ctypes.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np

from imitate.errors import ImitateError
from imitate.fileio import write_text
from imitate.policy import MLPPolicy
from imitate.spaces import BernoulliHead, CategoricalHead, GaussianHead, MultiCategoricalHead

Quantization = Literal["per-channel", "per-tensor"]
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]


def _float_literal(value: float) -> str:
    if not np.isfinite(value):  # "nan.0f" / "inf.0f" would not compile
        raise ImitateError(f"the C export needs finite weights and normalisation, got {value}")
    text = f"{value:.9g}"
    return f"{text}f" if any(c in text for c in ".e") else f"{text}.0f"


def _floats(values: np.ndarray) -> str:
    return ", ".join(_float_literal(float(v)) for v in np.asarray(values, np.float32).ravel())


def _ints(values: np.ndarray) -> str:
    return ", ".join(str(int(v)) for v in np.asarray(values).ravel())


def quantize(weight: np.ndarray, mode: Quantization) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 ``[out, in]`` weights and float scales (``[out]`` or one repeated)."""
    amax = (
        np.abs(weight).max(axis=1)
        if mode == "per-channel"
        else np.full(len(weight), np.abs(weight).max())
    )
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(weight / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def _decision(policy: MLPPolicy) -> tuple[str, str, int]:
    """(C action type, C code writing ``action`` from ``out``, action length)."""
    head = policy.head
    if isinstance(head, CategoricalHead):
        code = (
            "    int best = 0;\n"
            f"    for (int k = 1; k < {head.n}; ++k) if (out[k] > out[best]) best = k;\n"
            f"    action[0] = best + ({head.start});\n"
        )
        return "int", code, 1
    if isinstance(head, MultiCategoricalHead):
        lines, offset = [], 0
        for i, n in enumerate(head.nvec):
            lines.append(
                f"    {{ int best = {offset};\n"
                f"      for (int k = {offset + 1}; k < {offset + n}; ++k) if (out[k] > out[best]) best = k;\n"
                f"      action[{i}] = best - {offset}; }}\n"
            )
            offset += n
        return "int", "".join(lines), len(head.nvec)
    if isinstance(head, BernoulliHead):
        return "int", f"    for (int k = 0; k < {head.n}; ++k) action[k] = out[k] > 0.0f;\n", head.n
    if isinstance(head, GaussianHead):
        if head.bounded:
            low, high = np.array(head.low), np.array(head.high)
            code = (
                f"    static const float center[{head.dim}] = {{{_floats((high + low) / 2)}}};\n"
                f"    static const float half[{head.dim}] = {{{_floats((high - low) / 2)}}};\n"
                f"    for (int k = 0; k < {head.dim}; ++k) action[k] = center[k] + half[k] * tanhf(out[k]);\n"
            )
        else:
            code = f"    for (int k = 0; k < {head.dim}; ++k) action[k] = out[k];\n"
        return "float", code, head.dim
    raise ImitateError(f"no C export for head {type(head).__name__}")


GATE_HEADER = """
/* JS gate (imitate.policy.JSGatedPolicy): keep the previous action until the action
   distribution has moved more than `threshold` nats (Jensen-Shannon) from the one it was
   chosen at. `anchor` [POLICY_N_OUTPUTS] is the caller's state for one episode: call
   policy_gate_reset(anchor) when the episode starts. */
void policy_gate_reset(float *anchor);
void policy_act_gated(const float *obs, float threshold, float *anchor, policy_action_t *action);
/* n observations -> n actions, anchors [n * POLICY_N_OUTPUTS] (one per episode slot). */
void policy_act_gated_batch(const float *obs, int n, float threshold, float *anchors,
                            policy_action_t *actions);
"""


def _gate_source(head: CategoricalHead, obs_dim: int) -> str:
    """C of the JS gate for a categorical head (softmax, JS in nats, argmax of the anchor)."""
    n = head.n
    return (
        "\nstatic void softmax(const float *z, float *p) {\n"
        "    float top = z[0], total = 0.0f;\n"
        f"    for (int k = 1; k < {n}; ++k) if (z[k] > top) top = z[k];\n"
        f"    for (int k = 0; k < {n}; ++k) {{ p[k] = expf(z[k] - top); total += p[k]; }}\n"
        f"    for (int k = 0; k < {n}; ++k) p[k] /= total;\n}}\n\n"
        "static float js_nats(const float *a, const float *b) {\n"
        f"    float p[{n}], q[{n}], js = 0.0f;\n"
        "    softmax(a, p);\n    softmax(b, q);\n"
        f"    for (int k = 0; k < {n}; ++k) {{\n"
        "        float m = 0.5f * (p[k] + q[k]);\n"
        "        if (p[k] > 0.0f) js += 0.5f * p[k] * logf(p[k] / m);\n"
        "        if (q[k] > 0.0f) js += 0.5f * q[k] * logf(q[k] / m);\n    }\n"
        "    return js;\n}\n\n"
        "void policy_gate_reset(float *anchor) { anchor[0] = NAN; }\n\n"
        "void policy_act_gated(const float *obs, float threshold, float *anchor,\n"
        "                      policy_action_t *action) {\n"
        f"    float out[{n}];\n"
        "    policy_logits(obs, out);\n"
        "    if (isnan(anchor[0]) || js_nats(out, anchor) > threshold)\n"
        f"        for (int k = 0; k < {n}; ++k) anchor[k] = out[k];\n"
        "    int best = 0;\n"
        f"    for (int k = 1; k < {n}; ++k) if (anchor[k] > anchor[best]) best = k;\n"
        f"    action[0] = best + ({head.start});\n}}\n\n"
        "void policy_act_gated_batch(const float *obs, int n, float threshold, float *anchors,\n"
        "                            policy_action_t *actions) {\n"
        "    for (int i = 0; i < n; ++i)\n"
        f"        policy_act_gated(obs + i * {obs_dim}, threshold, anchors + i * {n}, actions + i);\n"
        "}\n"
    )


def generate_c(
    policy: MLPPolicy, int8: bool = False, quantization: Quantization = "per-channel"
) -> tuple[str, str]:
    """(header, source) of the C99 runtime."""
    linears = [(w.T, b) for kind, w, b in policy.numpy_snapshot().layers.ops if kind == "linear"]
    activation = "tanhf(h)" if policy.config.activation == "tanh" else "(h > 0.0f ? h : 0.0f)"
    action_type, decision, action_len = _decision(policy)
    n_outputs = linears[-1][0].shape[0]
    widths = [policy.obs_dim] + [w.shape[0] for w, _ in linears]
    max_width = max(widths)
    data = [
        f"static const float obs_mean[{policy.obs_dim}] = {{{_floats(policy.obs_mean.numpy())}}};",
        f"static const float obs_inv_std[{policy.obs_dim}] = {{{_floats(1.0 / policy.obs_std.numpy())}}};",
    ]
    body = []
    for i, (weight, bias) in enumerate(linears):
        out_dim, in_dim = weight.shape
        data.append(f"static const float b{i}[{out_dim}] = {{{_floats(bias)}}};")
        if int8:
            q, scale = quantize(weight, quantization)
            data.append(f"static const int8_t w{i}[{out_dim * in_dim}] = {{{_ints(q)}}};")
            data.append(f"static const float s{i}[{out_dim}] = {{{_floats(scale)}}};")
            body.append(f"    dense_i8(w{i}, s{i}, b{i}, x, y, {in_dim}, {out_dim});")
        else:
            data.append(f"static const float w{i}[{out_dim * in_dim}] = {{{_floats(weight)}}};")
            body.append(f"    dense_f32(w{i}, b{i}, x, y, {in_dim}, {out_dim});")
        if i < len(linears) - 1:
            body.append(
                f"    for (int k = 0; k < {out_dim}; ++k) {{ float h = y[k]; x[k] = {activation}; }}"
            )
        else:
            body.append(f"    for (int k = 0; k < {out_dim}; ++k) out[k] = y[k];")
    header = (
        "/* Generated by imitate: an MLP policy, observation -> action. */\n"
        "#ifndef IMITATE_POLICY_H\n#define IMITATE_POLICY_H\n\n"
        f"#define POLICY_OBS_DIM {policy.obs_dim}\n#define POLICY_ACTION_DIM {action_len}\n"
        f"typedef {action_type} policy_action_t;\n\n"
        "/* One raw observation [POLICY_OBS_DIM] -> one action [POLICY_ACTION_DIM]. */\n"
        "void policy_act(const float *obs, policy_action_t *action);\n"
        "/* n observations, row-major -> n actions. */\n"
        "void policy_act_batch(const float *obs, int n, policy_action_t *actions);\n"
        "/* One raw observation -> the network's outputs [POLICY_N_OUTPUTS]. */\n"
        f"#define POLICY_N_OUTPUTS {n_outputs}\n"
        "void policy_logits(const float *obs, float *out);\n\n#endif\n"
    )
    dense = (
        "static void dense_f32(const float *w, const float *b, const float *x, float *y, int in, int out) {\n"
        "    for (int j = 0; j < out; ++j) {\n"
        "        float acc = b[j];\n"
        "        for (int i = 0; i < in; ++i) acc += w[j * in + i] * x[i];\n"
        "        y[j] = acc;\n    }\n}\n"
    )
    if int8:
        dense = (
            "static void dense_i8(const int8_t *w, const float *s, const float *b, const float *x,\n"
            "                     float *y, int in, int out) {\n"
            "    int8_t xq[MAX_WIDTH];\n"
            "    float amax = 0.0f;\n"
            "    for (int i = 0; i < in; ++i) { float a = x[i] < 0.0f ? -x[i] : x[i]; if (a > amax) amax = a; }\n"
            "    const float sx = amax > 0.0f ? amax / 127.0f : 1.0f;\n"
            "    for (int i = 0; i < in; ++i) {\n"
            "        float v = x[i] / sx;\n"
            "        xq[i] = (int8_t)(v >= 0.0f ? v + 0.5f : v - 0.5f);\n    }\n"
            "    for (int j = 0; j < out; ++j) {\n"
            "        int32_t acc = 0;\n"
            "        for (int i = 0; i < in; ++i) acc += (int32_t)w[j * in + i] * (int32_t)xq[i];\n"
            "        y[j] = (float)acc * sx * s[j] + b[j];\n    }\n}\n"
        )
    source = (
        '#include "policy.h"\n#include <math.h>\n#include <stdint.h>\n\n'
        f"#define MAX_WIDTH {max_width}\n\n" + "\n".join(data) + "\n\n" + dense + "\n"
        "void policy_logits(const float *obs, float *out) {\n"
        "    float x[MAX_WIDTH], y[MAX_WIDTH];\n"
        f"    for (int k = 0; k < {policy.obs_dim}; ++k) x[k] = (obs[k] - obs_mean[k]) * obs_inv_std[k];\n"
        + "\n".join(body)
        + "\n}\n\n"
        "void policy_act(const float *obs, policy_action_t *action) {\n"
        f"    float out[{n_outputs}];\n"
        "    policy_logits(obs, out);\n" + decision + "}\n\n"
        "void policy_act_batch(const float *obs, int n, policy_action_t *actions) {\n"
        f"    for (int i = 0; i < n; ++i) policy_act(obs + i * {policy.obs_dim}, actions + i * {action_len});\n"
        "}\n"
    )
    if isinstance(policy.head, CategoricalHead):
        header = header.replace("\n#endif\n", GATE_HEADER + "\n#endif\n")
        source += _gate_source(policy.head, policy.obs_dim)
    return header, source


def export_c(
    policy: MLPPolicy, out_dir: Path, int8: bool = False, quantization: Quantization = "per-channel"
) -> list[Path]:
    """Write ``policy.h`` and ``policy.c`` into ``out_dir``."""
    header, source = generate_c(policy, int8, quantization)
    return [write_text(out_dir / "policy.h", header), write_text(out_dir / "policy.c", source)]


def weight_bytes(policy: MLPPolicy, int8: bool) -> int:
    """Bytes of constant data in the C export (weights, biases, scales, normalisation)."""
    total = 2 * 4 * policy.obs_dim
    for kind, weight, _ in policy.numpy_snapshot().layers.ops:
        if kind == "linear":
            n_in, n_out = weight.shape
            total += n_in * n_out * (1 if int8 else 4) + 4 * n_out + (4 * n_out if int8 else 0)
    return total


def compile_shared(source: Path, out: Path | None = None) -> Path:
    """Compile ``source`` (with its header beside it) into a shared library."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise ImitateError("no C compiler (cc) found to build the C export")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = out or Path(tempfile.gettempdir()) / f"imitate_policy_{digest}.so"
    command = [compiler, *CFLAGS, "-shared", "-fPIC", str(source), "-o", str(target), "-lm"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ImitateError(
            f"{source}: C compilation failed: {result.stderr.strip().splitlines()[0]}"
        )
    return target


class CPolicy:
    """Call an exported C policy (``policy.c`` beside ``policy.h``) through ctypes."""

    def __init__(self, source: Path) -> None:
        self.source = source
        header = (source.parent / "policy.h").read_text()
        self.obs_dim = int(header.split("#define POLICY_OBS_DIM ")[1].split()[0])
        self.action_dim = int(header.split("#define POLICY_ACTION_DIM ")[1].split()[0])
        self.is_float = "typedef float policy_action_t" in header
        self.scalar = (
            "POLICY_ACTION_DIM 1" in header
            and not self.is_float
            and "int best = 0;" in source.read_text()
        )
        self.lib = ctypes.CDLL(str(compile_shared(source)))
        self.lib.policy_act_batch.restype = None

    def gated(self, threshold: float) -> CGatedPolicy:
        """The export's JS gate (Discrete policies) as a RecurrentPolicy."""
        if not hasattr(self.lib, "policy_act_gated_batch"):
            raise ImitateError("this C export has no JS gate (it needs a Discrete policy)")
        return CGatedPolicy(self, threshold)

    def act(self, obs: np.ndarray) -> np.ndarray:
        flat = np.ascontiguousarray(np.asarray(obs, dtype=np.float32).reshape(len(obs), -1))
        dtype = np.float32 if self.is_float else np.intc
        out = np.zeros((len(obs), self.action_dim), dtype=dtype)
        self.lib.policy_act_batch(
            flat.ctypes.data_as(ctypes.c_void_p),
            ctypes.c_int(len(obs)),
            out.ctypes.data_as(ctypes.c_void_p),
        )
        if self.scalar:
            return out[:, 0].astype(np.int64)
        return out if self.is_float else out.astype(np.int64)


class CGatedPolicy:
    """``policy_act_gated_batch`` of a C export as a RecurrentPolicy: state ``[B, n_outputs]``
    holds one anchor per episode slot (NaN rows: a new episode, as ``policy_gate_reset``)."""

    def __init__(self, policy: CPolicy, threshold: float) -> None:
        self.policy, self.threshold = policy, threshold
        header = (policy.source.parent / "policy.h").read_text()
        self.n_outputs = int(header.split("#define POLICY_N_OUTPUTS ")[1].split()[0])

    def initial_state(self, batch: int) -> np.ndarray:
        return np.full((batch, self.n_outputs), np.nan, dtype=np.float32)

    def step(self, obs: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = np.ascontiguousarray(np.asarray(obs, dtype=np.float32).reshape(len(obs), -1))
        anchors = np.ascontiguousarray(state, dtype=np.float32).copy()
        out = np.zeros(len(obs), dtype=np.intc)
        self.policy.lib.policy_act_gated_batch(
            flat.ctypes.data_as(ctypes.c_void_p),
            ctypes.c_int(len(obs)),
            ctypes.c_float(self.threshold),
            anchors.ctypes.data_as(ctypes.c_void_p),
            out.ctypes.data_as(ctypes.c_void_p),
        )
        return out.astype(np.int64), anchors

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.step(obs, self.initial_state(len(obs)))[0]
