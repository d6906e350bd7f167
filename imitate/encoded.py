"""The torch policy for any observation space: encoder + trunk + head.

:class:`EncodedPolicy` composes the observation encoder chosen from the observation
space (:func:`imitate.encoders.encoder_for_space`), an MLP trunk (``PolicyConfig``:
hidden sizes, activation) and the action head chosen from the action space
(:func:`imitate.spaces.head_for_space`). Its observations are
:data:`imitate.observations.ObsBatch` es (arrays, dicts, tuples; strings for Text).

* :meth:`EncodedPolicy.numpy_snapshot` is the torch-free copy for rollouts
  (:class:`NumpyEncodedPolicy`: the encoder's numpy forward + :class:`NumpyLayers`);
* :func:`imitate.policy.save_policy` / :func:`imitate.policy.load_policy` (or
  :func:`load_encoded_policy`) write and read its checkpoint (kind ``encoded``):
  weights in safetensors, the constructor (encoder JSON with the Text vocabulary) in
  the JSON header, no pickle;
* :class:`EncodedActionGraph` is the traceable observation -> action module of the
  ONNX export (:func:`imitate.export.onnx.export_onnx`; inputs ``obs.<key>``, one per
  leaf; text as token ids).

``MLPPolicy`` (flat Box observations) stays as it is; this is the policy for every
other observation space.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from imitate import fastcnn, runtime
from imitate.configs import CnnPrecision, PolicyConfig
from imitate.encoders import (
    EncoderConfig,
    ImageEncoder,
    ObsEncoder,
    encoder_for_space,
    encoder_from_json,
)
from imitate.errors import CheckpointError, UnsupportedSpaceError
from imitate.observations import ObsBatch, canonical_space, obs_space_from_json, obs_space_to_json
from imitate.runtime import NumpyLayers
from imitate.spaces import (
    ActionHead,
    CategoricalHead,
    head_for_space,
    space_from_json,
    space_to_json,
)

KIND = "encoded"
_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "hardtanh": nn.Hardtanh,
}


class EncodedPolicy(nn.Module):
    """Encoder + MLP trunk + action head (see the module docstring).

    Args:
        observation_space: any space :func:`imitate.encoders.encoder_for_space` supports.
        action_space: any space :func:`imitate.spaces.head_for_space` supports.
        config: hidden sizes and activation of the trunk.
        encoder: a (fitted) encoder for ``observation_space``; default: a new, unfitted one.
    """

    def __init__(
        self,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        config: PolicyConfig = PolicyConfig(),
        encoder: ObsEncoder | None = None,
    ) -> None:
        super().__init__()
        self.observation_space = canonical_space(observation_space)
        self.action_space = action_space
        self.config = config
        self.encoder = encoder if encoder is not None else encoder_for_space(observation_space)
        self.head: ActionHead = head_for_space(action_space)
        layers: list[nn.Module] = []
        width = self.encoder.out_dim
        for size in config.hidden:
            layers += [nn.Linear(width, size), _ACTIVATIONS[config.activation]()]
            width = size
        layers.append(nn.Linear(width, self.head.n_outputs))
        self.net = nn.Sequential(*layers)
        self.provenance: dict[str, Any] = {}
        """Env, expert and seeds of the data it was trained on (saved in checkpoints)."""
        n_params = self.n_parameters()
        if n_params > runtime.MAX_PARAMETERS:
            raise UnsupportedSpaceError(
                f"a policy of {n_params:,} parameters is more than {runtime.MAX_PARAMETERS:,}"
            )

    @classmethod
    def for_data(
        cls,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        obs: ObsBatch,
        config: PolicyConfig = PolicyConfig(),
        encoder_config: EncoderConfig = EncoderConfig(),
    ) -> EncodedPolicy:
        """A new policy whose encoder is fitted on ``obs`` (normalisation, vocabulary)."""
        encoder = encoder_for_space(observation_space, obs, encoder_config)
        return cls(observation_space, action_space, config, encoder)

    def constructor_args(self) -> dict[str, Any]:
        """JSON-safe arguments that rebuild this architecture (the encoder's included)."""
        return {
            "observation_space": obs_space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
            "hidden": list(self.config.hidden),
            "activation": self.config.activation,
            "encoder": self.encoder.to_json(),
        }

    def forward(self, *inputs: Tensor) -> Tensor:
        """Raw head outputs ``[B, n_outputs]`` for the encoder's input arrays."""
        return self.net(self.encoder(*inputs))

    def outputs(self, obs: ObsBatch) -> Tensor:
        """Raw head outputs ``[B, n_outputs]`` for an observation batch."""
        return self(*(torch.as_tensor(a) for a in self.encoder.inputs(obs)))

    def logits(self, obs: ObsBatch) -> np.ndarray:
        with torch.inference_mode():
            return self.outputs(obs).numpy()

    def act(self, obs: ObsBatch) -> np.ndarray:
        """Deterministic actions ``[B, *action_shape]`` (the head's mode)."""
        with torch.inference_mode():
            return self.head.to_env_actions(self.head.mode(self.outputs(obs)))

    def n_parameters(self) -> int:
        """Trainable parameter count (normalisation buffers excluded)."""
        return sum(p.numel() for p in self.parameters())

    def numpy_snapshot(self) -> NumpyEncodedPolicy:
        """A frozen torch-free copy of the current weights, for fast rollouts."""
        return NumpyEncodedPolicy(
            encoder=copy.deepcopy(self.encoder).eval(),
            layers=NumpyLayers.from_modules(self.net),
            head=self.head,
            observation_space=self.observation_space,
            action_space=self.action_space,
        )

    def __repr__(self) -> str:
        return (
            f"EncodedPolicy(encoder={type(self.encoder).__name__}({self.encoder.out_dim}), "
            f"hidden={list(self.config.hidden)}, head={self.head!r}, "
            f"parameters={self.n_parameters()})"
        )


@dataclass(frozen=True)
class NumpyEncodedPolicy:
    """The numpy forward of an :class:`EncodedPolicy` (a SoftPolicy); the encoder is a
    private copy evaluated with its ``forward_numpy``."""

    encoder: ObsEncoder
    layers: NumpyLayers
    head: ActionHead
    observation_space: gym.Space[Any]
    action_space: gym.Space[Any]

    def logits(self, obs: ObsBatch) -> np.ndarray:
        return self.layers(self.encoder.encode_numpy(obs))

    def act(self, obs: ObsBatch) -> np.ndarray:
        return self.head.mode_numpy(self.logits(obs))


def needs_encoder(space: gym.Space[Any]) -> bool:
    """True for observation spaces the flat ``MLPPolicy`` does not take (everything but a
    non-image Box): they get an :class:`EncodedPolicy`."""
    from imitate.encoders import is_image_space

    space = canonical_space(space)
    return not isinstance(space, gym.spaces.Box) or is_image_space(space)


class IndexedNet(nn.Module):
    """``policy`` applied to rows of ``obs`` given by index: ``forward(index [B]) ->
    outputs [B, n_outputs]``.

    Trainers written for vector observations hold a tensor of (normalised) rows and call
    ``net(rows[batch])``; handing them ``torch.arange(N)`` as the rows and this module as
    the net trains an encoded policy with the same loop, the observations staying in
    their storage dtypes (uint8 images are not widened to float32 for the whole set).

    For a pixel CNN (:func:`imitate.fastcnn.applies`), steps taken with gradients go
    through :class:`imitate.fastcnn.PixelTrainingForward` in ``cnn_precision`` (None: never);
    forwards without gradients (held-out evaluations) through the policy's own."""

    def __init__(
        self, policy: EncodedPolicy, obs: ObsBatch, cnn_precision: CnnPrecision | None = None
    ) -> None:
        super().__init__()
        self.policy = policy
        self.obs = obs
        self.fast: fastcnn.PixelTrainingForward | None = None
        encoder = policy.encoder
        pixels = isinstance(encoder, ImageEncoder) and fastcnn.applies(encoder)
        if cnn_precision is not None and isinstance(encoder, ImageEncoder) and pixels:
            precision = fastcnn.resolve_precision(cnn_precision)
            self.fast = fastcnn.PixelTrainingForward(encoder, np.asarray(obs), precision)

    @property
    def precision(self) -> str:
        """The training forward's arithmetic: 'bfloat16' or 'float32'."""
        return "float32" if self.fast is None else str(self.fast.dtype).removeprefix("torch.")

    def forward(self, index: Tensor) -> Tensor:
        from imitate.observations import take

        if self.fast is not None and torch.is_grad_enabled():
            return self.policy.net(self.fast(index))
        rows = take(self.obs, index.detach().cpu().numpy())
        return self.policy.outputs(rows)


def encoded_policy_from_checkpoint(checkpoint: dict[str, Any], path: object) -> EncodedPolicy:
    """Rebuild an :class:`EncodedPolicy` from a read checkpoint (``runtime.read_checkpoint``)."""
    try:
        args = checkpoint["constructor"]
        observation_space = obs_space_from_json(args["observation_space"])
        action_space = space_from_json(args["action_space"])
        config = PolicyConfig(hidden=tuple(args["hidden"]), activation=args["activation"])
        encoder = encoder_from_json(args["encoder"])
        policy = EncodedPolicy(observation_space, action_space, config, encoder)
        if "state_dict" in checkpoint:  # imitate.policy.load_checkpoint's form
            state = dict(checkpoint["state_dict"])
        else:  # imitate.runtime.read_checkpoint's
            state = {k: torch.from_numpy(np.array(v)) for k, v in checkpoint["weights"].items()}
        policy.load_state_dict(state)
    except (KeyError, ValueError, TypeError, RuntimeError, UnsupportedSpaceError) as exc:
        text = str(exc).strip()
        first_line = text.splitlines()[0] if text else type(exc).__name__
        raise CheckpointError(
            f"{path}: checkpoint does not match its architecture ({first_line})"
        ) from exc
    policy.eval()
    policy.provenance = dict(checkpoint.get("config") or {})
    return policy


def load_encoded_policy(path: str | os.PathLike[str]) -> EncodedPolicy:
    """Load an encoded-policy checkpoint written by :func:`imitate.policy.save_policy`."""
    checkpoint = runtime.read_checkpoint(path)
    if checkpoint.get("kind") != KIND:
        raise CheckpointError(f"{path}: not an encoded policy (kind {checkpoint.get('kind')!r})")
    return encoded_policy_from_checkpoint(checkpoint, path)


class EncodedActionGraph(nn.Module):
    """Encoder, trunk and the head's decision in one traceable module: inputs are the
    encoder's arrays (``policy.encoder.input_names()``), the output the env actions."""

    def __init__(self, policy: EncodedPolicy) -> None:
        super().__init__()
        self.policy = policy
        head = policy.head
        self.offset = head.start if isinstance(head, CategoricalHead) else 0

    def forward(self, *inputs: Tensor) -> Tensor:
        action = self.policy.head.mode(self.policy(*inputs))
        if self.policy.head.discrete:
            action = action.to(torch.int64) + self.offset
        return action


def onnx_input_names(policy: EncodedPolicy) -> list[str]:
    """ONNX input names: the encoder's, with ``/`` written as ``.`` (``obs.image``)."""
    return [n.replace("/", ".") for n in policy.encoder.input_names()]
