"""The numpy BC step equals autograd + Adam; train_bc takes it only for the same loss."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imitate import BCConfig, Dataset, EarlyStopConfig, OptimConfig, train_bc
from imitate.fastbc import NumpyMLPTrainer, supports
from imitate.policy import MLPPolicy, PolicyConfig


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_numpy_steps_follow_autograd_and_torch_adam(activation: str, weight_decay: float) -> None:
    torch.manual_seed(0)
    config = PolicyConfig((16, 8), activation)  # type: ignore[arg-type]
    reference = MLPPolicy(gym.spaces.Box(-1, 1, (5,)), gym.spaces.Discrete(3), config)
    fast = copy.deepcopy(reference)
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-2, weight_decay=weight_decay)
    trainer = NumpyMLPTrainer(fast, lr=1e-2, weight_decay=weight_decay)
    rng = np.random.default_rng(0)
    for step in range(40):
        obs = rng.normal(size=(32, 5)).astype(np.float32)
        actions = rng.integers(0, 3, 32)
        weights = rng.uniform(size=32).astype(np.float32) if step % 2 else None
        nll = F.cross_entropy(
            reference.net(torch.from_numpy(obs)), torch.from_numpy(actions), reduction="none"
        )
        loss = nll.mean() if weights is None else (nll * torch.from_numpy(weights)).mean()
        optimizer.zero_grad()
        loss.backward()
        if step == 0:  # the first gradient, before any update, against autograd
            params = np.concatenate([p.detach().numpy().ravel() for p in fast.net.parameters()])
            trainer_loss = trainer.step(obs, actions, weights)
            expected = np.concatenate([p.grad.numpy().ravel() for p in reference.net.parameters()])
            expected += weight_decay * params  # L2 decay enters Adam as part of the gradient
            m = trainer.state()["exp_avg"]  # = (1 - beta1) * grad after one step
            np.testing.assert_allclose(m / 0.1, expected, rtol=1e-4, atol=1e-7)
        else:
            trainer_loss = trainer.step(obs, actions, weights)
        optimizer.step()
        assert trainer_loss == pytest.approx(loss.item(), rel=1e-5, abs=1e-6)
    for mine, theirs in zip(fast.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine.detach(), theirs.detach(), rtol=0, atol=2e-6)


def test_train_bc_picks_the_numpy_path_only_for_plain_ce(cartpole_demos: Dataset) -> None:
    policy = MLPPolicy(gym.spaces.Box(-5, 5, (4,)), gym.spaces.Discrete(2))
    assert supports(policy, uses_extra_terms=False)
    assert not supports(policy, uses_extra_terms=True)
    box = MLPPolicy(gym.spaces.Box(-5, 5, (4,)), gym.spaces.Box(-1, 1, (2,)))
    assert not supports(box, uses_extra_terms=False)
    data = cartpole_demos.select_episodes([0, 1])
    trained, history = train_bc(
        data,
        BCConfig(
            seed=0, optim=OptimConfig(max_steps=600), early_stop=EarlyStopConfig(eval_every=200)
        ),
    )
    assert history.final["holdout_accuracy"] > 0.9
    # Parameters own their memory again after training (no view into the trainer's buffer),
    # and a warm start (DAgger) keeps training the same module.
    for p in trained.parameters():
        assert p.untyped_storage().nbytes() == p.numel() * p.element_size()
    before = [p.detach().clone() for p in trained.parameters()]
    again, _ = train_bc(
        data,
        BCConfig(
            seed=1, optim=OptimConfig(max_steps=600), early_stop=EarlyStopConfig(eval_every=200)
        ),
        policy=trained,
    )
    assert again is trained
    assert any(not torch.equal(b, p) for b, p in zip(before, trained.parameters(), strict=True))
