"""How a BC step is taken: the :class:`Trainer` protocol and its two implementations.

:func:`imitate.bc.train_bc` owns the loop (held-out split, batches, evaluations, early
stopping, history); a trainer owns the step. Two implement the protocol:

- :class:`TorchTrainer`, the **reference**: autograd through :class:`~imitate.losses.BCLoss`
  (any head, any loss of the family, soft targets, sample weights) and
  :class:`~imitate.optim.FastAdam`.
- :class:`NumpyTrainer`, an **optimisation** of one case: plain softmax CE (optionally
  sample-weighted) on a tanh/ReLU MLP with a Discrete head, whose hand-written forward,
  backward and the same FastAdam run several times faster than autograd on small
  batches (see :mod:`imitate.fastbc`).

``BCConfig.trainer`` chooses: ``"torch"``, ``"numpy"`` (an :class:`ImitateError` where it
does not apply) or ``"auto"`` (numpy where it applies, else torch: the choice ``train_bc``
always made). The trainer used is recorded in ``BCHistory.trainer``.

The two see the same batches (one shuffle generator), compute the same loss and share
one Adam (:class:`~imitate.optim.FastAdam`, on a flat buffer); they differ only in
the float32 rounding of the forward and backward passes (numpy's matmul and a
hand-written softmax vs torch's kernels). Measured on 2 CartPole heuristic episodes,
seed 0: the largest parameter difference is 4.6e-7 after 1 step and 6.1e-7 after 1,000,
held-out NLL and train loss agree to 5 decimals, actions on other episodes are equal;
the numpy trainer took 0.54 s for the 1,000 steps, the torch one 2.99 s (one process on
the shared 2-core machine). ``tests/test_training.py`` holds them to 1e-5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import Tensor

from imitate import fastbc, losses
from imitate.configs import LossConfig, ResolvedOptim, TrainerChoice
from imitate.data import Dataset
from imitate.encoded import EncodedPolicy
from imitate.errors import ImitateError
from imitate.losses import BCLoss, TermMetrics
from imitate.optim import FastAdam
from imitate.policy import MLPPolicy
from imitate.spaces import CategoricalHead, GaussianHead

TrainerName = Literal["torch", "numpy"]


@dataclass(frozen=True)
class StepMetrics:
    """One gradient step: the batch ``loss`` (a 0-d tensor from the torch trainer, so that
    no step waits for its value; a float from numpy) and its terms' metrics."""

    loss: Tensor | float
    terms: tuple[TermMetrics, ...] = ()


@dataclass(frozen=True)
class TrainingRows:
    """The training rows, normalised once: ``obs`` [N, obs_dim] float32, ``actions`` [N]
    or [N, D] as the head's tensor, ``weights`` [N] or None, ``teacher`` [N, n_outputs]
    teacher outputs or None, ``index`` [N] each row's index in the dataset."""

    obs: Tensor
    actions: Tensor
    weights: Tensor | None
    teacher: Tensor | None
    index: Tensor

    def __len__(self) -> int:
        return len(self.obs)


class Trainer(Protocol):
    """Takes the gradient steps of one ``train_bc`` call."""

    @property
    def name(self) -> TrainerName: ...

    def new_epoch(self, order: Tensor) -> None:
        """Shuffle the training rows into ``order`` [N]; batches are slices of it."""
        ...

    def step(self, batch: slice) -> StepMetrics:
        """One update on rows ``batch`` of the current epoch's order."""
        ...

    def close(self) -> None:
        """Leave the policy's parameters in their own memory (the trainer can be dropped)."""
        ...


class TorchTrainer:
    """The reference: ``BCLoss`` through autograd, then FastAdam."""

    name: TrainerName = "torch"

    def __init__(
        self,
        policy: MLPPolicy | EncodedPolicy,
        loss: BCLoss,
        rows: TrainingRows,
        optim: ResolvedOptim,
        generator: torch.Generator,
        net: torch.nn.Module | None = None,
    ) -> None:
        # ``net``: what maps the rows to head outputs (default ``policy.net``; an encoded
        # policy's rows are indices into its observations, see imitate.encoded.IndexedNet)
        self.net = policy.net if net is None else net
        self.loss, self.rows, self.generator = loss, rows, generator
        self.optimizer = FastAdam(policy.parameters(), lr=optim.lr, weight_decay=optim.weight_decay)
        self.epoch = rows

    def __repr__(self) -> str:
        return f"TorchTrainer(rows={len(self.rows)}, loss={type(self.loss.fit).__name__})"

    def new_epoch(self, order: Tensor) -> None:
        r = self.rows
        self.epoch = TrainingRows(
            r.obs[order],
            r.actions[order],
            None if r.weights is None else r.weights[order],
            None if r.teacher is None else r.teacher[order],
            r.index[order],
        )

    def step(self, batch: slice) -> StepMetrics:
        e = self.epoch
        teacher = None if e.teacher is None else e.teacher[batch]
        result = self.loss.per_sample(
            self.net, e.obs[batch], e.actions[batch], e.index[batch], self.generator, teacher
        )
        per_sample = result.per_sample
        loss = per_sample.mean() if e.weights is None else (per_sample * e.weights[batch]).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return StepMetrics(loss.detach(), result.terms)

    def close(self) -> None:
        self.optimizer.release()


