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

The step itself belongs to a trainer (:mod:`imitate.training`: the torch reference or
the numpy fast path, chosen by ``BCConfig.trainer`` and recorded in the history); the
loss to a :class:`~imitate.losses.BCLoss` built once from ``BCConfig.loss``. Each
held-out evaluation is a frozen :class:`BCRecord` (a read-only mapping of the keys
``metrics.jsonl`` has always had).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from imitate import losses, training
from imitate.configs import BCConfig as BCConfig  # re-exported: the config lives there
from imitate.configs import EarlyStopConfig as EarlyStopConfig
from imitate.configs import LossConfig as LossConfig
from imitate.configs import OptimConfig as OptimConfig
from imitate.data import Dataset
from imitate.encoded import EncodedPolicy, IndexedNet, needs_encoder
from imitate.encoders import EncoderConfig, UnusedSettingWarning, unused_settings
from imitate.errors import ImitateError
from imitate.losses import LossInputs, nats_to_bits
from imitate.policy import MLPPolicy
from imitate.runs import config_to_json
from imitate.spaces import GaussianHead


@dataclass(frozen=True)
class HoldoutMetrics:
    """Held-out measures of the current weights: NLL in nats and bits per action, and
    ``accuracy`` (discrete heads) or ``error`` (mean action error), and for Box heads the
    mean's ``action_mse``. A Box head's NLL is of a density (a differential code length):
    it is negative once the std is small against the action's units, and only differences
    between models on the same data compare (a discrete head's is >= 0, bits per label)."""

    nll: float
    bits_per_action: float
    accuracy: float | None = None
    error: float | None = None
    action_mse: float | None = None

    def to_dict(self) -> dict[str, float]:
        record = {"holdout_nll": self.nll, "holdout_bits_per_action": self.bits_per_action}
        if self.accuracy is not None:
            record["holdout_accuracy"] = self.accuracy
        if self.error is not None:
            record["holdout_error"] = self.error
        if self.action_mse is not None:
            record["holdout_action_mse"] = self.action_mse
        return record


@dataclass(frozen=True)
class BCRecord(Mapping[str, float]):
    """One held-out evaluation during training.

    ``train_loss``: mean batch loss since the previous record; ``train_terms``: the mean of
    each loss term over the same steps (``(name, value)``; empty for a single-term loss);
    ``holdout``: None without a holdout. Read as a mapping (``record["step"]``), it is
    :meth:`to_dict`, the row ``metrics.jsonl`` holds.
    """

    step: int
    train_loss: float
    wall_time_s: float
    holdout: HoldoutMetrics | None = None
    train_terms: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {} if self.holdout is None else self.holdout.to_dict()
        record.update(step=self.step, train_loss=self.train_loss)
        record.update({f"train_{name}": value for name, value in self.train_terms})
        record["wall_time_s"] = self.wall_time_s
        return record

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


@dataclass
class BCHistory:
    """What happened during training: one :class:`BCRecord` per held-out evaluation, and
    the trainer that took the steps ('torch' or 'numpy')."""

    records: list[BCRecord] = field(default_factory=list)
    best_step: int = 0
    steps: int = 0
    wall_time: float = 0.0
    n_train: int = 0
    n_holdout: int = 0
    trainer: str = ""
    cnn_precision: str | None = None
    """Arithmetic of a pixel CNN's training forward ('float32', 'bfloat16'; see
    imitate.fastcnn); None without a pixel CNN."""
    lr: float = 0.0
    """Adam step size used (``OptimConfig.lr`` resolved for the head)."""
    batch_size: int = 0
    """Minibatch used (``OptimConfig.batch_size`` resolved, at most the training rows)."""

    def __repr__(self) -> str:
        final = self.final
        bits = final.get("holdout_bits_per_action")
        held_out = "" if bits is None else f", holdout_bits_per_action={bits:.4f}"
        return (
            f"BCHistory(trainer={self.trainer}, steps={self.steps}, best_step={self.best_step}, "
            f"records={len(self.records)}{held_out}, wall_time_s={self.wall_time:.2f})"
        )

    @property
    def final(self) -> Mapping[str, Any]:
        """The record of the kept (best) weights."""
        for record in self.records:
            if record.step == self.best_step:
                return record
        return self.records[-1] if self.records else {}

    def _totals(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "best_step": self.best_step,
            "wall_time_s": self.wall_time,
            "n_train": self.n_train,
            "n_holdout": self.n_holdout,
            "trainer": self.trainer,
            "lr": self.lr,
            "batch_size": self.batch_size,
            **({} if self.cnn_precision is None else {"cnn_precision": self.cnn_precision}),
        }

    def summary(self) -> dict[str, Any]:
        """The totals and the kept weights' record (what ``imitate bc --json`` prints)."""
        return {**self._totals(), **{k: v for k, v in self.final.items() if k != "step"}}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: the totals and every record as a plain dict."""
        return {
            **self._totals(),
            "records": [record.to_dict() for record in self.records],
        }


def split_holdout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, holdout) index split of ``n`` transitions."""
    order = np.random.default_rng(seed).permutation(n)
    n_holdout = round(fraction * n) if n >= 10 else 0
    return np.sort(order[n_holdout:]), np.sort(order[:n_holdout])


