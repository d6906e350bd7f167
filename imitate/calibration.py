"""Uncertainty and out-of-distribution scores computed from a policy's logits.

Softmax logits are negative energies; the free energy of a state,
``E(x) = -T * logsumexp(f(x) / T)``, is low where the network puts a lot of
mass and high on states unlike its training data (Liu et al. 2020). These
scores gate DAgger's expert queries and flag drift states.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from imitate._lazy import lazy_module

if TYPE_CHECKING:
    import torch
    from torch import Tensor
else:  # `imitate eval` calibrates with the numpy functions below, without torch
    torch = lazy_module("torch")


def softmax_and_nll(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
    """Numpy ``(softmax(logits) [N, K], mean cross-entropy in nats)`` for labels ``[N]``
    in ``0..K-1`` (log-sum-exp shifted by the row max, as torch's cross_entropy)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    labels = np.asarray(labels, dtype=np.int64)
    nll = -log_probs[np.arange(len(labels)), labels].mean() if len(labels) else 0.0
    return np.exp(log_probs), float(nll)


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


def expected_calibration_error(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, adaptive: bool = False
) -> float:
    """ECE: weighted mean |accuracy - confidence| over confidence bins (Guo et al. 2017).

    ``probs`` [N, K] predicted distributions, ``labels`` [N]. Equal-width bins, or
    ``adaptive`` bins holding equal numbers of samples.
    """
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    if adaptive:
        edges = np.quantile(confidence, np.linspace(0, 1, n_bins + 1))
    else:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        members = bins == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared error between the distribution and the one-hot label (a proper score)."""
    onehot = np.eye(probs.shape[1])[labels]
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


def fit_temperature(logits: Tensor, labels: Tensor, max_iter: int = 100) -> float:
    """Temperature scaling: the T > 0 minimising held-out NLL of ``softmax(logits / T)`` (LBFGS)."""
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """Probability that an out-of-distribution state scores higher than an in-distribution one."""
    scores = np.concatenate([in_scores, out_scores])
    ranks = np.empty(len(scores))
    order = np.argsort(scores, kind="mergesort")
    ranks[order] = np.arange(1, len(scores) + 1)
    # average ranks over ties
    for value in np.unique(scores):
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    n_in, n_out = len(in_scores), len(out_scores)
    return float((ranks[n_in:].sum() - n_out * (n_out + 1) / 2) / (n_in * n_out))


def fpr_at_95_tpr(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """Share of in-distribution states flagged when the threshold catches 95 % of OOD ones."""
    threshold = np.quantile(out_scores, 0.05)
    return float((in_scores >= threshold).mean())


def binary_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE of one binary label: weighted mean |frequency of 1 - mean p| over equal-width bins
    of the predicted ``P(label = 1)``. ``probs`` [N] in [0, 1], ``labels`` [N] in {0, 1}.

    (Per-output ECE of a multi-label head; :func:`expected_calibration_error` bins the
    top-label confidence instead.)"""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    bins = np.clip((p * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, y, n_bins) - np.bincount(bins, p, n_bins))
    return float(gap.sum() / max(count.sum(), 1))
