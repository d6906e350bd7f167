"""The torch-free inference side of policies: protocols, numpy MLPs, checkpoint files.

Everything a rollout needs, without importing torch: the batched ``Policy``
protocols, :class:`NumpyLayers` / :class:`NumpyMLPPolicy` (float32 numpy forward
passes) and the checkpoint file format. ``imitate collect``, ``imitate eval`` and
the rollout loop import only this module, so they start in a fraction of a second;
training and exports use :mod:`imitate.policy` (torch), which re-exports all of it.

Checkpoint files (written by :func:`imitate.policy.save_policy`) are
`safetensors <https://github.com/huggingface/safetensors>`_ files: the weights as
named float32 tensors, and a JSON header (format, kind, constructor arguments,
config, library versions) in the safetensors metadata under the key ``imitate``.
Reading one runs no code (no pickle) and needs numpy only. Files written before
(``torch.save`` of a plain dict) are still read, with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from imitate.errors import CheckpointError, scrub

if TYPE_CHECKING:
    import gymnasium as gym
    from torch import nn

    from imitate.spaces import ActionHead

CHECKPOINT_FORMAT = "imitate-policy"
CHECKPOINT_VERSION = 1
METADATA_KEY = "imitate"
_TORCH_ZIP_MAGIC = b"PK\x03\x04"


@runtime_checkable
class Policy(Protocol):
    """Anything with a batched ``act``: ``obs [B, *obs_shape] -> actions [B, *action_shape]``."""

    def act(self, obs: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class SoftPolicy(Policy, Protocol):
    """A Policy that also returns its raw outputs ``[B, n_outputs]`` (logits, Q-values, ...)."""

    def logits(self, obs: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class StochasticPolicy(Policy, Protocol):
    """A Policy that draws random numbers; sharded rollouts give each shard its own stream."""

    def reseed(self, seed: int) -> None: ...


@runtime_checkable
class RecurrentPolicy(Policy, Protocol):
    """A Policy with per-episode state ``[B, S]``, carried by the caller: the rollout loop
    starts every episode from ``initial_state`` and calls ``step`` on each batch of the
    slots it steps. ``act`` is a first step (every row from the initial state)."""

    def initial_state(self, batch: int) -> np.ndarray: ...

    def step(self, obs: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class NumpyLayers:
    """Linear / Tanh / ReLU / Hardtanh / Flatten / Identity modules evaluated in numpy (float32).

    For batches of a few dozen observations numpy's per-call cost is several
    times lower than torch's, which dominates rollout and teacher-query speed for
    small MLPs. Weights are copied: later training of the source does not change it.
    ``ops``: ``(kind, weight [in, out] or None, bias [out] or None)`` per layer.
    """

    def __init__(self, ops: list[tuple[str, Any, Any]]) -> None:
        self.ops = ops

    def __repr__(self) -> str:
        shapes = [f"{w.shape[0]}->{w.shape[1]}" if w is not None else k for k, w, _ in self.ops]
        return f"NumpyLayers({', '.join(shapes)})"

    @classmethod
    def from_arrays(cls, kinds: Iterable[str], arrays: Mapping[str, Any]) -> NumpyLayers:
        """Rebuild from an export's layer kinds and its ``W0, b0, W1, b1, ...`` arrays (one
        pair per ``linear``, in order), as the numpy exports store them."""
        ops: list[tuple[str, Any, Any]] = []
        layer = 0
        for kind in kinds:
            if kind == "linear":
                ops.append(("linear", arrays[f"W{layer}"], arrays[f"b{layer}"]))
                layer += 1
            else:
                ops.append((kind, None, None))
        return cls(ops)

    @classmethod
    def from_modules(cls, modules: Iterable[nn.Module]) -> NumpyLayers:
        """Copy a chain of supported torch modules; ``ValueError`` names an unsupported one."""
        from torch import nn

        ops: list[tuple[str, Any, Any]] = []
        for module in _flatten_modules(modules):
            if isinstance(module, nn.Linear):
                weight = module.weight.detach().numpy().T.astype(np.float32).copy()
                bias = None if module.bias is None else module.bias.detach().numpy().copy()
                ops.append(("linear", weight, bias))
            elif isinstance(module, nn.Tanh):
                ops.append(("tanh", None, None))
            elif isinstance(module, nn.ReLU):
                ops.append(("relu", None, None))
            elif isinstance(module, nn.Hardtanh) and (module.min_val, module.max_val) == (-1, 1):
                ops.append(("hardtanh", None, None))
            elif isinstance(module, nn.Flatten):
                ops.append(("flatten", None, None))
            elif not isinstance(module, nn.Identity):
                raise ValueError(f"no numpy equivalent for {type(module).__name__}")
        return cls(ops)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.trace(x)[-1]

    def trace(self, x: np.ndarray) -> list[np.ndarray]:
        """The input and every op's output, in order (the last is ``self(x)``); the numpy
        BC trainer (:mod:`imitate.fastbc`) back-propagates through them."""
        h = np.asarray(x, dtype=np.float32)
        values = [h]
        for kind, weight, bias in self.ops:
            if kind == "linear":
                h = h @ weight
                if bias is not None:
                    h = h + bias
            elif kind == "tanh":
                h = np.tanh(h)
            elif kind == "relu":
                h = np.maximum(h, 0.0)
            elif kind == "hardtanh":
                h = np.clip(h, -1.0, 1.0)
            else:
                h = h.reshape(len(h), -1)
            values.append(h)
        return values

    def n_parameters(self) -> int:
        return sum(w.size + (0 if b is None else b.size) for _, w, b in self.ops if w is not None)


def _flatten_modules(modules: Iterable[nn.Module]) -> list[nn.Module]:
    """Expand nested Sequentials (and other containers of children) into a flat list."""
    flat: list[nn.Module] = []
    for module in modules:
        children = list(module.children())
        flat.extend(_flatten_modules(children) if children else [module])
    return flat


class NumpyMLPPolicy:
    """Pure-numpy forward pass of an MLPPolicy (float32), a SoftPolicy.

    ``observation_space`` / ``action_space`` are set when known (from a checkpoint or
    the torch policy), so the rollout code can check them against an env."""

    def __init__(
        self,
        layers: NumpyLayers,
        obs_mean: np.ndarray,
        obs_std: np.ndarray,
        head: ActionHead,
        observation_space: gym.Space[Any] | None = None,
        action_space: gym.Space[Any] | None = None,
    ) -> None:
        self.layers = layers
        # Fold normalisation into one multiply-add: (x - mean) / std = x * scale + shift.
        self.scale = (1.0 / obs_std).astype(np.float32)
        self.shift = (-obs_mean / obs_std).astype(np.float32)
        self.head = head
        self.observation_space = observation_space
        self.action_space = action_space

    def __repr__(self) -> str:
        return f"NumpyMLPPolicy({self.layers!r}, head={type(self.head).__name__})"

    def logits(self, obs: np.ndarray) -> np.ndarray:
        """Raw head outputs ``[B, n_outputs]``."""
        flat = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        return self.layers(flat * self.scale + self.shift)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions ``[B, *action_shape]``."""
        return self.head.mode_numpy(self.logits(obs))

    def n_parameters(self) -> int:
        """Parameter count (normalisation excluded), as the torch policy counts it."""
        return self.layers.n_parameters()


