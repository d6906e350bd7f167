"""The rest of the cross-entropy family and the calibration metrics, against torch / by hand."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imitate import losses
from imitate.calibration import (
    auroc,
    brier_score,
    energy_score,
    expected_calibration_error,
    fit_temperature,
    fpr_at_95_tpr,
    max_softmax_probability,
    vote_disagreement,
)

G = torch.Generator().manual_seed(0)
LOGITS = torch.randn(64, 4, generator=G) * 2
ACTIONS = torch.randint(0, 4, (64,), generator=G)


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.3])
def test_label_smoothing_matches_torch(epsilon: float) -> None:
    ours = losses.smoothed_cross_entropy(LOGITS, ACTIONS, epsilon)
    torch.testing.assert_close(ours, F.cross_entropy(LOGITS, ACTIONS, label_smoothing=epsilon))


def test_balanced_weights_and_weighted_ce_match_torch() -> None:
    actions = np.array([0, 0, 0, 1, 2, 2])
    weights = losses.balanced_class_weights(actions, 4)
    np.testing.assert_allclose(weights, [6 / 12, 6 / 4, 6 / 8, 0.0])
    w = torch.tensor([0.5, 2.0, 1.0, 3.0])
    torch.testing.assert_close(
        losses.weighted_cross_entropy(LOGITS, ACTIONS, w),
        F.cross_entropy(LOGITS, ACTIONS, weight=w),
    )


def test_focal_loss_reduces_to_ce_and_down_weights_easy_states() -> None:
    torch.testing.assert_close(
        losses.focal_loss(LOGITS, ACTIONS, gamma=0.0), F.cross_entropy(LOGITS, ACTIONS)
    )
    p = 0.9  # hand-computed: -(1 - p)^2 log p
    logits = torch.tensor([[math.log(p), math.log(1 - p)]])
    value = losses.focal_loss(logits, torch.tensor([0]), gamma=2.0)
    assert float(value) == pytest.approx(-(0.1**2) * math.log(0.9), rel=1e-5)
    alpha = torch.tensor([0.25, 0.75])
    assert float(losses.focal_loss(logits, torch.tensor([0]), 2.0, alpha)) == pytest.approx(
        0.25 * float(value)
    )


def test_soft_cross_entropy_and_mixup() -> None:
    onehot = F.one_hot(ACTIONS, 4).float()
    torch.testing.assert_close(
        losses.soft_cross_entropy(LOGITS, onehot), F.cross_entropy(LOGITS, ACTIONS)
    )
    obs = torch.randn(64, 3, generator=G)
    mixed_obs, mixed_targets = losses.mixup(obs, onehot, 0.2, torch.Generator().manual_seed(1))
    torch.testing.assert_close(mixed_targets.sum(-1), torch.ones(64))
    assert mixed_obs.shape == obs.shape and not torch.equal(mixed_obs, obs)
    same_obs, same_targets = losses.mixup(obs, onehot, 0.0, torch.Generator().manual_seed(1))
    torch.testing.assert_close(same_obs, obs)
    torch.testing.assert_close(same_targets, onehot)


def test_mixup_draws_only_from_its_generator() -> None:
    obs, onehot = torch.randn(64, 3, generator=G), F.one_hot(ACTIONS, 4).float()
    runs = []
    for global_seed in (0, 123):  # torch's global stream must not matter
        torch.manual_seed(global_seed)
        runs.append(losses.mixup(obs, onehot, 0.2, torch.Generator().manual_seed(7)))
    torch.testing.assert_close(runs[0][0], runs[1][0])
    torch.testing.assert_close(runs[0][1], runs[1][1])
    lam = runs[0][1].max(dim=-1).values  # >= the larger of lam and 1 - lam
    assert (lam >= 0.5).all() and (lam > 0.99).float().mean() > 0.3  # Beta(0.2, 0.2): U-shaped


def test_js_divergence_is_symmetric_bounded_and_zero_on_agreement() -> None:
    a, b = torch.randn(32, 3, generator=G), torch.randn(32, 3, generator=G)
    js = losses.js_divergence(a, b, reduction="none")
    torch.testing.assert_close(js, losses.js_divergence(b, a, reduction="none"))
    assert torch.all(js >= 0) and torch.all(js <= math.log(2) + 1e-6)
    assert float(losses.js_divergence(a, a)) == pytest.approx(0.0, abs=1e-6)
    certain = torch.tensor([[50.0, -50.0]]), torch.tensor([[-50.0, 50.0]])
    assert float(losses.js_divergence(*certain)) == pytest.approx(math.log(2), rel=1e-4)
    p, q = torch.softmax(a, -1), torch.softmax(b, -1)
    m = (p + q) / 2
    expected = 0.5 * (
        F.kl_div(m.log(), p, reduction="none").sum(-1)
        + F.kl_div(m.log(), q, reduction="none").sum(-1)
    )
    torch.testing.assert_close(js, expected, rtol=1e-5, atol=1e-6)


def test_ece_and_brier_by_hand() -> None:
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])
    # bins: 0.9 (acc 0.5, conf 0.9), 0.6 (acc 1.0, conf 0.6): ECE = 0.5 * 0.4 + 0.5 * 0.4
    assert expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(0.4)
    assert expected_calibration_error(probs, labels, n_bins=2, adaptive=True) == pytest.approx(0.4)
    expected_brier = np.mean([0.02, 1.62, 0.32, 0.32])
    assert brier_score(probs, labels) == pytest.approx(expected_brier)


def test_temperature_scaling_recovers_an_overconfidence_factor() -> None:
    true_logits = torch.randn(4000, 5, generator=G)
    labels = torch.distributions.Categorical(logits=true_logits).sample()
    t = fit_temperature(true_logits * 3.0, labels)
    assert t == pytest.approx(3.0, rel=0.15)


def test_ood_scores_and_auroc() -> None:
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert auroc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5
    rng = np.random.default_rng(0)
    assert fpr_at_95_tpr(rng.normal(0, 1, 1000), rng.normal(5, 1, 1000)) < 0.01
    logits = torch.tensor([[10.0, 0.0], [0.1, 0.0]])
    energy = energy_score(logits)
    torch.testing.assert_close(energy, -torch.logsumexp(logits, -1))
    assert energy[0] < energy[1]  # a confident state has lower energy
    assert max_softmax_probability(logits)[0] > max_softmax_probability(logits)[1]


def test_vote_disagreement() -> None:
    votes = np.array([[0, 1, 2], [0, 1, 1], [0, 2, 0]])  # 3 members, 3 states
    np.testing.assert_allclose(vote_disagreement(votes), [0.0, 1 / 3, 2 / 3])
    continuous = np.array([[[0.0], [1.0]], [[0.0], [3.0]]])
    np.testing.assert_allclose(vote_disagreement(continuous), [0.0, 1.0])


# --- wiring into BC -------------------------------------------------------------------------

from imitate import (  # noqa: E402
    BCConfig,
    Dataset,
    EarlyStopConfig,
    ImitateError,
    LossConfig,
    MLPPolicy,
    OptimConfig,
    train_bc,
)
from imitate.losses import BCLoss  # noqa: E402
from imitate.training import build_loss  # noqa: E402


def _toolbox(dataset: Dataset, **options: object) -> tuple[BCLoss, MLPPolicy]:
    obs_space, action_space = dataset.meta.spaces()
    policy = MLPPolicy(obs_space, action_space)
    obs = policy.normalize(torch.as_tensor(dataset.obs))
    config = BCConfig(loss=LossConfig(**options))  # type: ignore[arg-type]
    toolbox = build_loss(config.loss, policy.head, dataset, obs, np.arange(len(dataset)))
    assert not toolbox.is_plain_nll
    return toolbox, policy


def _run(toolbox: BCLoss, *batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs, per-sample loss) of one batch."""
    result = toolbox.per_sample(*batch)
    return result.outputs, result.per_sample


