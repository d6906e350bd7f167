"""ONNX export (opset 18, torch.export-based exporter) and an onnxruntime Policy."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imitate.encoded import EncodedActionGraph, EncodedPolicy, onnx_input_names
from imitate.encoders import ObsEncoder
from imitate.errors import ImitateError
from imitate.export.graph import ActionGraph, GatedActionGraph
from imitate.fileio import write_bytes
from imitate.observations import ObsBatch
from imitate.policy import MLPPolicy

OPSET = 18


def export_onnx(policy: MLPPolicy | EncodedPolicy, path: Path) -> Path:
    """Write ``policy`` (normalisation and decision included) as one ONNX file."""
    if isinstance(policy, EncodedPolicy):
        return export_encoded_onnx(policy, path)
    example = torch.zeros(2, policy.obs_dim)
    batch = torch.export.Dim("batch")
    return _export(ActionGraph(policy), (example,), ["obs"], ["action"], ({0: batch},), path)


def export_gated_onnx(policy: MLPPolicy, path: Path) -> Path:
    """Write one step of the JS gate (Discrete policies): inputs ``obs [B, obs_dim]``,
    ``anchor [B, n]`` (NaN rows start an episode), ``threshold []`` (nats); outputs
    ``action [B]`` and the next ``anchor [B, n]``."""
    example = (
        torch.zeros(2, policy.obs_dim),
        torch.full((2, policy.head.n_outputs), float("nan")),
        torch.tensor(0.1),
    )
    batch = torch.export.Dim("batch")
    shapes: tuple[dict[int, Any], ...] = ({0: batch}, {0: batch}, {})
    names = (["obs", "anchor", "threshold"], ["action", "next_anchor"])
    return _export(GatedActionGraph(policy), example, *names, shapes, path)


def _export(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    input_names: list[str],
    output_names: list[str],
    dynamic_shapes: tuple[dict[int, Any], ...],
    path: Path,
) -> Path:
    graph = module.eval()
    buffer = io.BytesIO()
    # The exporter prints progress on stdout and warns about torchvision on stderr.
    with (
        contextlib.redirect_stdout(io.StringIO()),
        _quiet_logger("torch.onnx"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", FutureWarning)
        # Batch axes of several inputs share one constraint; the exporter says so per input.
        warnings.filterwarnings("ignore", "# The axis name: .* will not be used", UserWarning)
        program = torch.onnx.export(
            graph,
            example,
            dynamo=True,
            opset_version=OPSET,
            input_names=input_names,
            output_names=output_names,
            dynamic_shapes=dynamic_shapes,
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


def _session(path: Path) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ImitateError("ONNX export needs the onnx extra: pip install 'imitate[onnx]'") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxPolicy:
    """Run an exported ONNX policy with onnxruntime (one thread, CPU)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.session = _session(path)

    def gated(self, threshold: float) -> OnnxGatedPolicy:
        """The JS gate exported beside this file (``policy_gated.onnx``, Discrete policies)."""
        gated_path = self.path.with_name("policy_gated.onnx")
        if not gated_path.is_file():
            raise ImitateError(f"{gated_path} is missing (the gate is exported for Discrete heads)")
        return OnnxGatedPolicy(gated_path, threshold)

    def act(self, obs: np.ndarray) -> np.ndarray:
        flat = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        return self.session.run(None, {"obs": flat})[0]


class OnnxGatedPolicy:
    """An exported JS gate (``policy_gated.onnx``) as a RecurrentPolicy."""

    def __init__(self, path: Path, threshold: float) -> None:
        self.session = _session(path)
        self.threshold = np.array(threshold, dtype=np.float32)
        self.n_outputs = int(self.session.get_inputs()[1].shape[1])

    def initial_state(self, batch: int) -> np.ndarray:
        return np.full((batch, self.n_outputs), np.nan, dtype=np.float32)

    def step(self, obs: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        feeds = {"obs": flat, "anchor": state.astype(np.float32), "threshold": self.threshold}
        action, anchor = self.session.run(None, feeds)
        return action, anchor

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.step(obs, self.initial_state(len(obs)))[0]


def export_encoded_onnx(policy: EncodedPolicy, path: Path) -> Path:
    """Write ``policy`` (encoder, trunk, decision) as one ONNX file; tokenization stays
    outside (feed :meth:`ObsEncoder.inputs`, see :class:`OnnxEncodedPolicy`)."""
    example = tuple(torch.as_tensor(a) for a in policy.encoder.example_inputs(2))
    batch = torch.export.Dim("batch")
    names = onnx_input_names(policy)
    shapes: tuple[Any, ...] = (tuple({0: batch} for _ in names),)  # one entry: *inputs
    return _export(EncodedActionGraph(policy), example, names, ["action"], shapes, path)


class OnnxEncodedPolicy:
    """An exported encoded policy run by onnxruntime; ``encoder`` prepares the inputs
    (tokenizes text) exactly as the torch policy does."""

    def __init__(self, path: Path, encoder: ObsEncoder) -> None:
        self.session = _session(path)
        self.encoder = encoder
        self.names = [i.name for i in self.session.get_inputs()]

    def act(self, obs: ObsBatch) -> np.ndarray:
        feeds = dict(zip(self.names, self.encoder.inputs(obs), strict=True))
        return self.session.run(None, feeds)[0]