class NumpyTrainer:
    """The fast path: :class:`imitate.fastbc.NumpyMLPTrainer` on numpy copies of the rows."""

    name: TrainerName = "numpy"

    def __init__(self, policy: MLPPolicy, rows: TrainingRows, optim: ResolvedOptim) -> None:
        self.trainer = fastbc.NumpyMLPTrainer(policy, optim.lr, optim.weight_decay)
        self.obs, self.actions = rows.obs.numpy(), rows.actions.numpy()
        self.weights = None if rows.weights is None else rows.weights.numpy()
        self.epoch: tuple[np.ndarray, np.ndarray, np.ndarray | None] = (
            self.obs,
            self.actions,
            self.weights,
        )

    def __repr__(self) -> str:
        return f"NumpyTrainer(rows={len(self.obs)})"

    def new_epoch(self, order: Tensor) -> None:
        rows = order.numpy()
        weights = None if self.weights is None else self.weights[rows]
        self.epoch = (self.obs[rows], self.actions[rows], weights)

    def step(self, batch: slice) -> StepMetrics:
        obs, actions, weights = self.epoch
        batch_weights = None if weights is None else weights[batch]
        return StepMetrics(self.trainer.step(obs[batch], actions[batch], batch_weights))

    def close(self) -> None:
        self.trainer.release()


def numpy_unsupported(policy: MLPPolicy | EncodedPolicy, loss: BCLoss) -> str | None:
    """Why the numpy trainer cannot take this setup (None: it can)."""
    if not isinstance(policy, MLPPolicy):
        return "the numpy trainer fits MLPs on vector observations (this policy has an encoder)"
    if not fastbc.supports(policy, uses_extra_terms=False):
        return (
            "the numpy trainer needs a Discrete action space and a tanh or relu MLP (float32, CPU)"
        )
    if not loss.is_plain_nll:
        return "the numpy trainer fits plain cross-entropy only (no loss variant or soft targets)"
    return None


def make_trainer(
    choice: TrainerChoice,
    policy: MLPPolicy | EncodedPolicy,
    loss: BCLoss,
    rows: TrainingRows,
    optim: ResolvedOptim,
    generator: torch.Generator,
    net: torch.nn.Module | None = None,
) -> Trainer:
    """The trainer ``choice`` names ('auto': numpy where it applies, else torch)."""
    reason = numpy_unsupported(policy, loss)
    if choice == "numpy" and reason is not None:
        raise ImitateError(f"--trainer numpy: {reason}; use --trainer torch or auto")
    if choice == "torch" or reason is not None or not isinstance(policy, MLPPolicy):
        return TorchTrainer(policy, loss, rows, optim, generator, net)
    return NumpyTrainer(policy, rows, optim)


def box_term(config: LossConfig, head: GaussianHead) -> losses.LossTerm:
    """The fit term of a Box (Gaussian) head under ``config.box_loss``."""
    if config.box_loss in ("mse", "huber"):
        return losses.BoxRegression(head, config.box_loss, config.huber_delta)
    return losses.BoxNLL(head, None if config.box_loss == "nll" else config.box_beta)


def build_loss(
    config: LossConfig,
    head: Any,
    dataset: Dataset,
    obs: Tensor,
    train_idx: np.ndarray,
) -> BCLoss:
    """The loss ``config`` asks for on ``head``, chosen once per training run.

    ``obs`` [N, obs_dim]: the dataset's normalised observations (for the temporal penalty);
    ``train_idx``: the training rows (balanced class weights count their actions).
    """
    soft = None
    if config.soft_weight > 0.0:
        soft = losses.SoftTargets(head, config.soft_weight, config.temperature)
    if isinstance(head, GaussianHead) and not config.uses_toolbox:
        return BCLoss(box_term(config, head), soft=soft)
    if not config.uses_toolbox:
        return BCLoss(losses.HeadNLL(head), soft=soft)
    if not isinstance(head, CategoricalHead):
        raise ImitateError(
            "label smoothing, class weights, focal loss, mixup, temporal smoothness and "
            "the energy margin need a Discrete action space"
        )
    weights = None
    if config.class_weights == "balanced":
        actions = np.asarray(dataset.actions)[train_idx] - head.start
        weights = torch.as_tensor(losses.balanced_class_weights(actions, head.n))
    mixup = None
    fit: losses.LossTerm
    if config.mixup_alpha > 0:
        mixup = losses.Mixup(config.mixup_alpha, head.n, config.label_smoothing)
        fit = losses.MixupCE(weights)
    elif config.focal_gamma > 0:
        fit = losses.FocalCE(config.focal_gamma, weights)
    else:
        fit = losses.SmoothedCE(config.label_smoothing, weights)
    penalties: list[tuple[float, losses.LossTerm]] = []
    if config.temporal_js > 0:
        next_index = np.arange(1, len(dataset) + 1)
        next_index[dataset.episode_ends - 1] = -1
        js = losses.TemporalJS(torch.as_tensor(next_index), obs, config.temporal_js_temperature)
        penalties.append((config.temporal_js, js))
    if config.ood_energy_weight > 0:
        energy = losses.EnergyMargin(config.ood_noise, config.energy_margins)
        penalties.append((config.ood_energy_weight, energy))
    return BCLoss(fit, tuple(penalties), soft, mixup)