def test_toolbox_losses_are_the_documented_formulas(cartpole_demos: Dataset) -> None:
    data = cartpole_demos.select_episodes([0, 1])
    index = torch.arange(0, 990, 37)  # no episode end (499, 999) among them
    obs = torch.as_tensor(data.obs[index.numpy()])
    actions = torch.as_tensor(data.actions[index.numpy()])
    generator = torch.Generator().manual_seed(0)

    toolbox, policy = _toolbox(data, label_smoothing=0.2)
    normed = policy.normalize(obs)
    outputs, per = _run(toolbox, policy.net, normed, actions, index, generator)
    torch.testing.assert_close(
        per, F.cross_entropy(outputs, actions, label_smoothing=0.2, reduction="none")
    )

    toolbox, policy = _toolbox(data, class_weights="balanced")
    weights = losses.balanced_class_weights(data.actions, 2)
    outputs, per = _run(toolbox, policy.net, policy.normalize(obs), actions, index, generator)
    expected = (
        F.cross_entropy(outputs, actions, reduction="none") * torch.as_tensor(weights)[actions]
    )
    torch.testing.assert_close(per, expected)

    toolbox, policy = _toolbox(data, focal_gamma=2.0)
    outputs, per = _run(toolbox, policy.net, policy.normalize(obs), actions, index, generator)
    torch.testing.assert_close(per, losses.focal_loss(outputs, actions, 2.0, reduction="none"))

    toolbox, policy = _toolbox(data, temporal_js=0.5)
    last = torch.tensor([499, 999])  # episode ends: no following step, no penalty
    outputs, per = _run(
        toolbox,
        policy.net,
        policy.normalize(torch.as_tensor(data.obs[last.numpy()])),
        torch.as_tensor(data.actions[last.numpy()]),
        last,
        generator,
    )
    torch.testing.assert_close(
        per, F.cross_entropy(outputs, torch.as_tensor(data.actions[last.numpy()]), reduction="none")
    )
    outputs, per = _run(toolbox, policy.net, normed, actions, index, generator)
    following = policy.net(policy.normalize(torch.as_tensor(data.obs[index.numpy() + 1])))
    expected = F.cross_entropy(outputs, actions, reduction="none") + 0.5 * losses.js_divergence(
        outputs, following, reduction="none"
    )
    torch.testing.assert_close(per, expected)

    toolbox, policy = _toolbox(data, temporal_js=0.5, temporal_js_temperature=0.25)
    outputs, per = _run(toolbox, policy.net, normed, actions, index, generator)
    following = policy.net(policy.normalize(torch.as_tensor(data.obs[index.numpy() + 1])))
    expected = F.cross_entropy(outputs, actions, reduction="none") + 0.5 * losses.js_divergence(
        outputs / 0.25, following / 0.25, reduction="none"
    )
    torch.testing.assert_close(per, expected)

    toolbox, policy = _toolbox(data, ood_energy_weight=0.3, ood_noise=1.5)
    outputs, per = _run(
        toolbox, policy.net, normed, actions, index, torch.Generator().manual_seed(7)
    )
    noise = torch.randn(normed.shape, generator=torch.Generator().manual_seed(7)) * 1.5
    energy_in = -torch.logsumexp(outputs, -1)
    energy_out = -torch.logsumexp(policy.net(normed + noise), -1)
    hinge = torch.relu(energy_in + 8.0) ** 2 + torch.relu(-2.0 - energy_out) ** 2
    expected = F.cross_entropy(outputs, actions, reduction="none") + 0.3 * hinge
    torch.testing.assert_close(per, expected)


