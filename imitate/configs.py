"""Configuration dataclasses of the learners and the main job, importable without torch.

Frozen dataclasses only (fields, defaults, validation): the command line embeds
them, ``config.json`` records them and the Python API takes them, so all three
say the same thing. They live apart from the code that uses them so that building
the command line (``imitate --help``) imports neither torch nor gymnasium; the
learner modules re-export them (``imitate.bc.BCConfig`` is this ``BCConfig``).

``BCConfig`` groups its settings in ``OptimConfig``, ``EarlyStopConfig`` and
``LossConfig``. Each group is marked for tyro with ``arg(name="")`` so that the command
line keeps one flat flag per field (``--lr``, not ``--optim.lr``); this is why the
module imports ``tyro.conf`` (~50 ms, no torch) and why field names are unique across
the groups. ``config.json`` records the nesting as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from types import UnionType
from typing import Annotated, Any, Literal, Union, cast, get_args, get_origin, get_type_hints

from tyro.conf import arg

from imitate import validate

Activation = Literal["tanh", "relu", "hardtanh"]

BoxLoss = Literal["mse", "huber", "nll", "beta_nll"]
"""How a Box (Gaussian) head is fitted (see :func:`imitate.bc.box_loss`)."""

Seeding = Literal["auto", "per-episode", "stream"]
"""How episodes are seeded (see :func:`imitate.collect.collect`)."""


@dataclass(frozen=True)
class PolicyConfig:
    """Architecture of an MLP policy."""

    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths."""
    activation: Activation = "tanh"
    """Hidden activation ('hardtanh': clamp to [-1, 1], exact in the int8 C export)."""
    cnn: Literal["auto", "nature", "small", "tiny"] = "auto"
    """Image observations: the CNN before the MLP (``imitate.encoders.EncoderConfig.cnn``:
    nature 8x8/4, 4x4/2, 3x3/1 with 32, 64, 64 channels; small two 3x3; tiny 8x8/4, 4x4/2
    with 8, 16 channels, a student's; auto: nature from 36 px, else small)."""
    image_features: int = 128
    """Image observations: width of the CNN's dense layer."""
    grid: Literal["cnn", "embedding"] = "cnn"
    """Symbolic-grid observations (BabyAI's view; ``imitate.encoders.EncoderConfig.grid``):
    cnn, one-hot per channel into the CNN; embedding, a learned embedding per cell value
    + same-padded 3x3 convolutions."""
    film: bool = False
    """Dict observations with a symbolic grid and a Text entry (BabyAI): the grid's
    convolutions conditioned on the text (FiLM; needs ``grid=embedding``)."""
    film_embedding: bool = False
    """With ``film``: the grid's summed cell embeddings conditioned on the text too
    (``imitate.encoders.EncoderConfig.film_embedding``)."""
    grid_channels: tuple[int, ...] = (32, 64)
    """Symbolic grids with ``grid=embedding``: the 3x3 convolutions' output channels."""
    grid_embedding: int = 32
    """Symbolic grids with ``grid=embedding``: the embedding width per cell."""
    text_dim: int = 32
    """Text observations (a mission string): the word-embedding width."""
    max_tokens: int = 16
    """Text observations: the words kept per string (the rest are dropped)."""

    def __post_init__(self) -> None:
        validate.widths("policy.hidden", self.hidden)
        validate.count("policy.image_features", self.image_features)
        validate.widths("policy.grid_channels", self.grid_channels)
        validate.count("policy.grid_embedding", self.grid_embedding)
        validate.count("policy.text_dim", self.text_dim)
        validate.count("policy.max_tokens", self.max_tokens)
        if self.film_embedding and not self.film:
            raise validate.ValueCheckError("--policy.film-embedding needs --policy.film")
        if self.activation not in get_args(Activation):
            choices = ", ".join(get_args(Activation))
            raise validate.ValueCheckError(
                f"--policy.activation must be one of {choices}, got {self.activation!r}"
            )