def train_bc(
    dataset: Dataset,
    config: BCConfig = BCConfig(),
    policy: MLPPolicy | EncodedPolicy | None = None,
    progress: bool = False,
) -> tuple[Any, BCHistory]:
    """Fit a policy to the dataset's (obs, action) pairs by minimising their NLL.

    The policy returned is an ``MLPPolicy`` for vector (non-image Box) observations and an
    :class:`~imitate.encoded.EncodedPolicy` for every other observation space (typed
    ``Any`` so that callers written for the MLP keep type-checking).

    Args:
        dataset: transitions; ``dataset.weights`` [N], if present, weights each sample.
        config: hyperparameters (``config.trainer`` picks the trainer).
        policy: warm start (DAgger); its observation normaliser is kept. ``None``
            builds a new ``MLPPolicy`` for the dataset's spaces and fits the normaliser.
        progress: show a progress bar over gradient steps.

    Returns:
        The policy with the weights of the best held-out NLL, and the history.
    """
    obs_space = dataset.meta.spaces()[0]
    if policy is None:
        policy = _new_policy(dataset, config)
    head = policy.head
    optim, stopping = config.optim.resolved(isinstance(head, GaussianHead)), config.early_stop
    net: torch.nn.Module
    if isinstance(policy, EncodedPolicy):
        # Observations stay in their storage dtypes (a dict of uint8 frames and token
        # strings is no tensor); the trainer's rows are row indices, the net gathers them.
        _check_encoded_loss(config.loss, obs_space)
        obs = torch.arange(len(dataset))
        net = IndexedNet(policy, dataset.obs, config.cnn_precision)
    else:
        # Normalisation is a fixed affine map during training: apply it once to the whole
        # dataset and train ``policy.net`` on normalised inputs (4 fewer ops per step).
        with torch.no_grad():
            obs = policy.normalize(torch.as_tensor(dataset.obs, dtype=torch.float32))
        net = policy.net
    actions = head.actions_to_tensor(dataset.actions)
    weights = None if dataset.weights is None else torch.as_tensor(dataset.weights).float()
    train_idx, holdout_idx = split_holdout(len(dataset), stopping.holdout_fraction, config.seed)
    hold_obs, hold_actions = obs[holdout_idx], actions[holdout_idx]
    rows = training.TrainingRows(
        obs[train_idx],
        actions[train_idx],
        None if weights is None else weights[train_idx],
        _soft_targets(dataset, config.loss, head.n_outputs, train_idx),
        torch.as_tensor(train_idx),
    )
    loss = training.build_loss(config.loss, head, dataset, obs, train_idx)
    generator = torch.Generator().manual_seed(config.seed)
    trainer = training.make_trainer(config.trainer, policy, loss, rows, optim, generator, net)

    stop_key = "holdout_nll"
    if isinstance(head, GaussianHead) and stopping.box_early_stop == "action_mse":
        stop_key = "holdout_action_mse"
    patience = stopping.resolved_patience(stop_key == "holdout_action_mse")
    n_train = len(train_idx)
    batch_size = min(optim.batch_size, n_train)
    history = BCHistory(
        n_train=n_train,
        n_holdout=len(holdout_idx),
        trainer=trainer.name,
        lr=optim.lr,
        batch_size=batch_size,
    )
    if isinstance(net, IndexedNet) and net.fast is not None:
        history.cnn_precision = net.precision
    best_nll, best_state, stale = math.inf, copy.deepcopy(policy.state_dict()), 0
    cursor = n_train  # forces a shuffle before the first batch
    steps: list[training.StepMetrics] = []  # since the last evaluation
    start = time.perf_counter()
    bar = tqdm(total=optim.max_steps, desc="bc", unit="step", disable=not progress, leave=False)
    try:
        for step in range(1, optim.max_steps + 1):
            if cursor + batch_size > n_train:
                # Shuffle once per epoch so that batches are contiguous slices (no gather).
                trainer.new_epoch(torch.randperm(n_train, generator=generator))
                cursor = 0
            steps.append(trainer.step(slice(cursor, cursor + batch_size)))
            cursor += batch_size
            if step % stopping.eval_every == 0 or step == optim.max_steps:
                train_loss, terms = _mean_metrics(steps)
                record = BCRecord(
                    step=step,
                    train_loss=train_loss,
                    wall_time_s=time.perf_counter() - start,
                    holdout=_evaluate_holdout(policy, net, hold_obs, hold_actions),
                    train_terms=terms,
                )
                history.records.append(record)
                bar.update(step - bar.n)
                bar.set_postfix(
                    holdout_bits=f"{record.get('holdout_bits_per_action', math.nan):.3f}"
                )
                steps = []
                score = record.get(stop_key, record.train_loss)
                if score < best_nll - 1e-6:
                    best_nll, best_state, stale = score, copy.deepcopy(policy.state_dict()), 0
                    history.best_step = step
                else:
                    stale += 1
                    if len(holdout_idx) and stale >= patience:
                        break
    finally:
        bar.close()
        trainer.close()
    policy.load_state_dict(best_state)
    policy.eval()
    history.steps = step
    history.wall_time = time.perf_counter() - start
    # env, expert, seed and this config: into checkpoints (PolicyMeta), as the CLI records
    policy.provenance = {**dataset.meta.provenance(), "bc": config_to_json(config)}
    return policy, history


