"""FastAdam takes exactly torch.optim.Adam's steps."""

from __future__ import annotations

import pytest
import torch

from imitate.optim import FUSED_FROM, FastAdam


def _adam_twins(
    reference: torch.nn.Module, ours: torch.nn.Module, weight_decay: float, steps: int
) -> tuple[torch.optim.Adam, FastAdam]:
    """``steps`` Adam steps of ``reference`` (torch.optim.Adam) and ``ours`` (FastAdam,
    starting from the same weights) on one fixed classification batch."""
    ours.load_state_dict(reference.state_dict())
    opt_ref = torch.optim.Adam(reference.parameters(), lr=1e-2, weight_decay=weight_decay)
    opt_ours = FastAdam(ours.parameters(), lr=1e-2, weight_decay=weight_decay)
    x = torch.randn(64, next(reference.parameters()).shape[1])
    y = torch.randint(0, 3, (64,))
    for _ in range(steps):
        for model, opt in ((reference, opt_ref), (ours, opt_ours)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for p_ref, p_ours in zip(reference.parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(p_ours, p_ref, rtol=1e-5, atol=1e-6)
    return opt_ref, opt_ours


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_fast_adam_matches_torch_adam(weight_decay: float) -> None:
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    ours = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    _, opt_ours = _adam_twins(reference, ours, weight_decay, 50)
    assert opt_ours.fused is None  # the numpy update
    assert not torch.equal(reference[0].weight, torch.nn.Linear(4, 16).weight)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_fast_adam_on_a_large_buffer_runs_torchs_fused_kernel_with_its_own_moments(
    weight_decay: float,
) -> None:
    """From FUSED_FROM parameters the step is torch's fused Adam on the flat buffer: still
    torch.optim.Adam's steps, and the moments stay FastAdam's (the numpy trainer's state)."""
    torch.manual_seed(0)
    reference, ours = torch.nn.Linear(300, 100), torch.nn.Linear(300, 100)
    opt_ref, opt_ours = _adam_twins(reference, ours, weight_decay, 30)
    assert opt_ours.flat.size >= FUSED_FROM and opt_ours.fused is not None
    state = opt_ref.state[reference.weight]
    moment = torch.from_numpy(opt_ours.exp_avg[: reference.weight.numel()]).view(100, 300)
    torch.testing.assert_close(moment, state["exp_avg"], rtol=1e-5, atol=1e-8)
    assert opt_ours.step_count == 30