TrainerChoice = Literal["auto", "torch", "numpy"]
CnnPrecision = Literal["auto", "float32", "bfloat16"]
"""Which trainer fits a BC policy (see :mod:`imitate.training`)."""

_FLAT = arg(name="")
"""Nested configs keep flat flags: ``--lr``, not ``--optim.lr`` (field names are unique)."""


@dataclass(frozen=True)
class OptimConfig:
    """Adam and the minibatch loop. ``None`` (the default) for :attr:`batch_size` and
    :attr:`lr` picks the value for the action head (:meth:`resolved`)."""

    batch_size: int | None = None
    """Transitions per gradient step. None (chosen by the action head): 64, and 256 for a
    Box (continuous) head."""
    lr: float | None = None
    """Adam learning rate. None (chosen by the action head): 3e-3, and 1e-3 for a Box
    (continuous) head."""
    weight_decay: float = 0.0
    """Adam L2 penalty."""
    max_steps: int = 20_000
    """Upper bound on gradient steps."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")

    def resolved(self, box_head: bool) -> ResolvedOptim:
        """The settings one training run uses: ``None`` resolved for the action head."""
        lr, batch = (BOX_LR, BOX_BATCH_SIZE) if box_head else (DEFAULT_LR, DEFAULT_BATCH_SIZE)
        return ResolvedOptim(
            batch_size=batch if self.batch_size is None else self.batch_size,
            lr=lr if self.lr is None else self.lr,
            weight_decay=self.weight_decay,
            max_steps=self.max_steps,
        )


@dataclass(frozen=True)
class ResolvedOptim:
    """:class:`OptimConfig` with every value fixed (what a trainer is built with)."""

    batch_size: int
    lr: float
    weight_decay: float
    max_steps: int


DEFAULT_LR, DEFAULT_BATCH_SIZE = 3e-3, 64
"""Adam step size and minibatch of Discrete, MultiDiscrete and MultiBinary heads."""
# A Box head regresses its mean on the actions; at 3e-3 / 64 Walker2d BC from 25 SAC
# episodes scored IQM 0.84 (seeds 0.65-1.07) and at 1e-3 / 256, the plain regression
# baseline of issue 15, 0.94 (README "Continuous control").
BOX_LR, BOX_BATCH_SIZE = 1e-3, 256
"""The same for a Box (Gaussian) head."""


DEFAULT_PATIENCE = 8
"""Held-out evaluations without improvement before BC stops (NLL, soft targets)."""
# Under Adam at the default step size a Box head's held-out action MSE stalls for 2,000+
# steps while it still falls: Walker2d BC from 25 SAC episodes stopped at 10.75k-13.5k
# steps with patience 8 (best step 8.75k-11.5k) where the MSE still improved until ~19k,
# and returned 807-1343 against 2457-2862 with 40 (README "Continuous control").
BOX_PATIENCE = 40
"""The same for a Box head's held-out action MSE (see :attr:`EarlyStopConfig.patience`)."""


@dataclass(frozen=True)
class EarlyStopConfig:
    """Held-out evaluations, early stopping and the kept weights."""

    eval_every: int = 250
    """Gradient steps between held-out evaluations."""
    patience: int | None = None
    """Evaluations without held-out improvement before stopping early. None: 8, and 40
    for a Box head's held-out action MSE (it stalls for 2,000+ steps while still falling)."""
    holdout_fraction: float = 0.1
    """Share of transitions held out for early stopping (0 disables it)."""
    box_early_stop: Literal["action_mse", "nll"] = "action_mse"
    """Box actions: held-out measure of early stopping and of the kept weights. Held-out
    action MSE tracks the return; the held-out NLL improves while hard states are given up."""

    def __post_init__(self) -> None:
        if self.eval_every < 1:
            raise ValueError(f"eval_every must be >= 1, got {self.eval_every}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 (or None), got {self.patience}")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in [0, 1), got {self.holdout_fraction}")

    def resolved_patience(self, box_action_mse: bool) -> int:
        """:attr:`patience`, ``None`` resolved for the held-out measure in use."""
        if self.patience is not None:
            return self.patience
        return BOX_PATIENCE if box_action_mse else DEFAULT_PATIENCE


