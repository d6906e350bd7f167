"""TorchScript export (traced) and a Policy that runs it."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch

from imitate.export.graph import ActionGraph
from imitate.fileio import write_bytes
from imitate.policy import MLPPolicy


def export_torchscript(policy: MLPPolicy, path: Path) -> Path:
    """Trace observation -> action into a TorchScript file loadable without imitate."""
    graph = ActionGraph(policy).eval()
    with torch.no_grad(), warnings.catch_warnings():
        # Box bounds become trace constants, which is what we want.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(graph, torch.zeros(2, policy.obs_dim))
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    return write_bytes(path, buffer.getvalue())


class TorchScriptPolicy:
    """Run an exported TorchScript policy."""

    def __init__(self, path: Path) -> None:
        self.module = torch.jit.load(str(path))

    def act(self, obs: np.ndarray) -> np.ndarray:
        flat = torch.as_tensor(np.asarray(obs, dtype=np.float32).reshape(len(obs), -1))
        with torch.inference_mode():
            return self.module(flat).numpy()
