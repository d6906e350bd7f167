"""Any stable-baselines3 model as a batched ``SoftPolicy`` (a teacher).

``act(obs)`` gives the deterministic action, ``logits(obs)`` the raw outputs a
student can be distilled from:

==========================  ==========================================
model                       ``logits`` ``[B, K]``
==========================  ==========================================
PPO / A2C / TRPO, Discrete  categorical logits
DQN                         Q-values
QR-DQN (sb3-contrib)        Q-values (the mean over quantiles)
PPO / A2C / TRPO, Box       ``[mean, log_std]`` of the Gaussian
SAC / TQC / CrossQ, Box     ``[mean, log_std]`` before the tanh squash
==========================  ==========================================

Algorithms without a deterministic memoryless actor of these shapes (RecurrentPPO,
ARS, MaskablePPO) are refused with one line.

The actor's layers are copied once into numpy and run on the whole batch
(``model.predict`` costs hundreds of µs of checks and torch dispatch per call
here); ``torch_logits`` runs the SB3 modules themselves under ``torch.no_grad()``
and is the reference the tests compare against.
VecNormalize observation statistics, when the expert was trained with them,
are applied inside the wrapper.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.actors import actions_from_outputs
from imitate.errors import ImitateError
from imitate.policy import NumpyLayers

# SB3's clamp of the SAC actor's log-std (stable_baselines3.sac.policies).
SAC_LOG_STD_MIN, SAC_LOG_STD_MAX = -20.0, 2.0
NUMPY_MAX_BATCH = 64
ACTOR_CRITIC = ("ppo", "a2c", "trpo")
SQUASHED = ("sac", "tqc", "crossq")  # tanh-squashed Gaussian actors (SAC's actor API)
SUPPORTED = (*ACTOR_CRITIC, "dqn", "qrdqn", *SQUASHED)


class SB3Teacher:
    """Batched SoftPolicy around an SB3 model (PPO, A2C, DQN or SAC)."""

    def __init__(self, model: Any, obs_norm: dict[str, Any] | None = None) -> None:
        self.model = model
        self.policy = model.policy
        self.policy.set_training_mode(False)
        self.action_space = model.action_space
        self.kind = type(model).__name__.lower()
        if self.kind not in SUPPORTED:
            raise ImitateError(
                f"{type(model).__name__} has no deterministic feed-forward actor imitate can "
                f"read (supported: {', '.join(SUPPORTED)})"
            )
        self.obs_norm = obs_norm
        if obs_norm is not None:
            self._mean = np.asarray(obs_norm["mean"], np.float32)
            std = np.sqrt(np.asarray(obs_norm["var"]) + obs_norm["epsilon"])
            self._std = std.astype(np.float32)
            self._clip = float(obs_norm["clip"])
        self._numpy = self._numpy_heads()
        self.output_kind = {"dqn": "q_values", "qrdqn": "q_values"}.get(self.kind, "logits")
        if isinstance(self.action_space, gym.spaces.Box):
            self.output_kind = "gaussian"

    def actor_modules(self) -> list[torch.nn.Module]:
        """The modules that map an observation to the action distribution."""
        policy = self.policy
        if self.kind == "dqn":
            return [policy.q_net]
        if self.kind == "qrdqn":
            return [policy.quantile_net]
        if self.kind in SQUASHED:
            return [policy.actor]
        modules = [policy.mlp_extractor.policy_net, policy.action_net]
        return modules

    def n_actor_parameters(self) -> int:
        """Parameters of the acting network (critics and value heads excluded)."""
        count = sum(p.numel() for m in self.actor_modules() for p in m.parameters())
        if self.kind in ACTOR_CRITIC and isinstance(self.action_space, gym.spaces.Box):
            count += self.policy.log_std.numel()
        return int(count)

    def _numpy_heads(self) -> list[NumpyLayers] | None:
        """Numpy copies of the actor's layer chains, or None for unsupported architectures."""
        policy = self.policy
        try:
            if self.kind == "dqn":
                return [NumpyLayers.from_modules([policy.q_net])]
            if self.kind == "qrdqn":
                net = policy.quantile_net
                return [NumpyLayers.from_modules([net.features_extractor, net.quantile_net])]
            if self.kind in SQUASHED:
                actor = policy.actor
                trunk = [actor.features_extractor, actor.latent_pi]
                return [
                    NumpyLayers.from_modules([*trunk, actor.mu]),
                    NumpyLayers.from_modules([*trunk, actor.log_std]),
                ]
            return [
                NumpyLayers.from_modules(
                    [
                        policy.pi_features_extractor,
                        policy.mlp_extractor.policy_net,
                        policy.action_net,
                    ]
                )
            ]
        except ValueError:
            return None

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """Flatten to ``[B, obs_dim]`` float32 and apply the VecNormalize statistics, if any."""
        x = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        if self.obs_norm is not None:
            x = np.clip((x - self._mean) / self._std, -self._clip, self._clip)
        return x

    def torch_logits(self, obs: np.ndarray) -> np.ndarray:
        """``logits`` computed by the SB3 torch modules (the reference for the numpy path)."""
        with torch.no_grad():
            return self._raw(torch.as_tensor(self.normalize(obs))).numpy()

    def _raw(self, x: torch.Tensor) -> torch.Tensor:
        policy = self.policy
        if self.kind == "dqn":
            return policy.q_net(x)
        if self.kind == "qrdqn":
            return policy.quantile_net(x).mean(dim=1)
        if self.kind in SQUASHED:
            mean, log_std, _ = policy.actor.get_action_dist_params(x)
            return torch.cat([mean, log_std], dim=-1)
        features = policy.extract_features(x, policy.pi_features_extractor)
        latent = policy.mlp_extractor.forward_actor(features)
        out = policy.action_net(latent)
        if isinstance(self.action_space, gym.spaces.Box):
            log_std = policy.log_std.expand_as(out)
            return torch.cat([out, log_std], dim=-1)
        return out

    def logits(self, obs: np.ndarray) -> np.ndarray:
        """Raw outputs ``[B, K]`` (see the module table)."""
        # numpy wins on small batches (per-call cost), torch's GEMMs on large ones.
        if self._numpy is None or len(obs) > NUMPY_MAX_BATCH:
            return self.torch_logits(obs)
        x = self.normalize(obs)
        if self.kind == "qrdqn":
            quantiles = self._numpy[0](x)
            return quantiles.reshape(len(x), -1, int(self.action_space.n)).mean(axis=1)
        if self.kind in SQUASHED:
            mean, log_std = (layers(x) for layers in self._numpy)
            return np.concatenate([mean, np.clip(log_std, SAC_LOG_STD_MIN, SAC_LOG_STD_MAX)], -1)
        out = self._numpy[0](x)
        if isinstance(self.action_space, gym.spaces.Box):
            log_std = self.policy.log_std.detach().numpy().astype(np.float32)
            return np.concatenate([out, np.broadcast_to(log_std, out.shape)], -1)
        return out

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions ``[B, *action_shape]``, as SB3 ``predict(deterministic=True)``."""
        kind = "sac" if self.kind in SQUASHED else self.kind  # TQC, CrossQ act as SAC
        return actions_from_outputs(self.logits(obs), self.action_space, kind)
