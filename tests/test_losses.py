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
