"""What each ``imitate`` command accepts: its flags, as frozen dataclasses (tyro's input).

Each command embeds the library's own frozen config where there is one (``BCConfig``,
``DAggerConfig``, ``DistillConfig``, ``RunConfig``), flattened, so its flags are the
config's field names (``--max-steps``, ``--student.hidden``, ``--bc.lr``) and the command's
``config.json`` is the config's JSON; shared groups (:class:`SB3Flags`, :class:`BackendFlags`)
and shared field types (``--env``, ``--env-kwargs``, ``--expert``, ``--out``, ``--json``,
``--logger``) give every command the same vocabulary. Only :mod:`imitate.cli` (the wiring)
imports this module; nothing here runs a job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import tyro

from imitate import validate
from imitate.configs import BCConfig, DAggerConfig, DistillConfig, RunConfig, Seeding
from imitate.constants import (
    EVAL_SEED,
    INT8_GATE_EPISODES,
    INT8_MIN_PARITY,
    OWN_STATE_EPISODES,
)
from imitate.errors import ImitateError
from imitate.tracking import Logger

if TYPE_CHECKING:
    from imitate.backends import Backend

Flatten = tyro.conf.arg(name="")
DefaultInDoc = tyro.conf.arg(help_behavior_hint="")
"""For options whose docstring says what they default to (tyro would add "(default: None)")."""
_SPECS = (
    "an SB3 zip (with or without .zip) or rl-zoo run folder, an imitate policy .pt or module:attr"
)


def _help(text: str, hint: bool = True) -> Any:
    """A flag's help text given here (for flags repeated on many commands); ``hint=False``
    for text that says its own default."""
    return tyro.conf.arg(help=text, help_behavior_hint=None if hint else "")


Expert = Annotated[
    str,
    _help(
        "Expert: 'heuristic', 'zoo', 'auto' (the zoo expert if one is shipped, else "
        f"'heuristic'), {_SPECS}."
    ),
]
EnvId = Annotated[str, _help("Gymnasium env id, or module:EnvId (the module registers it).")]
EnvKwargs = Annotated[
    tuple[str, ...],
    _help(
        "Env kwargs key=value (e.g. --env-kwargs size=5 continuous=True), recorded with the "
        "data and the policy."
    ),
]
Out = Annotated[
    Path | None, _help("Output folder (default: runs/<env>__<command>__<seed>__<time>/).", False)
]
Json = Annotated[bool, _help("Print one JSON object on stdout.")]
Logging = Annotated[
    Logger,
    _help(
        "Also send the metrics to 'tensorboard' (event files in the run folder) or 'wandb' "
        "(offline unless WANDB_MODE is set); metrics.jsonl is always written."
    ),
]


@dataclass(frozen=True)
class SB3Flags:
    """How an SB3 expert is loaded (the same two flags wherever an expert is named)."""

    vecnormalize: Annotated[Path | None, DefaultInDoc] = None
    """VecNormalize statistics (vecnormalize.pkl) of an SB3 expert (default: the
    vecnormalize.pkl beside the zip, read without unpickling code)."""
    safe: bool = False
    """SB3 zips are pickles: loading one runs any code inside it, so name only zips you
    trust. --safe reads just the zip's tensors (policy.pth, weights only) and rebuilds the
    actor (MLP PPO/A2C/DQN/SAC) without unpickling; the shipped zoo experts always load so."""


@dataclass(frozen=True)
class EnvExpert:
    """The env and the expert a command rolls out (the same five flags on every such command)."""

    env: EnvId = "CartPole-v1"
    env_kwargs: EnvKwargs = ()
    expert: Expert = "heuristic"
    vecnormalize: Annotated[Path | None, DefaultInDoc] = None
    """VecNormalize statistics (vecnormalize.pkl) of an SB3 expert (default: the
    vecnormalize.pkl beside the zip, read without unpickling code)."""
    safe: bool = False
    """SB3 zips are pickles: loading one runs any code inside it, so name only zips you
    trust. --safe reads just the zip's tensors (policy.pth, weights only) and rebuilds the
    actor (MLP PPO/A2C/DQN/SAC) without unpickling; the shipped zoo experts always load so."""

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)


@dataclass(frozen=True)
class BackendFlags:
    """Where rollouts run (the same three flags on every command that rolls out)."""

    backend: Literal["local", "ray"] = "local"
    """'local' (this process) or 'ray' (Ray actors; needs the ray extra, always per-episode
    seeding: the same data as local with --seeding per-episode)."""
    workers: int = 2
    """Ray workers (one CPU each)."""
    address: Annotated[str | None, DefaultInDoc] = None
    """Existing Ray cluster ('auto', 'ray://head:10001'); default: start a local Ray."""

    def to_backend(self) -> Backend:
        from imitate.backends import Backend

        if self.workers < 1:
            raise ImitateError(f"--workers must be >= 1, got {self.workers}")
        if self.backend == "local" and self.address is not None:
            raise ImitateError("--address needs --backend ray")
        return Backend(kind=self.backend, workers=self.workers, address=self.address)


Sb3 = Annotated[SB3Flags, Flatten]
Setup = Annotated[EnvExpert, Flatten]
Rollouts = Annotated[BackendFlags, Flatten]


@dataclass(frozen=True)
class CollectCommand:
    """Roll out an expert and save its demonstrations as one dataset file."""

    setup: Setup = field(default_factory=EnvExpert)
    episodes: int = 10
    """Complete episodes to record."""
    seed: int = 0
    """Reset seed of the first episode."""
    out: Annotated[Path | None, DefaultInDoc] = None
    """Dataset file (default: runs/<env>__collect__<seed>__<time>/demos.npz)."""
    num_envs: int = 16
    """Vectorised env copies (per worker)."""
    seeding: Seeding = "auto"
    """'per-episode' (episode i resets with seed + i), 'stream' (one seed, the env's native
    vector implementation: faster), or 'auto' (stream where gymnasium has one, e.g.
    CartPole; per-episode with --backend ray)."""
    rollouts: Rollouts = field(default_factory=BackendFlags)
    json: Json = False

    def __post_init__(self) -> None:
        validate.seed("seed", self.seed)
        validate.count("episodes", self.episodes)
        validate.count("num_envs", self.num_envs)


@dataclass(frozen=True)
class BCCommand:
    """Train a policy by behavioural cloning on a dataset."""

    data: Path
    """Dataset file written by 'imitate collect'."""
    out: Out = None
    env: Annotated[str | None, DefaultInDoc] = None
    """Env to evaluate on after training (default: the dataset's, with its recorded kwargs);
    must match the dataset."""
    env_kwargs: EnvKwargs = ()
    eval_episodes: int = 50
    """Evaluation episodes after training (0: skip); episode i resets with seed 10000 + i."""
    config: Annotated[BCConfig, Flatten] = field(default_factory=BCConfig)
    """Training settings; --seed seeds initialisation, split and batch order."""
    logger: Logging = "none"
    json: Json = False

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)
        validate.count("eval_episodes", self.eval_episodes, minimum=0)


@dataclass(frozen=True)
class EvalCommand:
    """Evaluate a policy (or an expert) on seeded episodes: episode i resets with seed + i."""

    policy: Path | None = None
    """Policy checkpoint .pt (or use --expert)."""
    expert: Annotated[str | None, DefaultInDoc] = None
    """The expert: evaluated when alone; with --policy, the labels for calibration (ECE,
    Brier, NLL in bits per action on the policy's own states; default: the expert recorded
    with the policy's demonstrations, else the env's zoo or scripted expert)."""
    sb3: Sb3 = field(default_factory=SB3Flags)
    env: Annotated[str | None, DefaultInDoc] = None
    """Gymnasium env id or module:EnvId (default: the env the policy was trained on, with its
    recorded kwargs)."""
    env_kwargs: EnvKwargs = ()
    episodes: int = 50
    """Evaluation episodes."""
    seed: int = EVAL_SEED
    """Reset seed of the first episode."""
    js_gate: float = 0.0
    """Discrete policies: hold each action while the action distribution stays within this
    many nats (Jensen-Shannon) of the one it was chosen at (0: off; see JSGatedPolicy).
    The output then also reports the action-flip rate."""
    out: Annotated[Path | None, DefaultInDoc] = None
    """Folder for eval.json and, with calibration, the reliability diagram reliability.png
    (default: write nothing)."""
    rollouts: Rollouts = field(default_factory=BackendFlags)
    json: Json = False

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)
        validate.seed("seed", self.seed)
        validate.count("episodes", self.episodes)


@dataclass(frozen=True)
class RunCommand:
    """The main job: expert -> demos -> BC -> DAgger -> student -> exports -> drift report."""

    setup: Setup = field(default_factory=lambda: EnvExpert(expert="auto"))
    out: Out = None
    resume: Annotated[Path | None, DefaultInDoc] = None
    """Continue the interrupted run in this folder: its saved settings are restored (a flag
    given must repeat its saved value: a changed setting is refused), and the
    demonstrations and finished DAgger rounds are loaded, not asked of the expert again."""
    config: Annotated[RunConfig, Flatten] = field(default_factory=RunConfig)
    """What the job does (--episodes, --bc.*, --dagger.*, ...)."""
    logger: Logging = "none"
    json: Json = False


@dataclass(frozen=True)
class DaggerCommand:
    """Train a learner with DAgger; plot its return against expert labels next to BC's."""

    setup: Setup = field(default_factory=EnvExpert)
    out: Out = None
    resume: Annotated[Path | None, DefaultInDoc] = None
    """Continue the interrupted run in this folder: its saved settings are restored (a flag
    given must repeat its saved value: a changed setting is refused), and its finished
    rounds are loaded, not run again."""
    compare_bc: bool = True
    """Also train BC on the same numbers of expert-trajectory labels (the plot's baseline)."""
    config: Annotated[DAggerConfig, Flatten] = field(default_factory=DAggerConfig)
    """DAgger settings (--rounds, --gate, --query-rate, --bc.* for each round's training)."""
    rollouts: Rollouts = field(default_factory=BackendFlags)
    logger: Logging = "none"
    json: Json = False


@dataclass(frozen=True)
class DriftCommand:
    """Measure how clones drift from their expert: paired rollouts, shift gap, cost vs horizon."""

    setup: Setup = field(default_factory=EnvExpert)
    policy: Annotated[tuple[Path, ...], tyro.conf.UseAppendAction] = ()
    """Clone checkpoint .pt; repeat the flag to compare several."""
    episodes: int = 20
    """Paired episodes (and episodes per horizon fit)."""
    seed: int = EVAL_SEED
    """Reset seed of the first episode."""
    threshold: float = 1.0
    """Divergence threshold, in units of the expert's state std."""
    horizons: tuple[int, ...] = (25, 50, 100, 200, 400)
    """Horizons T for the cost-vs-T fit; those beyond the env's time limit are dropped, and
    at least 2 must remain (checked before any rollout)."""
    cost: Literal["disagreement", "negative_reward", "failure"] = "disagreement"
    """Per-step cost for the fit: the 0-1 disagreement with the expert, the negated reward,
    or nothing but failures (a failing termination always costs 1 per remaining step)."""
    video: bool = False
    """Also render side-by-side expert/clone videos (earliest-diverging, median and best
    episode per clone; GIF, and MP4 with imageio-ffmpeg) into videos/ and embed them in
    report.html."""
    out: Out = None
    json: Json = False

    def __post_init__(self) -> None:
        validate.seed("seed", self.seed)
        validate.count("episodes", self.episodes)
        validate.positive("threshold", self.threshold)


@dataclass(frozen=True)
class DistillCommand:
    """Distil a teacher into a small student (soft targets with temperature T)."""

    env: EnvId = "CartPole-v1"
    env_kwargs: EnvKwargs = ()
    teacher: Annotated[
        str,
        tyro.conf.arg(
            help=f"Teacher with logits (also --expert): 'zoo', {_SPECS}.", aliases=("--expert",)
        ),
    ] = "zoo"
    sb3: Sb3 = field(default_factory=SB3Flags)
    config: Annotated[DistillConfig, Flatten] = field(default_factory=DistillConfig)
    """Distillation settings (--student.hidden, --temperature, --alpha, --mode, --episodes:
    offline teacher episodes, --rounds, --steps-per-round, --max-steps, --seed)."""
    qat: bool = False
    """Then fine-tune through the int8 scheme (QAT: fake-quantised weights and activations)
    on the student's own states, keeping the checkpoint whose int8 form agrees best with the
    student; the weights are saved on the int8 grid (the int8 C export computes them exactly)."""
    qat_activation_bits: int | None = None
    """Hidden activation width QAT trains for: 8 or 16 (None: as the int8 export, 8 for
    Discrete actions, 16 for Box). Export with the same --activation-bits; 16 is what keeps
    the int8 JS gate >= 99 % with the Python one (README, embedded section)."""
    eval_episodes: int = 50
    """Evaluation episodes of teacher and student for the report (reset seeds 10000 + i)."""
    out: Out = None
    logger: Logging = "none"
    json: Json = False

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)
        validate.count("eval_episodes", self.eval_episodes)


