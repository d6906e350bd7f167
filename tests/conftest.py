"""Shared fixtures: small datasets made on the fly (no downloads, no files shipped)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers imitate/... envs)
from agents.heuristics import CartPoleExpert
from imitate import Dataset, collect

torch.set_num_threads(1)
gym.logger.min_level = 40


@pytest.fixture(scope="session")
def cartpole_demos() -> Dataset:
    """10 heuristic-expert CartPole episodes (5,000 transitions)."""
    return collect(CartPoleExpert(), "CartPole-v1", n_episodes=10, seed=0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
