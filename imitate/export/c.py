"""C99 export: a header/source pair, float32 or integer-only int8, no malloc, a symbol prefix.

With ``prefix="policy"`` (the default) the files are ``policy.h``/``policy.c`` and
``void policy_act(const float *obs, policy_action_t *action)`` maps one raw observation
to one action (normalisation and decision inside); ``policy_act_batch`` loops over ``n``
observations; ``policy_logits`` gives the raw outputs. Every external symbol, macro and
the header guard carry the prefix, and the static helpers too, so that several exports
link into one image; the header has ``extern "C"`` guards for C++ callers, states what
to link and the stack the call needs. Tables are ``static const`` (flash).

int8 (:mod:`imitate.export.int8`): integer-only from the observation's float bits to
the action, the TFLite Micro / CMSIS-NN scheme; int8 weights and hidden activations
(``bits=16``: int16 hidden), the observation quantised to int16 (``input_bits=8``: int8;
see :func:`imitate.export.int8.quantize_policy` for why 16). ``<prefix>_quantize_obs`` and
``<prefix>_act_q`` (pre-quantised observations) split the path for callers whose sensors
deliver integers. libm is used only where the header says: ``tanhf`` in float32 tanh
students and bounded Box actions, ``expf``/``logf`` in the float32 JS gate of Discrete
policies (:class:`imitate.policy.JSGatedPolicy`, ``<prefix>_act_gated``). The int8
export's gate is integer-only (softmax and Jensen-Shannon divergence with two 65-entry
tables, :func:`imitate.export.int8.gate_step` its bit-exact model); it follows the
Python gate as closely as the int8 outputs follow the float ones (README).

:class:`CPolicy` compiles the source with ``cc -std=c99 -O2 -Wall -Wextra -Wconversion
-pedantic -Werror`` into a shared library and calls it through ctypes.
"""

from __future__ import annotations

import ctypes
import hashlib
import keyword
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imitate.c_syntax import float_literal as _float_literal
from imitate.c_syntax import floats as _floats
from imitate.errors import ImitateError
from imitate.export.int8 import (
    EXP2_Q15,
    GATE_UNSET,
    LN2_Q15,
    LOG2_Q16,
    ODD_LUT,
    Q_LIMIT,
    QuantizedMLP,
    QuantLayer,
    WidthChoice,
    default_bits,
    gate_multiplier,
    quantize_policy,
    threshold_q16,
)
from imitate.fileio import write_text
from imitate.policy import MLPPolicy
from imitate.spaces import CategoricalHead

CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wconversion", "-pedantic", "-Werror"]
FRAME_BYTES = 40
"""Stack allowance per call level (saved registers, return address, spills) in the
header's stack figure; the Cortex-M test checks the figure against ``-fstack-usage``."""
C_KEYWORDS = frozenset(
    {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double",
        "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
        "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct",
        "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
    }
)  # fmt: skip