@dataclass(frozen=True)
class ExportCommand:
    """Export a policy checkpoint for deployment (normalisation and decision included)."""

    policy: Path
    """Policy checkpoint .pt."""
    format: Literal["onnx", "torchscript", "numpy", "c", "sb3"] = "onnx"
    """Artefact format. ('sb3': a stable-baselines3 zip whose actor
    is the clone, to fine-tune with PPO.load / SAC.load)."""
    algo: Literal["ppo", "sac"] | None = None
    """sb3 only: 'ppo' (Discrete, MultiDiscrete, MultiBinary actions) or 'sac' (bounded Box
    actions); default by the action space."""
    int8: bool = False
    """C only: integer-only int8 (int8 weights, calibrated int activations, int32 accumulators)."""
    activation_bits: Annotated[Literal["auto", 8, 16] | None, DefaultInDoc] = None
    """C int8 only: hidden activation width; weights: int8. 'auto' (the default): 8 when the
    int8 model agrees with the policy on --min-parity of held-out calibration states (and its
    gate with the Python gate, with --js-gate), else 16; Box actions: 16."""
    min_parity: Annotated[float | None, DefaultInDoc] = None
    """C int8 only: the action agreement 'auto' and --js-gate require (0-1]. Default: 0.99."""
    js_gate: Annotated[float | None, DefaultInDoc] = None
    """C int8 only: carry the integer JS gate, checked at this threshold (nats) against the
    Python gate along --gate-episodes of its own; refused (exit 2) when no width reaches
    --min-parity. Default: no gate (the float32 C export always carries its exact one)."""
    gate_episodes: Annotated[int | None, DefaultInDoc] = None
    """C int8 with --js-gate: episodes of the Python gate the int8 gate is checked along (a
    late or early switch spoils a few whole episodes, not steps evenly: 10 are too few).
    Default: 30."""
    input_bits: Annotated[Literal[8, 16] | None, DefaultInDoc] = None
    """C int8 only: observation width (8 bits flip 3.5-4.5 % of a balancing policy's
    actions). Default: 16."""
    prefix: str = "policy"
    """C only: name of the files (<prefix>.h/.c) and prefix of every symbol and macro."""
    env: Annotated[str | None, DefaultInDoc] = None
    """C int8 only: env whose rollouts of the policy calibrate it (default: the checkpoint's)."""
    episodes: Annotated[int | None, DefaultInDoc] = None
    """C int8 only: calibration episodes of the policy itself. Default: 10."""
    seed: Annotated[int | None, DefaultInDoc] = None
    """C int8 only: seed of the calibration rollouts. Default: 0."""
    out: Out = None
    json: Json = False

    INT8_DEFAULTS: ClassVar[dict[str, Any]] = {
        "activation_bits": "auto",
        "min_parity": INT8_MIN_PARITY,
        "gate_episodes": INT8_GATE_EPISODES,
        "input_bits": 16,
        "env": None,
        "episodes": OWN_STATE_EPISODES,
        "seed": 0,
    }
    """The int8-only settings' values when not given (None above: given or not is known)."""

    def int8_flags_given(self) -> list[str]:
        """The int8-only flags given on the command line (a float32 export refuses them)."""
        return [
            f"--{n.replace('_', '-')}" for n in self.INT8_DEFAULTS if getattr(self, n) is not None
        ]

    def int8_setting(self, name: str) -> Any:
        """An int8-only setting, its default when not given."""
        value = getattr(self, name)
        return self.INT8_DEFAULTS[name] if value is None else value


