"""The cross-entropy family, as pure torch functions.

Each loss is the cost, in nats, of coding the expert's action with the
learner's distribution: ``-log q(a | s)``. Divide by ``ln 2`` for bits per
action (:func:`nats_to_bits`). Functions take raw network outputs (logits or
distribution parameters) and return per-sample values or their mean/sum
(``reduction``), so they compose with weights and schedules.

Shapes: ``B`` batch, ``K`` classes, ``D`` action dimensions.

The second half holds the **loss terms** BC trains with: small frozen objects, each
computing one term's per-sample value from a batch's :class:`LossInputs` and reporting
its batch mean in a frozen :class:`TermMetrics` (as ``imitation``'s
``BehaviorCloningLossCalculator`` returns ``BCTrainingMetrics``). :class:`BCLoss`
composes one *fit* term (the head's NLL, a Box regression, smoothed / focal / mixup CE),
weighted penalties (temporal JS, energy margin) and the soft-target mix; it is built once
per training run from a ``LossConfig`` (:func:`imitate.training.build_loss`), so no step
re-reads the configuration. Metrics stay 0-d tensors (no device sync per step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Reduction = Literal["mean", "sum", "none"]

LN2 = math.log(2.0)
_LOG_2PI = math.log(2.0 * math.pi)


def reduce(values: Tensor, reduction: Reduction) -> Tensor:
    """Apply ``reduction`` to per-sample values of shape [B]."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def nats_to_bits(nats: float) -> float:
    """Convert a code length in nats to bits."""
    return nats / LN2


def cross_entropy(logits: Tensor, actions: Tensor, reduction: Reduction = "mean") -> Tensor:
    """Softmax cross-entropy for one-of-K actions.

    ``logits`` [B, K] are negative energies; ``actions`` [B] integer class ids.
    Per sample: ``logsumexp(z) - z_a`` (free energy minus the action's negative energy).
    """
    # torch's fused kernel is the cheapest form (one op); tests check it against logsumexp - z_a.
    return F.cross_entropy(logits, actions.long(), reduction=reduction)


def binary_cross_entropy(logits: Tensor, targets: Tensor, reduction: Reduction = "mean") -> Tensor:
    """Per-output sigmoid cross-entropy for multi-label actions, summed over outputs.

    ``logits`` [B, D], ``targets`` [B, D] in {0, 1} (or soft in [0, 1]).
    Per output: ``softplus(z) - y * z``, the stable form of
    ``-(y log sigmoid(z) + (1 - y) log(1 - sigmoid(z)))``.
    """
    per_output = F.softplus(logits) - targets.to(logits.dtype) * logits
    return reduce(per_output.sum(dim=-1), reduction)


def gaussian_nll(
    mean: Tensor, log_std: Tensor, actions: Tensor, reduction: Reduction = "mean"
) -> Tensor:
    """Negative log-density of ``actions`` under a diagonal Gaussian, summed over dimensions.

    ``mean``, ``log_std``, ``actions``: [B, D]. Includes the ``log(2 pi)`` constant,
    so it is a true (differential) code length in nats.
    """
    z = (actions.to(mean.dtype) - mean) * torch.exp(-log_std)
    per_dim = 0.5 * (z * z + _LOG_2PI) + log_std
    return reduce(per_dim.sum(dim=-1), reduction)


# --- Box-action losses: what the Gaussian head can be trained with ----------------------
#
# The Gaussian NLL's gradient with respect to the mean is ``(mean - a) / sigma^2``: with a
# learned, state-dependent sigma, states the clone fits badly can buy a large sigma and
# then stop pulling on the mean at all. On Pendulum those are the swing-up states where the
# expert saturates its torque (4.5 % of them), and the clone never swings up (see
# README, "Continuous control"). The losses below fit the mean without that pathology.


def mse_action_loss(mean: Tensor, actions: Tensor, reduction: Reduction = "mean") -> Tensor:
    """Squared error of the mean ``[B, D]``, averaged over action dimensions, per sample [B].

    ``reduction='mean'`` equals ``F.mse_loss(mean, actions)``.
    """
    per_dim = (mean - actions.to(mean.dtype)) ** 2
    return reduce(per_dim.mean(dim=-1), reduction)


