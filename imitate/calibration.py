"""Uncertainty and out-of-distribution scores computed from a policy's logits.

Softmax logits are negative energies; the free energy of a state,
``E(x) = -T * logsumexp(f(x) / T)``, is low where the network puts a lot of
mass and high on states unlike its training data (Liu et al. 2020). These
scores gate DAgger's expert queries and flag drift states.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def energy_score(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """``-T * logsumexp(logits / T)`` per sample ``[B]``; higher means less familiar."""
    return -temperature * torch.logsumexp(logits / temperature, dim=-1)


def max_softmax_probability(logits: Tensor) -> Tensor:
    """Largest class probability per sample ``[B]``; lower means less confident."""
    return torch.softmax(logits, dim=-1).max(dim=-1).values


def vote_disagreement(member_actions: np.ndarray) -> np.ndarray:
    """Share of members ``[K, B, ...]`` disagreeing with the majority action, per sample ``[B]``.

    Continuous actions: mean over dimensions of the members' standard deviation.
    """
    members = np.asarray(member_actions)
    if np.issubdtype(members.dtype, np.floating):
        return members.std(axis=0).reshape(members.shape[1], -1).mean(axis=1)
    flat = members.reshape(members.shape[0], members.shape[1], -1)
    keys = np.array([[hash(row.tobytes()) for row in member] for member in flat])  # [K, B]
    majority = np.array(
        [np.unique(keys[:, b], return_counts=True)[1].max() for b in range(keys.shape[1])]
    )
    return 1.0 - majority / members.shape[0]
