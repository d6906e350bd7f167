"""Observations of any supported space: batches, storage, validation, JSON form.

An observation batch of ``B`` rows is, by observation space:

==================  ===========================================================
space               batch
==================  ===========================================================
Box                 ``ndarray [B, *shape]``: float spaces stored as float32,
                    integer spaces (uint8 images) keep their own dtype
Discrete            ``int64 [B]``
MultiDiscrete       ``int64 [B, *nvec.shape]``
MultiBinary         ``int8 [B, *shape]``
Text                ``str_ [B]``: a fixed-width unicode array (``<U{max_length}``),
                    which ``np.load`` reads without pickle
Dict                ``dict[key, batch]`` in the space's key order
Tuple               ``tuple[batch, ...]``
==================  ===========================================================

A batch is stored in a ``.npz`` file as one array per leaf, under the keys
``obs`` (a flat space), ``obs/<key>`` (Dict) or ``obs/<index>`` (Tuple), nested as
``obs/<key>/<index>``; :func:`obs_to_arrays` and :func:`obs_from_arrays` convert,
the space (recorded in the dataset's metadata) telling dicts and tuples apart.

The JSON form of observation spaces (:func:`obs_space_to_json`) extends the
action spaces' one (:func:`imitate.spaces.space_to_json`) with Dict, Tuple and Text.
minigrid's ``MissionSpace`` (a ``Space[str]`` that cannot be described in JSON)
is read as a ``Text`` space by :func:`canonical_space`.

Hand-written because gymnasium's own batching (``gym.vector.utils``) turns Text
into tuples of Python strings and has no storage or validation; the helpers here
are a few lines per space.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import gymnasium as gym
import numpy as np

from imitate.errors import DatasetError, UnsupportedSpaceError
from imitate.spaces import space_from_json, space_to_json

ObsBatch: TypeAlias = "np.ndarray | dict[str, ObsBatch] | tuple[ObsBatch, ...]"
"""A batch of observations: an array, or a dict / tuple of batches (see the module doc)."""
AnyObs: TypeAlias = Any
"""An :data:`ObsBatch` where code written for flat arrays must keep type-checking
(``Dataset.obs``): the structure is checked at run time by :func:`validate`."""

SEP = "/"
MISSION_CHARSET = string.ascii_letters + string.digits + " ,.;:'!?-_"
"""Characters of the Text space that stands for a minigrid mission."""
MISSION_MAX_LENGTH = 256


def canonical_space(space: gym.Space[Any]) -> gym.Space[Any]:
    """``space`` with every minigrid ``MissionSpace`` replaced by an equivalent ``Text``.

    Detected by class name and module (subclasses too), so that imitate does not import
    minigrid."""
    if isinstance(space, gym.spaces.Dict):
        # a list of pairs keeps the space's key order (a plain dict would be sorted)
        return gym.spaces.Dict([(k, canonical_space(s)) for k, s in space.spaces.items()])
    if isinstance(space, gym.spaces.Tuple):
        return gym.spaces.Tuple(tuple(canonical_space(s) for s in space.spaces))
    if any(
        c.__name__ == "MissionSpace" and c.__module__.startswith("minigrid")
        for c in type(space).__mro__
    ):
        return gym.spaces.Text(MISSION_MAX_LENGTH, min_length=0, charset=MISSION_CHARSET)
    return space


def leaf_dtype(space: gym.Space[Any]) -> np.dtype[Any]:
    """Storage dtype of one leaf space (see the module docstring)."""
    if isinstance(space, gym.spaces.Box):
        dtype = np.dtype(space.dtype)
        return np.dtype(np.float32) if dtype.kind == "f" else dtype
    if isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete):
        return np.dtype(np.int64)
    if isinstance(space, gym.spaces.MultiBinary):
        return np.dtype(np.int8)
    if isinstance(space, gym.spaces.Text):
        return np.dtype(f"<U{max(int(space.max_length), 1)}")
    raise UnsupportedSpaceError(describe_unsupported(space))


def is_image_space(space: gym.Space[Any]) -> bool:
    """A uint8 Box of 2 to 4 dims (``HxW``, ``HxWxC``, ``CxHxW``, stacked ``KxHxW(xC)``)."""
    return (
        isinstance(space, gym.spaces.Box)
        and np.dtype(space.dtype) == np.uint8
        and 2 <= len(space.shape) <= 4
    )


def step_bytes(space: gym.Space[Any]) -> int:
    """Bytes one observation of ``space`` takes in storage (its leaves in their storage
    dtypes: uint8 frames 1 byte per value, float leaves 4, Text its fixed-width string)."""
    total = 0
    for _, leaf in leaves(check_supported(space)):  # an unsupported leaf: named, with its key
        dtype = leaf_dtype(leaf)
        shape = () if isinstance(leaf, gym.spaces.Discrete | gym.spaces.Text) else leaf.shape
        total += int(np.prod(shape or (), dtype=np.int64)) * dtype.itemsize
    return total


def entry_name(path: Sequence[str | int]) -> str:
    """How a message names the entry of an observation space at ``path`` (Dict keys, Tuple
    indices): ``observation key 's'``, ``observation index 0``, nested ones by their path
    as datasets name their fields (``observation key 'arm/1'``)."""
    if len(path) == 1 and isinstance(path[0], int):
        return f"observation index {path[0]}"
    return f"observation key {SEP.join(map(str, path))!r}"


def describe_unsupported(space: gym.Space[Any], path: Sequence[str | int] = ()) -> str:
    """The one-line message for an observation space imitate cannot encode; ``path``: where
    it sits in a Dict/Tuple space (named first: the whole space can be long)."""
    where = f"{entry_name(path)}: " if path else ""
    return (
        f"{where}unsupported observation space {space}: imitate supports Box, Discrete, "
        "MultiDiscrete, MultiBinary, Text and Dict/Tuple of those"
    )


def check_supported(space: gym.Space[Any]) -> gym.Space[Any]:
    """The canonical form of ``space``; ``UnsupportedSpaceError`` naming the first leaf that
    is not supported, and where it is (call it before any rollout)."""
    space = canonical_space(space)
    if not leaves(space) and isinstance(space, gym.spaces.Dict | gym.spaces.Tuple):
        raise UnsupportedSpaceError(f"observation space {space} has no entries")
    _check_leaves(space, ())
    return space


def _check_leaves(space: gym.Space[Any], path: tuple[str | int, ...]) -> None:
    if isinstance(space, gym.spaces.Dict):
        for key, sub in space.spaces.items():
            _check_leaves(sub, (*path, str(key)))
    elif isinstance(space, gym.spaces.Tuple):
        for i, sub in enumerate(space.spaces):
            _check_leaves(sub, (*path, i))
    else:
        try:
            leaf_dtype(space)  # (what decides which leaves are supported)
        except UnsupportedSpaceError:
            raise UnsupportedSpaceError(describe_unsupported(space, path)) from None


def leaves(space: gym.Space[Any], prefix: str = "") -> list[tuple[str, gym.Space[Any]]]:
    """``(path, leaf space)`` in storage order; paths are ``""`` for a flat space, else
    keys and tuple indices joined by ``/`` (``"image"``, ``"0"``, ``"arm/1"``)."""
    if isinstance(space, gym.spaces.Dict):
        out: list[tuple[str, gym.Space[Any]]] = []
        for key, sub in space.spaces.items():
            if SEP in str(key) or not str(key):
                raise UnsupportedSpaceError(f"Dict observation key {key!r} must be non-empty, no /")
            out += leaves(sub, f"{prefix}{key}{SEP}")
        return out
    if isinstance(space, gym.spaces.Tuple):
        out = []
        for i, sub in enumerate(space.spaces):
            out += leaves(sub, f"{prefix}{i}{SEP}")
        return out
    return [(prefix.rstrip(SEP), space)]


def leaf_arrays(obs: ObsBatch, space: gym.Space[Any]) -> list[np.ndarray]:
    """The leaf arrays of a batch, in the order of :func:`leaves`."""
    if isinstance(space, gym.spaces.Dict):
        if not isinstance(obs, dict):
            raise TypeError(f"a Dict observation batch is a dict, got {type(obs).__name__}")
        return [a for k, s in space.spaces.items() for a in leaf_arrays(obs[k], s)]
    if isinstance(space, gym.spaces.Tuple):
        if not isinstance(obs, tuple | list):
            raise TypeError(f"a Tuple observation batch is a tuple, got {type(obs).__name__}")
        return [a for o, s in zip(obs, space.spaces, strict=True) for a in leaf_arrays(o, s)]
    return [np.asarray(obs)]


def from_leaf_arrays(arrays: Sequence[np.ndarray], space: gym.Space[Any]) -> ObsBatch:
    """Inverse of :func:`leaf_arrays`."""
    it = iter(arrays)

    def build(sub: gym.Space[Any]) -> ObsBatch:
        if isinstance(sub, gym.spaces.Dict):
            return {k: build(s) for k, s in sub.spaces.items()}
        if isinstance(sub, gym.spaces.Tuple):
            return tuple(build(s) for s in sub.spaces)
        return next(it)

    out = build(space)
    if next(it, None) is not None:
        raise ValueError("more leaf arrays than the space has leaves")
    return out


def map_obs(fn: Callable[[np.ndarray], np.ndarray], obs: ObsBatch) -> ObsBatch:
    """``fn`` applied to every leaf array (e.g. ``lambda a: a[index]``)."""
    if isinstance(obs, dict):
        return {k: map_obs(fn, v) for k, v in obs.items()}
    if isinstance(obs, tuple):
        return tuple(map_obs(fn, v) for v in obs)
    return fn(obs)


def batch_leaves(obs: ObsBatch) -> list[np.ndarray]:
    """Every leaf array of a batch, in its order (no space needed; lists read as tuples)."""
    if isinstance(obs, dict):
        return [a for v in obs.values() for a in batch_leaves(v)]
    if isinstance(obs, tuple | list):
        return [a for v in obs for a in batch_leaves(v)]
    return [np.asarray(obs)]


def take(obs: ObsBatch, index: Any) -> ObsBatch:
    """Rows ``index`` of every leaf."""
    return map_obs(lambda a: a[index], obs)


def obs_len(obs: ObsBatch) -> int:
    """Number of rows of a batch (of its first leaf)."""
    while isinstance(obs, dict | tuple):
        if not obs:
            raise ValueError("an empty Dict/Tuple observation batch has no length")
        obs = next(iter(obs.values())) if isinstance(obs, dict) else obs[0]
    return int(np.asarray(obs).shape[0])


def concatenate(batches: Sequence[ObsBatch]) -> ObsBatch:
    """Rows of several batches of the same structure, one after the other.

    Text leaves widen to the longest string width."""
    first = batches[0]
    if isinstance(first, dict):
        dicts = [b for b in batches if isinstance(b, dict)]
        return {k: concatenate([b[k] for b in dicts]) for k in first}
    if isinstance(first, tuple):
        tuples = [b for b in batches if isinstance(b, tuple)]
        return tuple(concatenate([b[i] for b in tuples]) for i in range(len(first)))
    return np.concatenate([np.asarray(b) for b in batches])


def empty(space: gym.Space[Any], prefix: tuple[int, ...]) -> ObsBatch:
    """A zero batch of shape ``[*prefix, *leaf_shape]`` per leaf (empty strings for Text)."""
    if isinstance(space, gym.spaces.Dict):
        return {k: empty(s, prefix) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(empty(s, prefix) for s in space.spaces)
    shape = () if isinstance(space, gym.spaces.Text) else tuple(space.shape or ())
    return np.zeros((*prefix, *shape), leaf_dtype(space))


def assign(buffer: ObsBatch, index: Any, values: ObsBatch) -> None:
    """``buffer[index] = values`` leaf by leaf (in place)."""
    if isinstance(buffer, dict):
        assert isinstance(values, dict)
        for k in buffer:
            assign(buffer[k], index, values[k])
    elif isinstance(buffer, tuple):
        assert isinstance(values, tuple | list)
        for b, v in zip(buffer, values, strict=True):
            assign(b, index, v)
    else:
        buffer[index] = np.asarray(values) if not isinstance(values, tuple) else list(values)


def batch(observations: Sequence[Any], space: gym.Space[Any]) -> ObsBatch:
    """Stack single observations (as an env returns them) into a batch of storage dtypes.

    Also accepts what gymnasium's vector envs return for a batch: a dict of arrays, and
    tuples of strings for Text."""
    if isinstance(space, gym.spaces.Dict):
        return {k: batch([o[k] for o in observations], s) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(batch([o[i] for o in observations], s) for i, s in enumerate(space.spaces))
    return as_leaf(list(observations), space)


def compact(obs: ObsBatch) -> ObsBatch:
    """Text leaves narrowed to their longest string (a buffer preallocated at the space's
    ``max_length`` can be far wider than the strings it holds); other leaves unchanged."""

    def narrow(a: np.ndarray) -> np.ndarray:
        if a.dtype.kind != "U" or a.size == 0:
            return a
        return a.astype(f"<U{max(int(np.char.str_len(a).max()), 1)}")

    return map_obs(narrow, obs)


def as_leaf(values: Any, space: gym.Space[Any]) -> np.ndarray:
    """A leaf batch in its storage dtype (strings as fixed-width unicode)."""
    if isinstance(space, gym.spaces.Text):
        return np.asarray([str(v) for v in values], dtype=leaf_dtype(space))
    return np.asarray(values).astype(leaf_dtype(space), copy=False)


def from_vector(obs: Any, space: gym.Space[Any]) -> ObsBatch:
    """A vector env's batched observation (dicts of arrays; tuples of strings for Text or
    of arrays for Tuple spaces) as an :data:`ObsBatch` in storage dtypes."""
    if isinstance(space, gym.spaces.Dict):
        return {k: from_vector(obs[k], s) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(from_vector(o, s) for o, s in zip(obs, space.spaces, strict=True))
    return as_leaf(obs, space)


def obs_to_arrays(obs: ObsBatch, space: gym.Space[Any], name: str = "obs") -> dict[str, np.ndarray]:
    """``{npz key: leaf array}``: ``name`` alone for a flat space, else ``name/<path>``."""
    return {
        (f"{name}{SEP}{path}" if path else name): array
        for (path, _), array in zip(leaves(space), leaf_arrays(obs, space), strict=True)
    }


def obs_from_arrays(
    arrays: dict[str, np.ndarray], space: gym.Space[Any], name: str = "obs", where: str = "data"
) -> ObsBatch:
    """Inverse of :func:`obs_to_arrays`; a missing key raises ``DatasetError`` naming it."""
    out = []
    for path, _ in leaves(space):
        key = f"{name}{SEP}{path}" if path else name
        if key not in arrays:
            raise DatasetError(f"{where}: field {key!r} is missing")
        out.append(arrays[key])
    return from_leaf_arrays(out, space)


def validate(obs: ObsBatch, space: gym.Space[Any], n: int, where: str, name: str = "obs") -> None:
    """Check each leaf: ``n`` rows, its shape, dtype kind and (Discrete, MultiDiscrete,
    MultiBinary, Text) its values; ``DatasetError('<where>: field <name/key> ...')``."""
    try:
        arrays = leaf_arrays(obs, space)
    except (TypeError, KeyError, ValueError, IndexError) as exc:
        raise DatasetError(f"{where}: field {name!r} does not match {space}: {exc}") from exc
    for (path, leaf), array in zip(leaves(space), arrays, strict=True):
        field = f"{name}{SEP}{path}" if path else name
        _validate_leaf(array, leaf, n, f"{where}: field {field!r}")


def _validate_leaf(array: np.ndarray, space: gym.Space[Any], n: int, where: str) -> None:
    shape = () if isinstance(space, gym.spaces.Text) else tuple(space.shape or ())
    if array.shape != (n, *shape):
        raise DatasetError(f"{where} has shape {array.shape}, expected {(n, *shape)}")
    if isinstance(space, gym.spaces.Text):
        if array.dtype.kind != "U":
            raise DatasetError(f"{where} must hold strings (unicode), got {array.dtype}")
        if n and int(np.char.str_len(array).max()) > int(space.max_length):
            raise DatasetError(f"{where} holds a string longer than {space.max_length}")
        return
    if array.dtype.kind not in "biuf":
        raise DatasetError(f"{where} must be numeric, got {array.dtype}")
    if isinstance(space, gym.spaces.Box):
        if np.dtype(space.dtype).kind in "iu" and array.dtype.kind not in "iub":
            raise DatasetError(f"{where} must be integers ({space.dtype}), got {array.dtype}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise DatasetError(f"{where} contains NaN or inf")
        return
    if array.dtype.kind == "f" and n and not np.array_equal(array, np.round(array)):
        raise DatasetError(f"{where} must hold integers, got fractional values")
    if isinstance(space, gym.spaces.Discrete):
        low, high = int(space.start), int(space.start + space.n)
    elif isinstance(space, gym.spaces.MultiDiscrete):
        low, high = 0, 0  # checked per factor below
        if n and (np.any(array < space.start) or np.any(array >= space.start + space.nvec)):
            raise DatasetError(f"{where} holds values outside {space}")
        return
    else:  # MultiBinary
        low, high = 0, 2
    if n and (int(array.min()) < low or int(array.max()) >= high):
        raise DatasetError(f"{where} holds values outside [{low}, {high - 1}]")


def obs_space_to_json(space: gym.Space[Any]) -> dict[str, Any]:
    """JSON form of an observation space (Dict, Tuple and Text on top of the flat spaces)."""
    space = canonical_space(space)
    if isinstance(space, gym.spaces.Dict):
        return {
            "type": "Dict",
            "keys": [str(k) for k in space.spaces],
            "spaces": [obs_space_to_json(s) for s in space.spaces.values()],
        }
    if isinstance(space, gym.spaces.Tuple):
        return {"type": "Tuple", "spaces": [obs_space_to_json(s) for s in space.spaces]}
    if isinstance(space, gym.spaces.Text):
        return {
            "type": "Text",
            "min_length": int(space.min_length),
            "max_length": int(space.max_length),
            "charset": "".join(sorted(space.character_set)),
        }
    return space_to_json(space)


def obs_space_from_json(spec: dict[str, Any]) -> gym.Space[Any]:
    """Inverse of :func:`obs_space_to_json`; ``ValueError`` on a malformed spec."""
    kind = spec.get("type")
    if kind == "Dict":
        keys, spaces = spec["keys"], spec["spaces"]
        if len(keys) != len(spaces):
            raise ValueError("Dict space: keys and spaces differ in length")
        # a list of pairs keeps the recorded order (a dict would be sorted by gymnasium)
        return gym.spaces.Dict(
            [(str(k), obs_space_from_json(s)) for k, s in zip(keys, spaces, strict=True)]
        )
    if kind == "Tuple":
        return gym.spaces.Tuple(tuple(obs_space_from_json(s) for s in spec["spaces"]))
    if kind == "Text":
        return gym.spaces.Text(
            int(spec["max_length"]),
            min_length=int(spec.get("min_length", 1)),
            charset=str(spec["charset"]),
        )
    return space_from_json(spec)