@dataclass(frozen=True)
class OodCommand:
    """Score expert states against the states a clone drifts into (energy, max softmax).

    Drift states are the clone's states farther from every demonstration state than
    ``--quantile`` of held-out expert states are (nearest neighbour, std units)."""

    policy: Path
    """Clone checkpoint .pt (Discrete actions)."""
    setup: Setup = field(default_factory=EnvExpert)
    data: Annotated[Path | None, DefaultInDoc] = None
    """The clone's demonstrations (.npz): the support that drift leaves. Default: as many
    fresh expert episodes, reset seeds following the scored ones."""
    episodes: int = 20
    """Expert and clone episodes scored (reset seeds seed, seed + 1, ...)."""
    seed: int = EVAL_SEED
    """Reset seed of the first episode."""
    quantile: float = 0.99
    """Share of held-out expert states that count as in support."""
    out: Out = None
    json: Json = False

    def __post_init__(self) -> None:
        validate.seed("seed", self.seed)
        validate.count("episodes", self.episodes)


@dataclass(frozen=True)
class ExpertTrainCommand:
    """Train a zoo expert (stable-baselines3, rl-baselines3-zoo hyperparameters)."""

    env: str = "CartPole-v1"
    """Gymnasium env id with a zoo entry."""
    seed: int = 0
    """Training seed."""
    out: Annotated[Path | None, DefaultInDoc] = None
    """SB3 zip to write (default: runs/<env>__expert-train__<seed>__<time>/expert.zip)."""
    timesteps: int | None = None
    """Override the zoo's number of env steps (e.g. a short smoke run)."""
    ship: bool = False
    """Write the zip into agents/pretrained/ and record it in experts.json (what `imitate
    expert list` and `--expert zoo` read)."""
    snapshots: Path | None = None
    """Folder for the training state (model, optimisers, replay buffer) every
    --snapshot-every steps, so a long run can be resumed."""
    snapshot_every: int | None = None
    """Steps between snapshots (with --snapshots; default 25,000)."""
    resume: bool = False
    """Continue from the newest snapshot in --snapshots (the random generators and envs
    restart, so the result is not bit-identical to an uninterrupted run)."""
    json: Json = False

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)
        validate.seed("seed", self.seed)
        if self.snapshot_every is not None:
            validate.count("snapshot_every", self.snapshot_every)
            if self.snapshots is None:
                raise ImitateError(
                    "--snapshot-every needs the folder to save them in (--snapshots)"
                )
        if self.resume and self.snapshots is None:
            raise ImitateError("--resume continues a run from its --snapshots folder; give it")