def test_energy_margin_loss_by_hand() -> None:
    logits_in = torch.tensor([[3.0, 1.0], [0.0, 0.0]])
    logits_out = torch.tensor([[1.0, 1.0], [-4.0, -5.0]])
    energy_in = [-math.log(math.exp(3) + math.exp(1)), -math.log(2)]
    energy_out = [-math.log(2 * math.e), -math.log(math.exp(-4) + math.exp(-5))]
    expected = [max(0.0, e - -2.0) ** 2 for e in energy_in]  # m_in = -2
    expected = [a + max(0.0, 1.0 - e) ** 2 for a, e in zip(expected, energy_out, strict=True)]
    per = losses.energy_margin_loss(logits_in, logits_out, -2.0, 1.0, reduction="none")
    torch.testing.assert_close(per, torch.tensor(expected), rtol=1e-5, atol=1e-6)
    assert float(losses.energy_margin_loss(logits_in, logits_out, -2.0, 1.0)) == pytest.approx(
        sum(expected) / 2, rel=1e-5
    )


def test_energy_margin_makes_far_states_look_unfamiliar() -> None:
    """Plain CE gives states 3 std away *lower* energies than expert states (AUROC < 0.5);
    the energy margin (Liu et al. 2020) reverses that."""
    from agents.zoo import load_zoo_teacher
    from imitate import collect
    from imitate.calibration import auroc, energy_score

    expert = load_zoo_teacher("CartPole-v1")
    demos = collect(expert, "CartPole-v1", 1, seed=0)
    states = collect(expert, "CartPole-v1", 5, seed=100).obs
    far = states + np.random.default_rng(0).normal(0, 3.0, states.shape) * states.std(0)

    def separation(**options: float) -> float:
        policy, _ = train_bc(
            demos, BCConfig(seed=0, optim=OptimConfig(max_steps=3000), loss=LossConfig(**options))
        )  # type: ignore[arg-type]
        score = lambda x: energy_score(torch.as_tensor(policy.logits(x.astype(np.float32))))  # noqa: E731
        return auroc(score(states).numpy(), score(far).numpy())

    plain, margin = separation(), separation(ood_energy_weight=0.1)
    assert plain < 0.5 < 0.8 < margin