def check_prefix(prefix: str) -> str:
    """``prefix`` if it is a usable C identifier prefix, else ImitateError."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,30}", prefix) or prefix in C_KEYWORDS:
        raise ImitateError(
            f"--prefix {prefix!r}: needs a C identifier (a letter, then letters, digits, _; "
            "at most 31 characters, not a C keyword)"
        )
    if keyword.iskeyword(prefix):  # harmless in C, but a confusing file name for Python users
        raise ImitateError(f"--prefix {prefix!r} is a Python keyword; choose another name")
    return prefix


def _ints(values: np.ndarray) -> str:
    return ", ".join(str(int(v)) for v in np.asarray(values).ravel())


def _int32(value: int) -> str:
    """An int32 literal that is valid C on 16-bit-int targets too."""
    return f"INT32_C({int(value)})"


@dataclass(frozen=True)
class _Names:
    """The prefix in its two spellings: ``p`` for symbols, ``P`` for macros."""

    p: str

    @property
    def P(self) -> str:
        return self.p.upper()


def _gate_header(n: _Names) -> str:
    p, P = n.p, n.P
    return (
        "\n/* JS gate (imitate.policy.JSGatedPolicy): keep the previous action until the action\n"
        "   distribution has moved more than `threshold` nats (Jensen-Shannon) from the one it was\n"
        f"   chosen at. `anchor` [{P}_N_OUTPUTS] is the caller's state for one episode: call\n"
        f"   {p}_gate_reset(anchor) when the episode starts. Float, and libm (expf, logf). */\n"
        f"typedef float {p}_gate_t;\n"
        f"#define {P}_GATE_THRESHOLD(nats) ((float)(nats))\n"
        f"void {p}_gate_reset(float *anchor);\n"
        f"void {p}_act_gated(const float *obs, float threshold, float *anchor, {p}_action_t *action);\n"
        f"/* n observations -> n actions, anchors [n * {P}_N_OUTPUTS] (one per episode slot). */\n"
        f"void {p}_act_gated_batch(const float *obs, int n, float threshold, float *anchors,\n"
        f"                        {p}_action_t *actions);\n"
    )


def _int_gate_header(n: _Names) -> str:
    p, P = n.p, n.P
    return (
        "\n/* JS gate (imitate.policy.JSGatedPolicy) in integers: keep the previous action until\n"
        "   the action distribution has moved more than `threshold` nats (Jensen-Shannon) from the\n"
        "   one it was chosen at. Softmax from the int32 outputs with a 65-entry 2^-x table, the\n"
        "   divergence with a 65-entry log2 table, compared exactly in int64: no float, no libm\n"
        "   (integer divisions: on ARMv6-M libgcc's __aeabi_uidiv; 64-bit products: __aeabi_lmul).\n"
        f"   `threshold`: nats in Q16, {P}_GATE_THRESHOLD(0.1) for 0.1 (fold it at compile time).\n"
        f"   `anchor` [{P}_N_OUTPUTS] is the caller's state for one episode: call\n"
        f"   {p}_gate_reset(anchor) when the episode starts. The actions follow the Python gate only\n"
        "   as closely as these outputs follow the float policy's: a switch one step earlier or\n"
        "   later holds another action until the next switch (README, embedded section). */\n"
        f"typedef int32_t {p}_gate_t;\n"
        f"#define {P}_GATE_THRESHOLD(nats) ((int32_t)((nats) * 65536.0 + 0.5))\n"
        f"void {p}_gate_reset({p}_gate_t *anchor);\n"
        f"void {p}_act_gated_q(const {p}_obs_q_t *obs_q, int32_t threshold, {p}_gate_t *anchor,\n"
        f"                     {p}_action_t *action);\n"
        f"void {p}_act_gated(const float *obs, int32_t threshold, {p}_gate_t *anchor,\n"
        f"                   {p}_action_t *action);\n"
        f"/* n observations -> n actions, anchors [n * {P}_N_OUTPUTS] (one per episode slot). */\n"
        f"void {p}_act_gated_batch(const float *obs, int n, int32_t threshold, {p}_gate_t *anchors,\n"
        f"                         {p}_action_t *actions);\n"
    )


def _int_gate_source(head: CategoricalHead, q: QuantizedMLP, n: _Names) -> str:
    """C of the integer JS gate (:func:`imitate.export.int8.gate_step`, bit-exact)."""
    p, k = n.p, head.n
    multiplier, shift = gate_multiplier(q.out_scale)
    return (
        f"\nstatic const uint16_t {p}_exp2[65] = {{{_ints(EXP2_Q15)}}};\n"
        f"static const int32_t {p}_log2[65] = {{{_ints(LOG2_Q16)}}};\n\n"
        f"/* int32 outputs -> probabilities in Q16: 2^-u (u: the difference to the top output in\n"
        f"   Q16 bits) in Q15, then (e << 16) / sum(e). */\n"
        f"static void {p}_softmax_q(const int32_t *z, uint32_t *prob) {{\n"
        "    int32_t top = z[0];\n    uint32_t total = 0;\n"
        f"    for (int k = 1; k < {k}; ++k) if (z[k] > top) top = z[k];\n"
        f"    for (int k = 0; k < {k}; ++k) {{\n"
        f"        const int64_t u = {p}_mul64(top - z[k], {_int32(multiplier)}) >> {shift};\n"
        "        uint32_t e = 0;\n"
        "        if (u < (INT64_C(16) << 16)) {\n"
        "            const int32_t f = (int32_t)(u & 0xffff), i = f >> 10, r = f & 1023;\n"
        f"            const int32_t a = {p}_exp2[i], b = {p}_exp2[i + 1];\n"
        "            e = (uint32_t)((a + (((b - a) * r + 512) >> 10)) >> (int32_t)(u >> 16));\n"
        "        }\n"
        "        prob[k] = e;\n        total += e;\n    }\n"
        f"    for (int k = 0; k < {k}; ++k) prob[k] = (prob[k] << 16) / total;\n}}\n\n"
        f"/* log2(v) in Q16, 1 <= v < 2^18 */\n"
        f"static int32_t {p}_log2q(uint32_t v) {{\n"
        "    int32_t msb = 0;\n"
        "    while ((v >> (msb + 1)) != 0u) ++msb;\n"
        "    {\n"
        "        const int32_t f = (int32_t)(((v << (30 - msb)) >> 14) & 0xffffu);\n"
        "        const int32_t i = f >> 10, r = f & 1023;\n"
        f"        const int32_t a = {p}_log2[i], b = {p}_log2[i + 1];\n"
        "        return msb * 65536 + a + (((b - a) * r + 512) >> 10);\n    }\n}\n\n"
        f"/* JS(softmax(a), softmax(b)) * 2^33 / ln 2: H(m) - (H(pa) + H(pb)) / 2, m exact in Q17 */\n"
        f"static int64_t {p}_js_raw(const int32_t *a, const int32_t *b) {{\n"
        f"    uint32_t pa[{k}], pb[{k}];\n    int64_t js = 0;\n"
        f"    {p}_softmax_q(a, pa);\n    {p}_softmax_q(b, pb);\n"
        f"    for (int k = 0; k < {k}; ++k) {{\n"
        "        const uint32_t m = pa[k] + pb[k];\n"
        f"        if (m) js += (int64_t)m * ((17 << 16) - {p}_log2q(m));\n"
        f"        if (pa[k]) js -= (int64_t)pa[k] * ((16 << 16) - {p}_log2q(pa[k]));\n"
        f"        if (pb[k]) js -= (int64_t)pb[k] * ((16 << 16) - {p}_log2q(pb[k]));\n"
        "    }\n    return js;\n}\n\n"
        f"void {p}_gate_reset({p}_gate_t *anchor) {{ anchor[0] = INT32_MIN; }}\n\n"
        f"void {p}_act_gated_q(const {p}_obs_q_t *obs_q, int32_t threshold, {p}_gate_t *anchor,\n"
        f"                     {p}_action_t *action) {{\n"
        f"    int32_t out[{k}];\n"
        f"    {p}_outputs_q(obs_q, out);\n"
        f"    if (anchor[0] == INT32_MIN\n"
        f"        || {p}_js_raw(out, anchor) * {LN2_Q15} > ((int64_t)threshold << 32))\n"
        f"        for (int k = 0; k < {k}; ++k) anchor[k] = out[k];\n"
        "    {\n        int best = 0;\n"
        f"        for (int k = 1; k < {k}; ++k) if (anchor[k] > anchor[best]) best = k;\n"
        f"        action[0] = best + ({head.start});\n    }}\n}}\n\n"
        f"void {p}_act_gated(const float *obs, int32_t threshold, {p}_gate_t *anchor,\n"
        f"                   {p}_action_t *action) {{\n"
        f"    {p}_obs_q_t obs_q[{q.obs_dim}];\n"
        f"    {p}_quantize_obs(obs, obs_q);\n"
        f"    {p}_act_gated_q(obs_q, threshold, anchor, action);\n}}\n\n"
        f"void {p}_act_gated_batch(const float *obs, int n, int32_t threshold, {p}_gate_t *anchors,\n"
        f"                         {p}_action_t *actions) {{\n"
        "    for (int i = 0; i < n; ++i)\n"
        f"        {p}_act_gated(obs + i * {q.obs_dim}, threshold, anchors + i * {k}, actions + i);\n"
        "}\n"
    )


def _gate_source(head: CategoricalHead, obs_dim: int, n: _Names) -> str:
    """C of the JS gate for a categorical head (softmax, JS in nats, argmax of the anchor)."""
    p, k = n.p, head.n
    return (
        f"\nstatic void {p}_softmax(const float *z, float *prob) {{\n"
        "    float top = z[0], total = 0.0f;\n"
        f"    for (int k = 1; k < {k}; ++k) if (z[k] > top) top = z[k];\n"
        f"    for (int k = 0; k < {k}; ++k) {{ prob[k] = expf(z[k] - top); total += prob[k]; }}\n"
        f"    for (int k = 0; k < {k}; ++k) prob[k] /= total;\n}}\n\n"
        f"static float {p}_js_nats(const float *a, const float *b) {{\n"
        f"    float pa[{k}], pb[{k}], js = 0.0f;\n"
        f"    {p}_softmax(a, pa);\n    {p}_softmax(b, pb);\n"
        f"    for (int k = 0; k < {k}; ++k) {{\n"
        "        float m = 0.5f * (pa[k] + pb[k]);\n"
        "        if (pa[k] > 0.0f) js += 0.5f * pa[k] * logf(pa[k] / m);\n"
        "        if (pb[k] > 0.0f) js += 0.5f * pb[k] * logf(pb[k] / m);\n    }\n"
        "    return js;\n}\n\n"
        f"void {p}_gate_reset(float *anchor) {{ anchor[0] = NAN; }}\n\n"
        f"void {p}_act_gated(const float *obs, float threshold, float *anchor,\n"
        f"                   {p}_action_t *action) {{\n"
        f"    float out[{k}];\n"
        f"    {p}_logits(obs, out);\n"
        f"    if (isnan(anchor[0]) || {p}_js_nats(out, anchor) > threshold)\n"
        f"        for (int k = 0; k < {k}; ++k) anchor[k] = out[k];\n"
        "    int best = 0;\n"
        f"    for (int k = 1; k < {k}; ++k) if (anchor[k] > anchor[best]) best = k;\n"
        f"    action[0] = best + ({head.start});\n}}\n\n"
        f"void {p}_act_gated_batch(const float *obs, int n, float threshold, float *anchors,\n"
        f"                         {p}_action_t *actions) {{\n"
        "    for (int i = 0; i < n; ++i)\n"
        f"        {p}_act_gated(obs + i * {obs_dim}, threshold, anchors + i * {k}, actions + i);\n"
        "}\n"
    )


def _pad4(width: int) -> int:
    return -(-width // 4) * 4


def paired(weight: np.ndarray) -> np.ndarray:
    """int8 ``[out, in]`` -> ``[out, in4]`` padded with zeros to a multiple of 4 and each
    group of 4 stored as ``w0 w2 w1 w3`` (the order SXTB16 / SMLAD consume)."""
    out_dim, in_dim = weight.shape
    padded = np.zeros((out_dim, _pad4(in_dim)), dtype=weight.dtype)
    padded[:, :in_dim] = weight
    groups = padded.reshape(out_dim, -1, 4)
    return groups[:, :, [0, 2, 1, 3]].reshape(out_dim, -1)


def _linears(policy: MLPPolicy) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(weight [out, in], bias [out])`` float32 per Linear layer."""
    return [(w.T, b) for kind, w, b in policy.numpy_snapshot().layers.ops if kind == "linear"]