@dataclass(frozen=True)
class ExpertListCommand:
    """List the shipped zoo experts with their measured returns."""

    json: Json = False


@dataclass(frozen=True)
class ExpertEvalCommand:
    """Evaluate an expert on seeded episodes (episode i resets with seed + i)."""

    setup: Setup = field(default_factory=lambda: EnvExpert(expert="zoo"))
    episodes: int = 50
    """Evaluation episodes."""
    seed: int = EVAL_SEED
    """Reset seed of the first episode."""
    json: Json = False

    def __post_init__(self) -> None:
        validate.seed("seed", self.seed)
        validate.count("episodes", self.episodes)


@dataclass(frozen=True)
class ExpertCommand:
    """Expert zoo: train, list and evaluate experts."""

    action: (
        Annotated[ExpertTrainCommand, tyro.conf.subcommand("train")]
        | Annotated[ExpertListCommand, tyro.conf.subcommand("list")]
        | Annotated[ExpertEvalCommand, tyro.conf.subcommand("eval")]
    )

    @property
    def json(self) -> bool:
        return self.action.json


@dataclass(frozen=True)
class SweepCommand:
    """BC over seeds x one or two settings (locally or as Ray tasks): one table, one plot."""

    env: str = "CartPole-v1"
    """Gymnasium env id."""
    env_kwargs: EnvKwargs = ()
    expert: Expert = "heuristic"
    sb3: Sb3 = field(default_factory=SB3Flags)
    grid: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """An axis 'name=v1,v2,...' (repeat for a second one): 'episodes', 'hidden' (e.g. 16,64x64)
    or a BC setting such as lr or label_smoothing. Default: episodes=1,2,5."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of each point (demonstrations, initialisation, batch order)."""
    episodes: int = 10
    """Demonstrations per trial (unless swept)."""
    eval_episodes: int = 20
    """Evaluation episodes per trial (reset seeds 10000 + i)."""
    config: Annotated[BCConfig, Flatten] = field(default_factory=BCConfig)
    """BC settings shared by all trials."""
    out: Out = None
    rollouts: Rollouts = field(default_factory=BackendFlags)
    logger: Logging = "none"
    json: Json = False

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)
        validate.seeds("seeds", self.seeds)
        validate.count("episodes", self.episodes)
        validate.count("eval_episodes", self.eval_episodes)