def _soft_targets(
    dataset: Dataset, config: LossConfig, n_outputs: int, train_idx: np.ndarray
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


def _new_policy(dataset: Dataset, config: BCConfig) -> MLPPolicy | EncodedPolicy:
    """A fresh policy for the dataset's spaces, its normalisation (and an encoder's
    vocabulary) fitted on the data: an MLP for vector observations, else encoder + MLP."""
    obs_space, action_space = dataset.meta.spaces()
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        if needs_encoder(obs_space):
            encoder = EncoderConfig(
                cnn=config.policy.cnn,
                image_features=config.policy.image_features,
                grid=config.policy.grid,
                film=config.policy.film,
                film_embedding=config.policy.film_embedding,
                grid_channels=config.policy.grid_channels,
                grid_embedding=config.policy.grid_embedding,
                text_dim=config.policy.text_dim,
                max_tokens=config.policy.max_tokens,
            )
            encoded = EncodedPolicy.for_data(
                obs_space, action_space, dataset.obs, config.policy, encoder
            )
            for name, why in unused_settings(encoded.encoder, encoder):
                warnings.warn(f"policy.{name} has no effect: {why}", UnusedSettingWarning, 2)
            return encoded
        policy = MLPPolicy(obs_space, action_space, config.policy)
    policy.fit_normalizer(dataset.obs)
    return policy


def _check_encoded_loss(config: LossConfig, space: Any) -> None:
    """Mixup and the energy margin perturb observation vectors: refused for the
    observations an encoder takes (images, text, Dict ...)."""
    if config.mixup_alpha > 0 or config.ood_energy_weight > 0:
        raise ImitateError(
            f"mixup and the energy margin perturb observation vectors; {space} "
            "observations go through an encoder and take neither"
        )


def _evaluate_holdout(
    policy: MLPPolicy | EncodedPolicy,
    net: torch.nn.Module,
    hold_obs: torch.Tensor,
    hold_actions: torch.Tensor,
) -> HoldoutMetrics | None:
    """Held-out NLL (nats, bits per action) and action error on normalised ``hold_obs``
    (rows of an encoded policy's observations: their indices); None when there is no
    holdout."""
    if len(hold_obs) == 0:
        return None
    head = policy.head
    with torch.no_grad():
        outputs = net(hold_obs)
        nll = float(head.nll(outputs, hold_actions).mean())
        error = float(head.action_error(outputs, hold_actions).mean())
        action_mse = None
        if isinstance(head, GaussianHead):
            action_mse = float(losses.mse_action_loss(head.mode(outputs), hold_actions))
    return HoldoutMetrics(
        nll,
        nats_to_bits(nll),
        accuracy=1.0 - error if head.discrete else None,
        error=None if head.discrete else error,
        action_mse=action_mse,
    )


def box_loss(
    head: GaussianHead, outputs: torch.Tensor, actions: torch.Tensor, config: LossConfig
) -> torch.Tensor:
    """Per-sample training loss [B] of a Gaussian head under ``config.box_loss``.

    'mse' and 'huber' add a fit of the std to the residuals with the mean detached: the
    std still describes them (sampling, entropy and calibration use it) but has no say in
    how much each state's mean error counts. That fit is beta-NLL with beta = 1, whose
    log-std gradient ``sigma^2 - r^2`` stays bounded; the plain NLL's, ``1 - r^2 / sigma^2``,
    grows without bound as sigma shrinks and, through the shared layers, swamps the mean's
    (held-out action MSE 0.034 vs 0.004 on Pendulum). The terms are
    :class:`~imitate.losses.BoxRegression` and :class:`~imitate.losses.BoxNLL`.
    """
    term = training.box_term(config, head)
    # Box terms read the outputs only: no network, observations or rows are needed.
    empty = torch.zeros(0, dtype=torch.long)
    return term(LossInputs(lambda x: x, outputs, outputs, actions, empty, torch.Generator()))


def _mean_metrics(
    steps: list[training.StepMetrics],
) -> tuple[float, tuple[tuple[str, float], ...]]:
    """Mean loss and mean of each term over the steps since the last record (one sync)."""
    if not steps:
        return math.nan, ()
    first = steps[0]
    if not isinstance(first.loss, torch.Tensor):
        return float(np.mean([s.loss for s in steps])), ()
    names = [term.name for term in first.terms]
    columns = [torch.stack([torch.as_tensor(s.loss) for s in steps])]
    columns += [torch.stack([s.terms[i].value for s in steps]) for i in range(len(names))]
    means = torch.stack([c.mean() for c in columns]).tolist()
    return means[0], tuple(zip(names, means[1:], strict=True))
