"""Export a trained MLPPolicy for deployment: ONNX, TorchScript, numpy, C (float32 / int8).

Encoded policies (:class:`~imitate.encoded.EncodedPolicy`, any observation space) export
to ONNX, TorchScript and numpy with every encoder, and to C (float32 / int8) through
:mod:`imitate.export.c_encoders` (vector, Discrete, MultiDiscrete, MultiBinary, pixel
images, Dict/Tuple of those; anything else is refused before a file is written).

Every artefact maps raw observations to env actions: the observation
normalisation and the action decision (argmax, per-factor argmax, threshold,
bounded mean) live inside it. Each format has a loader that returns a batched
``Policy`` so that parity with the torch policy can be checked on real states.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from imitate.encoded import EncodedPolicy
from imitate.errors import ImitateError
from imitate.export.int8 import WidthChoice
from imitate.observations import ObsBatch
from imitate.policy import MLPPolicy, Policy
from imitate.spaces import CategoricalHead

Format = Literal["onnx", "torchscript", "numpy", "c", "sb3"]
FORMATS: tuple[str, ...] = ("onnx", "torchscript", "numpy", "c", "sb3")
ENCODED_FORMATS: tuple[str, ...] = ("onnx", "torchscript", "numpy", "c")
"""The formats of policies with an observation encoder (:class:`EncodedPolicy`)."""


def export_unsupported(policy: object, fmt: str, int8: bool = False) -> str | None:
    """Why ``policy`` cannot be exported to ``fmt`` (one line), or None when it can: what
    :func:`export_policy` refuses, asked before any work (``imitate run`` skips such
    exports with this reason)."""
    refusal = _refusal(policy, fmt, int8)
    return None if refusal is None else str(refusal)


def _refusal(policy: object, fmt: str, int8: bool) -> ImitateError | None:
    """The error :func:`export_policy` raises before any work (the C encoders' own
    :class:`~imitate.export.c_encoders.UnsupportedExport` kept as it is), or None."""
    if int8 and fmt != "c":
        return ImitateError("--int8 applies to the C export only")
    if isinstance(policy, EncodedPolicy):
        if fmt not in ENCODED_FORMATS:
            return ImitateError(
                f"the {fmt} export takes MLP policies of vector observations; a policy with "
                "an observation encoder (images, text, Dict, Discrete ...) exports to "
                + ", ".join(ENCODED_FORMATS)
            )
        if fmt == "c":
            from imitate.export.c_encoders import c_inputs

            try:
                c_inputs(policy)
            except ImitateError as refusal:
                return refusal
    return None


def export_policy(
    policy: MLPPolicy | EncodedPolicy,
    fmt: Format,
    out_dir: str | os.PathLike[str],
    int8: bool = False,
    calibration: np.ndarray | ObsBatch | None = None,
    prefix: str = "policy",
    bits: int | None = None,
    input_bits: int = 16,
    algo: str | None = None,
    gate: bool = True,
    choice: WidthChoice | None = None,
) -> list[Path]:
    """Write ``policy`` in format ``fmt`` into ``out_dir``; returns the files written.

    C only: ``int8`` (integer-only; ``calibration`` states ``[N, *obs_shape]``, the
    policy's own, set the activation ranges; ``bits``: the hidden activations' width, 8 or
    16, None: 8, 16 for Box actions; ``input_bits``: the observation's, 16 or 8),
    ``prefix`` (file names, symbols, macros), ``gate`` (int8 Discrete: carry the integer JS
    gate), ``choice`` (the measured width, :func:`imitate.export.int8.choose_bits`: its
    bits are used and it is recorded in the header). sb3 only: ``algo`` (``ppo``/``sac``; default
    by the action head)."""
    refusal = _refusal(policy, fmt, int8)
    if refusal is not None:
        raise refusal
    out_dir = Path(out_dir)
    if isinstance(policy, EncodedPolicy):
        return _export_encoded(policy, fmt, out_dir, int8, calibration, prefix, bits, input_bits)
    if prefix != "policy" and fmt != "c":
        raise ImitateError("--prefix applies to the C export only")
    if fmt == "c":
        from imitate.export.c import export_c

        states = None if calibration is None else np.asarray(calibration)
        return export_c(policy, out_dir, int8, states, prefix, bits, input_bits, gate, choice)
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        from imitate.export.onnx import export_gated_onnx, export_onnx

        files = [export_onnx(policy, out_dir / "policy.onnx")]
        if isinstance(policy.head, CategoricalHead):  # the JS gate's step, for Discrete heads
            files.append(export_gated_onnx(policy, out_dir / "policy_gated.onnx"))
        return files
    if fmt == "torchscript":
        from imitate.export.torchscript import export_torchscript

        return [export_torchscript(policy, out_dir / "policy.ts")]
    if fmt == "numpy":
        from imitate.export.numpy_runtime import export_numpy

        return [export_numpy(policy, out_dir / "policy.npz")]
    if fmt == "sb3":
        from imitate.export.sb3 import export_sb3

        return [export_sb3(policy, out_dir / "policy_sb3.zip", algo)]  # type: ignore[arg-type]
    raise ImitateError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")


def _export_encoded(
    policy: EncodedPolicy,
    fmt: Format,
    out_dir: Path,
    int8: bool,
    calibration: ObsBatch | None,
    prefix: str,
    bits: int | None,
    input_bits: int,
) -> list[Path]:
    """The exports of a policy with an observation encoder (onnx, torchscript, numpy: every
    encoder; c: see :mod:`imitate.export.c_encoders`). Refusals come before any file."""
    if fmt not in ENCODED_FORMATS:
        raise ImitateError(
            f"the {fmt} export takes MLP policies of vector observations; a policy with an "
            f"observation encoder (images, text, Dict, Discrete ...) exports to "
            f"{', '.join(ENCODED_FORMATS)}"
        )
    if prefix != "policy" and fmt != "c":
        raise ImitateError("--prefix applies to the C export only")
    if fmt == "c":
        from imitate.export.c_encoders import export_encoded_c

        return export_encoded_c(policy, out_dir, int8, calibration, prefix, bits, input_bits)
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        from imitate.export.onnx import export_onnx, write_tokenizer

        files = [export_onnx(policy, out_dir / "policy.onnx")]
        tokenizer = write_tokenizer(policy, out_dir)  # Text inputs: token ids, see the file
        return files if tokenizer is None else [*files, tokenizer]
    if fmt == "torchscript":
        from imitate.export.torchscript import export_torchscript

        return [export_torchscript(policy, out_dir / "policy.ts")]
    from imitate.export.numpy_runtime import export_numpy

    return [export_numpy(policy, out_dir / "policy.npz")]


def load_exported(path: str | os.PathLike[str]) -> Policy:
    """A batched Policy running an exported artefact (by file extension; C: the .c file)."""
    path = Path(path)
    suffix = path.suffix
    if suffix == ".zip":
        from imitate.export.sb3 import SB3ExportPolicy

        return SB3ExportPolicy(path)
    if suffix == ".onnx":
        from imitate.export.onnx import OnnxPolicy

        return OnnxPolicy(path)
    if suffix == ".ts":
        from imitate.export.torchscript import load_torchscript

        return load_torchscript(path)
    if suffix == ".npz":
        from imitate.export.numpy_runtime import load_numpy

        return load_numpy(path)
    if suffix == ".c":  # <prefix>.c beside <prefix>.h
        from imitate.export.c import CPolicy
        from imitate.export.c_encoders import EncodedCPolicy, is_encoded_c

        return EncodedCPolicy(path) if is_encoded_c(path) else CPolicy(path)
    raise ImitateError(f"{path}: not an exported policy (.onnx, .ts, .npz or .c)")
