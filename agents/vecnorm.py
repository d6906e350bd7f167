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

    SB3 never saves the VecNormalize wrapper into the zip (``_vec_normalize_env`` is one of
    ``_excluded_save_params``). What the zip's ``data`` keeps is the last observation pair,
    ``_last_obs`` (what the policy saw) and ``_last_original_obs``:

    * On-policy algorithms (PPO, A2C, TRPO, ...: the data has no ``learning_starts``) set
      ``_last_original_obs`` only under VecNormalize, to the raw form of ``_last_obs``. A
      non-null one that differs from ``_last_obs`` means normalised observations; equal
      arrays mean ``norm_obs=False`` (reward-only, which needs no statistics). Exact.
    * Off-policy algorithms (DQN, SAC, TD3, QR-DQN, TQC, ...) always fill it: under
      VecNormalize with the raw form of ``_last_obs`` (same step), without it with the
      observation *before* ``_last_obs`` (``OffPolicyAlgorithm._store_transition``). Both
      are plausible arrays, so the pair decides only where one of :func:`_off_policy_evidence`'s
      rules applies (a normalised ``_last_obs`` outside the observation space, or 3+ envs
      whose pairs are, or are not, one affine map per dimension); otherwise None.
    """
    data = zip_data(path)
    original = _array(data.get("_last_original_obs"), f"{path} _last_original_obs")
    seen = _array(data.get("_last_obs"), f"{path} _last_obs")
    if "learning_starts" in data:
        return _off_policy_evidence(original, seen, _box_bounds(data, path))
    if original is None:
        return False
    return seen is None or seen.shape != original.shape or not np.allclose(seen, original)


def _box_bounds(data: dict[str, Any], path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(low, high) of the zip's Box observation space (read as data), else None."""
    entry = data.get("observation_space")
    if not isinstance(entry, dict) or ":serialized:" not in entry:
        return None
    space = safe_unpickle(base64.b64decode(entry[":serialized:"]), f"{path} observation_space")
    if type(space).__name__ != "Box":
        return None
    low, high = getattr(space, "low", None), getattr(space, "high", None)
    if not isinstance(low, np.ndarray) or not isinstance(high, np.ndarray):
        return None
    return low, high


def _off_policy_evidence(
    original: np.ndarray | None,
    seen: np.ndarray | None,
    bounds: tuple[np.ndarray, np.ndarray] | None,
) -> bool | None:
    """The off-policy rules on the last pair ``original[n_envs, ...]``, ``seen[n_envs, ...]``:

    1. ``seen`` outside the Box observation space while ``original`` is inside: ``seen`` is
       no raw observation, so it was normalised (True). A raw ``seen`` (no VecNormalize) is
       the env's own next observation and stays inside its space.
    2. With 3 or more envs: under VecNormalize ``seen = (original - mean) / std`` (clipped),
       one increasing affine map per dimension for all envs; two consecutive raw
       observations are not. Affine on every dimension that varies (True), not affine on
       one of them (False).
    3. Otherwise: None (one env, inside the space: the zip cannot tell)."""
    if original is None or seen is None or original.shape != seen.shape or seen.ndim < 2:
        return None
    original = original.reshape(len(original), -1).astype(np.float64)
    seen = seen.reshape(len(seen), -1).astype(np.float64)
    if bounds is not None and bounds[0].size == original.shape[1]:
        low, high = (b.reshape(-1).astype(np.float64) for b in bounds)
        tolerance = 1e-5 * (1.0 + np.abs(np.where(np.isfinite(high), high, 0.0)))
        inside = bool(np.all((original >= low - tolerance) & (original <= high + tolerance)))
        outside = bool(np.any((seen < low - tolerance) | (seen > high + tolerance)))
        if inside and outside:
            return True
    if len(original) < 3:
        return None
    varying = 0
    for x, y in zip(original.T, seen.T, strict=True):
        keep = np.abs(y) < 5.0  # a clipped value (clip_obs, 10 by default) is off the line
        x, y = x[keep], y[keep]
        if len(np.unique(x)) < 3:
            continue
        varying += 1
        slope, intercept = np.polyfit(x, y, 1)
        scale = max(float(np.abs(y).max()), 1e-3)
        if slope <= 0 or float(np.abs(slope * x + intercept - y).max()) > 1e-4 * scale:
            return False
    return True if varying else None


def policy_module(path: Path) -> str:
    """The module of the zip's policy class (e.g. ``sb3_contrib.qrdqn.policies``), or ''."""
    entry = zip_data(path).get("policy_class")
    return str(entry.get("__module__", "")) if isinstance(entry, dict) else ""