@dataclass(frozen=True)
class LossConfig:
    """What is minimised: the head's loss, its variants, penalties and soft targets."""

    soft_weight: float = 0.0
    """alpha: weight of the softened-teacher term; needs ``teacher_logits`` in the data.
    The loss is ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(teacher action)``."""
    temperature: float = 1.0
    """T of the soft targets (Hinton et al. 2015); low T (0.01) sharpens Q-value teachers."""
    label_smoothing: float = 0.0
    """Discrete actions: train against ``(1 - eps) * onehot + eps / K`` (0.1 is usual)."""
    class_weights: Literal["none", "balanced"] = "none"
    """Discrete actions: weight each sample by ``n / (K * n_class)`` of its action."""
    focal_gamma: float = 0.0
    """Discrete actions: focal loss ``-(1 - p_a)^gamma log p_a`` (2 is usual; 0 is CE)."""
    mixup_alpha: float = 0.0
    """Discrete actions: mixup of observations and target distributions, Beta(alpha, alpha)."""
    temporal_js: float = 0.0
    """Discrete actions: weight of the Jensen-Shannon divergence between the action
    distributions of consecutive steps of an episode (smoother, less flip-flopping clones)."""
    temporal_js_temperature: float = 1.0
    """Temperature of the distributions compared by ``temporal_js``; below 1 sharpens them,
    so the penalty tracks changes of the chosen action rather than of confidence (two
    near-uniform distributions are JS-close whatever their argmax)."""
    ood_energy_weight: float = 0.0
    """Discrete actions: weight of the energy-margin loss (Liu et al. 2020) that keeps the
    energy ``-logsumexp(logits)`` low on training states and high on synthetic outliers
    (training states plus Gaussian noise), so the energy score flags unfamiliar states."""
    ood_noise: float = 2.0
    """Standard deviation of the outliers' noise, in units of each observation's std."""
    energy_margins: tuple[float, float] = (-8.0, -2.0)
    """(m_in, m_out): energies above m_in on training states and below m_out on outliers
    are penalised (squared hinge)."""
    box_loss: BoxLoss = "mse"
    """Box actions: how the Gaussian head is fitted. 'mse' / 'huber': the mean regresses
    the expert action, the std is fitted to the residuals with the mean held fixed (so it
    never re-weights states); 'nll': Gaussian NLL with learned std (its mean gradient is
    divided by sigma^2, which lets hard states drop out: Pendulum's clone never swings up);
    'beta_nll': Seitzer et al. 2022, the NLL times sg(sigma^(2 beta))."""
    box_beta: float = 0.5
    """beta of 'beta_nll' (0: the NLL; 1: the mean gets the MSE's gradient)."""
    huber_delta: float = 1.0
    """delta of 'huber', in action units."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.soft_weight <= 1.0 or self.temperature <= 0:
            raise ValueError("soft_weight must be in [0, 1] and temperature > 0")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if min(self.focal_gamma, self.mixup_alpha, self.temporal_js, self.ood_energy_weight) < 0:
            raise ValueError(
                "focal_gamma, mixup_alpha, temporal_js and ood_energy_weight must be >= 0"
            )
        if self.temporal_js_temperature <= 0:
            raise ValueError("temporal_js_temperature must be > 0")
        if self.ood_noise <= 0 or self.energy_margins[0] >= self.energy_margins[1]:
            raise ValueError("ood_noise must be > 0 and energy_margins (m_in, m_out) m_in < m_out")
        if not 0.0 <= self.box_beta <= 1.0 or self.huber_delta <= 0:
            raise ValueError("box_beta must be in [0, 1] and huber_delta > 0")
        if self.mixup_alpha > 0 and (self.soft_weight > 0 or self.temporal_js > 0):
            raise ValueError("mixup combines with neither soft targets nor temporal_js")

    @property
    def uses_toolbox(self) -> bool:
        """Whether a Discrete-only loss beyond the head's plain NLL is asked for."""
        return bool(
            self.label_smoothing
            or self.class_weights != "none"
            or self.focal_gamma
            or self.mixup_alpha
            or self.temporal_js
            or self.ood_energy_weight
        )


