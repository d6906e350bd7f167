"""Hand-off to RL: a clone as a stable-baselines3 model, ready to fine-tune.

``imitate export --format sb3 --algo ppo|sac`` writes ``policy_sb3.zip``, loadable by
``PPO.load`` / ``SAC.load``, whose *actor* is the clone:

* The observation normalisation is folded into the first linear layer
  (``W' = W / std``, ``b' = b - W' mean``), so the SB3 model takes raw observations and
  needs no VecNormalize.
* ``ppo`` (Discrete, MultiDiscrete, MultiBinary actions):
  ``net_arch=dict(pi=hidden, vf=hidden)`` with the clone's activation; the hidden layers
  go to ``mlp_extractor.policy_net``, the output layer to ``action_net``. The value
  network is SB3's fresh initialisation (BC learns no values).
* ``sac`` (bounded Box actions): the clone's Gaussian head outputs ``[mean_raw, log_std]``
  and acts with ``center + half_range * tanh(mean_raw)``, which is exactly SAC's
  deterministic action ``unscale(tanh(mu))``; so the hidden layers go to
  ``actor.latent_pi``, the output rows to ``actor.mu`` and ``actor.log_std``. Critics are
  fresh. (SAC clamps ``log_std`` to [-20, 2], the clone to [-5, 2]: only sampling differs.)

The model is built on a stand-in env that only carries the spaces; pass your env to
``PPO.load(path, env=...)`` to train. Action parity with the clone is tested on 10,000
states (tests/test_own_expert.py).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from imitate.errors import ImitateError
from imitate.policy import MLPPolicy

Algo = Literal["ppo", "sac"]


class _SpacesEnv(gym.Env[np.ndarray, Any]):
    """An env with the clone's spaces, never stepped: SB3 needs spaces to build a model."""

    def __init__(self, observation_space: gym.Space[Any], action_space: gym.Space[Any]) -> None:
        self.observation_space = observation_space
        self.action_space = action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> Any:
        return self.observation_space.sample(), 0.0, True, False, {}


def _linears(policy: MLPPolicy) -> list[nn.Linear]:
    """The clone's Linear layers with the normalisation folded into the first."""
    layers = [m for m in policy.net if isinstance(m, nn.Linear)]
    folded = []
    with torch.no_grad():
        for i, layer in enumerate(layers):
            copy = nn.Linear(layer.in_features, layer.out_features)
            weight, bias = layer.weight.clone(), layer.bias.clone()
            if i == 0:
                weight = weight / policy.obs_std
                bias = bias - weight @ policy.obs_mean
            copy.weight.copy_(weight)
            copy.bias.copy_(bias)
            folded.append(copy)
    return folded


def _copy_into(targets: list[nn.Linear], sources: list[nn.Linear]) -> None:
    if len(targets) != len(sources):
        raise ImitateError("SB3 network layout does not match the clone (layer count)")
    with torch.no_grad():
        for target, source in zip(targets, sources, strict=True):
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)


def to_sb3(policy: MLPPolicy, algo: Algo | None = None, seed: int = 0) -> Any:
    """An SB3 PPO (Discrete) or SAC (bounded Box) model whose actor is ``policy``."""
    from stable_baselines3 import PPO, SAC

    head = policy.head
    algo = algo or ("ppo" if head.discrete else "sac")
    if not isinstance(policy.observation_space, gym.spaces.Box):
        raise ImitateError("the SB3 export needs a Box observation space")
    hidden = list(policy.config.hidden)
    activation = {"tanh": nn.Tanh, "relu": nn.ReLU}[policy.config.activation]
    env = _SpacesEnv(policy.observation_space, policy.action_space)
    layers = _linears(policy)
    if algo == "ppo":
        # SB3's MultiDiscrete / MultiBinary distributions read the same logits layout
        # (concatenated per-factor logits; Bernoulli mode = logit > 0)
        if "ppo" not in head.sb3_algorithms():
            raise ImitateError(
                "--algo ppo exports Discrete, MultiDiscrete and MultiBinary policies (for "
                "bounded Box actions use --algo sac: its tanh-squashed mean is the clone's)"
            )
        kwargs = {"net_arch": {"pi": hidden, "vf": hidden}, "activation_fn": activation}
        ppo: Any = PPO("MlpPolicy", env, policy_kwargs=kwargs, seed=seed, device="cpu", verbose=0)
        policy_net = [m for m in ppo.policy.mlp_extractor.policy_net if isinstance(m, nn.Linear)]
        _copy_into([*policy_net, ppo.policy.action_net], layers)
        return ppo
    if algo == "sac":
        if "sac" not in head.sb3_algorithms():
            raise ImitateError("--algo sac exports policies with bounded Box actions")
        kwargs = {"net_arch": hidden, "activation_fn": activation}
        sac: Any = SAC("MlpPolicy", env, policy_kwargs=kwargs, seed=seed, device="cpu", verbose=0)
        actor = sac.policy.actor
        latent = [m for m in actor.latent_pi if isinstance(m, nn.Linear)]
        *trunk, last = layers
        dim = head.n_outputs // 2  # a SAC head's outputs are [mean, log_std]
        mu, log_std = nn.Linear(last.in_features, dim), nn.Linear(last.in_features, dim)
        with torch.no_grad():
            mu.weight.copy_(last.weight[:dim])
            mu.bias.copy_(last.bias[:dim])
            log_std.weight.copy_(last.weight[dim:])
            log_std.bias.copy_(last.bias[dim:])
        _copy_into([*latent, actor.mu, actor.log_std], [*trunk, mu, log_std])
        return sac
    raise ImitateError(f"unknown --algo {algo!r} (ppo or sac)")


def export_sb3(policy: MLPPolicy, path: str | os.PathLike[str], algo: Algo | None = None) -> Path:
    """Write the SB3 zip of :func:`to_sb3` to ``path`` (a ``.zip``)."""
    model = to_sb3(policy, algo)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


class SB3ExportPolicy:
    """A batched Policy running an exported SB3 zip (``predict(deterministic=True)``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from stable_baselines3 import PPO, SAC

        path = Path(path)
        with zipfile.ZipFile(path) as archive:  # which algorithm: from the JSON, no pickle
            module = json.loads(archive.read("data"))["policy_class"].get("__module__", "")
        cls = SAC if module.startswith("stable_baselines3.sac") else PPO
        self.model = cls.load(path, device="cpu")

    def act(self, obs: np.ndarray) -> np.ndarray:
        actions, _ = self.model.predict(np.asarray(obs, np.float32), deterministic=True)
        return np.asarray(actions)
