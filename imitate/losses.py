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
