"""Policies: the batched ``Policy`` protocol, the torch ``MLPPolicy``, checkpoints.

A ``Policy`` maps a batch of observations ``[B, *obs_shape]`` to a batch of
actions ``[B, *action_shape]``, numpy in and out. Heuristic experts, wrapped
SB3 models, torch learners and exported runtimes all satisfy it, so one
rollout path serves them all. A ``SoftPolicy`` also exposes its raw outputs
(logits, Q-values or distribution parameters). A ``RecurrentPolicy`` carries
per-episode state ``[B, S]`` that the rollout loop holds and resets, explicitly;
``JSGatedPolicy`` is one: it holds its action while the action distribution stays
Jensen-Shannon-close to the one the action was chosen at.

Checkpoints follow nanoGPT: a dict of weights + constructor arguments +
training config + library versions, loaded with ``weights_only=True``; never a
pickled object.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from imitate.errors import CheckpointError, UnsupportedSpaceError
from imitate.fileio import atomic_write
from imitate.spaces import (
    ActionHead,
    CategoricalHead,
    flat_obs_dim,
    head_for_space,
    space_from_json,
    space_to_json,
)

CHECKPOINT_FORMAT = "imitate-policy"
CHECKPOINT_VERSION = 1

Activation = Literal["tanh", "relu"]


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


def js_gate(logits: Tensor, anchor: Tensor, threshold: float | Tensor) -> Tensor:
    """The JS gate's next anchor ``[B, n]``: the current ``logits`` where the anchor is
    unset (NaN row) or its distribution is more than ``threshold`` nats (JS) away from the
    current one, else the anchor. The held action is the anchor's argmax. Shared by
    :class:`JSGatedPolicy` and the ONNX export's traced step."""
    from imitate.losses import js_divergence

    fresh = torch.isnan(anchor).any(dim=-1)
    moved = js_divergence(logits, torch.where(fresh[:, None], logits, anchor), "none")
    switch = fresh | (moved > threshold)
    return torch.where(switch[:, None], logits, anchor)


