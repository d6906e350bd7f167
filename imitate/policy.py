"""Policies: the batched ``Policy`` protocol, the torch ``MLPPolicy``, checkpoints.

A ``Policy`` maps a batch of observations ``[B, *obs_shape]`` to a batch of
actions ``[B, *action_shape]``, numpy in and out. Heuristic experts, wrapped
SB3 models, torch learners and exported runtimes all satisfy it, so one
rollout path serves them all. A ``SoftPolicy`` also exposes its raw outputs
(logits, Q-values or distribution parameters). A ``RecurrentPolicy`` carries
per-episode state ``[B, S]`` that the rollout loop holds and resets, explicitly;
``JSGatedPolicy`` is one: it holds its action while the action distribution stays
Jensen-Shannon-close to the one the action was chosen at.

Checkpoints follow nanoGPT: weights + constructor arguments + training config +
library versions; never a pickled object. The file is safetensors with a JSON
header (:mod:`imitate.runtime`, readable without torch); older ``torch.save``
files are still read with ``weights_only=True``. The protocols and the numpy
forward pass live in :mod:`imitate.runtime` and are re-exported here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from imitate import runtime
from imitate.configs import Activation, PolicyConfig
from imitate.encoded import EncodedPolicy, encoded_policy_from_checkpoint
from imitate.errors import CheckpointError, UnsupportedSpaceError
from imitate.runtime import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    NumpyLayers,
    NumpyMLPPolicy,
    Policy,
    PolicyMeta,
    RecurrentPolicy,
    SoftPolicy,
    StochasticPolicy,
)
from imitate.spaces import (
    ActionHead,
    CategoricalHead,
    flat_obs_dim,
    head_for_space,
    space_from_json,
    space_to_json,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "Activation",
    "JSGatedPolicy",
    "MLPPolicy",
    "NumpyLayers",
    "NumpyMLPPolicy",
    "Policy",
    "PolicyConfig",
    "PolicyMeta",
    "RecurrentPolicy",
    "SoftPolicy",
    "StochasticPolicy",
    "fast_policy",
    "load_checkpoint",
    "load_policy",
    "load_policy_with_meta",
    "save_policy",
]


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
    consecutive distributions are close: train with ``LossConfig.temporal_js`` so that they
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

    def numpy_snapshot(self) -> JSGatedPolicy:
        """The same gate around the fastest copy of the wrapped policy."""
        return replace(self, policy=runtime.fast_policy(self.policy))  # type: ignore[arg-type]


_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "hardtanh": nn.Hardtanh,
}


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
        n_params = runtime.mlp_parameter_count(self.obs_dim, config.hidden, self.head.n_outputs)
        if n_params > runtime.MAX_PARAMETERS:
            raise UnsupportedSpaceError(
                f"an MLP of {self.obs_dim} inputs, hidden {list(config.hidden)} and "
                f"{self.head.n_outputs} outputs has {n_params:,} parameters, more than "
                f"{runtime.MAX_PARAMETERS:,}"
            )
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
            observation_space=self.observation_space,
            action_space=self.action_space,
        )

    def __repr__(self) -> str:
        """One line (torch's module tree is in ``repr(policy.net)``)."""
        return (
            f"MLPPolicy(obs_dim={self.obs_dim}, hidden={list(self.config.hidden)}, "
            f"activation={self.config.activation!r}, head={self.head!r}, "
            f"parameters={self.n_parameters()})"
        )


def fast_policy(policy: Policy) -> Policy:
    """The fastest equivalent of ``policy`` for rollouts (a numpy snapshot of an MLPPolicy)."""
    return runtime.fast_policy(policy)


def _versions() -> dict[str, str]:
    from imitate.version import __version__

    return {
        "imitate": __version__,
        "torch": str(torch.__version__),
        "gymnasium": str(gym.__version__),
    }


def save_policy(
    policy: MLPPolicy | EncodedPolicy,
    path: str | os.PathLike[str],
    config: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically: weights (safetensors) + a JSON header of constructor
    args, config and versions (see :mod:`imitate.runtime`). Kind ``mlp`` for an
    ``MLPPolicy``, ``encoded`` for an :class:`~imitate.encoded.EncodedPolicy` (its
    constructor holds the encoder's, the Text vocabulary included)."""
    header = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "kind": "encoded" if isinstance(policy, EncodedPolicy) else "mlp",
        "constructor": policy.constructor_args(),
        # what train_bc / load_policy attached: env, expert and seeds (explicit config wins)
        "config": {**getattr(policy, "provenance", {}), **(config or {})},
        "versions": _versions(),
    }
    weights = {k: v.detach().cpu().numpy() for k, v in policy.state_dict().items()}
    return runtime.write_checkpoint(path, weights, header)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a checkpoint dict (no code is unpickled); ``state_dict`` as tensors."""
    checkpoint = runtime.read_checkpoint(path)
    weights = checkpoint.pop("weights", {})
    checkpoint["state_dict"] = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}
    return checkpoint


def load_policy(path: str | os.PathLike[str]) -> Any:
    """Load a checkpoint written by :func:`save_policy` (its metadata: ``policy.provenance``,
    or :func:`load_policy_with_meta` for the typed record): an ``MLPPolicy`` (kind ``mlp``)
    or an :class:`~imitate.encoded.EncodedPolicy` (kind ``encoded``; typed ``Any`` so that
    callers written for the MLP keep type-checking)."""
    return load_policy_with_meta(path)[0]


def load_policy_with_meta(path: str | os.PathLike[str]) -> tuple[Any, PolicyMeta]:
    """The policy of a checkpoint and its :class:`PolicyMeta`, from one read of the file."""
    checkpoint = load_checkpoint(path)
    if checkpoint.get("kind") == "encoded":
        return encoded_policy_from_checkpoint(checkpoint, path), PolicyMeta.from_header(checkpoint)
    if checkpoint.get("kind") != "mlp":
        raise CheckpointError(f"{path}: unsupported policy kind {checkpoint.get('kind')!r}")
    try:
        args = checkpoint["constructor"]
        observation_space = space_from_json(args["observation_space"])
        action_space = space_from_json(args["action_space"])
        config = PolicyConfig(hidden=tuple(args["hidden"]), activation=args["activation"])
        weights = {k: v.numpy() for k, v in checkpoint["state_dict"].items()}
        runtime.check_weights(weights, observation_space, action_space, config.hidden, path)
        policy = MLPPolicy(observation_space, action_space, config)
        policy.load_state_dict(checkpoint["state_dict"])
    except CheckpointError:
        raise
    except (KeyError, ValueError, TypeError, RuntimeError, UnsupportedSpaceError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: checkpoint does not match its architecture ({first_line})"
        ) from exc
    policy.eval()
    policy.provenance = dict(checkpoint.get("config") or {})
    return policy, PolicyMeta.from_header(checkpoint)
