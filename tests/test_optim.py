"""FastAdam takes exactly torch.optim.Adam's steps."""

from __future__ import annotations

import pytest
import torch

from imitate.optim import FastAdam


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_fast_adam_matches_torch_adam(weight_decay: float) -> None:
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    ours = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    ours.load_state_dict(reference.state_dict())
    opt_ref = torch.optim.Adam(reference.parameters(), lr=1e-2, weight_decay=weight_decay)
    opt_ours = FastAdam(ours.parameters(), lr=1e-2, weight_decay=weight_decay)
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    for _ in range(50):
        for model, opt in ((reference, opt_ref), (ours, opt_ours)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for p_ref, p_ours in zip(reference.parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(p_ours, p_ref, rtol=1e-5, atol=1e-6)
    assert not torch.equal(reference[0].weight, torch.nn.Linear(4, 16).weight)