def huber_action_loss(
    mean: Tensor, actions: Tensor, delta: float = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    """Huber loss of the mean ``[B, D]`` (quadratic within ``delta``, linear beyond),
    averaged over action dimensions, per sample [B]; ``'mean'`` equals ``F.huber_loss``."""
    per_dim = F.huber_loss(mean, actions.to(mean.dtype), reduction="none", delta=delta)
    return reduce(per_dim.mean(dim=-1), reduction)


def beta_nll(
    mean: Tensor, log_std: Tensor, actions: Tensor, beta: float = 0.5, reduction: Reduction = "mean"
) -> Tensor:
    """beta-NLL (Seitzer et al. 2022): each dimension's Gaussian NLL times ``sg(sigma^(2 beta))``.

    ``sg`` is stop-gradient, so the weight changes the gradients, not the model: the mean's
    gradient becomes ``(mean - a) / sigma^(2 - 2 beta)``. ``beta = 0`` is the NLL,
    ``beta = 1`` gives the mean the MSE's gradient while sigma is still fitted to the
    residuals. ``mean``, ``log_std``, ``actions``: [B, D]; summed over dimensions.
    """
    z = (actions.to(mean.dtype) - mean) * torch.exp(-log_std)
    per_dim = 0.5 * (z * z + _LOG_2PI) + log_std
    weight = torch.exp(2.0 * beta * log_std).detach()
    return reduce((weight * per_dim).sum(dim=-1), reduction)


# --- The rest of the family: regularised and re-weighted cross-entropies -----------------


def smoothed_cross_entropy(
    logits: Tensor, actions: Tensor, epsilon: float = 0.1, reduction: Reduction = "mean"
) -> Tensor:
    """Label smoothing: CE against ``(1 - eps) * onehot(a) + eps / K``.

    Keeps logits finite (the target is never a hard 1), a regulariser against
    over-confident clones. ``logits`` [B, K], ``actions`` [B].
    """
    log_probs = torch.log_softmax(logits, dim=-1)
    nll = -log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    uniform = -log_probs.mean(dim=-1)
    return reduce((1.0 - epsilon) * nll + epsilon * uniform, reduction)


def balanced_class_weights(actions: np.ndarray, n_classes: int) -> np.ndarray:
    """``n / (K * n_c)`` per class ``[K]`` (classes never seen get weight 0).

    Weighting each sample by its class's weight equals training on a
    re-sampled, class-balanced dataset: rare but critical actions count as
    much as common ones.
    """
    counts = np.bincount(np.asarray(actions, dtype=np.int64).ravel(), minlength=n_classes)
    weights = np.zeros(n_classes, dtype=np.float32)
    seen = counts > 0
    weights[seen] = len(np.ravel(actions)) / (n_classes * counts[seen])
    return weights


def weighted_cross_entropy(
    logits: Tensor, actions: Tensor, class_weights: Tensor, reduction: Reduction = "mean"
) -> Tensor:
    """CE with per-class weights ``[K]``; ``mean`` divides by the summed weights (as torch)."""
    nll = cross_entropy(logits, actions, reduction="none")
    weights = class_weights[actions.long()]
    if reduction == "mean":
        return (nll * weights).sum() / weights.sum()
    return reduce(nll * weights, reduction)


def focal_loss(
    logits: Tensor,
    actions: Tensor,
    gamma: float = 2.0,
    alpha: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """Focal loss (Lin et al. 2017): ``-alpha_a * (1 - p_a)^gamma * log p_a``.

    Down-weights the states the clone already gets right (``p_a -> 1``) so that
    training focuses on the hard ones. ``gamma = 0`` and no ``alpha`` is plain CE.
    """
    log_p = torch.log_softmax(logits, dim=-1).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    loss = -((1.0 - log_p.exp()) ** gamma) * log_p
    if alpha is not None:
        loss = loss * alpha[actions.long()]
    return reduce(loss, reduction)


def soft_cross_entropy(logits: Tensor, targets: Tensor, reduction: Reduction = "mean") -> Tensor:
    """CE against a target distribution ``[B, K]`` (mixup targets, smoothed labels)."""
    return reduce(-(targets * torch.log_softmax(logits, dim=-1)).sum(dim=-1), reduction)


def mixup(
    obs: Tensor, targets: Tensor, alpha: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Mixup (Zhang et al. 2018): convex mixes of random pairs of inputs and target distributions.

    ``lam ~ Beta(alpha, alpha)`` per sample; ``obs`` [B, D], ``targets`` [B, K] (one-hot
    or soft). Returns the mixed ``obs`` and ``targets``. Every draw comes from
    ``generator`` (``torch.distributions.Beta`` would use torch's global stream).
    """
    if alpha <= 0:
        return obs, targets
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    draws = np.random.default_rng(seed).beta(alpha, alpha, obs.shape[0])
    lam = torch.as_tensor(draws, dtype=obs.dtype)
    partner = torch.randperm(obs.shape[0], generator=generator)
    lam_obs = lam.view(-1, *([1] * (obs.dim() - 1)))
    mixed_obs = lam_obs * obs + (1 - lam_obs) * obs[partner]
    mixed_targets = lam.unsqueeze(-1) * targets + (1 - lam.unsqueeze(-1)) * targets[partner]
    return mixed_obs, mixed_targets


def js_divergence(logits_a: Tensor, logits_b: Tensor, reduction: Reduction = "mean") -> Tensor:
    """Jensen-Shannon divergence (nats) between two categorical distributions, per sample.

    Used as a temporal-smoothness penalty between the action distributions of
    consecutive steps: symmetric, bounded by ``ln 2``, zero only when they agree.
    """
    log_p, log_q = torch.log_softmax(logits_a, -1), torch.log_softmax(logits_b, -1)
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - math.log(2.0)
    kl_pm = (log_p.exp() * (log_p - log_m)).sum(-1)
    kl_qm = (log_q.exp() * (log_q - log_m)).sum(-1)
    return reduce(0.5 * (kl_pm + kl_qm), reduction)


def energy_margin_loss(
    logits_in: Tensor,
    logits_out: Tensor,
    margin_in: float,
    margin_out: float,
    reduction: Reduction = "mean",
) -> Tensor:
    """Energy-bounded learning (Liu et al. 2020, "Energy-based out-of-distribution detection").

    With the energy ``E(x) = -logsumexp(f(x))``, a squared hinge pulls the energy of
    training states below ``margin_in`` and pushes that of outlier states above
    ``margin_out``, per sample pair ``[B]``:
    ``relu(E(x_in) - margin_in)^2 + relu(margin_out - E(x_out))^2``.
    Plain CE only fits the softmax (shift-invariant in the logits), so nothing stops far-off
    states from getting large logits, i.e. low, familiar-looking energies.
    """
    energy_in = -torch.logsumexp(logits_in, dim=-1)
    energy_out = -torch.logsumexp(logits_out, dim=-1)
    per_sample = F.relu(energy_in - margin_in) ** 2 + F.relu(margin_out - energy_out) ** 2
    return reduce(per_sample, reduction)


# --- Loss terms: what one BC step minimises ---------------------------------------------


@dataclass(frozen=True)
class TermMetrics:
    """One term on one batch: ``value`` is its batch mean (a detached 0-d tensor, before
    its weight in the loss and without sample weights)."""

    name: str
    value: Tensor


@dataclass(frozen=True)
class LossInputs:
    """What a term sees of one batch.

    ``obs`` [B, obs_dim] normalised (mixed when mixup is on), ``outputs`` [B, n_outputs]
    = ``net(obs)``, ``actions`` [B] or [B, D] as the head's tensor, ``index`` [B] the
    batch's rows in the dataset, ``targets`` [B, K] mixup target distributions or None,
    ``teacher`` [B, n_outputs] teacher outputs or None; every random draw comes from
    ``generator``.
    """

    net: Callable[[Tensor], Tensor]
    obs: Tensor
    outputs: Tensor
    actions: Tensor
    index: Tensor
    generator: torch.Generator
    targets: Tensor | None = None
    teacher: Tensor | None = None


class LossTerm(Protocol):
    """One per-sample loss term."""

    @property
    def name(self) -> str: ...

    def __call__(self, inputs: LossInputs) -> Tensor:
        """Per-sample values [B] (differentiable)."""
        ...


@dataclass(frozen=True)
class HeadNLL:
    """The head's own NLL (softmax CE, sum of CEs, per-output BCE, Gaussian NLL)."""

    head: Any  # an imitate.spaces action head
    name: str = "nll"

    def __call__(self, inputs: LossInputs) -> Tensor:
        return self.head.nll(inputs.outputs, inputs.actions)


@dataclass(frozen=True)
class BoxRegression:
    """Box heads, 'mse' / 'huber': the mean regresses the action; the std is fitted to the
    residuals with the mean detached (beta-NLL with beta = 1), so it never re-weights
    states. See :func:`imitate.bc.box_loss` for why."""

    head: Any  # GaussianHead
    kind: Literal["mse", "huber"] = "mse"
    delta: float = 1.0

    @property
    def name(self) -> str:
        return self.kind

    def __call__(self, inputs: LossInputs) -> Tensor:
        mean, log_std = self.head.mean_log_std(inputs.outputs)
        if self.kind == "mse":
            fit = mse_action_loss(mean, inputs.actions, reduction="none")
        else:
            fit = huber_action_loss(mean, inputs.actions, self.delta, reduction="none")
        std_fit = beta_nll(mean.detach(), log_std, inputs.actions, 1.0, reduction="none")
        return fit + std_fit


@dataclass(frozen=True)
class BoxNLL:
    """Box heads, 'nll' (``beta`` None) or 'beta_nll' (Seitzer et al. 2022)."""

    head: Any  # GaussianHead
    beta: float | None = None

    @property
    def name(self) -> str:
        return "nll" if self.beta is None else "beta_nll"

    def __call__(self, inputs: LossInputs) -> Tensor:
        mean, log_std = self.head.mean_log_std(inputs.outputs)
        if self.beta is None:
            return gaussian_nll(mean, log_std, inputs.actions, reduction="none")
        return beta_nll(mean, log_std, inputs.actions, self.beta, reduction="none")


@dataclass(frozen=True)
class SmoothedCE:
    """Discrete: label-smoothed CE (``epsilon`` 0: plain CE), times the class weight
    ``class_weights[a]`` [K] when given."""

    epsilon: float = 0.0
    class_weights: Tensor | None = None
    name: str = "ce"

    def __call__(self, inputs: LossInputs) -> Tensor:
        per_sample = smoothed_cross_entropy(
            inputs.outputs, inputs.actions, self.epsilon, reduction="none"
        )
        if self.class_weights is not None:
            per_sample = per_sample * self.class_weights[inputs.actions]
        return per_sample


@dataclass(frozen=True)
class FocalCE:
    """Discrete: focal loss, times the class weight when given."""

    gamma: float
    class_weights: Tensor | None = None
    name: str = "focal"

    def __call__(self, inputs: LossInputs) -> Tensor:
        per_sample = focal_loss(inputs.outputs, inputs.actions, self.gamma, reduction="none")
        if self.class_weights is not None:
            per_sample = per_sample * self.class_weights[inputs.actions]
        return per_sample


@dataclass(frozen=True)
class MixupCE:
    """Discrete with mixup: CE against the mixed target distributions, times their mixed
    class weight ``targets @ class_weights`` when given."""

    class_weights: Tensor | None = None
    name: str = "mixup_ce"

    def __call__(self, inputs: LossInputs) -> Tensor:
        assert inputs.targets is not None, "MixupCE needs the Mixup input transform"
        per_sample = soft_cross_entropy(inputs.outputs, inputs.targets, reduction="none")
        if self.class_weights is not None:
            per_sample = per_sample * (inputs.targets @ self.class_weights)
        return per_sample


@dataclass(frozen=True)
class Mixup:
    """The input transform of mixup: smoothed one-hot targets of ``n_classes``, mixed with
    the observations by :func:`mixup` before the forward pass."""

    alpha: float
    n_classes: int
    epsilon: float = 0.0

    def __call__(
        self, obs: Tensor, actions: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        eps, k = self.epsilon, self.n_classes
        targets = F.one_hot(actions, k).float() * (1 - eps) + eps / k
        return mixup(obs, targets, self.alpha, generator)


@dataclass(frozen=True)
class TemporalJS:
    """Discrete: JS divergence between the distributions (at ``temperature``) of a step and
    the next step of its episode; 0 at an episode's last step.

    ``next_index`` [N]: each dataset row's following row, -1 at episode ends;
    ``all_obs`` [N, obs_dim]: the normalised observations of the dataset.
    """

    next_index: Tensor
    all_obs: Tensor
    temperature: float = 1.0
    name: str = "temporal_js"

    def __call__(self, inputs: LossInputs) -> Tensor:
        following = self.next_index[inputs.index]
        has_next = following >= 0
        js = torch.zeros(inputs.outputs.shape[0], dtype=inputs.outputs.dtype)
        if bool(has_next.any()):
            next_outputs = inputs.net(self.all_obs[following[has_next]])
            tau = self.temperature
            js[has_next] = js_divergence(
                inputs.outputs[has_next] / tau, next_outputs / tau, reduction="none"
            )
        return js


@dataclass(frozen=True)
class EnergyMargin:
    """Discrete: :func:`energy_margin_loss` between the batch and outliers made of it plus
    Gaussian noise of std ``noise`` (inputs are normalised: units of each feature's std)."""

    noise: float = 2.0
    margins: tuple[float, float] = (-8.0, -2.0)
    name: str = "energy_margin"

    def __call__(self, inputs: LossInputs) -> Tensor:
        obs = inputs.obs
        outliers = obs + torch.randn(obs.shape, generator=inputs.generator) * self.noise
        margin_in, margin_out = self.margins
        return energy_margin_loss(
            inputs.outputs, inputs.net(outliers), margin_in, margin_out, reduction="none"
        )


@dataclass(frozen=True)
class SoftTargets:
    """Distillation: the head's temperature-scaled soft-target loss against the teacher's
    outputs (``alpha`` is its share in the mix, see :class:`BCLoss`)."""

    head: Any
    alpha: float
    temperature: float = 1.0
    name: str = "soft"

    def __call__(self, inputs: LossInputs) -> Tensor:
        assert inputs.teacher is not None, "soft targets need the teacher's outputs"
        return self.head.soft_target_loss(inputs.outputs, inputs.teacher, self.temperature)


@dataclass(frozen=True)
class BatchLoss:
    """One batch through :class:`BCLoss`: ``outputs`` [B, n_outputs], ``per_sample`` [B]
    (differentiable) and one :class:`TermMetrics` per term (empty for a single term)."""

    outputs: Tensor
    per_sample: Tensor
    terms: tuple[TermMetrics, ...]


@dataclass(frozen=True)
class BCLoss:
    """``(1 - alpha) * (fit + sum_i w_i * penalty_i) + alpha * soft`` per sample (no soft
    term: alpha = 0), on mixed inputs when ``mixup`` is set."""

    fit: LossTerm
    penalties: tuple[tuple[float, LossTerm], ...] = ()
    soft: SoftTargets | None = None
    mixup: Mixup | None = None

    @property
    def is_plain_nll(self) -> bool:
        """Only the head's own NLL (what the numpy trainer computes)."""
        return (
            isinstance(self.fit, HeadNLL)
            and not self.penalties
            and self.soft is None
            and self.mixup is None
        )

    def per_sample(
        self,
        net: Callable[[Tensor], Tensor],
        obs: Tensor,
        actions: Tensor,
        index: Tensor,
        generator: torch.Generator,
        teacher: Tensor | None = None,
    ) -> BatchLoss:
        """One batch: ``obs`` [B, obs_dim] normalised, ``actions`` the head's tensor,
        ``index`` [B] dataset rows, ``teacher`` [B, n_outputs] (needed with soft targets)."""
        targets = None
        if self.mixup is not None:
            obs, targets = self.mixup(obs, actions, generator)
        outputs = net(obs)
        inputs = LossInputs(net, obs, outputs, actions, index, generator, targets, teacher)
        per_sample = self.fit(inputs)
        track = bool(self.penalties) or self.soft is not None
        terms = [TermMetrics(self.fit.name, per_sample.detach().mean())] if track else []
        for weight, term in self.penalties:
            value = term(inputs)
            terms.append(TermMetrics(term.name, value.detach().mean()))
            per_sample = per_sample + weight * value
        if self.soft is not None:
            soft = self.soft(inputs)
            terms.append(TermMetrics(self.soft.name, soft.detach().mean()))
            per_sample = (1.0 - self.soft.alpha) * per_sample + self.soft.alpha * soft
        return BatchLoss(outputs, per_sample, tuple(terms))
