"""Action heads: chosen from the space, likelihoods equal torch.distributions'."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imitate.errors import UnsupportedSpaceError
from imitate.spaces import (
    HEADS,
    BernoulliHead,
    CategoricalHead,
    GaussianHead,
    MultiCategoricalHead,
    head_class,
    head_for_space,
    space_from_json,
    space_to_json,
    validate_actions,
)

SPACES = [
    gym.spaces.Discrete(3),
    gym.spaces.Discrete(4, start=-1),
    gym.spaces.MultiDiscrete([3, 2]),
    gym.spaces.MultiBinary(3),
    gym.spaces.Box(-2.0, 2.0, (2,), np.float32),
    gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
]


def test_head_chosen_from_space() -> None:
    assert isinstance(head_for_space(gym.spaces.Discrete(3)), CategoricalHead)
    assert isinstance(head_for_space(gym.spaces.MultiDiscrete([3, 2])), MultiCategoricalHead)
    assert isinstance(head_for_space(gym.spaces.MultiBinary(3)), BernoulliHead)
    assert isinstance(head_for_space(gym.spaces.Box(-1, 1, (2,))), GaussianHead)


@pytest.mark.parametrize(
    "space",
    [gym.spaces.Tuple((gym.spaces.Discrete(2),)), gym.spaces.Box(-1, 1, (2, 2))],
)
def test_unsupported_space_is_a_clear_error(space: gym.Space) -> None:
    with pytest.raises(UnsupportedSpaceError, match="action space"):
        head_for_space(space)


@pytest.mark.parametrize("space", SPACES, ids=str)
def test_space_json_round_trip(space: gym.Space) -> None:
    assert space_from_json(space_to_json(space)) == space


@pytest.mark.parametrize("space", SPACES, ids=str)
def test_mode_numpy_equals_mode_and_lies_in_space(space: gym.Space) -> None:
    head = head_for_space(space)
    outputs = torch.randn(200, head.n_outputs, generator=torch.Generator().manual_seed(0)) * 3
    torch_actions = head.to_env_actions(head.mode(outputs))
    numpy_actions = head.mode_numpy(outputs.numpy())
    np.testing.assert_allclose(torch_actions, numpy_actions, rtol=1e-5, atol=1e-6)
    assert all(space.contains(a) for a in numpy_actions)
    sampled = head.to_env_actions(head.sample(outputs, torch.Generator().manual_seed(1)))
    assert sampled.shape == (200, *head.action_shape)


def test_categorical_nll_and_entropy_match_torch_distributions() -> None:
    head = CategoricalHead(4)
    logits = torch.randn(50, 4)
    actions = torch.randint(0, 4, (50,))
    dist = torch.distributions.Categorical(logits=logits)
    torch.testing.assert_close(head.nll(logits, actions), -dist.log_prob(actions))
    torch.testing.assert_close(head.entropy(logits), dist.entropy())


def test_categorical_respects_space_start() -> None:
    head = head_for_space(gym.spaces.Discrete(3, start=-1))
    actions = np.array([-1, 0, 1])
    tensor = head.actions_to_tensor(actions)
    assert tensor.tolist() == [0, 1, 2]
    assert head.to_env_actions(tensor).tolist() == [-1, 0, 1]


def test_multi_categorical_is_sum_of_factor_cross_entropies() -> None:
    head = MultiCategoricalHead((3, 2))
    outputs = torch.randn(20, 5)
    actions = torch.stack([torch.randint(0, 3, (20,)), torch.randint(0, 2, (20,))], -1)
    expected = F.cross_entropy(outputs[:, :3], actions[:, 0], reduction="none") + F.cross_entropy(
        outputs[:, 3:], actions[:, 1], reduction="none"
    )
    torch.testing.assert_close(head.nll(outputs, actions), expected)


def test_bernoulli_head_is_multi_label_not_softmax() -> None:
    head = BernoulliHead(3)
    logits = torch.randn(30, 3)
    targets = torch.randint(0, 2, (30, 3)).float()
    dist = torch.distributions.Bernoulli(logits=logits)
    torch.testing.assert_close(head.nll(logits, targets), -dist.log_prob(targets).sum(-1))
    torch.testing.assert_close(head.entropy(logits), dist.entropy().sum(-1))
    # Several labels can be on at once.
    assert head.mode(torch.tensor([[5.0, 5.0, -5.0]])).tolist() == [[1.0, 1.0, 0.0]]


def test_gaussian_head_bounded_mean_and_nll() -> None:
    head = GaussianHead((-2.0, -1.0), (2.0, 3.0))
    outputs = torch.randn(40, 4) * 10
    mean, log_std = head.mean_log_std(outputs)
    assert torch.all(mean >= torch.tensor([-2.0, -1.0])) and torch.all(
        mean <= torch.tensor([2.0, 3.0])
    )
    actions = torch.rand(40, 2)
    dist = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(head.nll(outputs, actions), -dist.log_prob(actions).sum(-1))
    torch.testing.assert_close(head.entropy(outputs), dist.entropy().sum(-1))


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
def test_categorical_soft_target_loss_is_scaled_kl(temperature: float) -> None:
    head = CategoricalHead(5)
    student, teacher = torch.randn(10, 5), torch.randn(10, 5)
    expected = (
        F.kl_div(
            F.log_softmax(student / temperature, -1),
            F.log_softmax(teacher / temperature, -1),
            log_target=True,
            reduction="none",
        ).sum(-1)
        * temperature**2
    )
    torch.testing.assert_close(head.soft_target_loss(student, teacher, temperature), expected)
    assert torch.allclose(head.soft_target_loss(teacher, teacher, temperature), torch.zeros(10))


def test_bernoulli_and_gaussian_soft_target_losses_match_torch_kl() -> None:
    student, teacher = torch.randn(8, 3), torch.randn(8, 3)
    bern = BernoulliHead(3).soft_target_loss(student, teacher, 1.0)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Bernoulli(logits=teacher), torch.distributions.Bernoulli(logits=student)
    ).sum(-1)
    torch.testing.assert_close(bern, expected, rtol=1e-4, atol=1e-5)
    head = GaussianHead((-1.0, -1.0), (1.0, 1.0))
    s_out, t_out = torch.randn(8, 4), torch.randn(8, 4)
    (ms, ls), (mt, lt) = head.mean_log_std(s_out), head.mean_log_std(t_out)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mt, lt.exp()), torch.distributions.Normal(ms, ls.exp())
    ).sum(-1)
    torch.testing.assert_close(head.soft_target_loss(s_out, t_out, 1.0), expected)


@pytest.mark.parametrize("space", SPACES, ids=str)
def test_validate_actions_agrees_with_space_contains(space: gym.Space) -> None:
    """The head's vectorised check equals gymnasium's ``contains``, row by row."""
    space.seed(0)
    good = np.stack([space.sample() for _ in range(100)])
    assert validate_actions(space, good) is None
    bad = good.copy()
    if isinstance(space, gym.spaces.Box):
        bad[7] = np.where(np.isfinite(space.high), space.high + 1, np.nan)
        expected = "contains NaN or inf" if not space.is_bounded() else "outside"
    else:
        bad[7] = np.asarray(space.sample()) + 5  # above every bound
        expected = "has actions outside"
        assert "expected integers" in str(validate_actions(space, good.astype(np.float64)))
    assert not space.contains(bad[7].astype(space.dtype))
    assert expected in str(validate_actions(space, bad))
    if expected != "contains NaN or inf":
        assert "(first at index 7)" in str(validate_actions(space, bad))


def test_every_head_owns_one_space_class_and_json_type() -> None:
    assert len({cls.space_type for cls in HEADS}) == len({cls.json_type for cls in HEADS})
    assert len({cls.json_type for cls in HEADS}) == len(HEADS)
    for space in SPACES:
        cls = head_class(space)
        assert cls is not None and space_to_json(space)["type"] == cls.json_type
    assert head_class(gym.spaces.Tuple((gym.spaces.Discrete(2),))) is None


def test_space_text_is_gymnasiums_print_on_one_line() -> None:
    """Error lines print spaces with it: numpy pads a bound's columns and prints a 2-D one
    over several lines."""
    from imitate.spaces import space_text

    grid = gym.spaces.Box(np.zeros((2, 2)), np.array([[1.0, 2.0], [3.0, 4.0]]), dtype=np.float32)
    assert "\n" in str(grid) and space_text(grid) == "Box(0.0, [[1. 2.] [3. 4.]], (2, 2), float32)"
    cartpole = gym.make("CartPole-v1").observation_space
    assert space_text(cartpole) == (
        "Box([-4.8 -inf -0.41887903 -inf], [4.8 inf 0.41887903 inf], (4,), float32)"
    )
    for space in (gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2)):
        assert space_text(space) == str(space)
