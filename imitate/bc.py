"""Behavioural cloning: minimise the expert actions' cross-entropy under the policy.

``train_bc`` is a plain minibatch Adam loop over tensors held in memory (no
DataLoader: index shuffling is all small data needs), with early stopping on
the held-out negative log-likelihood. It reports that NLL in bits per action
(the code length of the expert's choices under the clone) and the held-out
action error. DAgger and distillation call this same function.

Box actions are the exception to "minimise the NLL": by default the Gaussian
head's mean regresses the expert action (``box_loss='mse'``) and early stopping
watches the held-out action MSE, because a learned std lets the NLL give up the
states it fits worst (see :func:`box_loss` and the README's continuous-control
section for the Pendulum evidence).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from imitate import fastbc, losses
from imitate.configs import BCConfig as BCConfig  # re-exported: the config lives there
from imitate.data import Dataset
from imitate.errors import ImitateError
from imitate.losses import nats_to_bits
from imitate.optim import FastAdam
from imitate.policy import MLPPolicy
from imitate.runs import config_to_json
from imitate.spaces import CategoricalHead, GaussianHead


@dataclass
class BCHistory:
    """What happened during training: one record per held-out evaluation."""

    records: list[dict[str, float]] = field(default_factory=list)
    best_step: int = 0
    steps: int = 0
    wall_time: float = 0.0
    n_train: int = 0
    n_holdout: int = 0

    def __repr__(self) -> str:
        final = self.final
        bits = final.get("holdout_bits_per_action")
        held_out = "" if bits is None else f", holdout_bits_per_action={bits:.4f}"
        return (
            f"BCHistory(steps={self.steps}, best_step={self.best_step}, "
            f"records={len(self.records)}{held_out}, wall_time_s={self.wall_time:.2f})"
        )

    @property
    def final(self) -> dict[str, float]:
        """The record of the kept (best) weights."""
        for record in self.records:
            if record["step"] == self.best_step:
                return record
        return self.records[-1] if self.records else {}

    def summary(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "best_step": self.best_step,
            "wall_time_s": self.wall_time,
            "n_train": self.n_train,
            "n_holdout": self.n_holdout,
            **{k: v for k, v in self.final.items() if k != "step"},
        }


def split_holdout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, holdout) index split of ``n`` transitions."""
    order = np.random.default_rng(seed).permutation(n)
    n_holdout = round(fraction * n) if n >= 10 else 0
    return np.sort(order[n_holdout:]), np.sort(order[:n_holdout])