def _header(
    policy: MLPPolicy,
    n: _Names,
    kind: str,
    action_type: str,
    action_len: int,
    libm: list[str],
    stack: int,
    extra: str,
    gate: bool = True,
    note: str = "",
) -> str:
    p, P = n.p, n.P
    gate = gate and isinstance(policy.head, CategoricalHead)
    int8_note = "" if kind == "float32" else "; int8: dequantised, in float"
    act_link = f"-lm ({', '.join(libm)})" if libm else "nothing beyond the C library (no libm)"
    lines = [
        f"/* Generated by imitate: an MLP policy, observation -> action ({kind}).",
        f"   Build: cc -std=c99 -O2 -c {p}.c (C99; C++ callers include this header as is).",
        f"   Link, for {p}_act / {p}_act_batch / {p}_logits: {act_link}.",
    ]
    if gate and kind == "float32":
        lines.append(f"   The gate functions ({p}_act_gated*) use expf and logf: link with -lm.")
    elif gate:
        lines.append(f"   The gate functions ({p}_act_gated*) are integer-only and need no libm.")
    elif isinstance(policy.head, CategoricalHead):
        lines.append(
            "   No JS gate: `imitate export --int8 --js-gate DELTA` adds the integer gate once it\n"
            "   agrees with the Python gate along calibration episodes (--min-parity)."
        )
    lines += [note] if note else []
    lines += [
        "   Firmware: -ffunction-sections -fdata-sections -Wl,--gc-sections keeps only the",
        "   functions called (and so no libm unless a function needing it is called).",
        f"   Stack: {p}_act needs at most {P}_STACK_BYTES bytes. Tables are const (flash). */",
        f"#ifndef IMITATE_{P}_H",
        f"#define IMITATE_{P}_H",
        "",
        "#include <stdint.h>",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        f"#define {P}_OBS_DIM {policy.obs_dim}",
        f"#define {P}_ACTION_DIM {action_len}",
        f"#define {P}_ACTION_SCALAR {int(policy.head.action_shape == ())}",
        f"#define {P}_N_OUTPUTS {policy.head.n_outputs}",
        f"#define {P}_STACK_BYTES {stack}",
        f"typedef {action_type} {p}_action_t;",
        "",
        f"/* One raw observation [{P}_OBS_DIM] -> one action [{P}_ACTION_DIM]. */",
        f"void {p}_act(const float *obs, {p}_action_t *action);",
        "/* n observations, row-major -> n actions. */",
        f"void {p}_act_batch(const float *obs, int n, {p}_action_t *actions);",
        f"/* One raw observation -> the network's outputs [{P}_N_OUTPUTS] (float{int8_note}). */",
        f"void {p}_logits(const float *obs, float *out);",
    ]
    gate_header = ""
    if gate:
        gate_header = _gate_header(n) if kind == "float32" else _int_gate_header(n)
    return (
        "\n".join(lines)
        + "\n"
        + extra
        + gate_header
        + (f"\n#ifdef __cplusplus\n}}\n#endif\n\n#endif /* IMITATE_{P}_H */\n")
    )


