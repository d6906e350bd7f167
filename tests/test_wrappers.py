"""StackObservation: the last k observations of chosen Box entries, oldest first."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers imitate/...)
from imitate.environments import env_spec
from imitate.wrappers import StackObservation, stack_spec


def test_stacks_a_box_observation_oldest_first() -> None:
    env = StackObservation(gym.make("CartPole-v1"), k=3)
    assert env.observation_space.shape == (3, 4)
    first, _ = env.reset(seed=0)
    assert env.observation_space.contains(first)
    np.testing.assert_array_equal(first, np.stack([first[0]] * 3))
    second, *_ = env.step(0)
    third, *_ = env.step(1)
    np.testing.assert_array_equal(third[:2], second[1:])
    np.testing.assert_array_equal(third[0], first[0])
    again, _ = env.reset(seed=0)  # a reset forgets the previous episode
    np.testing.assert_array_equal(again, first)


def test_stacks_chosen_dict_entries_only() -> None:
    env = StackObservation(gym.make("imitate/ObsDict-v0"), k=2, keys=["vec"])
    space = env.observation_space
    assert space["vec"].shape == (2, 2) and space["mode"] == gym.spaces.Discrete(2)
    assert list(space.spaces) == ["vec", "mode", "mask"]
    obs, _ = env.reset(seed=1)
    nxt, *_ = env.step(0)
    np.testing.assert_array_equal(nxt["vec"][0], obs["vec"][1])
    assert space.contains(nxt)
    with pytest.raises(ValueError, match="not a Box"):
        StackObservation(gym.make("imitate/ObsDict-v0"), k=2, keys=["mode"])


def test_recorded_as_a_wrapper_spec() -> None:
    spec = env_spec("imitate/ObsDict-v0", wrappers=[stack_spec(3, ["vec"])])
    env = gym.make(spec)
    assert env.observation_space["vec"].shape == (3, 2)
    env.close()
