"""Each loss against torch's own function or a hand-computed value."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from imitate import losses


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch(reduction: str) -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 5, generator=g) * 3
    actions = torch.randint(0, 5, (64,), generator=g)
    ours = losses.cross_entropy(logits, actions, reduction=reduction)  # type: ignore[arg-type]
    theirs = F.cross_entropy(logits, actions, reduction=reduction)
    torch.testing.assert_close(ours, theirs)


def test_cross_entropy_hand_computed() -> None:
    # logits (0, ln 3): p = (1/4, 3/4); coding action 0 costs ln 4 nats = 2 bits.
    logits = torch.tensor([[0.0, math.log(3.0)]])
    nll = losses.cross_entropy(logits, torch.tensor([0]))
    assert float(nll) == pytest.approx(math.log(4.0))
    assert losses.nats_to_bits(float(nll)) == pytest.approx(2.0)


@given(
    st.lists(st.floats(-30, 30), min_size=2, max_size=6),
    st.integers(0, 5),
)
@settings(max_examples=100, deadline=None)
def test_cross_entropy_is_free_energy_minus_negative_energy(logits: list[float], k: int) -> None:
    z = torch.tensor([logits], dtype=torch.float64)
    action = torch.tensor([k % len(logits)])
    expected = torch.logsumexp(z, dim=-1) - z[0, action]
    ours = losses.cross_entropy(z, action)
    assert float(ours) == pytest.approx(float(expected), abs=1e-9)
    assert float(ours) >= 0.0


def test_binary_cross_entropy_matches_torch() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(32, 4, generator=g) * 5
    targets = torch.randint(0, 2, (32, 4), generator=g).float()
    ours = losses.binary_cross_entropy(logits, targets, reduction="none")
    theirs = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(
        losses.binary_cross_entropy(logits, targets), theirs.mean(), rtol=1e-6, atol=1e-6
    )


def test_binary_cross_entropy_is_stable_for_large_logits() -> None:
    value = losses.binary_cross_entropy(torch.tensor([[1000.0, -1000.0]]), torch.tensor([[0, 1]]))
    assert float(value) == pytest.approx(2000.0)


def test_gaussian_nll_matches_torch() -> None:
    g = torch.Generator().manual_seed(2)
    mean = torch.randn(16, 3, generator=g)
    log_std = torch.randn(16, 3, generator=g) * 0.5
    actions = torch.randn(16, 3, generator=g)
    ours = losses.gaussian_nll(mean, log_std, actions, reduction="none")
    theirs = F.gaussian_nll_loss(
        mean, actions, torch.exp(2 * log_std), full=True, reduction="none", eps=1e-12
    ).sum(-1)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    normal = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(ours, -normal.log_prob(actions).sum(-1), rtol=1e-5, atol=1e-5)


def test_nats_to_bits() -> None:
    assert losses.nats_to_bits(math.log(2)) == pytest.approx(1.0)
    assert np.isclose(losses.nats_to_bits(0.0), 0.0)


# --- Box-action losses -------------------------------------------------------------------


def _box_batch(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(32, 4, generator=g)
    log_std = torch.randn(32, 4, generator=g) * 0.7
    actions = mean + torch.randn(32, 4, generator=g) * 2
    return mean, log_std, actions


def test_mse_action_loss_matches_torch() -> None:
    mean, _, actions = _box_batch(3)
    torch.testing.assert_close(losses.mse_action_loss(mean, actions), F.mse_loss(mean, actions))
    per_sample = F.mse_loss(mean, actions, reduction="none").mean(-1)
    torch.testing.assert_close(losses.mse_action_loss(mean, actions, reduction="none"), per_sample)


def test_huber_action_loss_matches_torch_and_the_hand_formula() -> None:
    mean, _, actions = _box_batch(4)
    for delta in (0.5, 1.0, 3.0):
        ours = losses.huber_action_loss(mean, actions, delta)
        torch.testing.assert_close(ours, F.huber_loss(mean, actions, delta=delta))
    assert float(losses.huber_action_loss(torch.zeros(1, 1), torch.tensor([[3.0]]), 1.0)) == (
        pytest.approx(1.0 * (3.0 - 0.5))  # linear branch: delta * (|r| - delta / 2)
    )
    assert float(losses.huber_action_loss(torch.zeros(1, 1), torch.tensor([[0.4]]), 1.0)) == (
        pytest.approx(0.5 * 0.4**2)
    )


def test_beta_nll_value_is_the_nll_weighted_by_sigma_to_the_2beta() -> None:
    mean, log_std, actions = _box_batch(5)
    per_dim = F.gaussian_nll_loss(
        mean, actions, torch.exp(2 * log_std), full=True, reduction="none", eps=1e-12
    )
    for beta in (0.0, 0.5, 1.0):
        expected = (per_dim * torch.exp(2 * log_std) ** beta).sum(-1)
        ours = losses.beta_nll(mean, log_std, actions, beta, reduction="none")
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        losses.beta_nll(mean, log_std, actions, 0.0),
        losses.gaussian_nll(mean, log_std, actions),
    )


def test_beta_nll_gradients_follow_seitzer_et_al() -> None:
    """d/dmean = (mean - a) / sigma^(2 - 2 beta): beta = 1 gives the MSE's direction."""
    mean, log_std, actions = _box_batch(6)
    for beta in (0.0, 0.5, 1.0):
        m = mean.clone().requires_grad_(True)
        losses.beta_nll(m, log_std, actions, beta, reduction="sum").backward()
        sigma2 = torch.exp(2 * log_std)
        expected = (mean - actions) / sigma2 ** (1 - beta)
        assert m.grad is not None
        torch.testing.assert_close(m.grad, expected, rtol=1e-4, atol=1e-5)
    # The weight is a stop-gradient: the log-std gradient is sigma^(2 beta) times the NLL's.
    s = log_std.clone().requires_grad_(True)
    losses.beta_nll(mean, s, actions, 0.5, reduction="sum").backward()
    z2 = ((actions - mean) * torch.exp(-log_std)) ** 2
    assert s.grad is not None
    torch.testing.assert_close(s.grad, torch.exp(log_std) * (1 - z2), rtol=1e-4, atol=1e-5)
