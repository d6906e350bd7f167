"""Pure-numpy runtime: weights in one .npz, a forward pass in a few lines of numpy.

The file holds ``W0, b0, W1, b1, ...`` (``W`` as ``[in, out]``), the observation
mean/std, the activation and the action space as JSON; :func:`load_numpy`
rebuilds a :class:`~imitate.policy.NumpyMLPPolicy` from it without torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO

import numpy as np

from imitate.encoded import EncodedPolicy
from imitate.errors import ImitateError
from imitate.export.numpy_encoded import NumpyEncodedRuntime, is_encoded_spec, load_encoded_numpy
from imitate.fileio import atomic_write
from imitate.policy import MLPPolicy, NumpyLayers, NumpyMLPPolicy
from imitate.spaces import head_for_space, space_from_json, space_to_json


def export_numpy(policy: MLPPolicy | EncodedPolicy, path: str | os.PathLike[str]) -> Path:
    """Write the weights, normalisation and head description to an .npz file (an
    encoded policy: :func:`imitate.export.numpy_encoded.export_encoded_numpy`)."""
    if isinstance(policy, EncodedPolicy):
        from imitate.export.numpy_encoded import export_encoded_numpy

        return export_encoded_numpy(policy, path)
    snapshot = policy.numpy_snapshot()
    arrays: dict[str, np.ndarray] = {
        "obs_mean": policy.obs_mean.numpy(),
        "obs_std": policy.obs_std.numpy(),
        "spec": np.array(
            json.dumps(
                {
                    "activation": policy.config.activation,
                    "action_space": space_to_json(policy.action_space),
                    "ops": [kind for kind, _, _ in snapshot.layers.ops],
                }
            )
        ),
    }
    layer = 0
    for kind, weight, bias in snapshot.layers.ops:
        if kind == "linear":
            arrays[f"W{layer}"], arrays[f"b{layer}"] = weight, bias
            layer += 1

    def write(f: IO[bytes]) -> None:
        np.savez(f, allow_pickle=False, **arrays)

    return atomic_write(path, write)


def load_numpy(path: str | os.PathLike[str]) -> NumpyMLPPolicy | NumpyEncodedRuntime:
    """Rebuild the numpy policy from an exported .npz (an encoded policy's: a
    :class:`~imitate.export.numpy_encoded.NumpyEncodedRuntime`)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        spec = json.loads(str(arrays["spec"]))
    except (OSError, ValueError, KeyError) as exc:
        raise ImitateError(f"{path}: not an exported numpy policy ({exc})") from exc
    if is_encoded_spec(spec):
        return load_encoded_numpy(path)
    head = head_for_space(space_from_json(spec["action_space"]))
    layers = NumpyLayers.from_arrays(spec["ops"], arrays)
    return NumpyMLPPolicy(layers, arrays["obs_mean"], arrays["obs_std"], head)