def fast_policy(policy: Policy) -> Policy:
    """The fastest equivalent of ``policy`` for rollouts: its ``numpy_snapshot()`` when it
    has one (the torch MLPPolicy and gates around it), else the policy itself."""
    snapshot = getattr(policy, "numpy_snapshot", None)
    return snapshot() if callable(snapshot) else policy


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_META_KEYS = ("env_id", "env_kwargs", "env_wrappers", "expert", "expert_info")
_TRAINING_KEYS = ("bc", "dagger", "distill")


@dataclass(frozen=True)
class PolicyMeta:
    """Where a policy checkpoint came from (beside :class:`~imitate.data.DatasetMeta`).

    Read from the checkpoint's header in the same read as the weights
    (:func:`imitate.policy.load_policy_with_meta`, :func:`read_policy_meta`); written by
    :func:`imitate.policy.save_policy` from the policy's ``provenance``, which the learners
    set (``train_bc``, ``dagger``, ``distill``), so a checkpoint saved from Python records
    what ``imitate bc/dagger/distill`` record. On disk it stays the header's flat
    ``config`` object (:meth:`to_config`), so older checkpoints read unchanged."""

    observation_space: dict[str, Any]
    """JSON form of the observation space (:func:`imitate.spaces.space_to_json`)."""
    action_space: dict[str, Any]
    """JSON form of the action space."""
    env_id: str | None = None
    """The env trained on (None: not recorded)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    env_wrappers: list[dict[str, Any]] = field(default_factory=list)
    expert: str | None = None
    """The expert that labelled the data, as named (``zoo``, a path, ``teacher``)."""
    expert_info: dict[str, Any] = field(default_factory=dict)
    """That expert as resolved (``spec``, ``kind``, files, ``algo``)."""
    training: dict[str, Any] = field(default_factory=dict)
    """The learner's config by learner (``bc``, ``dagger``, ``distill``), as JSON."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Other recorded keys (``data_seed``, ``dagger_seed``, a user's own)."""
    versions: dict[str, str] = field(default_factory=dict)
    """Library versions at save time (imitate, torch, gymnasium)."""

    @classmethod
    def from_header(cls, header: dict[str, Any]) -> PolicyMeta:
        """The metadata of a checkpoint header (or of a checkpoint dict)."""
        config = dict(header.get("config") or {})
        constructor = header.get("constructor") or {}
        known = {k: config.pop(k) for k in _META_KEYS if k in config}
        training = {k: config.pop(k) for k in _TRAINING_KEYS if k in config}
        return cls(
            observation_space=dict(constructor.get("observation_space") or {}),
            action_space=dict(constructor.get("action_space") or {}),
            env_id=known.get("env_id"),
            env_kwargs=dict(known.get("env_kwargs") or {}),
            env_wrappers=list(known.get("env_wrappers") or []),
            expert=known.get("expert"),
            expert_info=dict(known.get("expert_info") or {}),
            training=training,
            extra=config,
            versions=dict(header.get("versions") or {}),
        )

    def to_config(self) -> dict[str, Any]:
        """The header's ``config`` object (what :meth:`from_header` reads back)."""
        known = {
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "env_wrappers": self.env_wrappers,
            "expert": self.expert,
            "expert_info": self.expert_info,
        }
        if self.env_id is None:  # (a bare header: no env record to write)
            known = {k: v for k, v in known.items() if v not in (None, {}, [])}
        kept = {k: v for k, v in known.items() if v is not None}
        return {**kept, **self.extra, **self.training}

    def env(self) -> Any:
        """The gymnasium ``EnvSpec`` trained on (kwargs and wrappers included)."""
        from imitate.environments import spec_of_record

        if self.env_id is None:
            raise CheckpointError("the checkpoint does not record its env: pass --env")
        return spec_of_record(self.to_config())