Minari = Annotated[
    Path | None,
    _help(
        "Minari datasets folder (default: $MINARI_DATASETS_PATH, else ~/.minari/datasets).", False
    ),
]


@dataclass(frozen=True)
class DataExportMinariCommand:
    """Write an imitate dataset as a local Minari dataset (needs the minari extra)."""

    data: Path
    """Dataset file written by 'imitate collect'."""
    dataset_id: str
    """Minari id to create, '(namespace/)name-v<version>', e.g. imitate/cartpole/expert-v0."""
    root: Minari = None
    json: Json = False


@dataclass(frozen=True)
class DataImportMinariCommand:
    """Read a local Minari dataset into an imitate dataset file (needs the minari extra)."""

    dataset_id: str
    """Minari id of a local dataset."""
    out: Annotated[Path | None, DefaultInDoc] = None
    """Dataset file to write (default: runs/<env>__import-minari__0__<time>/demos.npz)."""
    root: Minari = None
    json: Json = False


@dataclass(frozen=True)
class DataCommand:
    """Datasets: Minari export and import."""

    action: (
        Annotated[DataExportMinariCommand, tyro.conf.subcommand("export-minari")]
        | Annotated[DataImportMinariCommand, tyro.conf.subcommand("import-minari")]
    )

    @property
    def json(self) -> bool:
        return self.action.json