C_ACTIVATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tanh": ("tanhf(h)", ("tanhf",)),
    "relu": ("(h > 0.0f ? h : 0.0f)", ()),
    "hardtanh": ("(h < -1.0f ? -1.0f : h > 1.0f ? 1.0f : h)", ()),
}
"""C of each elementwise layer kind of :class:`imitate.runtime.NumpyLayers` (an expression
of ``h``) and the libm functions it calls."""


def _float_layers(
    ops: list[tuple[str, Any, Any]], obs_dim: int, p: str
) -> tuple[list[str], list[str], set[str]]:
    """The float32 C of a layer list (:attr:`imitate.runtime.NumpyLayers.ops`, the numpy
    forward's own): (tables, statements of ``<p>_logits`` from ``x`` to ``out``, libm used).
    Dense layers write ``y`` from ``x``, elementwise ones ``x`` from the last result."""
    data: list[str] = []
    body: list[str] = []
    libm: set[str] = set()
    current, width, index = "x", obs_dim, 0
    for kind, w, b in ops:
        if kind == "linear":
            weight = np.asarray(w).T
            out_dim, in_dim = weight.shape
            bias = np.zeros(out_dim, np.float32) if b is None else b
            if current == "y":  # two dense layers in a row
                body.append(f"    for (int k = 0; k < {width}; ++k) x[k] = y[k];")
            data.append(f"static const float {p}_b{index}[{out_dim}] = {{{_floats(bias)}}};")
            data.append(
                f"static const float {p}_w{index}[{out_dim * in_dim}] = {{{_floats(weight)}}};"
            )
            body.append(f"    {p}_dense({p}_w{index}, {p}_b{index}, x, y, {in_dim}, {out_dim});")
            current, width, index = "y", out_dim, index + 1
        elif kind in C_ACTIVATIONS:
            expression, functions = C_ACTIVATIONS[kind]
            libm.update(functions)
            body.append(
                f"    for (int k = 0; k < {width}; ++k) {{ float h = {current}[k]; x[k] = {expression}; }}"
            )
            current = "x"
        elif kind != "flatten":  # observations arrive flat
            raise ImitateError(f"no C export for layers of kind {kind!r}")
    body.append(f"    for (int k = 0; k < {width}; ++k) out[k] = {current}[k];")
    return data, body, libm


def _float_source(policy: MLPPolicy, n: _Names) -> tuple[str, str]:
    p, P = n.p, n.P
    ops = policy.numpy_snapshot().layers.ops
    decision = policy.head.c_decision()
    max_width = max([policy.obs_dim] + [w.shape[1] for kind, w, _ in ops if kind == "linear"])
    data = [
        f"static const float {p}_obs_mean[{policy.obs_dim}] = {{{_floats(policy.obs_mean.numpy())}}};",
        f"static const float {p}_obs_inv_std[{policy.obs_dim}] = {{{_floats(1.0 / policy.obs_std.numpy())}}};",
    ]
    tables, body, layer_libm = _float_layers(ops, policy.obs_dim, p)
    data += tables
    libm = sorted(layer_libm | set(decision.libm))
    action_type, action_len = decision.c_type, decision.length
    stack = 4 * (2 * max_width + policy.head.n_outputs) + 3 * FRAME_BYTES
    header = _header(policy, n, "float32", action_type, action_len, libm, stack, "")
    source = (
        f'#include "{p}.h"\n#include <math.h>\n\n'
        f"#define {P}_MAX_WIDTH {max_width}\n\n" + "\n".join(data) + "\n\n"
        f"static void {p}_dense(const float *w, const float *b, const float *x, float *y, int in, int out) {{\n"
        "    for (int j = 0; j < out; ++j) {\n"
        "        float acc = b[j];\n"
        "        for (int i = 0; i < in; ++i) acc += w[j * in + i] * x[i];\n"
        "        y[j] = acc;\n    }\n}\n\n"
        f"void {p}_logits(const float *obs, float *out) {{\n"
        f"    float x[{P}_MAX_WIDTH], y[{P}_MAX_WIDTH];\n"
        f"    for (int k = 0; k < {policy.obs_dim}; ++k) x[k] = (obs[k] - {p}_obs_mean[k]) * {p}_obs_inv_std[k];\n"
        + "\n".join(body)
        + "\n}\n\n"
        f"void {p}_act(const float *obs, {p}_action_t *action) {{\n"
        f"    float out[{policy.head.n_outputs}];\n"
        f"    {p}_logits(obs, out);\n" + decision.code + "}\n\n" + _batch(policy, n, action_len)
    )
    return header, source


def _batch(policy: MLPPolicy, n: _Names, action_len: int) -> str:
    p = n.p
    return (
        f"void {p}_act_batch(const float *obs, int n, {p}_action_t *actions) {{\n"
        f"    for (int i = 0; i < n; ++i) {p}_act(obs + i * {policy.obs_dim}, actions + i * {action_len});\n"
        "}\n"
    )


def _layer_function(n: _Names, i: int, layer: QuantLayer, last: bool) -> str:
    """C of one dense layer with its sizes, shift and activation clamp as constants:
    ``y[j] = round(acc_j * m[j] * 2^(shift - 31))`` (half up, one rounding: CMSIS-NN's
    ``arm_nn_requantize``), then ``zero`` added and clamped (ReLU / hard-tanh) or kept int32
    (the last layer, tanh layers before their table)."""
    p = n.p
    in4, clamp = _pad4(layer.in_dim), not last and layer.lut is None
    out_type = "int16_t" if clamp else "int32_t"
    shift = 30 - int(layer.shift[0])
    store = (
        f"        acc = ((acc + 1) >> 1) + ({layer.zero});\n"
        f"        y[j] = (int16_t)(acc < {layer.lo} ? {layer.lo} : acc > {layer.hi} ? {layer.hi} : acc);\n"
        if clamp
        else "        y[j] = (acc + 1) >> 1;\n"
    )
    return (
        f"static void {p}_layer{i}(const int16_t *x, {out_type} *y) {{\n"
        f"    for (int j = 0; j < {layer.out_dim}; ++j) {{\n"
        f"        const int8_t *row = {p}_w{i} + j * {in4};\n"
        f"        int32_t acc = {p}_b{i}[j];\n"
        f"        for (int i = 0; i < {in4}; i += 4) {n.P}_DOT4(acc, row + i, x + i);\n"
        f"        acc = (int32_t)({p}_mul64(acc, {p}_m{i}[j]) >> {shift});\n"
        + store
        + "    }\n}\n\n"
    )