@dataclass(frozen=True)
class BCConfig:
    """Behavioural-cloning hyperparameters (defaults work for classic-control tasks).

    Grouped: ``optim`` (Adam, batches, steps), ``early_stop`` (held-out evaluations) and
    ``loss`` (what is minimised). Field names are unique across the groups, so the command
    line keeps one flat flag per field (``--lr``, ``--patience``, ``--label-smoothing``) and
    :meth:`setting` / :meth:`with_setting` address any of them by name (sweeps).
    """

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Architecture of a new policy (ignored when warm-starting)."""
    optim: Annotated[OptimConfig, _FLAT] = field(default_factory=OptimConfig)
    """Adam and the minibatch loop."""
    early_stop: Annotated[EarlyStopConfig, _FLAT] = field(default_factory=EarlyStopConfig)
    """Held-out evaluations and early stopping."""
    loss: Annotated[LossConfig, _FLAT] = field(default_factory=LossConfig)
    """The loss and its variants."""
    seed: int = 0
    """Seed for initialisation, the held-out split and batch order."""
    trainer: TrainerChoice = "auto"
    """'torch': the reference trainer (autograd, any head and loss); 'numpy': the
    hand-written fast path (plain CE on Discrete actions, tanh/relu MLP; an error otherwise);
    'auto': numpy where it applies, else torch. The choice is recorded in the history."""
    cnn_precision: CnnPrecision = "auto"
    """Arithmetic of a pixel CNN's convolutions and dense layer in the torch trainer's
    gradient steps (weights, gradients, Adam and the loss stay float32; evaluations use
    float32): 'bfloat16' or 'float32'; 'auto': bfloat16 on CPUs with native bf16
    (AVX512-BF16/AMX), else float32. See imitate.fastcnn. Recorded in the history."""

    def __post_init__(self) -> None:
        validate.seed("seed", self.seed)
        if self.cnn_precision not in get_args(CnnPrecision):
            choices = ", ".join(get_args(CnnPrecision))
            raise validate.ValueCheckError(
                f"--cnn-precision must be one of {choices}, got {self.cnn_precision!r}"
            )
        if self.trainer not in get_args(TrainerChoice):
            choices = ", ".join(get_args(TrainerChoice))
            raise validate.ValueCheckError(
                f"--trainer must be one of {choices}, got {self.trainer!r}"
            )

    @staticmethod
    def settings() -> dict[str, str]:
        """Every scalar setting of the groups by field name -> the group holding it
        (``"lr" -> "optim"``); BCConfig's own fields map to ``""``."""
        names: dict[str, str] = {}
        for group in fields(BCConfig):
            if group.name in _GROUPS:
                for f in fields(_GROUPS[group.name]):
                    names[f.name] = group.name
            elif group.name != "policy":
                names[group.name] = ""
        return names

    @staticmethod
    def setting_type(name: str) -> tuple[type, bool] | None:
        """The scalar type of a setting and whether it takes None (``"lr" -> (float,
        True)``, ``"max_steps" -> (int, False)``), or None when it is not one scalar type."""
        group = BCConfig.settings()[name]
        hint = get_type_hints(_GROUPS[group] if group else BCConfig)[name]
        union = get_origin(hint) in (Union, UnionType)
        arms = [arm for arm in (get_args(hint) if union else (hint,)) if arm is not type(None)]
        optional = union and type(None) in get_args(hint)
        if len(arms) != 1:
            return None
        if get_origin(arms[0]) is Literal:  # a choice of strings (e.g. box_loss)
            return str, optional
        return (cast(type, arms[0]), optional) if arms[0] in (bool, int, float, str) else None

    def setting(self, name: str) -> Any:
        """The value of a setting by its (flat) field name, e.g. ``config.setting("lr")``."""
        group = self.settings()[name]
        return getattr(getattr(self, group) if group else self, name)

    def with_setting(self, name: str, value: Any) -> BCConfig:
        """A copy with one setting changed, by its flat name (``KeyError`` if unknown)."""
        group = self.settings()[name]
        if not group:
            return replace(self, **{name: value})
        return replace(self, **{group: replace(getattr(self, group), **{name: value})})


