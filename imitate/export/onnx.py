"""ONNX export (opset 18, torch.export-based exporter) and an onnxruntime Policy."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from imitate.errors import ImitateError
from imitate.export.graph import ActionGraph
from imitate.fileio import write_bytes
from imitate.policy import MLPPolicy

OPSET = 18


def export_onnx(policy: MLPPolicy, path: Path) -> Path:
    """Write ``policy`` (normalisation and decision included) as one ONNX file."""
    graph = ActionGraph(policy).eval()
    example = torch.zeros(2, policy.obs_dim)
    buffer = io.BytesIO()
    # The exporter prints progress on stdout and warns about torchvision on stderr.
    with (
        contextlib.redirect_stdout(io.StringIO()),
        _quiet_logger("torch.onnx"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            graph,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            input_names=["obs"],
            output_names=["action"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    assert program is not None
    program.save(buffer)  # type: ignore[arg-type]
    return write_bytes(path, buffer.getvalue())


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class OnnxPolicy:
    """Run an exported ONNX policy with onnxruntime (one thread, CPU)."""

    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ImitateError(
                "ONNX export needs the onnx extra: pip install 'imitate[onnx]'"
            ) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def act(self, obs: np.ndarray) -> np.ndarray:
        flat = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        return self.session.run(None, {"obs": flat})[0]