def _int8_source(
    policy: MLPPolicy, q: QuantizedMLP, n: _Names, gate: bool = True, note: str = ""
) -> tuple[str, str]:
    p, P = n.p, n.P
    decision = policy.head.c_decision(out_scale=f"{P}_OUT_SCALE")
    action_type, action_len, box_libm = decision.c_type, decision.length, decision.libm
    bits, frac = q.bits, q.frac_bits
    obs_t = "int16_t" if q.input_bits == 16 else "int8_t"
    lut_t = "int16_t" if bits == 16 else "int8_t"
    top = (1 << (q.input_bits - 1)) - 1
    widths = [q.obs_dim] + [layer.out_dim for layer in q.layers]
    max_width = max(_pad4(w) for w in widths)
    padded = any(layer.in_dim % 4 for layer in q.layers)
    zeros = " = {0}" if padded else ""
    data = [
        f"static const int16_t {p}_in_mult[{q.obs_dim}] = {{{_ints(q.in_mult)}}};",
        f"static const int16_t {p}_in_exp[{q.obs_dim}] = {{{_ints(q.in_exp)}}};",
        f"static const int32_t {p}_in_offset[{q.obs_dim}] = {{{_ints(q.in_offset)}}};",
    ]
    body: list[str] = []
    layer_fns: list[str] = []
    last = len(q.layers) - 1
    direct = q.input_bits == 16 and q.obs_dim % 4 == 0  # obs_q is the first layer's input as is
    source_buffer = "obs_q" if direct else "xb"
    if not direct:
        body.append(f"    for (int k = 0; k < {q.obs_dim}; ++k) xb[k] = obs_q[k];")
    for i, layer in enumerate(q.layers):
        data += [
            f"static const int8_t {p}_w{i}[{paired(layer.weight).size}] = {{{_ints(paired(layer.weight))}}};",
            f"static const int32_t {p}_b{i}[{layer.out_dim}] = {{{_ints(layer.bias)}}};",
            f"static const int32_t {p}_m{i}[{layer.out_dim}] = {{{_ints(layer.multiplier)}}};",
        ]
        into = "xa" if source_buffer != "xa" else "xb"
        layer_fns.append(_layer_function(n, i, layer, last=i == last))
        if i == last:
            body.append(f"    {p}_layer{i}({source_buffer}, out);")
        elif layer.lut is None:  # ReLU / hard-tanh: the clamp inside the layer's loop
            body.append(f"    {p}_layer{i}({source_buffer}, {into});")
        elif len(layer.lut) == ODD_LUT:  # int8 tanh: the table for t >= 0, odd symmetry
            data.append(f"static const {lut_t} {p}_lut{i}[{ODD_LUT}] = {{{_ints(layer.lut)}}};")
            body.append(f"    {p}_layer{i}({source_buffer}, y);")
            body.append(
                f"    for (int k = 0; k < {layer.out_dim}; ++k) {{\n"
                "        int32_t pos = y[k] < 0 ? -y[k] : y[k];\n"
                "        pos = pos > 32767 ? 32767 : pos;\n"
                f"        {{ const int32_t a = {p}_lut{i}[pos >> 8], b = {p}_lut{i}[(pos >> 8) + 1];\n"
                "          const int32_t r = a + (((b - a) * (pos & 255) + 128) >> 8);\n"
                f"          {into}[k] = (int16_t)(y[k] < 0 ? -r : r); }}\n    }}"
            )
        else:
            data.append(f"static const {lut_t} {p}_lut{i}[257] = {{{_ints(layer.lut)}}};")
            offset = (layer.zero + 128) * 256
            body.append(f"    {p}_layer{i}({source_buffer}, y);")
            body.append(
                f"    for (int k = 0; k < {layer.out_dim}; ++k) {{\n"
                f"        int32_t pos = y[k] + {_int32(offset)};\n"
                "        pos = pos < 0 ? 0 : pos > 65535 ? 65535 : pos;\n"
                f"        {{ const int32_t a = {p}_lut{i}[pos >> 8], b = {p}_lut{i}[(pos >> 8) + 1];\n"
                f"          {into}[k] = (int16_t)(a + (((b - a) * (pos & 255) + 128) >> 8)); }}\n    }}"
            )
        source_buffer = into
    uses_y = any(layer.lut is not None for layer in q.layers)
    gain = 1.0 / (policy.obs_std.numpy().astype(np.float64) * q.in_scale)
    offset = -policy.obs_mean.numpy().astype(np.float64) * gain + q.in_zero
    n_out = policy.head.n_outputs
    extra = (
        f"\n/* Integer-only path: int8 weights, int{bits} hidden activations, int32 accumulators,\n"
        "   fixed-point requantisation (int32 multiplier per channel, shift per layer).\n"
        f"   Observations enter as {obs_t}: obs_q[i] = round(obs[i] * a[i] + b[i]), clamped to\n"
        f"   [{-top - 1}, {top}], with a = {{{', '.join(f'{v:.9g}' for v in gain)}}},\n"
        f"   b = {{{', '.join(f'{v:.9g}' for v in offset)}}}. */\n"
        f"#define {P}_ACTIVATION_BITS {bits}\n"
        f"#define {P}_INPUT_BITS {q.input_bits}\n"
        f"typedef {obs_t} {p}_obs_q_t;\n"
        f"/* The real value of one unit of the int32 outputs. */\n"
        f"#define {P}_OUT_SCALE {_float_literal(q.out_scale)}\n"
        f"/* Raw float observation -> {obs_t} (integer operations on the float's bits). */\n"
        f"void {p}_quantize_obs(const float *obs, {p}_obs_q_t *obs_q);\n"
        f"/* A quantised observation -> one action; no float anywhere. */\n"
        f"void {p}_act_q(const {p}_obs_q_t *obs_q, {p}_action_t *action);\n"
        f"/* A quantised observation -> int32 outputs [{P}_N_OUTPUTS] (real: out * {P}_OUT_SCALE). */\n"
        f"void {p}_outputs_q(const {p}_obs_q_t *obs_q, int32_t *out);\n"
    )
    # act -> act_q -> outputs_q -> dense -> requant (+ quantize_obs -> quantize1)
    stack = 2 * q.obs_dim + 4 * n_out + 2 * max_width + 4 * max_width + 5 * FRAME_BYTES
    libm = list(box_libm)
    header = _header(
        policy,
        n,
        f"integer-only int8, int{bits} activations, {obs_t} observations",
        action_type,
        action_len,
        libm,
        stack,
        extra,
        gate,
        note,
    )
    includes = (
        f'#include "{p}.h"\n'
        + ("#include <math.h>\n" if box_libm else "")
        + "#if defined(__ARM_FEATURE_DSP)\n#include <arm_acle.h>\n#include <string.h>\n#endif\n"
    )
    helpers = (
        f"/* acc * mult in 64 bits; ARMv6-M has no 32x32->64 multiply, and libgcc's 64x64\n"
        f"   __aeabi_lmul (or C on 16-bit halves) costs about twice this sequence. */\n"
        f"static int64_t {p}_mul64(int32_t a, int32_t b) {{\n"
        "#if defined(__ARM_ARCH_6M__) && defined(__GNUC__)\n"
        "    uint32_t lo, hi, t0, t1, t2; /* unsigned 32x32 -> 64 from four 16x16 products */\n"
        '    __asm__(".syntax unified\\n"\n'
        '            "uxth %[t0], %[a]\\n lsrs %[t1], %[a], #16\\n"\n'
        '            "uxth %[t2], %[b]\\n lsrs %[hi], %[b], #16\\n"\n'
        '            "movs %[lo], %[t0]\\n muls %[lo], %[t2]\\n muls %[t0], %[hi]\\n"\n'
        '            "muls %[t2], %[t1]\\n muls %[hi], %[t1]\\n adds %[t0], %[t0], %[t2]\\n"\n'
        '            "bcc 1f\\n movs %[t1], #1\\n lsls %[t1], %[t1], #16\\n adds %[hi], %[hi], %[t1]\\n"\n'
        '            "1:\\n lsls %[t1], %[t0], #16\\n lsrs %[t0], %[t0], #16\\n"\n'
        '            "adds %[lo], %[lo], %[t1]\\n adcs %[hi], %[hi], %[t0]\\n"\n'
        '            : [lo] "=&l"(lo), [hi] "=&l"(hi), [t0] "=&l"(t0), [t1] "=&l"(t1),\n'
        '              [t2] "=&l"(t2)\n'
        '            : [a] "l"(a), [b] "l"(b)\n'
        '            : "cc");\n'
        "    if (a < 0) hi -= (uint32_t)b; /* signed: subtract the sign corrections */\n"
        "    if (b < 0) hi -= (uint32_t)a;\n"
        "    return (int64_t)(((uint64_t)hi << 32) | lo);\n"
        "#else\n"
        "    return (int64_t)a * b;\n"
        "#endif\n}\n\n"
        "/* acc += the dot product of 4 int8 weights (stored w0 w2 w1 w3) with 4 int16 inputs:\n"
        "   on cores with the DSP extension SXTB16 unpacks the two int8 pairs that SMLAD\n"
        "   multiplies with two int16 pairs of x. */\n"
        "#if defined(__ARM_FEATURE_DSP)\n"
        f"#define {P}_DOT4(acc, row, x) do {{ \\\n"
        "        uint32_t w4_; int32_t x01_, x23_; \\\n"
        "        memcpy(&w4_, (row), 4); memcpy(&x01_, (x), 4); memcpy(&x23_, (x) + 2, 4); \\\n"
        "        (acc) = __smlad(__sxtb16((int32_t)w4_), x01_, (acc)); \\\n"
        "        (acc) = __smlad(__sxtb16((int32_t)((w4_ >> 8) | (w4_ << 24))), x23_, (acc)); \\\n"
        "    } while (0)\n"
        "#else\n"
        f"#define {P}_DOT4(acc, row, x) \\\n"
        "    ((acc) += (row)[0] * (x)[0] + (row)[2] * (x)[1] + (row)[1] * (x)[2] + (row)[3] * (x)[3])\n"
        "#endif\n\n"
        f"/* clamp(round(v * m + c)) from the IEEE-754 bits of v: 16 mantissa bits times a\n"
        f"   15-bit multiplier, in fixed point with {frac} fractional bits; inf/NaN saturate. */\n"
        f"static int32_t {p}_quantize1(float v, int32_t mult, int32_t exp, int32_t offset) {{\n"
        "    union { float f; uint32_t u; } bits;\n"
        "    int32_t t = 0;\n"
        "    bits.f = v;\n"
        "    {\n"
        "        const int32_t e = (int32_t)((bits.u >> 23) & 0xffu);\n"
        "        const int32_t sh = e - exp;\n"
        "        const int32_t prod = (int32_t)(((bits.u & 0x7fffffu) | 0x800000u) >> 8) * mult;\n"
        f"        if (e == 255 || (sh >= 0 && (sh >= 30 || prod > ({_int32(Q_LIMIT)} >> sh))))\n"
        f"            t = {_int32(Q_LIMIT)};\n"
        "        else if (e == 0) t = 0;\n"
        "        else if (sh >= 0) t = prod << sh;\n"
        "        else if (sh > -31) t = prod >> -sh;\n"
        "        if (bits.u >> 31) t = -t;\n"
        "    }\n"
        f"    t = (t + offset + {_int32(1 << (frac - 1))}) >> {frac};\n"
        f"    return t < {-top - 1} ? {-top - 1} : t > {top} ? {top} : t;\n}}\n\n"
    )
    source = (
        includes
        + f"\n#define {P}_MAX_WIDTH {max_width}\n\n"
        + "\n".join(data)
        + "\n\n"
        + helpers
        + "".join(layer_fns)
        + f"void {p}_quantize_obs(const float *obs, {p}_obs_q_t *obs_q) {{\n"
        f"    for (int k = 0; k < {q.obs_dim}; ++k)\n"
        f"        obs_q[k] = ({obs_t}){p}_quantize1(obs[k], {p}_in_mult[k], {p}_in_exp[k], {p}_in_offset[k]);\n}}\n\n"
        f"void {p}_outputs_q(const {p}_obs_q_t *obs_q, int32_t *out) {{\n"
        + "".join(
            f"    int16_t {name}[{P}_MAX_WIDTH]{zeros};\n"
            for name in ("xa", "xb")
            if any(f"{name}," in line or f"{name}[" in line for line in body)
        )
        + (f"    int32_t y[{P}_MAX_WIDTH];\n" if uses_y else "")
        + "\n".join(body)
        + "\n}\n\n"
        f"void {p}_act_q(const {p}_obs_q_t *obs_q, {p}_action_t *action) {{\n"
        f"    int32_t out[{n_out}];\n"
        f"    {p}_outputs_q(obs_q, out);\n" + decision.code + "}\n\n"
        f"void {p}_act(const float *obs, {p}_action_t *action) {{\n"
        f"    {p}_obs_q_t obs_q[{q.obs_dim}];\n"
        f"    {p}_quantize_obs(obs, obs_q);\n"
        f"    {p}_act_q(obs_q, action);\n}}\n\n"
        f"void {p}_logits(const float *obs, float *out) {{\n"
        f"    {p}_obs_q_t obs_q[{q.obs_dim}];\n    int32_t raw[{n_out}];\n"
        f"    {p}_quantize_obs(obs, obs_q);\n    {p}_outputs_q(obs_q, raw);\n"
        f"    for (int k = 0; k < {n_out}; ++k) out[k] = (float)raw[k] * {P}_OUT_SCALE;\n}}\n\n"
        + _batch(policy, n, action_len)
    )
    return header, source


