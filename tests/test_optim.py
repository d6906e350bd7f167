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


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_fast_adam_on_a_large_buffer_runs_torchs_fused_kernel_with_its_own_moments(
    weight_decay: float,
) -> None:
    """From FUSED_FROM parameters the step is torch's fused Adam on the flat buffer: still
    torch.optim.Adam's steps, and the moments stay FastAdam's (the numpy trainer's state)."""
    from imitate.optim import FUSED_FROM

    torch.manual_seed(0)
    reference = torch.nn.Linear(300, 100)
    ours = torch.nn.Linear(300, 100)
    ours.load_state_dict(reference.state_dict())
    opt_ref = torch.optim.Adam(reference.parameters(), lr=1e-2, weight_decay=weight_decay)
    opt_ours = FastAdam(ours.parameters(), lr=1e-2, weight_decay=weight_decay)
    assert opt_ours.flat.size >= FUSED_FROM and opt_ours.fused is not None
    x, y = torch.randn(64, 300), torch.randint(0, 100, (64,))
    for _ in range(30):
        for model, opt in ((reference, opt_ref), (ours, opt_ours)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for p_ref, p_ours in zip(reference.parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(p_ours, p_ref, rtol=1e-5, atol=1e-6)
    state = opt_ref.state[reference.weight]
    moment = torch.from_numpy(opt_ours.exp_avg[: reference.weight.numel()]).view(100, 300)
    torch.testing.assert_close(moment, state["exp_avg"], rtol=1e-5, atol=1e-8)
    assert opt_ours.step_count == 30
