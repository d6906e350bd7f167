"""Behavioural cloning quality on CartPole and on every label env (fixed seeds)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agents.heuristics import CartPoleExpert
from envs import EXPERTS, LABEL_ENVS
from imitate import BCConfig, Dataset, EarlyStopConfig, OptimConfig, collect, evaluate, train_bc


@pytest.mark.slow
def test_bc_from_ten_heuristic_episodes_solves_cartpole(cartpole_demos: Dataset) -> None:
    policy, history = train_bc(cartpole_demos, BCConfig(seed=0))
    result = evaluate(policy, "CartPole-v1", n_episodes=50, seed=10_000)
    assert result.mean_return >= 475.0, result.returns
    final = history.final
    assert final["holdout_accuracy"] >= 0.95
    assert final["holdout_bits_per_action"] == pytest.approx(final["holdout_nll"] / np.log(2))


@pytest.mark.slow
@pytest.mark.parametrize("env_id", list(LABEL_ENVS))
def test_bc_learns_every_action_head(env_id: str) -> None:
    expert = EXPERTS[env_id]()
    demos = collect(expert, env_id, n_episodes=20, seed=0)  # type: ignore[arg-type]
    policy, _ = train_bc(demos, BCConfig(seed=0))
    # Score the clone on fresh states from its own rollouts, labelled by the expert.
    visited = collect(policy, env_id, n_episodes=10, seed=500)
    correct = expert.act(visited.obs)  # type: ignore[attr-defined]
    if LABEL_ENVS[env_id] == "box":
        mean_abs_error = np.abs(visited.actions - correct).mean()
        assert mean_abs_error / 2.0 < 0.05  # range of Box(-1, 1) is 2
    else:
        exact = (visited.actions == correct).reshape(len(correct), -1).all(axis=1).mean()
        assert exact >= 0.95


def test_training_is_reproducible_and_warm_start_continues(cartpole_demos: Dataset) -> None:
    small = cartpole_demos.select_episodes([0, 1])
    config = BCConfig(
        seed=3, optim=OptimConfig(max_steps=300), early_stop=EarlyStopConfig(eval_every=100)
    )
    a, history_a = train_bc(small, config)
    b, _ = train_bc(small, config)
    obs = small.obs[:100]
    np.testing.assert_array_equal(a.logits(obs), b.logits(obs))
    assert [r["step"] for r in history_a.records] == [100, 200, 300]
    warm, _ = train_bc(small, config, policy=a)
    assert warm is a


def test_sample_weights_change_the_fit(cartpole_demos: Dataset) -> None:
    small = cartpole_demos.select_episodes([0])
    weights = np.where(small.actions == 1, 10.0, 0.1).astype(np.float32)
    config = BCConfig(
        optim=OptimConfig(max_steps=400),
        early_stop=EarlyStopConfig(eval_every=400, holdout_fraction=0.0),
    )
    plain, _ = train_bc(small, config)
    weighted, _ = train_bc(replace(small, weights=weights), config)
    assert weighted.act(small.obs).mean() > plain.act(small.obs).mean()


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="holdout_fraction"):
        BCConfig(early_stop=EarlyStopConfig(holdout_fraction=1.5))


def test_heuristic_expert_clone_is_exact_on_expert_states(cartpole_demos: Dataset) -> None:
    policy, _ = train_bc(cartpole_demos, BCConfig(seed=1))
    agreement = (policy.act(cartpole_demos.obs) == CartPoleExpert().act(cartpole_demos.obs)).mean()
    assert agreement >= 0.97
