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

Each head class owns everything imitate knows about its space (the model is
SB3's ``distributions.make_proba_distribution``: one class per space behind one
factory, :func:`head_for_space`):

* the maths above (``nll``, ``mode``, ``sample``, ``entropy``, ``soft_target_loss``);
* the space's JSON form in dataset and checkpoint metadata (``to_json`` /
  ``from_json``, behind :func:`space_to_json` / :func:`space_from_json`);
* validation of stored actions (``validate_actions``, used by :mod:`imitate.data`);
* the decision from raw outputs in numpy (``mode_numpy``; ``mode_numpy_int32`` on the
  int8 export's integer outputs), in a traced graph (``mode_graph``: ONNX, TorchScript)
  and in C (``c_decision``, the snippet the C export pastes after the network);
* the SB3 conventions: the deterministic action of an SB3 actor's raw outputs
  (``sb3_actions``, for teachers) and which SB3 algorithm can carry the head
  (``sb3_algorithms``, for the SB3 export).

A new head is one class here, added to :data:`HEADS`, plus its tests
(``tests/test_spaces.py``; ``tests/test_export_heads.py`` runs every head of
:data:`HEADS` through every export).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np

from imitate._lazy import lazy_module
from imitate.c_syntax import floats as c_floats
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


@dataclass(frozen=True)
class CDecision:
    """A head's decision in C99: ``code`` writes ``action[0 .. length)`` (of ``c_type``,
    ``int`` or ``float``) from the network outputs ``out``; ``libm``: the libm functions
    it calls (the header says what to link)."""

    c_type: str
    code: str
    length: int
    libm: tuple[str, ...] = ()


class ActionHead(ABC):
    """Interface shared by all heads. ``B`` is the batch size.

    Class level (no head needed, any instance of ``space_type``, also shapes a head
    refuses): ``from_space``, ``to_json`` / ``from_json`` (``json_type`` names the
    form), ``validate_actions``."""

    space_type: ClassVar[type[gym.Space[Any]]]
    """The gymnasium space class this head serves."""
    json_type: ClassVar[str]
    """The ``"type"`` of the space's JSON form."""
    discrete: ClassVar[bool]
    """True when actions are integers and exact agreement is meaningful."""

    @classmethod
    @abstractmethod
    def from_space(cls, space: Any) -> ActionHead:
        """The head for ``space`` (an instance of ``space_type``); UnsupportedSpaceError
        for shapes the head cannot learn."""

    @classmethod
    @abstractmethod
    def to_json(cls, space: Any) -> dict[str, Any]:
        """A JSON-safe description of ``space`` (round-trips through ``from_json``)."""

    @classmethod
    @abstractmethod
    def from_json(cls, spec: dict[str, Any]) -> gym.Space[Any]:
        """Inverse of ``to_json``."""

    @classmethod
    @abstractmethod
    def validate_actions(cls, space: Any, actions: np.ndarray) -> str | None:
        """What is wrong with stored actions ``[N, *space.shape]`` (shape already checked),
        as the end of a sentence about the field, or None when every row lies in ``space``."""

    @property
    @abstractmethod
    def n_outputs(self) -> int:
        """Width of the network output that parameterises the distribution."""

    @property
    @abstractmethod
    def action_shape(self) -> tuple[int, ...]:
        """Shape of one action."""

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

    def mode_graph(self, outputs: Tensor) -> Tensor:
        """``mode`` as env actions in traceable torch ops (the ONNX / TorchScript decision):
        int64 for discrete heads, float32 for continuous ones."""
        action = self.mode(outputs)
        return action.to(torch.int64) if self.discrete else action

    def mode_numpy_int32(self, outputs: np.ndarray, out_scale: float) -> np.ndarray:
        """``mode_numpy`` on int32 outputs worth ``out_scale`` each (the int8 C export's
        decision: discrete heads compare the integers, continuous ones dequantise)."""
        if self.discrete:
            return self.mode_numpy(outputs.astype(np.float64))
        return self.mode_numpy(outputs.astype(np.float32) * np.float32(out_scale))

    @abstractmethod
    def c_decision(self, out_scale: str | None = None) -> CDecision:
        """The decision in C from ``out [n_outputs]``: float outputs, or (``out_scale``: the
        C expression of one unit) the int8 export's int32 outputs."""

    def sb3_actions(self, outputs: np.ndarray, squashed: bool) -> np.ndarray:
        """An SB3 actor's raw outputs ``[B, n_outputs]`` -> its deterministic env actions,
        as ``predict(deterministic=True)`` (``squashed``: a SAC-style tanh actor).
        Discrete heads: ``mode_numpy`` (SB3's argmax / ``round(sigmoid)``)."""
        if not self.discrete:
            raise UnsupportedSpaceError(f"no SB3 action convention for {type(self).__name__}")
        return self.mode_numpy(outputs)

    def sb3_algorithms(self) -> tuple[str, ...]:
        """The SB3 algorithms whose actor reads this head's outputs as the head does (the SB3
        export): ``ppo`` (the outputs are the action distribution's logits) or ``sac``
        (outputs ``[mean, log_std]``, the action the tanh-squashed mean). None by default."""
        return ()


def _categorical_kl(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """``T^2 * KL(softmax(t/T) || softmax(s/T))`` over the last dim, shape [B]."""
    log_p_teacher = torch.log_softmax(teacher / temperature, dim=-1)
    log_p_student = torch.log_softmax(student / temperature, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1)
    return kl * temperature**2


def _outside(space: gym.Space[Any], inside: np.ndarray) -> str | None:
    """The message for the first row with an action outside ``space`` (None: all inside)."""
    if inside.all():
        return None
    first = int(np.argwhere(~inside.reshape(len(inside), -1).all(axis=1))[0][0])
    return f"has actions outside {space} (first at index {first})"


def _not_integers(space: gym.Space[Any], actions: np.ndarray) -> str | None:
    if np.issubdtype(actions.dtype, np.integer):
        return None
    return f"has dtype {actions.dtype}, expected integers for {space}"


@dataclass(frozen=True)
class CategoricalHead(ActionHead):
    """``Discrete(n, start)``: softmax over ``n`` logits."""

    space_type = gym.spaces.Discrete
    json_type = "Discrete"
    discrete = True

    n: int
    start: int = 0

    @property
    def n_outputs(self) -> int:
        return self.n

    @property
    def action_shape(self) -> tuple[int, ...]:
        return ()

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

    @classmethod
    def from_space(cls, space: gym.spaces.Discrete) -> CategoricalHead:
        return cls(int(space.n), int(space.start))

    @classmethod
    def to_json(cls, space: gym.spaces.Discrete) -> dict[str, Any]:
        return {"type": cls.json_type, "n": int(space.n), "start": int(space.start)}

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> gym.spaces.Discrete:
        return gym.spaces.Discrete(int(spec["n"]), start=int(spec.get("start", 0)))

    @classmethod
    def validate_actions(cls, space: gym.spaces.Discrete, actions: np.ndarray) -> str | None:
        inside = (actions >= space.start) & (actions < space.start + space.n)
        return _not_integers(space, actions) or _outside(space, inside)

    def mode_graph(self, outputs: Tensor) -> Tensor:
        return self.mode(outputs).to(torch.int64) + self.start

    def c_decision(self, out_scale: str | None = None) -> CDecision:
        code = (
            "    int best = 0;\n"
            f"    for (int k = 1; k < {self.n}; ++k) if (out[k] > out[best]) best = k;\n"
            f"    action[0] = best + ({self.start});\n"
        )
        return CDecision("int", code, 1)

    def sb3_algorithms(self) -> tuple[str, ...]:
        return ("ppo",) if self.start == 0 else ()  # SB3's Discrete starts at 0


@dataclass(frozen=True)
class MultiCategoricalHead(ActionHead):
    """``MultiDiscrete(nvec)``: one softmax per factor, concatenated logits."""

    space_type = gym.spaces.MultiDiscrete
    json_type = "MultiDiscrete"
    discrete = True

    nvec: tuple[int, ...]

    @property
    def n_outputs(self) -> int:
        return int(sum(self.nvec))

    @property
    def action_shape(self) -> tuple[int, ...]:
        return (len(self.nvec),)

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

    @classmethod
    def from_space(cls, space: gym.spaces.MultiDiscrete) -> MultiCategoricalHead:
        if space.nvec.ndim != 1 or np.any(space.start != 0):
            raise UnsupportedSpaceError(f"MultiDiscrete action space {space} must be 1-D, start 0")
        return cls(tuple(int(n) for n in space.nvec))

    @classmethod
    def to_json(cls, space: gym.spaces.MultiDiscrete) -> dict[str, Any]:
        return {"type": cls.json_type, "nvec": space.nvec.tolist()}

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> gym.spaces.MultiDiscrete:
        return gym.spaces.MultiDiscrete(np.array(spec["nvec"], dtype=np.int64))

    @classmethod
    def validate_actions(cls, space: gym.spaces.MultiDiscrete, actions: np.ndarray) -> str | None:
        inside = (actions >= space.start) & (actions < space.start + space.nvec)
        return _not_integers(space, actions) or _outside(space, inside)

    def c_decision(self, out_scale: str | None = None) -> CDecision:
        lines, offset = [], 0
        for i, size in enumerate(self.nvec):
            lines.append(
                f"    {{ int best = {offset};\n"
                f"      for (int k = {offset + 1}; k < {offset + size}; ++k) if (out[k] > out[best]) best = k;\n"  # noqa: E501
                f"      action[{i}] = best - {offset}; }}\n"
            )
            offset += size
        return CDecision("int", "".join(lines), len(self.nvec))

    def sb3_algorithms(self) -> tuple[str, ...]:
        return ("ppo",)  # SB3's distribution reads the same logits layout


@dataclass(frozen=True)
class BernoulliHead(ActionHead):
    """``MultiBinary(n)``: one independent sigmoid per output (multi-label, not softmax)."""

    space_type = gym.spaces.MultiBinary
    json_type = "MultiBinary"
    discrete = True

    n: int

    @property
    def n_outputs(self) -> int:
        return self.n

    @property
    def action_shape(self) -> tuple[int, ...]:
        return (self.n,)

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

    @classmethod
    def from_space(cls, space: gym.spaces.MultiBinary) -> BernoulliHead:
        if len(space.shape) != 1:
            raise UnsupportedSpaceError(f"MultiBinary action space {space} must be 1-D")
        return cls(int(space.shape[0]))

    @classmethod
    def to_json(cls, space: gym.spaces.MultiBinary) -> dict[str, Any]:
        return {"type": cls.json_type, "n": list(space.shape)}

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> gym.spaces.MultiBinary:
        n = spec["n"]
        return gym.spaces.MultiBinary(n[0] if len(n) == 1 else n)

    @classmethod
    def validate_actions(cls, space: gym.spaces.MultiBinary, actions: np.ndarray) -> str | None:
        return _not_integers(space, actions) or _outside(space, (actions == 0) | (actions == 1))

    def c_decision(self, out_scale: str | None = None) -> CDecision:
        zero = "0" if out_scale is not None else "0.0f"
        code = f"    for (int k = 0; k < {self.n}; ++k) action[k] = out[k] > {zero};\n"
        return CDecision("int", code, self.n)

    def sb3_algorithms(self) -> tuple[str, ...]:
        return ("ppo",)  # SB3's distribution reads the same logits layout


@dataclass(frozen=True)
class GaussianHead(ActionHead):
    """``Box(low, high)`` with shape (D,): diagonal Gaussian, outputs ``[mean_raw, log_std]``.

    With finite bounds the mean is ``center + half_range * tanh(mean_raw)``, so the
    mode always lies inside the box; samples are clipped into it.
    """

    space_type = gym.spaces.Box
    json_type = "Box"
    discrete = False

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

    @classmethod
    def from_space(cls, space: gym.spaces.Box) -> GaussianHead:
        if len(space.shape) != 1:
            raise UnsupportedSpaceError(f"Box action space {space} must be 1-D")
        return cls(tuple(float(v) for v in space.low), tuple(float(v) for v in space.high))

    @classmethod
    def to_json(cls, space: gym.spaces.Box) -> dict[str, Any]:
        return {
            "type": cls.json_type,
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": [_json_float(float(v)) for v in space.low.ravel()],
            "high": [_json_float(float(v)) for v in space.high.ravel()],
        }

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> gym.spaces.Box:
        shape = tuple(int(s) for s in spec["shape"])
        low = np.array([float(v) for v in spec["low"]], dtype=spec["dtype"]).reshape(shape)
        high = np.array([float(v) for v in spec["high"]], dtype=spec["dtype"]).reshape(shape)
        return gym.spaces.Box(low, high, shape=shape, dtype=np.dtype(spec["dtype"]).type)

    @classmethod
    def validate_actions(cls, space: gym.spaces.Box, actions: np.ndarray) -> str | None:
        if not np.isfinite(actions).all():
            return "contains NaN or inf"
        return _outside(space, (actions >= space.low) & (actions <= space.high))

    def c_decision(self, out_scale: str | None = None) -> CDecision:
        value = "out[k]" if out_scale is None else f"(float)out[k] * {out_scale}"
        if not self.bounded:
            code = f"    for (int k = 0; k < {self.dim}; ++k) action[k] = {value};\n"
            return CDecision("float", code, self.dim)
        low, high = np.array(self.low), np.array(self.high)
        code = (
            f"    static const float center[{self.dim}] = {{{c_floats((high + low) / 2)}}};\n"
            f"    static const float half[{self.dim}] = {{{c_floats((high - low) / 2)}}};\n"
            f"    for (int k = 0; k < {self.dim}; ++k) action[k] = center[k] + half[k] * tanhf({value});\n"  # noqa: E501
        )
        return CDecision("float", code, self.dim, ("tanhf",))

    def sb3_actions(self, outputs: np.ndarray, squashed: bool) -> np.ndarray:
        """SAC: the tanh-squashed mean rescaled into the box (SB3's ``unscale_action``);
        PPO / A2C: the mean clipped into it."""
        mean = outputs[:, : self.dim]
        low = np.array(self.low, dtype=np.float32)
        high = np.array(self.high, dtype=np.float32)
        if squashed:
            return (low + 0.5 * (np.tanh(mean) + 1.0) * (high - low)).astype(np.float32)
        return np.clip(mean, low, high).astype(np.float32)

    def sb3_algorithms(self) -> tuple[str, ...]:
        return ("sac",) if self.bounded else ()  # SAC's tanh-squashed mean is this head's mode


HEADS: tuple[type[ActionHead], ...] = (
    CategoricalHead,
    MultiCategoricalHead,
    BernoulliHead,
    GaussianHead,
)
"""Every head, one per gymnasium space class: the registry the functions below search."""


def head_class(space: gym.Space[Any]) -> type[ActionHead] | None:
    """The head class serving ``space``'s type (None: no head knows it)."""
    return next((cls for cls in HEADS if isinstance(space, cls.space_type)), None)


def head_for_space(space: gym.Space[Any]) -> ActionHead:
    """Choose the head for an action space; unsupported spaces raise ``UnsupportedSpaceError``."""
    cls = head_class(space)
    if cls is None:
        names = ", ".join(c.space_type.__name__ for c in HEADS[:-1])
        raise UnsupportedSpaceError(
            f"unsupported action space {space}: imitate supports {names} and 1-D "
            f"{HEADS[-1].space_type.__name__}"
        )
    return cls.from_space(space)


def space_text(space: gym.Space[Any]) -> str:
    """A space as gymnasium prints it (``Box(-inf, inf, (4,), float32)``, ``Discrete(2)``),
    on one line: numpy pads a bound's columns and prints a 2-D one over several lines,
    which a one-line error must not hold."""
    return " ".join(str(space).split())


def flat_obs_dim(space: gym.Space[Any]) -> int:
    """Number of observation features; only Box observation spaces are supported."""
    if not isinstance(space, gym.spaces.Box):
        raise UnsupportedSpaceError(
            f"unsupported observation space {space}: imitate supports Box observations"
        )
    return int(np.prod(space.shape))


def space_to_json(space: gym.Space[Any]) -> dict[str, Any]:
    """A JSON-safe description of a space (round-trips through :func:`space_from_json`)."""
    cls = head_class(space)
    if cls is None:
        raise UnsupportedSpaceError(f"cannot describe space {space}")
    return cls.to_json(space)


def space_from_json(spec: dict[str, Any]) -> gym.Space[Any]:
    """Inverse of :func:`space_to_json`; raises ``ValueError`` on a malformed spec."""
    kind = spec.get("type")
    cls = next((c for c in HEADS if c.json_type == kind), None)
    if cls is None:
        raise ValueError(f"unknown space type {kind!r}")
    return cls.from_json(spec)


def validate_actions(space: gym.Space[Any], actions: np.ndarray) -> str | None:
    """What is wrong with actions ``[N, *space.shape]`` of ``space`` (the head's check), or
    None; UnsupportedSpaceError when no head knows the space."""
    cls = head_class(space)
    if cls is None:
        raise UnsupportedSpaceError(f"unsupported action space {space}")
    return cls.validate_actions(space, actions)


def _json_float(value: float) -> float | str:
    """Infinite bounds are written as the strings 'inf' / '-inf' (JSON has no infinity)."""
    value = float(value)
    return value if math.isfinite(value) else str(value)