def read_policy_meta(path: str | os.PathLike[str]) -> PolicyMeta:
    """A checkpoint's :class:`PolicyMeta` (one read of the file)."""
    return PolicyMeta.from_header(read_checkpoint(path))


def checkpoint_header(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe part of a checkpoint (everything but the weights)."""
    return {k: v for k, v in checkpoint.items() if k not in ("state_dict", "weights")}


def write_checkpoint(
    path: str | os.PathLike[str], weights: dict[str, np.ndarray], header: dict[str, Any]
) -> Path:
    """Write ``weights`` (name -> array) and the JSON ``header`` as one safetensors file,
    atomically."""
    from safetensors.numpy import save

    from imitate.fileio import write_bytes

    tensors = {k: np.ascontiguousarray(v) for k, v in weights.items()}
    data = save(tensors, metadata={METADATA_KEY: json.dumps(header, sort_keys=True)})
    return write_bytes(path, data)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a checkpoint: its header keys plus ``weights`` (name -> numpy array).

    Runs no code from the file: safetensors files are parsed as data; files of the
    older ``torch.save`` format are read with ``weights_only=True`` (imports torch)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(_folder_refusal(path))
    if not path.is_file():
        raise CheckpointError(f"{path}: policy checkpoint not found")
    try:
        data = path.read_bytes()  # one read: the header and the weights come from it
    except OSError as exc:
        raise CheckpointError(
            f"{path}: not a readable policy checkpoint ({_first_line(exc)})"
        ) from None
    magic = data[:4]
    checkpoint = (
        _read_torch(path, data) if magic == _TORCH_ZIP_MAGIC else _read_safetensors(path, data)
    )
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an imitate policy checkpoint")
    if checkpoint.get("format_version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {checkpoint.get('format_version')} "
            f"is not supported (expected {CHECKPOINT_VERSION})"
        )
    # here, not per kind, so that no loader (MLP, encoded, numpy or torch) can skip it
    check_weight_values(checkpoint.get("weights") or {}, path)
    return checkpoint


def check_weight_values(weights: Mapping[str, Any], name: str | os.PathLike[str]) -> None:
    """Every float weight finite, every normalisation divisor (``obs_std``, an encoder's
    ``std``) > 0; ``CheckpointError`` naming the field otherwise. A corrupted file's NaN
    would otherwise load and turn every output into NaN (and an export into garbage)."""
    for key in sorted(weights):
        array = np.asarray(weights[key])
        if array.dtype.kind == "f" and not np.isfinite(array).all():  # (ints are finite)
            raise CheckpointError(f"{name}: field 'state_dict.{key}' contains NaN or inf")
        if key.rpartition(".")[2] in ("obs_std", "std") and not bool((array > 0).all()):
            raise CheckpointError(f"{name}: field 'state_dict.{key}' must be > 0 everywhere")


def _folder_refusal(folder: Path) -> str:
    """Why a folder is not a checkpoint, naming the file to pass: a run folder's
    ``policy.pt``, else its sub-runs' (``imitate run``: ``bc_<n>/``, ``dagger/``, ...)."""
    own = folder / "policy.pt"
    if own.is_file():
        return f"{folder}: is a folder; pass its checkpoint: --policy {own}"
    inner = sorted(
        p for p in folder.glob("*/policy.pt") if p.is_file() and not p.parent.name.startswith(".")
    )
    if not inner:
        return f"{folder}: is a folder, not a policy checkpoint (a .pt file)"
    first = f"{folder}: is a folder; pass one of its checkpoints: --policy {inner[0]}"
    if len(inner) == 1:
        return first
    more = ", ..." if len(inner) > 4 else ""
    return f"{first} (or {', '.join(str(p) for p in inner[1:4])}{more})"


def _read_safetensors(path: Path, data: bytes) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    size = int.from_bytes(data[:8], "little")  # the safetensors layout: u64 header length,
    try:  # then the JSON header
        if not 0 < size <= len(data) - 8:
            raise ValueError("no header")
        layout = json.loads(data[8 : 8 + size])
    except ValueError:  # a text file, an image...: parser details would say nothing more
        raise CheckpointError(
            f"{path}: not a readable policy checkpoint (neither the safetensors nor the "
            "torch.save format)"
        ) from None
    metadata = (layout.get("__metadata__") if isinstance(layout, dict) else None) or {}
    if not isinstance(metadata, dict) or METADATA_KEY not in metadata:
        raise CheckpointError(
            f"{path}: a safetensors file without imitate's header, not an imitate policy checkpoint"
        )
    try:
        header = json.loads(metadata[METADATA_KEY])
        weights = load(data)
    except (SafetensorError, OSError, KeyError, ValueError, AttributeError) as exc:
        raise CheckpointError(
            f"{path}: not a readable policy checkpoint ({_first_line(exc)})"
        ) from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not an imitate policy checkpoint")
    return {**header, "weights": weights}


def _read_torch(path: Path, data: bytes) -> dict[str, Any]:
    """An older ``torch.save`` checkpoint (``weights_only``), its tensors as numpy arrays."""
    import io

    import torch

    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        if path.suffix == ".npz":  # a zip too: a dataset or a numpy export, named as one
            raise CheckpointError(
                f"{path}: an .npz file (a dataset or a numpy export), not a policy checkpoint (.pt)"
            ) from None
        raise CheckpointError(
            f"{path}: not a readable policy checkpoint ({scrub(str(exc)) or _first_line(exc)})"
        ) from None
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        state = checkpoint.pop("state_dict")
        weights = {}
        for key, value in state.items():
            try:
                weights[key] = value.detach().cpu().numpy()
            except (AttributeError, TypeError):  # not a tensor, or bfloat16 (no numpy dtype)
                what = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
                raise CheckpointError(
                    f"{path}: field 'state_dict.{key}' is {what}, which imitate checkpoints "
                    "do not hold (not an imitate policy checkpoint)"
                ) from None
        checkpoint["weights"] = weights
    return checkpoint


def numpy_policy(checkpoint: dict[str, Any], name: str = "checkpoint") -> NumpyMLPPolicy:
    """The numpy forward pass of an MLP checkpoint read by :func:`read_checkpoint`."""
    from imitate.spaces import head_for_space, space_from_json

    if checkpoint.get("kind") != "mlp":
        raise CheckpointError(f"{name}: unsupported policy kind {checkpoint.get('kind')!r}")
    weights: dict[str, np.ndarray] = checkpoint["weights"]
    try:
        args = checkpoint["constructor"]
        obs_space = space_from_json(args["observation_space"])
        action_space = space_from_json(args["action_space"])
        check_weights(weights, obs_space, action_space, tuple(args["hidden"]), name)
        n_linear = len(args["hidden"]) + 1
        activation = str(args["activation"])
        ops: list[tuple[str, Any, Any]] = []
        for i in range(n_linear):  # net = Linear, act, Linear, act, ..., Linear
            weight = np.asarray(weights[f"net.{2 * i}.weight"], np.float32)
            bias = np.asarray(weights[f"net.{2 * i}.bias"], np.float32)
            ops.append(("linear", weight.T.copy(), bias))
            if i < n_linear - 1:
                ops.append((activation, None, None))
        expected = {f"net.{2 * i}.{p}" for i in range(n_linear) for p in ("weight", "bias")}
        unexpected = set(weights) - expected - {"obs_mean", "obs_std"}
        if unexpected or activation not in ("tanh", "relu", "hardtanh"):
            raise ValueError(f"unexpected weights {sorted(unexpected)} or activation")
        head = head_for_space(action_space)
        if ops[-1][1].shape[1] != head.n_outputs:
            raise ValueError("output layer does not match the action head")
        return NumpyMLPPolicy(
            NumpyLayers(ops),
            np.asarray(weights["obs_mean"], np.float32),
            np.asarray(weights["obs_std"], np.float32),
            head,
            obs_space,
            action_space,
        )
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise CheckpointError(
            f"{name}: checkpoint does not match its architecture ({_first_line(exc)})"
        ) from exc


def load_numpy_policy(path: str | os.PathLike[str]) -> NumpyMLPPolicy:
    """Load a policy checkpoint for inference with numpy only (torch is not imported for
    safetensors checkpoints)."""
    return numpy_policy(read_checkpoint(path), str(path))


MAX_PARAMETERS = 100_000_000
"""Largest MLP built (400 MB of float32): checked before anything is allocated."""


def mlp_parameter_count(obs_dim: int, hidden: Iterable[int], n_outputs: int) -> int:
    """Weights and biases of an MLP ``obs_dim -> hidden... -> n_outputs``."""
    count, width = 0, obs_dim
    for size in (*hidden, n_outputs):
        count += (width + 1) * size
        width = size
    return count


def check_weights(
    weights: dict[str, np.ndarray],
    observation_space: gym.Space[Any],
    action_space: gym.Space[Any],
    hidden: tuple[int, ...],
    name: str | os.PathLike[str],
) -> None:
    """Before anything is allocated: the constructor's shapes must be the weights' shapes
    (so sizes are bounded by what the file holds); ``CheckpointError`` naming the field
    otherwise. The values (finite, ``obs_std > 0``) are :func:`check_weight_values`',
    which :func:`read_checkpoint` runs on every checkpoint."""
    from imitate.spaces import flat_obs_dim, head_for_space

    obs_dim = flat_obs_dim(observation_space)
    n_outputs = head_for_space(action_space).n_outputs
    expected: dict[str, tuple[int, ...]] = {"obs_mean": (obs_dim,), "obs_std": (obs_dim,)}
    width = obs_dim
    for i, size in enumerate((*hidden, n_outputs)):
        expected[f"net.{2 * i}.weight"] = (int(size), width)
        expected[f"net.{2 * i}.bias"] = (int(size),)
        width = int(size)
    for key, shape in expected.items():
        if key not in weights:
            raise CheckpointError(
                f"{name}: checkpoint does not match its architecture (no 'state_dict.{key}')"
            )
        if tuple(np.shape(weights[key])) != shape:
            raise CheckpointError(
                f"{name}: checkpoint does not match its architecture (field 'state_dict.{key}' "
                f"has shape {tuple(np.shape(weights[key]))}, the constructor needs {shape})"
            )