def test_toolbox_options_train_and_are_validated(cartpole_demos: Dataset) -> None:
    data = cartpole_demos.select_episodes([0])
    for options in (
        {"label_smoothing": 0.1},
        {"mixup_alpha": 0.2},
        {"focal_gamma": 2.0, "class_weights": "balanced"},
    ):
        policy, history = train_bc(
            data,
            BCConfig(
                optim=OptimConfig(max_steps=200),
                early_stop=EarlyStopConfig(eval_every=100),
                loss=LossConfig(**options),
            ),
        )  # type: ignore[arg-type]
        assert history.records and policy.act(data.obs[:5]).shape == (5,)
    smooth, _ = train_bc(
        data,
        BCConfig(
            optim=OptimConfig(max_steps=1500),
            early_stop=EarlyStopConfig(holdout_fraction=0.0),
            loss=LossConfig(label_smoothing=0.3),
        ),
    )
    sharp, _ = train_bc(
        data,
        BCConfig(
            optim=OptimConfig(max_steps=1500), early_stop=EarlyStopConfig(holdout_fraction=0.0)
        ),
    )

    def confidence(p):
        return torch.softmax(torch.as_tensor(p.logits(data.obs)), -1).max(-1).values.mean()

    assert confidence(smooth) < confidence(sharp)  # smoothing keeps the clone less over-confident
    with pytest.raises(ValueError, match="mixup combines"):
        BCConfig(loss=LossConfig(mixup_alpha=0.2, temporal_js=0.1))
    from envs import EXPERTS
    from imitate import collect

    box = collect(EXPERTS["imitate/LabelBox-v0"](), "imitate/LabelBox-v0", 1, seed=0)  # type: ignore[arg-type]
    with pytest.raises(ImitateError, match="need a Discrete action space"):
        train_bc(
            box, BCConfig(optim=OptimConfig(max_steps=10), loss=LossConfig(label_smoothing=0.1))
        )
