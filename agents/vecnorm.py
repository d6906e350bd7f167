"""VecNormalize statistics read from SB3 files without running code from them.

``vecnormalize.pkl`` (``VecNormalize.save``) and the arrays inside an SB3 zip's ``data``
entry are pickles. A pickle can name any importable callable, so ``pickle.load`` on a
file runs whatever the file says. Here a restricted unpickler resolves only numpy's
array and dtype reconstructors (data, not code); every SB3, gymnasium or numpy.random
class the file names becomes an inert :class:`_Record` that just keeps the state the
pickle gives it, and any other global (``os.system``, ``builtins.eval``, ...) stops the
read with ``ImitateError``. That makes a ``vecnormalize.pkl`` found *next to* a zip the
user named safe to read: it is data to us, never code.

What we keep is what SB3 applies to observations: ``(obs - mean) / sqrt(var + eps)``
clipped to ``[-clip_obs, clip_obs]`` when ``norm_obs`` is set.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from imitate.errors import ImitateError

# numpy's pickle helpers: they rebuild arrays, dtypes and scalars from bytes.
_NUMPY_DATA = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}
# Classes whose instances become inert records (their state is kept as a dict).
_RECORDED_PREFIXES = ("stable_baselines3.", "sb3_contrib.", "gymnasium.spaces.", "numpy.random")
_SAFE_BUILTINS = {("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset")}


class _Record:
    """Stand-in for any class a statistics pickle names: stores args and state, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict, slots) form
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.state = state


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_DATA or (module, name) in _SAFE_BUILTINS:
            return super().find_class(module, name)
        if module.startswith(_RECORDED_PREFIXES):
            return type(name, (_Record,), {})
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def safe_unpickle(blob: bytes, what: str) -> Any:
    """Read a data-only pickle (see the module docstring); ``ImitateError`` otherwise."""
    try:
        return _DataUnpickler(io.BytesIO(blob)).load()
    except Exception as exc:  # any decoding problem is the file's fault
        raise ImitateError(f"{what}: not readable as VecNormalize data ({exc})") from exc


def read_vecnormalize(path: Path) -> dict[str, Any] | None:
    """The observation statistics in a ``vecnormalize.pkl``, or None if it does not
    normalise observations: ``{"mean", "var", "clip", "epsilon"}``."""
    if not path.is_file():
        raise ImitateError(f"{path}: VecNormalize statistics not found")
    venv = safe_unpickle(path.read_bytes(), str(path))
    state = getattr(venv, "__dict__", {})
    rms = state.get("obs_rms")
    if rms is None or not hasattr(rms, "mean"):
        raise ImitateError(f"{path}: not a VecNormalize file (no observation statistics)")
    if isinstance(rms, dict) or not isinstance(rms.mean, np.ndarray):
        raise ImitateError(f"{path}: dict-observation VecNormalize is not supported")
    if not state.get("norm_obs", True):
        return None
    return {
        "mean": np.asarray(rms.mean, np.float64).tolist(),
        "var": np.asarray(rms.var, np.float64).tolist(),
        "clip": float(state.get("clip_obs", 10.0)),
        "epsilon": float(state.get("epsilon", 1e-8)),
        "file": str(path),
    }


def zip_data(path: Path) -> dict[str, Any]:
    """The JSON ``data`` entry of an SB3 zip (parsed as JSON only)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return dict(json.loads(archive.read("data")))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as exc:
        raise ImitateError(f"{path}: not a stable-baselines3 zip ({exc})") from exc


def _array(entry: Any, what: str) -> np.ndarray | None:
    if not isinstance(entry, dict) or ":serialized:" not in entry:
        return None
    value = safe_unpickle(base64.b64decode(entry[":serialized:"]), what)
    return value if isinstance(value, np.ndarray) else None


def trained_with_obs_normalization(path: Path) -> bool | None:
    """Whether the SB3 zip at ``path`` was trained under ``VecNormalize(norm_obs=True)``;
    None when the zip cannot tell.

    SB3 never saves the VecNormalize wrapper into the zip. The rule: an on-policy
    algorithm (PPO, A2C, TRPO, ...: its data has no ``learning_starts``) sets
    ``_last_original_obs`` only when a VecNormalize wraps its env, so a non-null
    ``_last_original_obs`` that differs from ``_last_obs`` (what the policy saw) means
    normalised observations; equal arrays mean ``norm_obs=False`` (reward-only, which needs
    no statistics). Off-policy algorithms (DQN, SAC, QR-DQN, TQC, ...) always keep the
    previous raw observation there, so their zip cannot tell (None): an rl-zoo
    ``config.yml`` can."""
    data = zip_data(path)
    if "learning_starts" in data:
        return None
    original = _array(data.get("_last_original_obs"), f"{path} _last_original_obs")
    if original is None:
        return False
    seen = _array(data.get("_last_obs"), f"{path} _last_obs")
    return seen is None or seen.shape != original.shape or not np.allclose(seen, original)


def policy_module(path: Path) -> str:
    """The module of the zip's policy class (e.g. ``sb3_contrib.qrdqn.policies``), or ''."""
    entry = zip_data(path).get("policy_class")
    return str(entry.get("__module__", "")) if isinstance(entry, dict) else ""
