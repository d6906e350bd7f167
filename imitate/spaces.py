"""Action heads: one per gymnasium action space, chosen from the space.

A head turns a network's raw outputs ``[B, n_outputs]`` into an action
distribution and knows its losses. Heads are stateless frozen dataclasses
(the space's constants only), so a policy is fully described by its weights
and the head's constructor arguments.

================  ==========================  ===============================
space             distribution                loss (``nll``)
================  ==========================  ===============================
Discrete(K)       categorical (softmax)       softmax cross-entropy
MultiDiscrete     independent categoricals    sum of cross-entropies
MultiBinary(D)    independent Bernoullis      sum of sigmoid BCEs (multi-label)
Box(D)            diagonal Gaussian           Gaussian NLL; mean squashed by
                                              tanh into the bounds
================  ==========================  ===============================

This module also owns the JSON form of spaces used in dataset and checkpoint
metadata (:func:`space_to_json`, :func:`space_from_json`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from imitate._lazy import lazy_module
from imitate.errors import UnsupportedSpaceError

if TYPE_CHECKING:  # torch is imported when a head first computes with tensors
    import torch
    import torch.nn.functional as F
    from torch import Tensor

    from imitate import losses
else:
    torch = lazy_module("torch")
    F = lazy_module("torch.nn.functional")
    losses = lazy_module("imitate.losses")

LOG_STD_MIN = -5.0
LOG_STD_MAX = 2.0


class ActionHead(ABC):
    """Interface shared by all heads. ``B`` is the batch size."""

    @property
    @abstractmethod
    def n_outputs(self) -> int:
        """Width of the network output that parameterises the distribution."""

    @property
    @abstractmethod
    def action_shape(self) -> tuple[int, ...]:
        """Shape of one action."""

    @property
    @abstractmethod
    def discrete(self) -> bool:
        """True when actions are integers and exact agreement is meaningful."""

    @abstractmethod
    def space(self) -> gym.Space[Any]:
        """The gymnasium action space this head was built for."""

    @abstractmethod
    def actions_to_tensor(self, actions: np.ndarray) -> Tensor:
        """Env actions [B, *action_shape] -> the tensor ``nll`` expects."""

    @abstractmethod
    def to_env_actions(self, actions: Tensor) -> np.ndarray:
        """Tensor from ``mode``/``sample`` -> numpy actions of the space's dtype."""

    @abstractmethod
    def nll(self, outputs: Tensor, actions: Tensor) -> Tensor:
        """Negative log-likelihood in nats per sample, shape [B]."""

    @abstractmethod
    def mode(self, outputs: Tensor) -> Tensor:
        """Most likely action per sample (argmax, threshold, or the bounded mean)."""

    @abstractmethod
    def mode_numpy(self, outputs: np.ndarray) -> np.ndarray:
        """``mode`` on numpy outputs, returning env actions (the fast inference path)."""

    @abstractmethod
    def sample(self, outputs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw one action per sample."""

    @abstractmethod
    def entropy(self, outputs: Tensor) -> Tensor:
        """Entropy of the action distribution in nats, shape [B]."""

    @abstractmethod
    def soft_target_loss(self, student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
        """``T^2 * KL(teacher_T || student_T)`` per sample, shape [B] (Hinton et al. 2015)."""

    @abstractmethod
    def action_error(self, outputs: Tensor, actions: Tensor) -> Tensor:
        """Per-sample error of ``mode(outputs)``: 0/1 mismatch, or mean |error| / range for Box."""


def _categorical_kl(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """``T^2 * KL(softmax(t/T) || softmax(s/T))`` over the last dim, shape [B]."""
    log_p_teacher = torch.log_softmax(teacher / temperature, dim=-1)
    log_p_student = torch.log_softmax(student / temperature, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1)
    return kl * temperature**2


@dataclass(frozen=True)
class CategoricalHead(ActionHead):
    """``Discrete(n, start)``: softmax over ``n`` logits."""

    n: int
    start: int = 0

    @property
    def n_outputs(self) -> int:
        return self.n

    @property
    def action_shape(self) -> tuple[int, ...]:
        return ()

    @property
    def discrete(self) -> bool:
        return True

    def space(self) -> gym.spaces.Discrete:
        return gym.spaces.Discrete(self.n, start=self.start)

    def actions_to_tensor(self, actions: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(actions, dtype=np.int64) - self.start)

    def to_env_actions(self, actions: Tensor) -> np.ndarray:
        return actions.numpy().astype(np.int64) + self.start

    def nll(self, outputs: Tensor, actions: Tensor) -> Tensor:
        return losses.cross_entropy(outputs, actions, reduction="none")

    def mode(self, outputs: Tensor) -> Tensor:
        return outputs.argmax(dim=-1)

    def mode_numpy(self, outputs: np.ndarray) -> np.ndarray:
        return outputs.argmax(axis=-1).astype(np.int64) + self.start

    def sample(self, outputs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        probs = torch.softmax(outputs, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

    def entropy(self, outputs: Tensor) -> Tensor:
        log_p = torch.log_softmax(outputs, dim=-1)
        return -(log_p.exp() * log_p).sum(dim=-1)

    def soft_target_loss(self, student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
        return _categorical_kl(student, teacher, temperature)

    def action_error(self, outputs: Tensor, actions: Tensor) -> Tensor:
        return (self.mode(outputs) != actions).to(torch.float32)


@dataclass(frozen=True)
class MultiCategoricalHead(ActionHead):
    """``MultiDiscrete(nvec)``: one softmax per factor, concatenated logits."""

    nvec: tuple[int, ...]

    @property
    def n_outputs(self) -> int:
        return int(sum(self.nvec))

    @property
    def action_shape(self) -> tuple[int, ...]:
        return (len(self.nvec),)

    @property
    def discrete(self) -> bool:
        return True

    def space(self) -> gym.spaces.MultiDiscrete:
        return gym.spaces.MultiDiscrete(np.array(self.nvec, dtype=np.int64))

    def _split(self, outputs: Tensor) -> tuple[Tensor, ...]:
        return torch.split(outputs, list(self.nvec), dim=-1)

    def actions_to_tensor(self, actions: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(actions, dtype=np.int64))

    def to_env_actions(self, actions: Tensor) -> np.ndarray:
        return actions.numpy().astype(np.int64)

    def nll(self, outputs: Tensor, actions: Tensor) -> Tensor:
        return sum(  # type: ignore[return-value]
            losses.cross_entropy(logits, actions[:, i], reduction="none")
            for i, logits in enumerate(self._split(outputs))
        )

    def mode(self, outputs: Tensor) -> Tensor:
        return torch.stack([logits.argmax(dim=-1) for logits in self._split(outputs)], dim=-1)

    def mode_numpy(self, outputs: np.ndarray) -> np.ndarray:
        bounds = np.cumsum(self.nvec)[:-1]
        parts = np.split(outputs, bounds, axis=-1)
        return np.stack([p.argmax(axis=-1) for p in parts], axis=-1).astype(np.int64)

    def sample(self, outputs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return torch.stack(
            [
                torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)
                for logits in self._split(outputs)
            ],
            dim=-1,
        )

    def entropy(self, outputs: Tensor) -> Tensor:
        parts = [torch.log_softmax(logits, dim=-1) for logits in self._split(outputs)]
        return sum(-(lp.exp() * lp).sum(dim=-1) for lp in parts)  # type: ignore[return-value]

    def soft_target_loss(self, student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
        pairs = zip(self._split(student), self._split(teacher), strict=True)
        return sum(_categorical_kl(s, t, temperature) for s, t in pairs)  # type: ignore[return-value]

    def action_error(self, outputs: Tensor, actions: Tensor) -> Tensor:
        return (self.mode(outputs) != actions).any(dim=-1).to(torch.float32)


@dataclass(frozen=True)
class BernoulliHead(ActionHead):
    """``MultiBinary(n)``: one independent sigmoid per output (multi-label, not softmax)."""

    n: int

    @property
    def n_outputs(self) -> int:
        return self.n

    @property
    def action_shape(self) -> tuple[int, ...]:
        return (self.n,)

    @property
    def discrete(self) -> bool:
        return True

    def space(self) -> gym.spaces.MultiBinary:
        return gym.spaces.MultiBinary(self.n)

    def actions_to_tensor(self, actions: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(actions, dtype=np.float32))

    def to_env_actions(self, actions: Tensor) -> np.ndarray:
        return actions.numpy().astype(np.int8)

    def nll(self, outputs: Tensor, actions: Tensor) -> Tensor:
        return losses.binary_cross_entropy(outputs, actions, reduction="none")

    def mode(self, outputs: Tensor) -> Tensor:
        return (outputs > 0).to(torch.float32)

    def mode_numpy(self, outputs: np.ndarray) -> np.ndarray:
        return (outputs > 0).astype(np.int8)

    def sample(self, outputs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return torch.bernoulli(torch.sigmoid(outputs), generator=generator)

    def entropy(self, outputs: Tensor) -> Tensor:
        p = torch.sigmoid(outputs)
        return (F.softplus(outputs) - p * outputs).sum(dim=-1)

    def soft_target_loss(self, student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
        p = torch.sigmoid(teacher / temperature)
        log_p, log_1mp = F.logsigmoid(teacher / temperature), F.logsigmoid(-teacher / temperature)
        log_q, log_1mq = F.logsigmoid(student / temperature), F.logsigmoid(-student / temperature)
        kl = p * (log_p - log_q) + (1 - p) * (log_1mp - log_1mq)
        return kl.sum(dim=-1) * temperature**2

    def action_error(self, outputs: Tensor, actions: Tensor) -> Tensor:
        return (self.mode(outputs) != actions).any(dim=-1).to(torch.float32)


@dataclass(frozen=True)
class GaussianHead(ActionHead):
    """``Box(low, high)`` with shape (D,): diagonal Gaussian, outputs ``[mean_raw, log_std]``.

    With finite bounds the mean is ``center + half_range * tanh(mean_raw)``, so the
    mode always lies inside the box; samples are clipped into it.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]

    @property
    def dim(self) -> int:
        return len(self.low)

    @property
    def bounded(self) -> bool:
        return all(math.isfinite(v) for v in self.low + self.high)

    @property
    def n_outputs(self) -> int:
        return 2 * self.dim

    @property
    def action_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    @property
    def discrete(self) -> bool:
        return False

    def space(self) -> gym.spaces.Box:
        return gym.spaces.Box(
            np.array(self.low, dtype=np.float32), np.array(self.high, dtype=np.float32)
        )

    def _low_high(self, like: Tensor) -> tuple[Tensor, Tensor]:
        low = torch.tensor(self.low, dtype=like.dtype)
        high = torch.tensor(self.high, dtype=like.dtype)
        return low, high

    def mean_log_std(self, outputs: Tensor) -> tuple[Tensor, Tensor]:
        """Split outputs [B, 2D] into the (bounded) mean [B, D] and clamped log-std [B, D]."""
        raw_mean, raw_log_std = outputs[..., : self.dim], outputs[..., self.dim :]
        if self.bounded:
            low, high = self._low_high(outputs)
            mean = (high + low) / 2 + (high - low) / 2 * torch.tanh(raw_mean)
        else:
            mean = raw_mean
        return mean, raw_log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def actions_to_tensor(self, actions: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(actions, dtype=np.float32)).reshape(-1, self.dim)

    def to_env_actions(self, actions: Tensor) -> np.ndarray:
        return actions.numpy().astype(np.float32)

    def nll(self, outputs: Tensor, actions: Tensor) -> Tensor:
        mean, log_std = self.mean_log_std(outputs)
        return losses.gaussian_nll(mean, log_std, actions, reduction="none")

    def mode(self, outputs: Tensor) -> Tensor:
        return self.mean_log_std(outputs)[0]

    def mode_numpy(self, outputs: np.ndarray) -> np.ndarray:
        raw_mean = outputs[..., : self.dim]
        if not self.bounded:
            return raw_mean.astype(np.float32)
        low = np.array(self.low, dtype=np.float32)
        high = np.array(self.high, dtype=np.float32)
        return ((high + low) / 2 + (high - low) / 2 * np.tanh(raw_mean)).astype(np.float32)

    def sample(self, outputs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        mean, log_std = self.mean_log_std(outputs)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        action = mean + noise * log_std.exp()
        if self.bounded:
            low, high = self._low_high(outputs)
            action = torch.clamp(action, low, high)
        return action

    def entropy(self, outputs: Tensor) -> Tensor:
        _, log_std = self.mean_log_std(outputs)
        return (log_std + 0.5 * (1.0 + math.log(2 * math.pi))).sum(dim=-1)

    def soft_target_loss(self, student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
        # KL between Gaussians whose standard deviations are widened by T (T=1: plain KL).
        mean_s, log_std_s = self.mean_log_std(student)
        mean_t, log_std_t = self.mean_log_std(teacher)
        log_std_s = log_std_s + math.log(temperature)
        log_std_t = log_std_t + math.log(temperature)
        var_s, var_t = (2 * log_std_s).exp(), (2 * log_std_t).exp()
        kl = log_std_s - log_std_t + (var_t + (mean_t - mean_s) ** 2) / (2 * var_s) - 0.5
        return kl.sum(dim=-1) * temperature**2

    def action_error(self, outputs: Tensor, actions: Tensor) -> Tensor:
        error = (self.mode(outputs) - actions).abs()
        if self.bounded:
            low, high = self._low_high(outputs)
            error = error / (high - low)
        return error.mean(dim=-1)


def head_for_space(space: gym.Space[Any]) -> ActionHead:
    """Choose the head for an action space; unsupported spaces raise ``UnsupportedSpaceError``."""
    if isinstance(space, gym.spaces.Discrete):
        return CategoricalHead(int(space.n), int(space.start))
    if isinstance(space, gym.spaces.MultiDiscrete):
        if space.nvec.ndim != 1 or np.any(space.start != 0):
            raise UnsupportedSpaceError(f"MultiDiscrete action space {space} must be 1-D, start 0")
        return MultiCategoricalHead(tuple(int(n) for n in space.nvec))
    if isinstance(space, gym.spaces.MultiBinary):
        if len(space.shape) != 1:
            raise UnsupportedSpaceError(f"MultiBinary action space {space} must be 1-D")
        return BernoulliHead(int(space.shape[0]))
    if isinstance(space, gym.spaces.Box):
        if len(space.shape) != 1:
            raise UnsupportedSpaceError(f"Box action space {space} must be 1-D")
        return GaussianHead(tuple(float(v) for v in space.low), tuple(float(v) for v in space.high))
    raise UnsupportedSpaceError(
        f"unsupported action space {space}: imitate supports Discrete, MultiDiscrete, "
        "MultiBinary and 1-D Box"
    )


def flat_obs_dim(space: gym.Space[Any]) -> int:
    """Number of observation features; only Box observation spaces are supported."""
    if not isinstance(space, gym.spaces.Box):
        raise UnsupportedSpaceError(
            f"unsupported observation space {space}: imitate supports Box observations"
        )
    return int(np.prod(space.shape))


def space_to_json(space: gym.Space[Any]) -> dict[str, Any]:
    """A JSON-safe description of a space (round-trips through :func:`space_from_json`)."""
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": list(space.shape)}
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": [_json_float(v) for v in space.low.ravel()],
            "high": [_json_float(v) for v in space.high.ravel()],
        }
    raise UnsupportedSpaceError(f"cannot describe space {space}")


def space_from_json(spec: dict[str, Any]) -> gym.Space[Any]:
    """Inverse of :func:`space_to_json`; raises ``ValueError`` on a malformed spec."""
    kind = spec.get("type")
    if kind == "Discrete":
        return gym.spaces.Discrete(int(spec["n"]), start=int(spec.get("start", 0)))
    if kind == "MultiDiscrete":
        return gym.spaces.MultiDiscrete(np.array(spec["nvec"], dtype=np.int64))
    if kind == "MultiBinary":
        n = spec["n"]
        return gym.spaces.MultiBinary(n[0] if len(n) == 1 else n)
    if kind == "Box":
        shape = tuple(int(s) for s in spec["shape"])
        low = np.array([float(v) for v in spec["low"]], dtype=spec["dtype"]).reshape(shape)
        high = np.array([float(v) for v in spec["high"]], dtype=spec["dtype"]).reshape(shape)
        return gym.spaces.Box(low, high, shape=shape, dtype=np.dtype(spec["dtype"]).type)
    raise ValueError(f"unknown space type {kind!r}")


def _json_float(value: float) -> float | str:
    """Infinite bounds are written as the strings 'inf' / '-inf' (JSON has no infinity)."""
    value = float(value)
    return value if math.isfinite(value) else str(value)