@dataclass(frozen=True)
class CompressCommand:
    """Arithmetic-code a dataset's actions with a policy's action distribution (lossless)."""

    policy: Path
    """imitate policy .pt whose action distribution codes the actions."""
    data: Path
    """Dataset file whose actions are coded (its observations are needed to decode)."""
    out: Path | None = None
    """Compressed file (default: the dataset's path with suffix .imz)."""
    resolution: float | None = None
    """Box actions only: quantisation step; the round trip returns the grid centres."""
    json: Json = False


@dataclass(frozen=True)
class DecompressCommand:
    """Decode an .imz file: the dataset of --data with the decoded actions, bit for bit."""

    policy: Path
    """The policy .pt the file was compressed with (checked by its SHA-256)."""
    imz: Path
    """Compressed file written by 'imitate compress'."""
    data: Path
    """Dataset with the same observations (its actions are not read, they are replaced)."""
    out: Path
    """Dataset file to write."""
    json: Json = False


DESCRIPTION = (
    "imitate: imitation learning and policy distillation. Trust rule: an SB3 .zip is a "
    "pickle, and loading one runs any code inside it; imitate loads a zip only when you name "
    "it (--expert/--teacher), never because a checkpoint or dataset mentions it. Name only "
    "zips you trust, or add --safe to rebuild the actor from the zip's tensors without "
    "unpickling (shipped zoo experts always load so). imitate's own .pt/.npz files hold no "
    "pickled objects."
)

Command = (
    Annotated[CollectCommand, tyro.conf.subcommand("collect")]
    | Annotated[BCCommand, tyro.conf.subcommand("bc")]
    | Annotated[EvalCommand, tyro.conf.subcommand("eval")]
    | Annotated[RunCommand, tyro.conf.subcommand("run")]
    | Annotated[DaggerCommand, tyro.conf.subcommand("dagger")]
    | Annotated[DriftCommand, tyro.conf.subcommand("drift")]
    | Annotated[DistillCommand, tyro.conf.subcommand("distill")]
    | Annotated[ExportCommand, tyro.conf.subcommand("export")]
    | Annotated[OodCommand, tyro.conf.subcommand("ood")]
    | Annotated[ExpertCommand, tyro.conf.subcommand("expert")]
    | Annotated[SweepCommand, tyro.conf.subcommand("sweep")]
    | Annotated[DataCommand, tyro.conf.subcommand("data")]
    | Annotated[CompressCommand, tyro.conf.subcommand("compress")]
    | Annotated[DecompressCommand, tyro.conf.subcommand("decompress")]
)

ALIASES = {"distill": {"--hidden": "--student.hidden", "--activation": "--student.activation"}}
"""Older spellings kept working: distill's student architecture is DistillConfig.student."""
