"""imitate/Buttons-v0: the expert's known joint, its samples, and BCE's calibrated marginals."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from envs.buttons import (
    ButtonsExpert,
    combination_index,
    combinations,
    joint_probabilities,
    marginal_probabilities,
)
from imitate import BCConfig, OptimConfig, collect, train_bc
from imitate.calibration import binary_calibration_error


def test_joint_probabilities_by_hand() -> None:
    # y -> +inf: lam = 1, u_k = 3, t = -8; weights exp(3 |b|), all three exp(9 - 8)
    weights = np.array([math.exp(3 * combinations()[c].sum()) for c in range(8)])
    weights[7] = math.exp(1.0)
    far = joint_probabilities(np.array([[0.3, 50.0]]))[0]
    np.testing.assert_allclose(far, weights / weights.sum(), rtol=1e-9)
    # y -> -inf: lam = 0, independent buttons with logits 2 x (1, -1, 0.5)
    x = 0.4
    p = 1 / (1 + np.exp(-2 * x * np.array([1.0, -1.0, 0.5])))
    independent = [np.prod(np.where(combinations()[c] == 1, p, 1 - p)) for c in range(8)]
    np.testing.assert_allclose(joint_probabilities(np.array([[x, -50.0]]))[0], independent)
    np.testing.assert_allclose(marginal_probabilities(np.array([[x, -50.0]]))[0], p)
    # the "two of three" regime: marginals ~2/3, all three together almost never
    assert far[7] < 0.003 and np.allclose(
        marginal_probabilities(np.array([[0.3, 50.0]])), 0.66, atol=0.01
    )


def test_combination_index_round_trips() -> None:
    assert combination_index(combinations()).tolist() == list(range(8))
    assert combination_index(np.array([[1, 0, 1]])).tolist() == [5]


def test_expert_samples_the_joint() -> None:
    state = np.array([[0.2, 0.1]], dtype=np.float32)
    draws = ButtonsExpert(0).act(np.repeat(state, 40_000, axis=0))
    freq = np.bincount(combination_index(draws), minlength=8) / len(draws)
    expected = joint_probabilities(state)[0]
    # 4 standard errors of a multinomial frequency
    assert np.all(np.abs(freq - expected) <= 4 * np.sqrt(expected * (1 - expected) / len(draws)))
    a, b = (
        ButtonsExpert(3).act(np.repeat(state, 50, 0)),
        ButtonsExpert(3).act(np.repeat(state, 50, 0)),
    )
    assert np.array_equal(a, b)


def test_env_rewards_the_experts_probability() -> None:
    env = gym.make("imitate/Buttons-v0")
    obs, _ = env.reset(seed=0)
    assert env.action_space == gym.spaces.MultiBinary(3)
    action = np.array([1, 1, 0], dtype=np.int8)
    _, reward, terminated, truncated, _ = env.step(action)
    assert reward == pytest.approx(joint_probabilities(obs[None])[0, 3])
    assert not terminated and not truncated


@pytest.mark.slow
def test_bce_learns_calibrated_marginals_of_correlated_buttons() -> None:
    """10,000 expert transitions, seed 0. Measured: per-button ECE 0.016 / 0.014 / 0.011,
    mean |p - p*| <= 0.020, joint gap 0.43 bits (the total correlation is 0.43)."""
    demos = collect(ButtonsExpert(0), "imitate/Buttons-v0", 100, 0)
    policy, _ = train_bc(demos, BCConfig(seed=0, optim=OptimConfig(max_steps=4000)))
    states = np.random.default_rng(5).uniform(-1, 1, (20_000, 2)).astype(np.float32)
    labels = ButtonsExpert(123).act(states)
    p = 1 / (1 + np.exp(-policy.logits(states).astype(np.float64)))
    eces = [binary_calibration_error(p[:, k], labels[:, k]) for k in range(3)]
    assert max(eces) <= 0.025, eces
    assert np.abs(p - marginal_probabilities(states)).mean(axis=0).max() <= 0.03
    # ... while the product of those marginals is the wrong joint model
    rows, index = np.arange(len(states)), combination_index(labels)
    product = np.prod(np.where(labels == 1, p, 1 - p), axis=1)
    gap = np.mean(np.log2(joint_probabilities(states)[rows, index]) - np.log2(product))
    assert 0.3 <= gap <= 0.6


def test_binary_calibration_error_by_hand() -> None:
    p = np.array([0.1, 0.1, 0.9, 0.9])
    y = np.array([0, 1, 1, 1])
    # bin of 0.1: frequency 0.5 vs 0.1; bin of 0.9: 1.0 vs 0.9 -> (0.4 + 0.1) / 2
    assert binary_calibration_error(p, y, n_bins=10) == pytest.approx(0.25)
    assert binary_calibration_error(np.array([0.0, 1.0]), np.array([0, 1])) == 0.0