@dataclass(frozen=True)
class JSGatedPolicy:
    """Temporal smoothness at execution: keep the previous action until the action
    distribution has moved more than ``threshold`` nats (Jensen-Shannon divergence) from
    the distribution at which that action was chosen; then take the new argmax.

    ``policy``: a Discrete-action SoftPolicy (logits ``[B, n_actions]``). ``threshold`` in
    ``[0, ln 2)``; 0 is the policy's own argmax. The gate can only hold back flips where
    consecutive distributions are close: train with ``BCConfig.temporal_js`` so that they
    are (a plain CE clone switches between near-one-hot distributions, JS ~ ln 2).
    State ``[B, n_actions]``: the anchor's logits (NaN: no action chosen yet).
    """

    policy: SoftPolicy
    threshold: float
    head: CategoricalHead

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold < np.log(2.0):
            raise ValueError(f"threshold must be in [0, ln 2), got {self.threshold}")

    @classmethod
    def wrap(cls, policy: SoftPolicy, threshold: float) -> JSGatedPolicy:
        """Gate a policy with a categorical head (an MLPPolicy or its numpy snapshot)."""
        head = getattr(policy, "head", None)
        if not isinstance(head, CategoricalHead):
            raise UnsupportedSpaceError("the JS gate needs a policy with a Discrete action head")
        return cls(policy, threshold, head)

    def initial_state(self, batch: int) -> np.ndarray:
        return np.full((batch, self.head.n), np.nan, dtype=np.float32)

    def step(self, obs: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``obs [B, ...]``, ``state [B, n_actions]`` -> ``(actions [B], state [B, n_actions])``."""
        logits = np.asarray(self.policy.logits(obs), dtype=np.float32)
        with torch.no_grad():
            anchor = js_gate(torch.as_tensor(logits), torch.as_tensor(state), self.threshold)
        return self.head.mode_numpy(anchor.numpy()), anchor.numpy()

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.step(obs, self.initial_state(len(obs)))[0]


@dataclass(frozen=True)
class PolicyConfig:
    """Architecture of an MLP policy."""

    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths."""
    activation: Activation = "tanh"
    """Hidden activation."""


_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


class MLPPolicy(nn.Module):
    """MLP from flat observations to the outputs of the action head.

    Observation normalisation (mean/std fitted on data) is stored as buffers,
    so it travels with the weights into checkpoints and exports.

    Args:
        observation_space: Box observation space (flattened to ``obs_dim`` features).
        action_space: any space :func:`imitate.spaces.head_for_space` supports.
        config: hidden sizes and activation.
    """

    obs_mean: Tensor
    obs_std: Tensor

    def __init__(
        self,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        config: PolicyConfig = PolicyConfig(),
    ) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        self.config = config
        self.obs_dim = flat_obs_dim(observation_space)
        self.head: ActionHead = head_for_space(action_space)
        layers: list[nn.Module] = []
        width = self.obs_dim
        for size in config.hidden:
            layers += [nn.Linear(width, size), _ACTIVATIONS[config.activation]()]
            width = size
        layers.append(nn.Linear(width, self.head.n_outputs))
        self.net = nn.Sequential(*layers)
        self.provenance: dict[str, Any] = {}
        """Env, expert and seeds of the data it was trained on (saved in checkpoints)."""
        self.register_buffer("obs_mean", torch.zeros(self.obs_dim))
        self.register_buffer("obs_std", torch.ones(self.obs_dim))

    def constructor_args(self) -> dict[str, Any]:
        """JSON-safe arguments that rebuild this architecture."""
        return {
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
            "hidden": list(self.config.hidden),
            "activation": self.config.activation,
        }

    def fit_normalizer(self, obs: np.ndarray) -> None:
        """Set the observation mean/std from data ``[N, *obs_shape]`` (constant features: std 1)."""
        flat = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
        std = flat.std(axis=0)
        std[std < 1e-6] = 1.0
        self.obs_mean.copy_(torch.as_tensor(flat.mean(axis=0), dtype=torch.float32))
        self.obs_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def normalize(self, obs: Tensor) -> Tensor:
        """Flatten ``[B, *obs_shape]`` to ``[B, obs_dim]`` and apply the fitted normalisation."""
        flat = obs.reshape(obs.shape[0], -1).to(torch.float32)
        return (flat - self.obs_mean) / self.obs_std

    def forward(self, obs: Tensor) -> Tensor:
        """Raw head outputs ``[B, n_outputs]`` for observations ``[B, *obs_shape]``."""
        return self.net(self.normalize(obs))

    def logits(self, obs: np.ndarray) -> np.ndarray:
        """Raw head outputs as numpy ``[B, n_outputs]``."""
        with torch.inference_mode():
            return self.forward(torch.as_tensor(np.asarray(obs, dtype=np.float32))).numpy()

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions ``[B, *action_shape]`` (the head's mode)."""
        with torch.inference_mode():
            outputs = self.forward(torch.as_tensor(np.asarray(obs, dtype=np.float32)))
            return self.head.to_env_actions(self.head.mode(outputs))

    def n_parameters(self) -> int:
        """Trainable parameter count (normalisation buffers excluded)."""
        return sum(p.numel() for p in self.parameters())

    def numpy_snapshot(self) -> NumpyMLPPolicy:
        """A frozen pure-numpy copy of the current weights, for fast rollouts."""
        return NumpyMLPPolicy(
            layers=NumpyLayers.from_modules(self.net),
            obs_mean=self.obs_mean.numpy().copy(),
            obs_std=self.obs_std.numpy().copy(),
            head=self.head,
        )


class NumpyLayers:
    """A chain of Linear / Tanh / ReLU / Flatten / Identity modules evaluated in numpy (float32).

    For batches of a few dozen observations numpy's per-call cost is several
    times lower than torch's, which dominates rollout and teacher-query speed for
    small MLPs. Weights are copied: later training of the source does not change it.
    """

    def __init__(self, ops: list[tuple[str, Any, Any]]) -> None:
        self.ops = ops  # (kind, weight [in, out] or None, bias [out] or None)

    @classmethod
    def from_modules(cls, modules: Iterable[nn.Module]) -> NumpyLayers:
        """Copy a chain of supported modules; ``ValueError`` names an unsupported one."""
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
            elif isinstance(module, nn.Flatten):
                ops.append(("flatten", None, None))
            elif not isinstance(module, nn.Identity):
                raise ValueError(f"no numpy equivalent for {type(module).__name__}")
        return cls(ops)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h = np.asarray(x, dtype=np.float32)
        for kind, weight, bias in self.ops:
            if kind == "linear":
                h = h @ weight
                if bias is not None:
                    h = h + bias
            elif kind == "tanh":
                h = np.tanh(h)
            elif kind == "relu":
                h = np.maximum(h, 0.0)
            else:
                h = h.reshape(len(h), -1)
        return h


def _flatten_modules(modules: Iterable[nn.Module]) -> list[nn.Module]:
    """Expand nested Sequentials (and other containers of children) into a flat list."""
    flat: list[nn.Module] = []
    for module in modules:
        children = list(module.children())
        flat.extend(_flatten_modules(children) if children else [module])
    return flat


class NumpyMLPPolicy:
    """Pure-numpy forward pass of an MLPPolicy (float32), a SoftPolicy."""

    def __init__(
        self, layers: NumpyLayers, obs_mean: np.ndarray, obs_std: np.ndarray, head: ActionHead
    ) -> None:
        self.layers = layers
        # Fold normalisation into one multiply-add: (x - mean) / std = x * scale + shift.
        self.scale = (1.0 / obs_std).astype(np.float32)
        self.shift = (-obs_mean / obs_std).astype(np.float32)
        self.head = head

    def logits(self, obs: np.ndarray) -> np.ndarray:
        """Raw head outputs ``[B, n_outputs]``."""
        flat = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        return self.layers(flat * self.scale + self.shift)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions ``[B, *action_shape]``."""
        return self.head.mode_numpy(self.logits(obs))


def fast_policy(policy: Policy) -> Policy:
    """The fastest equivalent of ``policy`` for rollouts (a numpy snapshot of an MLPPolicy)."""
    if isinstance(policy, MLPPolicy):
        return policy.numpy_snapshot()
    if isinstance(policy, JSGatedPolicy) and isinstance(policy.policy, MLPPolicy):
        return replace(policy, policy=policy.policy.numpy_snapshot())
    return policy


def _versions() -> dict[str, str]:
    from imitate import __version__

    return {
        "imitate": __version__,
        "torch": str(torch.__version__),
        "gymnasium": str(gym.__version__),
    }


def save_policy(
    policy: MLPPolicy, path: str | os.PathLike[str], config: dict[str, Any] | None = None
) -> Path:
    """Write a checkpoint atomically: weights + constructor args + config + versions."""
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "kind": "mlp",
        "state_dict": {k: v.detach().clone() for k, v in policy.state_dict().items()},
        "constructor": policy.constructor_args(),
        # what train_bc / load_policy attached: env, expert and seeds (explicit config wins)
        "config": {**getattr(policy, "provenance", {}), **(config or {})},
        "versions": _versions(),
    }
    return atomic_write(path, lambda f: torch.save(checkpoint, f))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a checkpoint dict (no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: policy checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable policy checkpoint ({reason})") from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an imitate policy checkpoint")
    if checkpoint.get("format_version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {checkpoint.get('format_version')} "
            f"is not supported (expected {CHECKPOINT_VERSION})"
        )
    return checkpoint


def load_policy(path: str | os.PathLike[str]) -> MLPPolicy:
    """Load an ``MLPPolicy`` checkpoint written by :func:`save_policy`."""
    checkpoint = load_checkpoint(path)
    if checkpoint.get("kind") != "mlp":
        raise CheckpointError(f"{path}: unsupported policy kind {checkpoint.get('kind')!r}")
    try:
        args = checkpoint["constructor"]
        policy = MLPPolicy(
            space_from_json(args["observation_space"]),
            space_from_json(args["action_space"]),
            PolicyConfig(hidden=tuple(args["hidden"]), activation=args["activation"]),
        )
        policy.load_state_dict(checkpoint["state_dict"])
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: checkpoint does not match its architecture ({first_line})"
        ) from exc
    policy.eval()
    policy.provenance = dict(checkpoint.get("config") or {})
    return policy