def generate_c(
    policy: MLPPolicy,
    int8: bool = False,
    calibration: np.ndarray | None = None,
    prefix: str = "policy",
    bits: int | None = None,
    input_bits: int = 16,
    gate: bool = True,
    choice: WidthChoice | None = None,
) -> tuple[str, str]:
    """(header, source) of the C99 runtime. int8 needs ``calibration`` states
    ``[N, *obs_shape]`` (the policy's own) for the activation ranges; ``bits`` and
    ``input_bits``: the hidden activations' and the observation's width (8 or 16; ``bits``
    None: 8, 16 for Box actions); ``gate``: int8 Discrete policies carry the integer JS
    gate (the float32 export always carries its exact one); ``choice``: the measured width
    choice (:func:`imitate.export.int8.choose_bits`), recorded in the header comment."""
    names = _Names(check_prefix(prefix))
    if int8:
        if calibration is None:
            raise ImitateError("the int8 C export needs calibration states (the policy's own)")
        if choice is not None:
            bits = choice.bits
        model = quantize_policy(policy, calibration, bits, input_bits)
        header, source = _int8_source(policy, model, names, gate, _choice_note(choice))
        if gate and isinstance(policy.head, CategoricalHead):
            source += _int_gate_source(policy.head, model, names)
    else:
        header, source = _float_source(policy, names)
        if isinstance(policy.head, CategoricalHead):
            source += _gate_source(policy.head, policy.obs_dim, names)
    return header, source


