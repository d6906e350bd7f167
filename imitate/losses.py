"""The cross-entropy family, as pure torch functions.

Each loss is the cost, in nats, of coding the expert's action with the
learner's distribution: ``-log q(a | s)``. Divide by ``ln 2`` for bits per
action (:func:`nats_to_bits`). Functions take raw network outputs (logits or
distribution parameters) and return per-sample values or their mean/sum
(``reduction``), so they compose with weights and schedules.

Shapes: ``B`` batch, ``K`` classes, ``D`` action dimensions.
"""

from __future__ import annotations

import math
from typing import Literal

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