_GROUPS: dict[str, Any] = {
    "optim": OptimConfig,
    "early_stop": EarlyStopConfig,
    "loss": LossConfig,
}


Gate = Literal["none", "entropy", "energy", "ensemble"]


@dataclass(frozen=True)
class BetaSchedule:
    """Probability that the expert acts in round ``i``.

    ``default``: 1 in round 0, then 0. ``constant``: ``value`` from round 1 on.
    ``linear``: ``1 - i / rounds``. ``exponential``: ``value ** i``.
    """

    kind: Literal["default", "constant", "linear", "exponential"] = "default"
    value: float = 0.5

    def beta(self, round_index: int, rounds: int) -> float:
        if round_index == 0:
            return 1.0  # there is no learner yet
        if self.kind == "default":
            return 0.0
        if self.kind == "constant":
            return self.value
        if self.kind == "linear":
            return max(0.0, 1.0 - round_index / rounds)
        return float(self.value**round_index)


def short_round_bc() -> BCConfig:
    """The round training ``DAggerConfig`` defaults to (at most 2,000 steps at Adam 3e-3,
    batch 64, for every head; held-out check every 100, patience 4); the studies measured
    with it name it, so that a change of the default does not move them. (A Box head's BC
    default, 1e-3 / 256, is for 20,000 steps; the 2,000-step rounds were measured at 3e-3.)"""
    return BCConfig(
        optim=OptimConfig(lr=DEFAULT_LR, batch_size=DEFAULT_BATCH_SIZE, max_steps=2000),
        early_stop=EarlyStopConfig(eval_every=100, patience=4),
    )


def refit_training(rounds: BCConfig) -> BCConfig:
    """The final refit's training (``DAggerConfig.final_refit``): the rounds' architecture,
    optimiser, loss and held-out split, with BC's own length of training (``BCConfig()``'s
    ``max_steps``, ``eval_every`` and early-stopping ``patience``). With the default round
    training (:func:`short_round_bc`) this is ``BCConfig()`` at the rounds' Adam 3e-3 and
    batch 64, for every head (a Box head's BC default, 1e-3 / 256, is not taken: the refit
    was measured, README "DAgger", with the rounds' optimiser)."""
    bc = BCConfig()
    return (
        rounds.with_setting("max_steps", bc.optim.max_steps)
        .with_setting("eval_every", bc.early_stop.eval_every)
        .with_setting("patience", bc.early_stop.patience)
    )


