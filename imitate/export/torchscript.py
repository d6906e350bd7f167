"""TorchScript export (traced) and a Policy that runs it.

Encoded policies (:class:`~imitate.encoded.EncodedPolicy`) trace
:class:`~imitate.encoded.EncodedActionGraph`: the inputs are the encoder's arrays
(``encoder.input_names()``, text as token ids), and the encoder's constructor JSON
travels in the archive (extra file ``encoder.json``) so that
:class:`TorchScriptEncodedPolicy` prepares the inputs (splits Dict/Tuple batches,
tokenizes text) without the checkpoint.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imitate.encoded import EncodedActionGraph, EncodedPolicy
from imitate.export.graph import ActionGraph
from imitate.fileio import write_bytes
from imitate.observations import ObsBatch
from imitate.policy import MLPPolicy

ENCODER_FILE = "encoder.json"


def export_torchscript(policy: MLPPolicy | EncodedPolicy, path: str | os.PathLike[str]) -> Path:
    """Trace observation -> action into a TorchScript file loadable without imitate."""
    extra: dict[str, Any] = {}
    graph: torch.nn.Module
    if isinstance(policy, EncodedPolicy):
        graph = EncodedActionGraph(policy).eval()
        example: tuple[torch.Tensor, ...] = tuple(
            torch.as_tensor(a) for a in policy.encoder.example_inputs(2)
        )
        extra[ENCODER_FILE] = json.dumps(policy.encoder.to_json())
    else:
        graph = ActionGraph(policy).eval()
        example = (torch.zeros(2, policy.obs_dim),)
    with torch.no_grad(), warnings.catch_warnings():
        # Box bounds become trace constants, which is what we want.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(graph, example)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer, _extra_files=extra)
    return write_bytes(path, buffer.getvalue())


def load_torchscript(path: str | os.PathLike[str]) -> TorchScriptPolicy | TorchScriptEncodedPolicy:
    """The Policy of an exported file (encoded when the archive carries ``encoder.json``)."""
    extra = {ENCODER_FILE: ""}
    module = torch.jit.load(str(path), _extra_files=extra)
    if extra[ENCODER_FILE]:
        from imitate.encoders import encoder_from_json

        return TorchScriptEncodedPolicy(module, encoder_from_json(json.loads(extra[ENCODER_FILE])))
    return TorchScriptPolicy(path, module)


class TorchScriptPolicy:
    """Run an exported TorchScript policy."""

    def __init__(self, path: str | os.PathLike[str], module: Any = None) -> None:
        self.module = module if module is not None else torch.jit.load(str(path))

    def act(self, obs: np.ndarray) -> np.ndarray:
        flat = torch.as_tensor(np.asarray(obs, dtype=np.float32).reshape(len(obs), -1))
        with torch.inference_mode():
            return self.module(flat).numpy()


class TorchScriptEncodedPolicy:
    """Run an exported encoded TorchScript policy; ``encoder`` (rebuilt from the archive's
    JSON, untrained: only its ``inputs`` is used) turns a batch into the traced inputs."""

    def __init__(self, module: Any, encoder: Any) -> None:
        self.module = module
        self.encoder = encoder

    def act(self, obs: ObsBatch) -> np.ndarray:
        inputs = [torch.as_tensor(a) for a in self.encoder.inputs(obs)]
        with torch.inference_mode():
            return self.module(*inputs).numpy()
