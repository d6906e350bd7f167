"""Trainers (torch reference, numpy fast path), their choice, loss-term objects, BC records."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imitate import (
    BCConfig,
    Dataset,
    EarlyStopConfig,
    ImitateError,
    LossConfig,
    MLPPolicy,
    OptimConfig,
    PolicyConfig,
    train_bc,
)
from imitate import losses as L
from imitate.bc import BCRecord, HoldoutMetrics
from imitate.optim import FastAdam
from imitate.spaces import CategoricalHead, GaussianHead
from imitate.training import build_loss, numpy_unsupported


def _config(trainer: str, steps: int = 300, **loss: object) -> BCConfig:
    return BCConfig(
        seed=0,
        trainer=trainer,  # type: ignore[arg-type]
        optim=OptimConfig(max_steps=steps),
        early_stop=EarlyStopConfig(eval_every=100),
        loss=LossConfig(**loss),  # type: ignore[arg-type]
    )


def test_torch_and_numpy_trainers_agree_and_are_recorded(cartpole_demos: Dataset) -> None:
    """Same batches, same loss, same (fused) Adam: the two trainers differ only by float32
    rounding of the forward/backward (measured: max parameter difference ~6e-7 after 1000
    steps on this data), so after 300 steps parameters agree to 1e-5 and actions exactly."""
    data = cartpole_demos.select_episodes([0, 1])
    reference, ref_history = train_bc(data, _config("torch"))
    fast, fast_history = train_bc(data, _config("numpy"))
    auto, auto_history = train_bc(data, _config("auto"))
    assert (ref_history.trainer, fast_history.trainer, auto_history.trainer) == (
        "torch",
        "numpy",
        "numpy",  # auto keeps the old choice: numpy for plain CE on a Discrete MLP
    )
    assert ref_history.summary()["trainer"] == "torch"
    for p in reference.parameters():  # released from FastAdam's flat buffer after training
        assert p.grad is None and p.untyped_storage().nbytes() == p.numel() * p.element_size()
    for mine, theirs in zip(fast.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine.detach(), theirs.detach(), rtol=0, atol=1e-5)
    for a, b in zip(fast.parameters(), auto.parameters(), strict=True):
        assert torch.equal(a, b)  # auto is the numpy trainer, bit for bit
    states = cartpole_demos.select_episodes([5, 6]).obs
    np.testing.assert_array_equal(fast.act(states), reference.act(states))
    assert [r.step for r in fast_history.records] == [r.step for r in ref_history.records]
    for ours, theirs in zip(fast_history.records, ref_history.records, strict=True):
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], abs=1e-5)
        assert ours["holdout_nll"] == pytest.approx(theirs["holdout_nll"], abs=1e-5)


def test_numpy_trainer_refuses_what_it_does_not_compute(cartpole_demos: Dataset) -> None:
    data = cartpole_demos.select_episodes([0])
    with pytest.raises(ImitateError, match="numpy trainer fits plain cross-entropy"):
        train_bc(data, _config("numpy", steps=5, label_smoothing=0.1))
    from envs import EXPERTS
    from imitate import collect

    box_data = collect(EXPERTS["imitate/LabelBox-v0"](), "imitate/LabelBox-v0", 1, seed=0)  # type: ignore[arg-type]
    with pytest.raises(ImitateError, match="needs a Discrete action space"):
        train_bc(box_data, _config("numpy", steps=5))
    # 'auto' and 'torch' take both; the history says which trainer ran
    assert train_bc(data, _config("auto", steps=5, label_smoothing=0.1))[1].trainer == "torch"
    assert train_bc(box_data, _config("auto", steps=5))[1].trainer == "torch"
    with pytest.raises(ValueError, match="--trainer must be one of"):
        BCConfig(trainer="jax")  # type: ignore[arg-type]


def test_numpy_unsupported_reasons() -> None:
    policy = MLPPolicy(gym.spaces.Box(-5, 5, (4,)), gym.spaces.Discrete(2))
    data_free = L.BCLoss(L.HeadNLL(policy.head))
    assert data_free.is_plain_nll and numpy_unsupported(policy, data_free) is None
    soft = L.BCLoss(L.HeadNLL(policy.head), soft=L.SoftTargets(policy.head, 0.5, 2.0))
    assert not soft.is_plain_nll and numpy_unsupported(policy, soft) is not None
    hard = MLPPolicy(
        gym.spaces.Box(-5, 5, (4,)), gym.spaces.Discrete(2), PolicyConfig((8,), "hardtanh")
    )
    assert numpy_unsupported(hard, data_free) is not None  # no hardtanh backward in numpy


def test_fast_adam_matches_torch_adam_on_a_flat_buffer() -> None:
    """The one Adam both trainers use, on the numpy trainer's form (one flat tensor whose
    .grad is written in place), against torch.optim.Adam for a few steps."""
    g = torch.Generator().manual_seed(0)
    start = torch.randn(50, generator=g)
    ours, theirs = start.clone().requires_grad_(True), start.clone().requires_grad_(True)
    ours.grad = torch.zeros(50)
    fast = FastAdam([ours], lr=1e-2, weight_decay=1e-3)
    reference = torch.optim.Adam([theirs], lr=1e-2, weight_decay=1e-3)
    for _ in range(5):
        grad = torch.randn(50, generator=g)
        ours.grad.copy_(grad)
        theirs.grad = grad.clone()
        fast.step()
        reference.step()
        torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=1e-6, atol=1e-7)
    assert not torch.equal(ours.detach(), start)
    with pytest.raises(ValueError, match="float32 CPU"):
        FastAdam([torch.zeros(3, dtype=torch.float64, requires_grad=True)])


# --- loss-term objects, each against torch's own function or a hand computation -----------


def _inputs(outputs: torch.Tensor, actions: torch.Tensor, **extra: object) -> L.LossInputs:
    index = torch.arange(len(outputs))
    return L.LossInputs(lambda x: x, outputs, outputs, actions, index, torch.Generator(), **extra)  # type: ignore[arg-type]


def test_discrete_terms_match_torch() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(16, 3, generator=g)
    actions = torch.randint(0, 3, (16,), generator=g)
    head = CategoricalHead(3)
    torch.testing.assert_close(
        L.HeadNLL(head)(_inputs(logits, actions)),
        F.cross_entropy(logits, actions, reduction="none"),
    )
    torch.testing.assert_close(
        L.SmoothedCE(0.1)(_inputs(logits, actions)),
        F.cross_entropy(logits, actions, label_smoothing=0.1, reduction="none"),
    )
    weights = torch.tensor([0.5, 1.0, 2.0])
    torch.testing.assert_close(
        L.FocalCE(0.0, weights)(_inputs(logits, actions)),
        F.cross_entropy(logits, actions, reduction="none") * weights[actions],
    )
    targets = torch.softmax(torch.randn(16, 3, generator=g), -1)
    torch.testing.assert_close(
        L.MixupCE()(_inputs(logits, actions, targets=targets)),
        F.cross_entropy(logits, targets, reduction="none"),  # torch's CE with probabilities
    )
    teacher = torch.randn(16, 3, generator=g)
    soft = L.SoftTargets(head, 0.5, temperature=2.0)(_inputs(logits, actions, teacher=teacher))
    kl = F.kl_div(
        torch.log_softmax(logits / 2.0, -1), torch.log_softmax(teacher / 2.0, -1),
        reduction="none", log_target=True,
    ).sum(-1)  # fmt: skip
    torch.testing.assert_close(soft, 4.0 * kl)  # T^2 * KL(teacher_T || student_T)


def test_box_terms_match_torch() -> None:
    g = torch.Generator().manual_seed(2)
    head = GaussianHead((-2.0, -1.0), (2.0, 1.0))
    outputs = torch.randn(8, 4, generator=g)
    actions = torch.rand(8, 2, generator=g) * 2 - 1
    mean, log_std = head.mean_log_std(outputs)
    expected = F.gaussian_nll_loss(
        mean, actions, torch.exp(2 * log_std), full=True, eps=0.0, reduction="none"
    ).sum(-1)
    torch.testing.assert_close(L.BoxNLL(head)(_inputs(outputs, actions)), expected)
    huber = L.BoxRegression(head, "huber", 0.5)(_inputs(outputs, actions))
    std_fit = L.beta_nll(mean, log_std, actions, 1.0, reduction="none")
    by_torch = F.huber_loss(mean, actions, delta=0.5, reduction="none").mean(-1)
    torch.testing.assert_close(huber, by_torch + std_fit)


def test_bc_loss_mixes_terms_and_reports_each(cartpole_demos: Dataset) -> None:
    data = cartpole_demos.select_episodes([0])
    policy = MLPPolicy(*data.meta.spaces())
    obs = policy.normalize(torch.as_tensor(data.obs))
    teacher = torch.randn(len(data), 2, generator=torch.Generator().manual_seed(3))
    config = LossConfig(soft_weight=0.25, temperature=2.0, ood_energy_weight=0.5, ood_noise=1.0)
    loss = build_loss(config, policy.head, data, obs, np.arange(len(data)))
    assert isinstance(loss.fit, L.SmoothedCE) and loss.soft is not None
    rows = torch.arange(0, 64)
    actions = policy.head.actions_to_tensor(data.actions[rows.numpy()])
    batch = loss.per_sample(
        policy.net, obs[rows], actions, rows, torch.Generator().manual_seed(4), teacher[rows]
    )
    names = [t.name for t in batch.terms]
    assert names == ["ce", "energy_margin", "soft"]
    noise = torch.randn(obs[rows].shape, generator=torch.Generator().manual_seed(4)) * 1.0
    ce = F.cross_entropy(batch.outputs, actions, reduction="none")
    energy = L.energy_margin_loss(batch.outputs, policy.net(obs[rows] + noise), -8.0, -2.0, "none")
    soft = policy.head.soft_target_loss(batch.outputs, teacher[rows], 2.0)
    torch.testing.assert_close(batch.per_sample, 0.75 * (ce + 0.5 * energy) + 0.25 * soft)
    for term, value in zip(batch.terms, (ce, energy, soft), strict=True):
        torch.testing.assert_close(term.value, value.mean().detach())


# --- typed records --------------------------------------------------------------------------


def test_records_are_typed_and_serialise_to_the_old_keys(cartpole_demos: Dataset) -> None:
    record = BCRecord(
        step=100,
        train_loss=0.5,
        wall_time_s=1.0,
        holdout=HoldoutMetrics(0.3, 0.3 / math.log(2), accuracy=0.9),
        train_terms=(("ce", 0.4),),
    )
    assert list(record) == [
        "holdout_nll",
        "holdout_bits_per_action",
        "holdout_accuracy",
        "step",
        "train_loss",
        "train_ce",
        "wall_time_s",
    ]
    assert record["step"] == 100 and record.get("holdout_error") is None
    assert {**record} == record.to_dict()
    with pytest.raises(AttributeError):
        record.step = 5  # type: ignore[misc]
    config = _config("torch", steps=200, temporal_js=0.1)
    _, history = train_bc(cartpole_demos.select_episodes([0]), config)
    first = history.records[0]
    assert isinstance(first, BCRecord) and first.train_terms[0][0] == "ce"
    assert {"train_ce", "train_temporal_js", "holdout_bits_per_action"} <= set(first)
    data = json.loads(json.dumps(history.to_dict()))
    assert data["trainer"] == "torch" and data["records"][0]["step"] == 100
    assert history.final is history.records[history.best_step // 100 - 1]


# --- nested config, flat names --------------------------------------------------------------


def test_flat_flags_and_names_reach_the_nested_config() -> None:
    from imitate.cli import parse

    flags = ["--lr", "0.01", "--patience", "3", "--label-smoothing", "0.1", "--max-steps", "50"]
    bc = parse(["bc", "--data", "d.npz", *flags, "--trainer", "torch"]).config
    assert (bc.optim.lr, bc.optim.max_steps, bc.early_stop.patience) == (0.01, 50, 3)
    assert (bc.loss.label_smoothing, bc.trainer) == (0.1, "torch")
    dagger = parse(["dagger", "--env", "CartPole-v1", "--bc.lr", "0.02", "--bc.eval-every", "7"])
    assert (dagger.config.bc.optim.lr, dagger.config.bc.early_stop.eval_every) == (0.02, 7)
    settings = BCConfig.settings()
    assert settings["lr"] == "optim" and settings["patience"] == "early_stop"
    assert settings["box_loss"] == "loss" and settings["seed"] == ""
    changed = BCConfig().with_setting("focal_gamma", 2.0).with_setting("seed", 4)
    assert (changed.loss.focal_gamma, changed.seed, changed.setting("focal_gamma")) == (2.0, 4, 2.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        BCConfig().with_setting("label_smoothing", 1.5)  # the group's own check