@dataclass(frozen=True)
class DAggerConfig:
    """DAgger settings; ``bc`` trains each round (warm-started)."""

    rounds: int = 10
    """Most rounds, round 0 included (round 0: the expert drives)."""
    steps_per_round: int = 500
    """Env-step budget of a round (with ``whole_episodes``: the most its whole episodes may
    hold, unless a single episode is longer)."""
    whole_episodes: bool = True
    """Rounds of whole episodes, as many as ``steps_per_round`` holds and at least one (round
    0 is then plain BC data); False: ``steps_per_round`` states rounded up to a multiple of
    ``num_envs`` (the envs step together), episodes cut short."""
    whole_first_round: bool = False
    """With ``whole_episodes=False``: round 0 (the expert's) still of whole episodes, as many
    as ``steps_per_round`` holds and at least one, and only the learner's rounds cut (what
    ``imitate run`` does); no effect with ``whole_episodes``."""
    patience: int | None = 2
    """Stop when the evaluated learner return has not improved on its best for this many
    rounds; the best learner is returned unless ``final_refit`` is (needs ``eval_episodes``
    > 0; None: run every round)."""
    beta: BetaSchedule = field(default_factory=BetaSchedule)
    """Mixture schedule."""
    gate: Gate = "none"
    """Which states of a learner-driven round the expert labels."""
    query_rate: float = 0.3
    """Target share of states labelled in gated rounds."""
    ensemble_size: int = 5
    """Members (the learner plus bootstrap copies) for the ensemble gate."""
    energy_temperature: float = 1.0
    """Temperature of the energy score."""
    eval_episodes: int = 20
    """Learner evaluation episodes after each round (seeds 10000 + i); 0 disables."""
    target_return: float | None = None
    """Stop once the learner's evaluated mean return reaches this."""
    bc: BCConfig = field(default_factory=short_round_bc)
    """Training of each round (:func:`short_round_bc`: at most 2,000 steps, warm-started).
    BC's own ``BCConfig()`` instead was measured and not taken: README, "DAgger and
    compounding error", ``benchmarks/bench_dagger.py defaults`` / ``rounds``."""
    seed: int = 0
    """Seed of rollouts, mixture coins and bootstrap weights."""
    num_envs: int = 8
    """Vectorised envs for rollouts."""
    soft_labels: bool = False
    """Also store the expert's ``logits`` with each label (distillation on student states)."""
    warm_start: bool = True
    """Continue each round from the previous learner (fast; enough on CartPole), else train a
    new one on the aggregate (better on LunarLander: see ``benchmarks/bench_dagger.py``)."""
    final_refit: bool = True
    """After the last round, train a new learner on the whole aggregate with BC's own length
    of training (:func:`refit_training`; it asks no labels) and return it instead of the
    best round's (measured on five envs: README, "DAgger and compounding error")."""

    def __post_init__(self) -> None:
        validate.seed("seed", self.seed)
        validate.count("eval_episodes", self.eval_episodes, minimum=0)
        validate.count("num_envs", self.num_envs)
        validate.count("ensemble_size", self.ensemble_size)
        validate.positive("energy_temperature", self.energy_temperature)
        if self.rounds < 1 or self.steps_per_round < 1:
            raise ValueError("rounds and steps_per_round must be >= 1")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 (or None), got {self.patience}")
        if not 0.0 < self.query_rate <= 1.0:
            raise ValueError(f"query_rate must be in (0, 1], got {self.query_rate}")
        if self.gate == "ensemble" and self.ensemble_size < 2:
            raise ValueError("the ensemble gate needs ensemble_size >= 2")


@dataclass(frozen=True)
class DistillConfig:
    """Student architecture, loss mixing and data mode."""

    student: PolicyConfig = field(default_factory=lambda: PolicyConfig(hidden=(16,)))
    """Student architecture."""
    temperature: float | None = None
    """T; None: 0.01 for Q-value teachers, 2.0 otherwise. Ignored for Box actions (mean
    matching, see :mod:`imitate.distill`)."""
    alpha: float = 0.9
    """Weight of the soft (teacher distribution) term; 0 is plain BC on teacher actions."""
    mode: Literal["offline", "on-student"] = "on-student"
    """Where the states come from."""
    episodes: int = 20
    """Offline: teacher episodes to record."""
    rounds: int = 5
    """On-student: DAgger rounds (round 0 uses teacher rollouts)."""
    steps_per_round: int = 2000
    """On-student: states per round."""
    max_steps: int = 20_000
    """Gradient steps per training call."""
    lr: float = 3e-3
    """Adam learning rate of the student (BC's default; a CNN student learns better at
    ~1e-3)."""
    seed: int = 0
    """Seed of rollouts and training."""

    def __post_init__(self) -> None:
        validate.positive("lr", self.lr)
        if self.temperature is not None:
            validate.positive("temperature", self.temperature)
        validate.fraction("alpha", self.alpha)
        validate.seed("seed", self.seed)
        for name in ("episodes", "rounds", "steps_per_round", "max_steps"):
            validate.count(name, getattr(self, name))