def _choice_note(choice: WidthChoice | None) -> str:
    """The header comment's lines on a measured width choice (empty: none)."""
    if choice is None:
        return ""
    how = "auto" if choice.auto else f"{choice.bits} (checked)"
    tried = ", ".join(f"{b}-bit {100 * a:.2f} %" for b, a in choice.agreement.items())
    lines = [
        f"   Hidden width: --activation-bits {how}, --min-parity {choice.target:g}: {choice.reason}.",
        f"   Action agreement with the float policy on held-out calibration states: {tried or '-'}.",
    ]
    if choice.gate_agreement is not None:
        gated = ", ".join(f"{b}-bit {100 * a:.2f} %" for b, a in choice.gate_agreement.items())
        lines.append(
            f"   The gate, checked at {choice.gate_threshold:g} nats along {choice.gate_episodes} "
            f"episodes of the Python gate, agrees with it on: {gated} of the steps."
        )
    return "\n".join(lines)


def export_c(
    policy: MLPPolicy,
    out_dir: str | os.PathLike[str],
    int8: bool = False,
    calibration: np.ndarray | None = None,
    prefix: str = "policy",
    bits: int | None = None,
    input_bits: int = 16,
    gate: bool = True,
    choice: WidthChoice | None = None,
) -> list[Path]:
    """Write ``<prefix>.h`` and ``<prefix>.c`` into ``out_dir`` (nothing is written when
    the prefix, the policy or the calibration is refused)."""
    header, source = generate_c(policy, int8, calibration, prefix, bits, input_bits, gate, choice)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        write_text(out_dir / f"{prefix}.h", header),
        write_text(out_dir / f"{prefix}.c", source),
    ]


def weight_bytes(policy: MLPPolicy, int8: bool, bits: int | None = None) -> int:
    """Bytes of constant tables in the C export (weights, biases, requantisation, input;
    int8 tanh students: per hidden layer a 129-entry int8 table (odd symmetry), with
    ``bits=16`` a 257-entry int16 one)."""
    linears = _linears(policy)
    if not int8:
        return 2 * 4 * policy.obs_dim + sum(4 * (w.size + len(b)) for w, b in linears)
    total = (2 + 2 + 4) * policy.obs_dim  # input multiplier, exponent, offset
    for i, (weight, _) in enumerate(linears):
        out_dim, in_dim = weight.shape
        total += out_dim * _pad4(in_dim) + (4 + 4 + 1) * out_dim  # int8 w; bias, mult, shift
        if policy.config.activation == "tanh" and i < len(linears) - 1:
            total += ODD_LUT if (bits or default_bits(policy)) == 8 else 257 * 2
    return total