def train_bc(
    dataset: Dataset,
    config: BCConfig = BCConfig(),
    policy: MLPPolicy | None = None,
    progress: bool = False,
) -> tuple[MLPPolicy, BCHistory]:
    """Fit a policy to the dataset's (obs, action) pairs by minimising their NLL.

    Args:
        dataset: transitions; ``dataset.weights`` [N], if present, weights each sample.
        config: hyperparameters.
        policy: warm start (DAgger); its observation normaliser is kept. ``None``
            builds a new ``MLPPolicy`` for the dataset's spaces and fits the normaliser.
        progress: show a progress bar over gradient steps.

    Returns:
        The policy with the weights of the best held-out NLL, and the history.
    """
    obs_space, action_space = dataset.meta.spaces()
    if policy is None:
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)
            policy = MLPPolicy(obs_space, action_space, config.policy)
        policy.fit_normalizer(dataset.obs)
    head = policy.head
    # Normalisation is a fixed affine map during training: apply it once to the whole
    # dataset and train ``policy.net`` on normalised inputs (4 fewer ops per step).
    with torch.no_grad():
        obs = policy.normalize(torch.as_tensor(dataset.obs, dtype=torch.float32))
    actions = head.actions_to_tensor(dataset.actions)
    weights = None if dataset.weights is None else torch.as_tensor(dataset.weights).float()
    train_idx, holdout_idx = split_holdout(len(dataset), config.holdout_fraction, config.seed)
    train_obs, train_actions = obs[train_idx], actions[train_idx]
    train_weights = None if weights is None else weights[train_idx]
    hold_obs, hold_actions = obs[holdout_idx], actions[holdout_idx]
    train_teacher = _soft_targets(dataset, config, head.n_outputs, train_idx)
    alpha, temperature = config.soft_weight, config.temperature
    toolbox = LossToolbox.build(config, head, dataset, obs, train_idx)
    box = isinstance(head, GaussianHead)

    def train_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if isinstance(head, GaussianHead):
            return box_loss(head, outputs, targets, config)
        return head.nll(outputs, targets)

    # Plain CE on Discrete actions trains in numpy (see imitate/fastbc.py); the rest in torch.
    trainer: fastbc.NumpyMLPTrainer | None = None
    optimizer: FastAdam | None = None
    columns: tuple[Any, ...]  # per-sample arrays, shuffled together once per epoch
    if fastbc.supports(policy, toolbox is not None or train_teacher is not None):
        trainer = fastbc.NumpyMLPTrainer(policy, config.lr, config.weight_decay)
        numpy_weights = None if train_weights is None else train_weights.numpy()
        columns = (train_obs.numpy(), train_actions.numpy(), numpy_weights)
    else:
        optimizer = FastAdam(policy.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        columns = (
            train_obs,
            train_actions,
            train_weights,
            train_teacher,
            torch.as_tensor(train_idx),
        )
    generator = torch.Generator().manual_seed(config.seed)

    def torch_step(epoch: tuple[Any, ...], batch: slice) -> torch.Tensor:
        """One autograd + FastAdam step; returns the loss without syncing on its value."""
        assert optimizer is not None
        obs_all, actions_all, weights_all, teacher_all, index_all = epoch
        batch_obs, batch_actions, batch_index = obs_all[batch], actions_all[batch], index_all[batch]
        batch_weights = None if weights_all is None else weights_all[batch]
        batch_teacher = None if teacher_all is None else teacher_all[batch]
        if toolbox is None:
            outputs = policy.net(batch_obs)
            nll = train_loss(outputs, batch_actions)
        else:
            outputs, nll = toolbox.per_sample(
                policy.net, batch_obs, batch_actions, batch_index, generator
            )
        if batch_teacher is not None:
            soft = head.soft_target_loss(outputs, batch_teacher, temperature)
            nll = (1.0 - alpha) * nll + alpha * soft
        loss = nll.mean() if batch_weights is None else (nll * batch_weights).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.detach()

    stop_key = "holdout_nll"
    if box and config.box_early_stop == "action_mse":
        stop_key = "holdout_action_mse"
    n_train = len(train_idx)
    batch_size = min(config.batch_size, n_train)
    history = BCHistory(n_train=n_train, n_holdout=len(holdout_idx))
    best_nll, best_state, stale = math.inf, copy.deepcopy(policy.state_dict()), 0
    cursor = n_train  # forces a shuffle before the first batch
    step_losses: list[Any] = []  # torch scalars (no sync per step) or floats (numpy path)
    epoch: tuple[Any, ...] = ()
    start = time.perf_counter()
    bar = tqdm(total=config.max_steps, desc="bc", unit="step", disable=not progress, leave=False)
    for step in range(1, config.max_steps + 1):
        if cursor + batch_size > n_train:
            # Shuffle once per epoch so that batches are contiguous slices (no gather per step).
            order = torch.randperm(n_train, generator=generator)
            rows = order if trainer is None else order.numpy()
            epoch = tuple(None if column is None else column[rows] for column in columns)
            cursor = 0
        batch = slice(cursor, cursor + batch_size)
        cursor += batch_size
        if trainer is not None:
            obs_np, actions_np, weights_np = epoch
            weights_batch = None if weights_np is None else weights_np[batch]
            step_losses.append(trainer.step(obs_np[batch], actions_np[batch], weights_batch))
        else:
            step_losses.append(torch_step(epoch, batch))
        if step % config.eval_every == 0 or step == config.max_steps:
            record = _evaluate_holdout(policy, hold_obs, hold_actions)
            record.update(step=step, train_loss=_mean_loss(step_losses))
            record["wall_time_s"] = time.perf_counter() - start
            history.records.append(record)
            bar.update(step - bar.n)
            bar.set_postfix(holdout_bits=f"{record.get('holdout_bits_per_action', math.nan):.3f}")
            step_losses = []
            score = record.get(stop_key, record["train_loss"])
            if score < best_nll - 1e-6:
                best_nll, best_state, stale = score, copy.deepcopy(policy.state_dict()), 0
                history.best_step = step
            else:
                stale += 1
                if len(holdout_idx) and stale >= config.patience:
                    break
    bar.close()
    policy.load_state_dict(best_state)
    if trainer is not None:
        trainer.release()
    policy.eval()
    history.steps = step
    history.wall_time = time.perf_counter() - start
    # env, expert, seed and this config: into checkpoints (PolicyMeta), as the CLI records
    policy.provenance = {**dataset.meta.provenance(), "bc": config_to_json(config)}
    return policy, history


@dataclass
class LossToolbox:
    """The configured cross-entropy variants for a Discrete head (see :mod:`imitate.losses`)."""

    config: BCConfig
    n_classes: int
    class_weights: torch.Tensor | None
    next_index: torch.Tensor  # [N] index of the next step of the same episode, -1 at the end
    all_obs: torch.Tensor  # [N, obs_dim] normalised

    @classmethod
    def build(
        cls, config: BCConfig, head: Any, dataset: Dataset, obs: torch.Tensor, train_idx: np.ndarray
    ) -> LossToolbox | None:
        if not config.uses_toolbox:
            return None
        if not isinstance(head, CategoricalHead):
            raise ImitateError(
                "label smoothing, class weights, focal loss, mixup, temporal smoothness and "
                "the energy margin need a Discrete action space"
            )
        weights = None
        if config.class_weights == "balanced":
            actions = np.asarray(dataset.actions)[train_idx] - head.start
            weights = torch.as_tensor(losses.balanced_class_weights(actions, head.n))
        next_index = np.arange(1, len(dataset) + 1)
        next_index[dataset.episode_ends - 1] = -1
        return cls(config, head.n, weights, torch.as_tensor(next_index), obs)

    def per_sample(
        self,
        net: torch.nn.Module,
        obs: torch.Tensor,
        actions: torch.Tensor,
        index: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(outputs, per-sample loss [B]) for one batch."""
        config = self.config
        if config.mixup_alpha > 0:
            eps = config.label_smoothing
            targets = F.one_hot(actions, self.n_classes).float() * (1 - eps) + eps / self.n_classes
            obs, targets = losses.mixup(obs, targets, config.mixup_alpha, generator)
            outputs = net(obs)
            per_sample = losses.soft_cross_entropy(outputs, targets, reduction="none")
            if self.class_weights is not None:
                per_sample = per_sample * (targets @ self.class_weights)
        else:
            outputs = net(obs)
            if config.focal_gamma > 0:
                per_sample = losses.focal_loss(
                    outputs, actions, config.focal_gamma, reduction="none"
                )
            else:
                per_sample = losses.smoothed_cross_entropy(
                    outputs, actions, config.label_smoothing, reduction="none"
                )
            if self.class_weights is not None:
                per_sample = per_sample * self.class_weights[actions]
        if config.temporal_js > 0:
            following = self.next_index[index]
            has_next = following >= 0
            js = torch.zeros_like(per_sample)
            if bool(has_next.any()):
                next_outputs = net(self.all_obs[following[has_next]])
                tau = config.temporal_js_temperature
                js[has_next] = losses.js_divergence(
                    outputs[has_next] / tau, next_outputs / tau, reduction="none"
                )
            per_sample = per_sample + config.temporal_js * js
        if config.ood_energy_weight > 0:
            # Inputs are normalised, so unit noise is one std of each observation.
            noise = torch.randn(obs.shape, generator=generator) * config.ood_noise
            margin_in, margin_out = config.energy_margins
            energy = losses.energy_margin_loss(
                outputs, net(obs + noise), margin_in, margin_out, reduction="none"
            )
            per_sample = per_sample + config.ood_energy_weight * energy
        return outputs, per_sample


def _mean_loss(step_losses: list[Any]) -> float:
    if step_losses and isinstance(step_losses[0], torch.Tensor):
        return float(torch.stack(step_losses).mean())
    return float(np.mean(step_losses))


def _soft_targets(
    dataset: Dataset, config: BCConfig, n_outputs: int, train_idx: np.ndarray
) -> torch.Tensor | None:
    """Teacher outputs of the training rows when soft targets are asked for, else None."""
    if config.soft_weight == 0.0:
        return None
    if dataset.teacher_logits is None:
        raise ImitateError("soft_weight > 0 needs a dataset with teacher_logits")
    if dataset.teacher_logits.shape[1] != n_outputs:
        raise ImitateError(
            f"teacher outputs have width {dataset.teacher_logits.shape[1]}, "
            f"the student's head has {n_outputs}"
        )
    return torch.as_tensor(dataset.teacher_logits[train_idx], dtype=torch.float32)


def _evaluate_holdout(
    policy: MLPPolicy, hold_obs: torch.Tensor, hold_actions: torch.Tensor
) -> dict[str, float]:
    """Held-out NLL (nats, bits per action) and action error on normalised ``hold_obs``.

    Returns an empty dict when there is no holdout.
    """
    if len(hold_obs) == 0:
        return {}
    with torch.no_grad():
        outputs = policy.net(hold_obs)
        nll = float(policy.head.nll(outputs, hold_actions).mean())
        error = float(policy.head.action_error(outputs, hold_actions).mean())
    record = {"holdout_nll": nll, "holdout_bits_per_action": nats_to_bits(nll)}
    if policy.head.discrete:
        record["holdout_accuracy"] = 1.0 - error
    else:
        record["holdout_error"] = error
    if isinstance(policy.head, GaussianHead):
        with torch.no_grad():
            mean = policy.head.mode(outputs)
            record["holdout_action_mse"] = float(losses.mse_action_loss(mean, hold_actions))
    return record


def box_loss(
    head: GaussianHead, outputs: torch.Tensor, actions: torch.Tensor, config: BCConfig
) -> torch.Tensor:
    """Per-sample training loss [B] of a Gaussian head under ``config.box_loss``.

    'mse' and 'huber' add a fit of the std to the residuals with the mean detached: the
    std still describes them (sampling, entropy and calibration use it) but has no say in
    how much each state's mean error counts. That fit is beta-NLL with beta = 1, whose
    log-std gradient ``sigma^2 - r^2`` stays bounded; the plain NLL's, ``1 - r^2 / sigma^2``,
    grows without bound as sigma shrinks and, through the shared layers, swamps the mean's
    (held-out action MSE 0.034 vs 0.004 on Pendulum).
    """
    mean, log_std = head.mean_log_std(outputs)
    if config.box_loss == "nll":
        return losses.gaussian_nll(mean, log_std, actions, reduction="none")
    if config.box_loss == "beta_nll":
        return losses.beta_nll(mean, log_std, actions, config.box_beta, reduction="none")
    if config.box_loss == "mse":
        fit = losses.mse_action_loss(mean, actions, reduction="none")
    else:
        fit = losses.huber_action_loss(mean, actions, config.huber_delta, reduction="none")
    std_fit = losses.beta_nll(mean.detach(), log_std, actions, 1.0, reduction="none")
    return fit + std_fit