@dataclass(frozen=True)
class RunConfig:
    """What the main job does; defaults finish in a few minutes on CartPole-v1."""

    episodes: int = 20
    """Demonstration episodes for the main BC clone."""
    demo_counts: tuple[int, ...] = (1, 2, 5, 10, 20)
    """BC is also trained on the first k of them, for the return-vs-demonstrations curve."""
    eval_episodes: int = 50
    """Evaluation episodes (reset seeds 10000 + i)."""
    drift_episodes: int = 20
    """Paired expert/clone episodes in the drift report."""
    horizons: tuple[int, ...] = (25, 50, 100, 200, 400)
    """Horizons of the cost-vs-T fit; those beyond the env's time limit are dropped, and at
    least 2 must remain (checked before any stage runs)."""
    bc: BCConfig = field(default_factory=BCConfig)
    """Training of every BC clone."""
    dagger: DAggerConfig = field(
        default_factory=lambda: DAggerConfig(
            rounds=6,  # the main job's measured settings (README); DAggerConfig's own
            steps_per_round=1000,  # defaults (whole episodes, patience) are not yet
            bc=BCConfig(
                optim=OptimConfig(max_steps=4000),
                early_stop=EarlyStopConfig(eval_every=200, patience=5),
            ),  # measured here
            warm_start=False,
            whole_episodes=False,  # the learner's rounds: 1000 states, episodes cut
            whole_first_round=True,  # round 0: whole expert episodes, as `imitate dagger`
            patience=None,
            final_refit=False,  # each round already trains a new learner at length
        )
    )
    """DAgger settings; each round trains a new learner on the aggregate (more robust than
    warm-starting on LunarLander: see benchmarks/bench_dagger.py)."""
    distill: DistillConfig = field(default_factory=DistillConfig)
    """Distillation of the expert into a small student (needs an expert with logits)."""
    exports: tuple[str, ...] = ("onnx", "c")
    """Formats the student is exported to (C as int8)."""
    videos_per_clone: int = 3
    """Side-by-side expert/clone episodes rendered per clone (BC-1, BC-<episodes>, DAgger):
    the earliest-diverging, a median and the best one (0: no videos)."""
    seed: int = 0
    """Seed of demonstrations and training."""

    def __post_init__(self) -> None:
        validate.seed("seed", self.seed)
        for name in ("episodes", "eval_episodes", "drift_episodes"):
            validate.count(name, getattr(self, name))
        validate.count("videos_per_clone", self.videos_per_clone, minimum=0)
        validate.counts("demo_counts", self.demo_counts)
        validate.counts("horizons", self.horizons)


def long_episode_config() -> RunConfig:
    """The main job scaled for 1000-step locomotion tasks (MuJoCo), ~10 minutes here.

    Each evaluation episode is 5-50x longer than on classic control, so there are fewer
    of them (10 instead of 50), BC curves on 1, 5 and 10 demonstrations, 4 DAgger rounds
    of 2,500 states, a 2x32 student (HalfCheetah: 1/35 of the zoo actor), 5 drift pairs,
    and no videos (MuJoCo renders through OpenGL, which a headless machine may not have:
    here ``mujoco.FatalError``; ask for them with ``--videos-per-clone``).
    """
    return RunConfig(
        episodes=10,
        demo_counts=(1, 5, 10),
        eval_episodes=10,
        drift_episodes=5,
        videos_per_clone=0,
        bc=BCConfig(optim=OptimConfig(max_steps=5000)),
        dagger=DAggerConfig(
            rounds=4,
            steps_per_round=2500,
            eval_episodes=3,
            bc=BCConfig(
                optim=OptimConfig(max_steps=3000),
                early_stop=EarlyStopConfig(eval_every=250, patience=4),
            ),
            warm_start=True,
            final_refit=False,  # not measured on 1000-step tasks
        ),
        distill=DistillConfig(
            student=PolicyConfig(hidden=(32, 32)), rounds=4, steps_per_round=2500, max_steps=8000
        ),
    )