def compile_shared(
    source: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
) -> Path:
    """Compile ``source`` (with its header beside it) into a shared library."""
    source = Path(source)
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise ImitateError("no C compiler (cc) found to build the C export")
    digest = hashlib.sha256(
        source.read_bytes() + source.with_suffix(".h").read_bytes()
    ).hexdigest()[:16]
    name = f"imitate_{source.stem}_{digest}.so"
    target = Path(tempfile.gettempdir()) / name if out is None else Path(out)
    command = [compiler, *CFLAGS, "-shared", "-fPIC", str(source), "-o", str(target), "-lm"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ImitateError(
            f"{source}: C compilation failed: {result.stderr.strip().splitlines()[0]}"
        )
    return target


def _define(header: str, name: str) -> int:
    match = re.search(rf"#define {name} (\d+)", header)
    if match is None:
        raise ImitateError(f"not a C export of imitate: no {name} in the header")
    return int(match.group(1))


class CPolicy:
    """Call an exported C policy (``<prefix>.c`` beside ``<prefix>.h``) through ctypes."""

    def __init__(self, source: str | os.PathLike[str]) -> None:
        self.source = source = Path(source)
        self.prefix = source.stem
        header = source.with_suffix(".h").read_text()
        P = self.prefix.upper()
        self.obs_dim = _define(header, f"{P}_OBS_DIM")
        self.action_dim = _define(header, f"{P}_ACTION_DIM")
        self.n_outputs = _define(header, f"{P}_N_OUTPUTS")
        self.is_float = f"typedef float {self.prefix}_action_t" in header
        if f"#define {P}_ACTION_SCALAR " in header:  # one action is a scalar, not [1]
            self.scalar = bool(_define(header, f"{P}_ACTION_SCALAR"))
        else:  # exports made before the define: Discrete decisions start so
            self.scalar = (
                self.action_dim == 1 and not self.is_float and "int best = 0;" in source.read_text()
            )
        self.bits = (
            _define(header, f"{P}_ACTIVATION_BITS") if f"{P}_ACTIVATION_BITS" in header else None
        )
        self.input_bits = _define(header, f"{P}_INPUT_BITS") if self.bits is not None else None
        self.lib = ctypes.CDLL(str(compile_shared(source)))
        self.fn("act_batch").restype = None

    def fn(self, name: str) -> Any:
        """The exported function ``<prefix>_<name>``."""
        return getattr(self.lib, f"{self.prefix}_{name}")

    def gated(self, threshold: float) -> CGatedPolicy:
        """The export's JS gate (Discrete policies) as a RecurrentPolicy."""
        if not hasattr(self.lib, f"{self.prefix}_act_gated_batch"):
            if self.bits is not None:
                raise ImitateError(
                    "this int8 C export has no JS gate (it needs a Discrete policy, and "
                    "`imitate export --int8 --js-gate DELTA`, which checks it against the "
                    "Python gate; or use the float32 export's)"
                )
            raise ImitateError("this C export has no JS gate (it needs a Discrete policy)")
        return CGatedPolicy(self, threshold)

    def act(self, obs: np.ndarray) -> np.ndarray:
        flat = np.ascontiguousarray(np.asarray(obs, dtype=np.float32).reshape(len(obs), -1))
        dtype = np.float32 if self.is_float else np.intc
        out = np.zeros((len(obs), self.action_dim), dtype=dtype)
        self.fn("act_batch")(
            flat.ctypes.data_as(ctypes.c_void_p),
            ctypes.c_int(len(obs)),
            out.ctypes.data_as(ctypes.c_void_p),
        )
        if self.scalar:
            return out[:, 0].astype(np.int64)
        return out if self.is_float else out.astype(np.int64)

    def logits(self, obs: np.ndarray) -> np.ndarray:
        """``<prefix>_logits`` per row ``[B, n_outputs]`` float32."""
        flat = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        return self._per_row("logits", flat, np.zeros((len(obs), self.n_outputs), np.float32))

    def quantize_obs(self, obs: np.ndarray) -> np.ndarray:
        """int8 exports: ``<prefix>_quantize_obs`` per row ``[B, obs_dim]`` (int8 / int16)."""
        if self.bits is None:
            raise ImitateError("a float32 C export has no quantised input path")
        flat = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        out = np.zeros(flat.shape, dtype=np.int16 if self.input_bits == 16 else np.int8)
        return self._per_row("quantize_obs", flat, out)

    def outputs_q(self, obs_q: np.ndarray) -> np.ndarray:
        """int8 exports: ``<prefix>_outputs_q`` per row -> int32 ``[B, n_outputs]``."""
        out = np.zeros((len(obs_q), self.n_outputs), dtype=np.int32)
        return self._per_row("outputs_q", np.asarray(obs_q), out)

    def _per_row(self, name: str, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Call ``<prefix>_<name>(row, out_row)`` on each row; returns ``out``."""
        rows = np.ascontiguousarray(rows)
        for i in range(len(rows)):
            self.fn(name)(
                rows[i].ctypes.data_as(ctypes.c_void_p), out[i].ctypes.data_as(ctypes.c_void_p)
            )
        return out


class CGatedPolicy:
    """``<prefix>_act_gated_batch`` of a C export as a RecurrentPolicy: state
    ``[B, n_outputs]`` holds one anchor per episode slot (NaN rows: a new episode, as
    ``<prefix>_gate_reset``; int8 exports: int32 anchors, ``GATE_UNSET`` rows, and the
    threshold passed in Q16 nats)."""

    def __init__(self, policy: CPolicy, threshold: float) -> None:
        self.policy, self.threshold = policy, threshold
        self.n_outputs = policy.n_outputs
        self.integer = policy.bits is not None  # int8 exports: int32 anchors, Q16 threshold

    def initial_state(self, batch: int) -> np.ndarray:
        if self.integer:
            return np.full((batch, self.n_outputs), GATE_UNSET, dtype=np.int32)
        return np.full((batch, self.n_outputs), np.nan, dtype=np.float32)

    def step(self, obs: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = np.ascontiguousarray(np.asarray(obs, dtype=np.float32).reshape(len(obs), -1))
        dtype = np.int32 if self.integer else np.float32
        anchors = np.ascontiguousarray(state, dtype=dtype).copy()
        threshold = (
            ctypes.c_int32(threshold_q16(self.threshold))
            if self.integer
            else ctypes.c_float(self.threshold)
        )
        out = np.zeros(len(obs), dtype=np.intc)
        self.policy.fn("act_gated_batch")(
            flat.ctypes.data_as(ctypes.c_void_p),
            ctypes.c_int(len(obs)),
            threshold,
            anchors.ctypes.data_as(ctypes.c_void_p),
            out.ctypes.data_as(ctypes.c_void_p),
        )
        return out.astype(np.int64), anchors

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.step(obs, self.initial_state(len(obs)))[0]
