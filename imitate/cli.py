"""The ``imitate`` command: the composition root that wires experts, envs and the library.

Each subcommand is a frozen dataclass; tyro generates the command line from it,
so flags, the Python API and the saved ``config.json`` say the same thing. The
shared vocabulary: ``--env``, ``--expert``, ``--policy``, ``--data``,
``--episodes``, ``--seed``, ``--out``, ``--json`` (one JSON object on stdout).

Errors caused by input print one line ``imitate: error: ...`` and exit 2; so does every
file-system fault (``imitate: error: <path>: <what>``). SIGINT/SIGTERM print ``imitate:
interrupted`` and exit 130/143. Commands that write a folder write it whole or not at
all (:func:`imitate.runs.artefact_dir`). SB3 zips are pickles: one is loaded only when
named on the command line, and ``--safe`` loads it without unpickling.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import tyro

from imitate import validate
from imitate.configs import BCConfig, DAggerConfig, RunConfig, Seeding
from imitate.errors import EnvError, ImitateError, Interrupted, os_error
from imitate.fileio import write_json, write_jsonl, write_text
from imitate.runs import (
    artefact_dir,
    check_out,
    config_to_json,
    default_run_dir,
    make_run_dir,
    out_lock,
)
from imitate.tracking import Logger, RunLogger

if TYPE_CHECKING:  # the library is imported by each command's handler, when it runs
    from imitate.backends import Backend, Rollouts
    from imitate.data import Dataset
    from imitate.environments import EnvLike
    from imitate.plots import Curve
    from imitate.policy import MLPPolicy
    from imitate.runtime import NumpyMLPPolicy, Policy

Flatten = tyro.conf.arg(name="")
DefaultInDoc = tyro.conf.arg(help_behavior_hint="")
"""For options whose docstring says what they default to (tyro would add "(default: None)")."""


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


@dataclass(frozen=True)
class CollectCommand:
    """Roll out an expert and save its demonstrations as one dataset file."""

    env: str = "CartPole-v1"
    """Gymnasium env id, or module:EnvId (the module registers it)."""
    env_kwargs: tuple[str, ...] = ()
    """Env kwargs key=value (e.g. --env-kwargs size=5 continuous=True), recorded with the
    data and the policy."""
    expert: str = "heuristic"
    """Expert: 'heuristic', 'zoo', an SB3 zip (with or without .zip)
    or rl-zoo run folder, an imitate policy .pt or module:attr."""
    vecnormalize: Annotated[Path | None, DefaultInDoc] = None
    """VecNormalize statistics (vecnormalize.pkl) of an SB3 expert (default: the
    vecnormalize.pkl beside the zip, read without unpickling code)."""
    safe: bool = False
    """SB3 zips are pickles: loading one runs any code inside it, so name only zips you
    trust. --safe reads just the zip's tensors (policy.pth, weights only) and rebuilds the
    actor (MLP PPO/A2C/DQN/SAC) without unpickling; the shipped zoo experts always load so."""
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
    rollouts: Annotated[BackendFlags, Flatten] = field(default_factory=BackendFlags)
    """Rollout backend."""
    json: bool = False
    """Print one JSON object on stdout."""

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)
        validate.seed("seed", self.seed)
        validate.count("episodes", self.episodes)
        validate.count("num_envs", self.num_envs)


@dataclass(frozen=True)
class BCCommand:
    """Train a policy by behavioural cloning on a dataset."""

    data: Path
    """Dataset file written by 'imitate collect'."""
    out: Annotated[Path | None, DefaultInDoc] = None
    """Run folder for policy.pt, config.json, metrics.jsonl (default: under runs/)."""
    env: Annotated[str | None, DefaultInDoc] = None
    """Env to evaluate on after training (default: the dataset's, with its recorded kwargs);
    must match the dataset."""
    env_kwargs: tuple[str, ...] = ()
    """Env kwargs key=value (e.g. --env-kwargs size=5 continuous=True), recorded with the
    data and the policy."""
    eval_episodes: int = 50
    """Evaluation episodes after training (0: skip); episode i resets with seed 10000 + i."""
    config: Annotated[BCConfig, Flatten] = field(default_factory=BCConfig)
    """Training settings; --seed seeds initialisation, split and batch order."""
    logger: Logger = "none"
    """Also send the metrics to 'tensorboard' (event files in the run folder) or 'wandb'
    (offline unless WANDB_MODE is set); metrics.jsonl is always written."""
    json: bool = False
    """Print one JSON object on stdout."""

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
    vecnormalize: Annotated[Path | None, DefaultInDoc] = None
    """VecNormalize statistics (vecnormalize.pkl) of an SB3 expert (default: the
    vecnormalize.pkl beside the zip, read without unpickling code)."""
    safe: bool = False
    """SB3 zips are pickles: loading one runs any code inside it, so name only zips you
    trust. --safe reads just the zip's tensors (policy.pth, weights only) and rebuilds the
    actor (MLP PPO/A2C/DQN/SAC) without unpickling; the shipped zoo experts always load so."""
    env: Annotated[str | None, DefaultInDoc] = None
    """Gymnasium env id or module:EnvId (default: the env the policy was trained on, with its
    recorded kwargs)."""
    env_kwargs: tuple[str, ...] = ()
    """Env kwargs key=value (e.g. --env-kwargs size=5 continuous=True), recorded with the
    data and the policy."""
    episodes: int = 50
    """Evaluation episodes."""
    seed: int = 10_000
    """Reset seed of the first episode."""
    js_gate: float = 0.0
    """Discrete policies: hold each action while the action distribution stays within this
    many nats (Jensen-Shannon) of the one it was chosen at (0: off; see JSGatedPolicy).
    The output then also reports the action-flip rate."""
    out: Annotated[Path | None, DefaultInDoc] = None
    """Folder for eval.json and, with calibration, the reliability diagram reliability.png
    (default: write nothing)."""
    rollouts: Annotated[BackendFlags, Flatten] = field(default_factory=BackendFlags)
    """Rollout backend of the evaluation episodes."""
    json: bool = False
    """Print one JSON object on stdout."""

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)
        validate.seed("seed", self.seed)
        validate.count("episodes", self.episodes)


@dataclass(frozen=True)
class RunCommand:
    """The main job: expert -> demos -> BC -> DAgger -> student -> exports -> drift report."""

    env: str = "CartPole-v1"
    """Gymnasium env id, or module:EnvId (the module registers it)."""
    env_kwargs: tuple[str, ...] = ()
    """Env kwargs key=value (e.g. --env-kwargs size=5 continuous=True), recorded with the
    data and the policy."""
    expert: str = "auto"
    """Expert: 'auto' (the zoo expert if one is shipped, else 'heuristic'), 'heuristic', 'zoo',
    an SB3 zip (with or without .zip)
    or rl-zoo run folder, an imitate policy .pt or module:attr."""
    vecnormalize: Annotated[Path | None, DefaultInDoc] = None
    """VecNormalize statistics (vecnormalize.pkl) of an SB3 expert (default: the
    vecnormalize.pkl beside the zip, read without unpickling code)."""
    safe: bool = False
    """SB3 zips are pickles: loading one runs any code inside it, so name only zips you
    trust. --safe reads just the zip's tensors (policy.pth, weights only) and rebuilds the
    actor (MLP PPO/A2C/DQN/SAC) without unpickling; the shipped zoo experts always load so."""
    out: Annotated[Path | None, DefaultInDoc] = None
    """Run folder (default: runs/<env>__run__<seed>__<time>/)."""
    resume: Annotated[Path | None, DefaultInDoc] = None
    """Continue the interrupted run in this folder (give the settings it was started with):
    the demonstrations and finished DAgger rounds are loaded, not asked of the expert again."""
    config: Annotated[RunConfig, Flatten] = field(default_factory=RunConfig)
    """What the job does (--episodes, --bc.*, --dagger.*, ...)."""
    logger: Logger = "none"
    """Also send the metrics to 'tensorboard' (event files in the run folder) or 'wandb'
    (offline unless WANDB_MODE is set); metrics.jsonl is always written."""
    json: bool = False
    """Print one JSON object on stdout."""

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)


@dataclass(frozen=True)
class DaggerCommand:
    """Train a learner with DAgger; plot its return against expert labels next to BC's."""

    env: str = "CartPole-v1"
    """Gymnasium env id, or module:EnvId (the module registers it)."""
    env_kwargs: tuple[str, ...] = ()
    """Env kwargs key=value (e.g. --env-kwargs size=5 continuous=True), recorded with the
    data and the policy."""
    expert: str = "heuristic"
    """Expert: 'heuristic', 'zoo', an SB3 zip (with or without .zip)
    or rl-zoo run folder, an imitate policy .pt or module:attr."""
    vecnormalize: Annotated[Path | None, DefaultInDoc] = None
    """VecNormalize statistics (vecnormalize.pkl) of an SB3 expert (default: the
    vecnormalize.pkl beside the zip, read without unpickling code)."""
    safe: bool = False
    """SB3 zips are pickles: loading one runs any code inside it, so name only zips you
    trust. --safe reads just the zip's tensors (policy.pth, weights only) and rebuilds the
    actor (MLP PPO/A2C/DQN/SAC) without unpickling; the shipped zoo experts always load so."""
    out: Annotated[Path | None, DefaultInDoc] = None
    """Run folder (default: runs/<env>__dagger__<seed>__<time>/)."""
    resume: Annotated[Path | None, DefaultInDoc] = None
    """Continue the interrupted run in this folder (give the settings it was started with):
    its finished rounds are loaded, not run again."""
    compare_bc: bool = True
    """Also train BC on the same numbers of expert-trajectory labels (the plot's baseline)."""
    config: Annotated[DAggerConfig, Flatten] = field(default_factory=DAggerConfig)
    """DAgger settings (--rounds, --gate, --query-rate, --bc.* for each round's training)."""
    rollouts: Annotated[BackendFlags, Flatten] = field(default_factory=BackendFlags)
    """Backend of each round's rollouts and evaluation."""
    logger: Logger = "none"
    """Also send the metrics to 'tensorboard' (event files in the run folder) or 'wandb'
    (offline unless WANDB_MODE is set); metrics.jsonl is always written."""
    json: bool = False
    """Print one JSON object on stdout."""

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)


@dataclass(frozen=True)
class DriftCommand:
    """Measure how clones drift from their expert: paired rollouts, shift gap, cost vs horizon."""

    env: str = "CartPole-v1"
    """Gymnasium env id, or module:EnvId (the module registers it)."""
    env_kwargs: tuple[str, ...] = ()
    """Env kwargs key=value (e.g. --env-kwargs size=5 continuous=True), recorded with the
    data and the policy."""
    expert: str = "heuristic"
    """Expert: 'heuristic', 'zoo', an SB3 zip (with or without .zip)
    or rl-zoo run folder, an imitate policy .pt or module:attr."""
    vecnormalize: Annotated[Path | None, DefaultInDoc] = None
    """VecNormalize statistics (vecnormalize.pkl) of an SB3 expert (default: the
    vecnormalize.pkl beside the zip, read without unpickling code)."""
    safe: bool = False
    """SB3 zips are pickles: loading one runs any code inside it, so name only zips you
    trust. --safe reads just the zip's tensors (policy.pth, weights only) and rebuilds the
    actor (MLP PPO/A2C/DQN/SAC) without unpickling; the shipped zoo experts always load so."""
    policy: Annotated[tuple[Path, ...], tyro.conf.UseAppendAction] = ()
    """Clone checkpoint .pt; repeat the flag to compare several."""
    episodes: int = 20
    """Paired episodes (and episodes per horizon fit)."""
    seed: int = 10_000
    """Reset seed of the first episode."""
    threshold: float = 1.0
    """Divergence threshold, in units of the expert's state std."""
    horizons: tuple[int, ...] = (25, 50, 100, 200, 400)
    """Horizons T for the cost-vs-T fit."""
    cost: Literal["disagreement", "negative_reward", "failure"] = "disagreement"
    """Per-step cost for the fit: the 0-1 disagreement with the expert, the negated reward,
    or nothing but failures (a failing termination always costs 1 per remaining step)."""
    video: bool = False
    """Also render side-by-side expert/clone videos (earliest-diverging, median and best
    episode per clone; GIF, and MP4 with imageio-ffmpeg) into videos/ and write
    report.html."""
    out: Annotated[Path | None, DefaultInDoc] = None
    """Report folder (default: runs/<env>__drift__<seed>__<time>/)."""
    json: bool = False
    """Print one JSON object on stdout."""

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)
        validate.seed("seed", self.seed)
        validate.count("episodes", self.episodes)
        validate.positive("threshold", self.threshold)


@dataclass(frozen=True)
class DistillCommand:
    """Distil a teacher into a small student (soft targets with temperature T)."""

    env: str = "CartPole-v1"
    """Gymnasium env id, or module:EnvId (the module registers it)."""
    env_kwargs: tuple[str, ...] = ()
    """Env kwargs key=value (e.g. --env-kwargs size=5 continuous=True), recorded with the
    data and the policy."""
    teacher: str = "zoo"
    """Teacher with logits: 'zoo', an SB3 zip (with or without .zip)
    or rl-zoo run folder, an imitate policy .pt or module:attr."""
    vecnormalize: Annotated[Path | None, DefaultInDoc] = None
    """VecNormalize statistics (vecnormalize.pkl) of an SB3 expert (default: the
    vecnormalize.pkl beside the zip, read without unpickling code)."""
    safe: bool = False
    """SB3 zips are pickles: loading one runs any code inside it, so name only zips you
    trust. --safe reads just the zip's tensors (policy.pth, weights only) and rebuilds the
    actor (MLP PPO/A2C/DQN/SAC) without unpickling; the shipped zoo experts always load so."""
    hidden: tuple[int, ...] = (16,)
    """Student hidden layer widths."""
    activation: Literal["tanh", "relu", "hardtanh"] = "tanh"
    """Student hidden activation (relu / hardtanh map exactly onto the int8 C export)."""
    qat: bool = False
    """Then fine-tune with int8 fake-quantised weights (QAT) on the student's own states, so
    that the int8 C export computes the saved student's dot products exactly."""
    temperature: Annotated[float | None, DefaultInDoc] = None
    """Softmax temperature T (default: 0.01 for Q-value teachers, else 2)."""
    alpha: float = 0.9
    """Weight of the soft-target term (0: hard teacher actions only)."""
    mode: Literal["offline", "on-student"] = "on-student"
    """States from teacher rollouts, or from the student's own rollouts (DAgger-style)."""
    seed: int = 0
    """Seed of rollouts and training."""
    episodes: int = 50
    """Evaluation episodes for the report (reset seeds 10000 + i)."""
    out: Annotated[Path | None, DefaultInDoc] = None
    """Run folder for the student's policy.pt (default: under runs/)."""
    logger: Logger = "none"
    """Also send the metrics to 'tensorboard' (event files in the run folder) or 'wandb'
    (offline unless WANDB_MODE is set); metrics.jsonl is always written."""
    json: bool = False
    """Print one JSON object on stdout."""

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)
        validate.widths("hidden", self.hidden)
        if self.temperature is not None:
            validate.positive("temperature", self.temperature)
        validate.fraction("alpha", self.alpha)
        validate.seed("seed", self.seed)
        validate.count("episodes", self.episodes)


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
    activation_bits: Literal[8, 16] = 16
    """C int8 only: activation width (observation and hidden); the weights stay int8."""
    prefix: str = "policy"
    """C only: name of the files (<prefix>.h/.c) and prefix of every symbol and macro."""
    env: Annotated[str | None, DefaultInDoc] = None
    """C int8 only: env whose rollouts of the policy calibrate it (default: the checkpoint's)."""
    episodes: int = 10
    """C int8 only: calibration episodes of the policy itself."""
    seed: int = 0
    """C int8 only: seed of the calibration rollouts."""
    out: Annotated[Path | None, DefaultInDoc] = None
    """Output folder (default: runs/<env>__export__0__<time>/)."""
    json: bool = False
    """Print one JSON object on stdout."""


@dataclass(frozen=True)
class OodCommand:
    """Score expert states against the states a clone drifts into (energy, max softmax).

    Drift states are the clone's states farther from every demonstration state than
    ``--quantile`` of held-out expert states are (nearest neighbour, std units)."""

    policy: Path
    """Clone checkpoint .pt (Discrete actions)."""
    env: str = "CartPole-v1"
    """Gymnasium env id, or module:EnvId (the module registers it)."""
    env_kwargs: tuple[str, ...] = ()
    """Env kwargs key=value (e.g. --env-kwargs size=5 continuous=True), recorded with the
    data and the policy."""
    expert: str = "heuristic"
    """Expert: 'heuristic', 'zoo', an SB3 zip (with or without .zip)
    or rl-zoo run folder, an imitate policy .pt or module:attr."""
    vecnormalize: Annotated[Path | None, DefaultInDoc] = None
    """VecNormalize statistics (vecnormalize.pkl) of an SB3 expert (default: the
    vecnormalize.pkl beside the zip, read without unpickling code)."""
    safe: bool = False
    """SB3 zips are pickles: loading one runs any code inside it, so name only zips you
    trust. --safe reads just the zip's tensors (policy.pth, weights only) and rebuilds the
    actor (MLP PPO/A2C/DQN/SAC) without unpickling; the shipped zoo experts always load so."""
    data: Annotated[Path | None, DefaultInDoc] = None
    """The clone's demonstrations (.npz): the support that drift leaves. Default: as many
    fresh expert episodes, reset seeds following the scored ones."""
    episodes: int = 20
    """Expert and clone episodes scored (reset seeds seed, seed + 1, ...)."""
    seed: int = 10_000
    """Reset seed of the first episode."""
    quantile: float = 0.99
    """Share of held-out expert states that count as in support."""
    out: Annotated[Path | None, DefaultInDoc] = None
    """Report folder (default: runs/<env>__ood__<seed>__<time>/)."""
    json: bool = False
    """Print one JSON object on stdout."""

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)
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
    json: bool = False
    """Print one JSON object on stdout."""

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)
        validate.seed("seed", self.seed)


@dataclass(frozen=True)
class ExpertListCommand:
    """List the shipped zoo experts with their measured returns."""

    json: bool = False
    """Print one JSON object on stdout."""


@dataclass(frozen=True)
class ExpertEvalCommand:
    """Evaluate an expert on seeded episodes (episode i resets with seed + i)."""

    env: str = "CartPole-v1"
    """Gymnasium env id, or module:EnvId (the module registers it)."""
    env_kwargs: tuple[str, ...] = ()
    """Env kwargs key=value (e.g. --env-kwargs size=5 continuous=True), recorded with the
    data and the policy."""
    expert: str = "zoo"
    """'zoo', 'heuristic', an SB3 zip (with or without .zip)
    or rl-zoo run folder, an imitate policy .pt or module:attr."""
    vecnormalize: Annotated[Path | None, DefaultInDoc] = None
    """VecNormalize statistics (vecnormalize.pkl) of an SB3 expert (default: the
    vecnormalize.pkl beside the zip, read without unpickling code)."""
    safe: bool = False
    """SB3 zips are pickles: loading one runs any code inside it, so name only zips you
    trust. --safe reads just the zip's tensors (policy.pth, weights only) and rebuilds the
    actor (MLP PPO/A2C/DQN/SAC) without unpickling; the shipped zoo experts always load so."""
    episodes: int = 50
    """Evaluation episodes."""
    seed: int = 10_000
    """Reset seed of the first episode."""
    json: bool = False
    """Print one JSON object on stdout."""

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)
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
    expert: str = "heuristic"
    """Expert: 'heuristic', 'zoo', an SB3 .zip or an imitate policy .pt."""
    safe: bool = False
    """SB3 zips are pickles: loading one runs any code inside it, so name only zips you
    trust. --safe reads just the zip's tensors (policy.pth, weights only) and rebuilds the
    actor (MLP PPO/A2C/DQN/SAC) without unpickling; the shipped zoo experts always load so."""
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
    out: Annotated[Path | None, DefaultInDoc] = None
    """Run folder (default: runs/<env>__sweep__<first seed>__<time>/)."""
    rollouts: Annotated[BackendFlags, Flatten] = field(default_factory=BackendFlags)
    """'ray' runs one task per trial."""
    logger: Logger = "none"
    """Also send the metrics to 'tensorboard' (event files in the run folder) or 'wandb'
    (offline unless WANDB_MODE is set); metrics.jsonl is always written."""
    json: bool = False
    """Print one JSON object on stdout."""

    def __post_init__(self) -> None:
        validate.nonempty("env", self.env)
        validate.seeds("seeds", self.seeds)
        validate.count("episodes", self.episodes)
        validate.count("eval_episodes", self.eval_episodes)


@dataclass(frozen=True)
class DataExportMinariCommand:
    """Write an imitate dataset as a local Minari dataset (needs the minari extra)."""

    data: Path
    """Dataset file written by 'imitate collect'."""
    dataset_id: str
    """Minari id to create, '(namespace/)name-v<version>', e.g. imitate/cartpole/expert-v0."""
    root: Annotated[Path | None, DefaultInDoc] = None
    """Minari datasets folder (default: $MINARI_DATASETS_PATH, else ~/.minari/datasets)."""
    json: bool = False
    """Print one JSON object on stdout."""


@dataclass(frozen=True)
class DataImportMinariCommand:
    """Read a local Minari dataset into an imitate dataset file (needs the minari extra)."""

    dataset_id: str
    """Minari id of a local dataset."""
    out: Annotated[Path | None, DefaultInDoc] = None
    """Dataset file to write (default: runs/<env>__import-minari__0__<time>/demos.npz)."""
    root: Annotated[Path | None, DefaultInDoc] = None
    """Minari datasets folder (default: $MINARI_DATASETS_PATH, else ~/.minari/datasets)."""
    json: bool = False
    """Print one JSON object on stdout."""


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
    json: bool = False
    """Print one JSON object on stdout."""


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
    json: bool = False
    """Print one JSON object on stdout."""


DESCRIPTION = (
    "imitate: imitation learning and policy distillation. Trust rule: an SB3 .zip is a "
    "pickle, and loading one runs any code inside it; imitate loads a zip only when you name "
    "it (--expert/--teacher), never because a checkpoint or dataset mentions it. Name only "
    "zips you trust, or add --safe to rebuild the actor from the zip's tensors without "
    "unpickling (shipped zoo experts always load so). imitate's own .pt/.npz files hold no "
    "pickled objects."
)

EVAL_SEED = 10_000
"""First reset seed of every evaluation (episode i: EVAL_SEED + i), kept apart from training."""

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


def _progress() -> bool:
    return sys.stderr.isatty()


def _require_positive(**values: int) -> None:
    for name, value in values.items():
        validate.count(name, value)


SHIPPED_EXPERT_NAMES = ("heuristic", "zoo")
"""Expert names a checkpoint may record for eval's calibration default: no file paths."""


def _warn(warnings: list[str], message: str) -> None:
    """One warning line on stderr now; the list goes into the result (``--json``)."""
    print(f"imitate: warning: {message}", file=sys.stderr)
    warnings.append(message)


def _with_warnings(warnings: list[str], result: dict[str, Any]) -> dict[str, Any]:
    return {**result, "warnings": warnings} if warnings else result


def _refuse_foreign_file(path: Path) -> None:
    """An existing ``--out`` file is replaced only when it is an imitate dataset."""
    import zipfile

    if path.is_file():
        try:
            with zipfile.ZipFile(path) as archive:
                ours = "meta_json.npy" in archive.namelist()
        except (zipfile.BadZipFile, OSError):
            ours = False
        if not ours:
            raise ImitateError(
                f"{path}: exists and is not an imitate dataset; imitate does not overwrite it"
            )


def _expert_inputs(spec: str) -> tuple[Path | None, ...]:
    """The expert's file, if it is one (an artefact folder must not swallow its input)."""
    return (Path(spec),) if spec.endswith((".zip", ".pt")) else ()


def resolve_expert(
    spec: str, env_id: EnvLike, safe: bool = False, vecnormalize: Path | None = None
) -> Policy:
    """``--expert`` -> a Policy for the env (one registry: :mod:`agents.registry`).

    Only names the user typed come here (never a path read from a checkpoint). An SB3 zip
    is loaded by SB3 (its pickles run: trusted input only) unless ``safe``."""
    from agents.registry import resolve_expert as resolve

    return resolve(spec, env_id, vecnormalize, safe=safe)


def command_env(env: str, env_kwargs: tuple[str, ...] = ()) -> EnvLike:
    """``--env`` and ``--env-kwargs`` -> what the library takes (an id, or a spec with kwargs)."""
    from imitate.environments import env_spec, parse_env_kwargs

    kwargs = parse_env_kwargs(env_kwargs)
    return env_spec(env, kwargs) if kwargs else env


def check_policy_env(policy: Any, env_id: EnvLike, name: str) -> None:
    """Raise ``EnvError`` when the policy's spaces (``observation_space``, ``action_space``)
    differ from the env's."""
    from imitate.collect import env_spaces
    from imitate.environments import env_name

    obs_space, action_space = env_spaces(env_id)
    if policy.observation_space.shape != obs_space.shape or policy.action_space != action_space:
        raise EnvError(
            f"{name} was trained for observations {policy.observation_space.shape} and actions "
            f"{policy.action_space}, but {env_name(env_id)} has {obs_space.shape} and "
            f"{action_space}"
        )


def _record_run(out_dir: Path, command: Any, stage: str, result: dict[str, Any]) -> None:
    """config.json and a one-record metrics.jsonl (the result's numbers) for commands
    that do not train (collect, eval, drift, ood, export, expert train)."""
    write_json(out_dir / "config.json", config_to_json(command))
    with RunLogger(out_dir) as log:
        log.log(stage, {k: v for k, v in result.items() if isinstance(v, (int, float, str))}, 0)


def run_collect(args: CollectCommand) -> dict[str, Any]:
    from imitate.collect import env_spaces

    env = command_env(args.env, args.env_kwargs)
    _require_positive(episodes=args.episodes, num_envs=args.num_envs)
    backend = args.rollouts.to_backend()
    seeding = backend.seeding(args.seeding)  # stream on Ray: refused before Ray starts
    env_spaces(env)  # an unknown env id is reported before anything else
    if args.out is not None:
        check_out(args.out, "file")
        _refuse_foreign_file(args.out)
    warnings: list[str] = []
    from imitate.data import collection_chunk_episodes, collection_estimate, dataset_warnings

    estimate = collection_estimate(args.env, args.episodes)
    if estimate is not None:
        _warn(warnings, estimate)
    chunk = collection_chunk_episodes(args.env, args.episodes)
    if chunk is not None:
        if args.seeding == "stream":
            raise ImitateError(
                "a collection this large is streamed to disk in chunks of episodes, which "
                "needs --seeding per-episode (or auto)"
            )
        return _collect_in_chunks(args, env, backend, chunk, warnings)
    expert = resolve_expert(args.expert, env, safe=args.safe, vecnormalize=args.vecnormalize)
    start = time.perf_counter()
    with backend.open() as rollouts:
        dataset = rollouts.collect(
            expert,
            env,
            args.episodes,
            args.seed,
            args.num_envs,
            seeding=seeding,
            source=args.expert,
            progress=_progress(),
        )
    elapsed = time.perf_counter() - start
    for message in dataset_warnings(dataset):
        _warn(warnings, message)
    target = args.out or default_run_dir(args.env, "collect", args.seed) / "demos.npz"
    returns = dataset.episode_returns
    result = {
        "data": str(target),
        "env": args.env,
        "expert": args.expert,
        "episodes": dataset.n_episodes,
        "transitions": len(dataset),
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "wall_time_s": elapsed,
    }
    if args.out is None:  # our run folder (an --out file's folder is the user's)
        with artefact_dir(target.parent, "collect") as artefacts:
            dataset.save(artefacts.work / "demos.npz")
            _record_run(artefacts.work, args, "collect", result)
    else:
        with out_lock(target):
            dataset.save(target)
    return _with_warnings(warnings, result)


def _collect_in_chunks(
    args: CollectCommand, env: Any, backend: Backend, chunk: int, warnings: list[str]
) -> dict[str, Any]:
    """``collect`` of more episodes than memory should hold: chunks of ``chunk`` episodes
    with per-episode seeding (episode i still resets with seed + i, so the file equals one
    per-episode collection), each written out before the next is collected."""
    import numpy as np

    from imitate.data import dataset_warnings, save_chunks

    expert = resolve_expert(args.expert, env, safe=args.safe, vecnormalize=args.vecnormalize)
    # running sums, not a list of returns: memory stays one chunk's whatever the count
    episodes, transitions, total, total_sq = 0, 0, 0.0, 0.0

    def chunks(rollouts: Rollouts) -> Iterator[Dataset]:
        nonlocal episodes, transitions, total, total_sq
        for first in range(0, args.episodes, chunk):
            part = rollouts.collect(
                expert,
                env,
                min(chunk, args.episodes - first),
                args.seed + first,
                args.num_envs,
                seeding="per-episode",
                source=args.expert,
                progress=_progress(),
            )
            for message in dataset_warnings(part):
                if message not in warnings:
                    _warn(warnings, message)
            part_returns = part.episode_returns.astype(np.float64)
            episodes += len(part_returns)
            transitions += len(part)
            total += float(part_returns.sum())
            total_sq += float((part_returns**2).sum())
            yield part

    start = time.perf_counter()
    target = args.out or default_run_dir(args.env, "collect", args.seed) / "demos.npz"

    def result() -> dict[str, Any]:
        mean = total / episodes
        return {
            "data": str(target),
            "env": args.env,
            "expert": args.expert,
            "episodes": episodes,
            "transitions": transitions,
            "mean_return": mean,
            "std_return": float(np.sqrt(max(total_sq / episodes - mean**2, 0.0))),
            "wall_time_s": time.perf_counter() - start,
            "chunk_episodes": chunk,
        }

    if args.out is None:
        with artefact_dir(target.parent, "collect") as artefacts, backend.open() as rollouts:
            save_chunks(artefacts.work / "demos.npz", chunks(rollouts))
            summary = result()
            _record_run(artefacts.work, args, "collect", summary)
    else:
        with out_lock(target), backend.open() as rollouts:
            save_chunks(target, chunks(rollouts))
        summary = result()
    return _with_warnings(warnings, summary)


def load_dataset_for(path: Path, env_id: EnvLike | None) -> Dataset:
    """Load a dataset; ``EnvError`` if it was collected on another env than ``env_id``."""
    from imitate.data import load_dataset
    from imitate.environments import env_name

    dataset = load_dataset(path)
    if env_id is not None and dataset.meta.env_id != env_name(env_id):
        raise EnvError(f"{path} was collected on {dataset.meta.env_id}, not on {env_name(env_id)}")
    return dataset


def _train_and_save(
    dataset: Dataset, config: BCConfig, out_dir: Path, command: Any, log: RunLogger | None = None
) -> tuple[MLPPolicy, dict[str, Any]]:
    """Train BC and write policy.pt, config.json and metrics.jsonl into ``out_dir``."""
    from imitate.bc import train_bc
    from imitate.policy import save_policy

    policy, history = train_bc(dataset, config, progress=_progress())
    log = log or RunLogger(out_dir)
    env_config = {
        **dataset.meta.provenance(),  # env (kwargs), expert (eval's calibration labels), seed
        "bc": config_to_json(config),
    }
    save_policy(policy, out_dir / "policy.pt", env_config)
    write_json(out_dir / "config.json", config_to_json(command))
    log.log_records("bc", history.records)
    log.close()
    return policy, {"policy": str(out_dir / "policy.pt"), **history.summary()}


def run_bc(args: BCCommand) -> dict[str, Any]:
    from imitate.collect import evaluate
    from imitate.data import dataset_warnings

    given = None if args.env is None else command_env(args.env, args.env_kwargs)
    dataset = load_dataset_for(args.data, given)
    warnings: list[str] = []
    for message in dataset_warnings(dataset):
        _warn(warnings, f"{args.data}: {message}")
    env_id = dataset.meta.env_id
    env = given if given is not None else dataset.meta.env()  # the recorded kwargs too
    target = args.out or default_run_dir(env_id, "bc", args.config.seed)
    with artefact_dir(target, "bc", inputs=(args.data,)) as artefacts:
        out_dir = artefacts.work
        log = RunLogger(out_dir, args.logger, config_to_json(args))
        policy, result = _train_and_save(dataset, args.config, out_dir, args, log)
        if args.eval_episodes > 0:
            result["eval"] = evaluate(policy, env, args.eval_episodes, EVAL_SEED).to_json()
            write_json(out_dir / "eval.json", result["eval"])
    return _with_warnings(warnings, artefacts.final(result))


def run_eval(args: EvalCommand) -> dict[str, Any]:
    import numpy as np

    from imitate.collect import EvalResult
    from imitate.drift import action_flip_rate
    from imitate.environments import env_name, spec_of_record
    from imitate.runtime import numpy_policy, read_checkpoint
    from imitate.spaces import CategoricalHead

    _require_positive(episodes=args.episodes)
    if not 0.0 <= args.js_gate < np.log(2.0):
        raise ImitateError(f"--js-gate must be in [0, ln 2 = 0.693), got {args.js_gate}")
    if args.policy is None and args.expert is None:
        raise ImitateError("give --policy, --expert, or both (calibration against the expert)")
    if args.out is not None:
        check_out(args.out, "dir")
    backend = args.rollouts.to_backend()
    if args.policy is not None:
        checkpoint = read_checkpoint(args.policy)  # numpy inference: torch is not loaded
        policy = numpy_policy(checkpoint, str(args.policy))
        recorded = checkpoint["config"]
        if args.env is not None:
            env_id: EnvLike = command_env(args.env, args.env_kwargs)
        elif recorded.get("env_id") is not None:
            env_id = spec_of_record(recorded)  # with the kwargs it was trained with
        else:
            raise ImitateError(f"{args.policy} does not record its env: pass --env")
        check_policy_env(policy, env_id, str(args.policy))
        if args.js_gate and not isinstance(policy.head, CategoricalHead):
            raise ImitateError("--js-gate needs a policy with a Discrete action space")
        if not isinstance(policy.head, CategoricalHead):
            with backend.open() as rollouts:
                result = rollouts.evaluate(
                    policy, env_id, args.episodes, args.seed, progress=_progress()
                )
            out: dict[str, Any] = {"env": env_name(env_id), **result.to_json()}
        else:  # record the actions too, for the flip rate
            actor: Policy = policy
            if args.js_gate:
                from imitate.policy import JSGatedPolicy

                actor = JSGatedPolicy.wrap(policy, args.js_gate)
            with backend.open() as rollouts:
                episodes = rollouts.collect(
                    actor, env_id, args.episodes, args.seed, seeding="per-episode",
                    progress=_progress(), desc="eval",
                )  # fmt: skip
            result = EvalResult(episodes.episode_returns, episodes.episode_lengths, args.seed)
            out = {
                "env": env_name(env_id),
                **result.to_json(),
                "js_gate": args.js_gate,
                "action_flip_rate": action_flip_rate(episodes.actions, episodes.episode_starts),
            }
        name = env_name(env_id)
        out_dir = None if args.out is None else make_run_dir(name, "eval", args.seed, args.out)
        if isinstance(policy.head, CategoricalHead):
            labels = calibration_expert(args, recorded)
            if isinstance(labels, str):
                out["calibration"] = {"skipped": labels}
            else:
                expert_name, why = labels
                expert = resolve_expert(
                    expert_name, env_id, safe=args.safe, vecnormalize=args.vecnormalize
                )
                figure = None if out_dir is None else out_dir / "reliability.png"
                out["calibration"] = {
                    "expert": expert_name,
                    "expert_from": why,
                    **calibration_report(policy, expert, env_id, args.seed, figure),
                }
        if out_dir is not None:
            write_json(out_dir / "eval.json", out)
            _record_run(out_dir, args, "eval", out)
        return out
    if args.env is None:
        raise ImitateError("--expert needs --env")
    if args.js_gate:
        raise ImitateError("--js-gate gates a --policy (a Discrete imitate policy)")
    env = command_env(args.env, args.env_kwargs)
    actor = resolve_expert(str(args.expert), env, safe=args.safe, vecnormalize=args.vecnormalize)
    with backend.open() as rollouts:
        result = rollouts.evaluate(actor, env, args.episodes, args.seed, progress=_progress())
    return {"env": args.env, **result.to_json()}


def calibration_expert(args: EvalCommand, recorded: dict[str, Any]) -> tuple[str, str] | str:
    """The calibration labels' expert and where it came from: ``--expert``, else the expert
    recorded with the policy if it is a shipped name (a checkpoint never makes imitate load
    a file or import code: a recorded path could be anybody's); else why there is none."""
    if args.expert is not None:
        return args.expert, "--expert"
    info = recorded.get("expert_info") or {}
    spec = info.get("spec") or recorded.get("expert")
    if spec in SHIPPED_EXPERT_NAMES:
        return str(spec), "recorded with the policy"
    if not spec or spec in ("policy", "dagger", "teacher", "unknown"):
        return "no expert recorded with the policy: pass --expert to calibrate"
    return (
        f"the recorded expert {spec!r} is a file or code, which a checkpoint never makes "
        f"imitate load: pass --expert {spec} to calibrate against it"
    )


def default_expert(env_id: EnvLike) -> str | None:
    """'zoo' when a zoo expert is shipped for the env, else 'heuristic' when one exists."""
    from agents.registry import default_expert as default

    return default(env_id)


def calibration_report(
    policy: NumpyMLPPolicy | MLPPolicy,
    expert: Policy,
    env_id: EnvLike,
    seed: int,
    figure: Path | None = None,
) -> dict[str, Any]:
    """ECE, Brier and NLL (bits per action) of the policy on its own states, expert-labelled;
    with ``figure``, also the reliability diagram there."""
    import numpy as np

    from imitate.calibration import brier_score, expected_calibration_error, softmax_and_nll
    from imitate.collect import collect
    from imitate.spaces import CategoricalHead

    if not isinstance(policy.head, CategoricalHead):
        raise ImitateError("calibration needs a policy with a Discrete action space")
    states = collect(policy, env_id, 10, seed, max_steps=5000).obs
    labels = np.asarray(expert.act(states)) - policy.head.start
    probs, nll = softmax_and_nll(policy.logits(states), labels)
    extra = {}
    if figure is not None:
        from imitate.plots import plot_reliability

        extra["reliability_figure"] = str(plot_reliability(probs, labels, figure))
    return {
        **extra,
        "states": len(states),
        "ece": expected_calibration_error(probs, labels),
        "ece_adaptive": expected_calibration_error(probs, labels, adaptive=True),
        "brier": brier_score(probs, labels),
        "nll_bits_per_action": nll / np.log(2.0),
        "accuracy": float((probs.argmax(1) == labels).mean()),
    }


def run_ood(args: OodCommand) -> dict[str, Any]:
    import numpy as np
    import torch

    from imitate.calibration import auroc, energy_score, fpr_at_95_tpr, max_softmax_probability
    from imitate.collect import collect, env_spaces
    from imitate.drift import off_support
    from imitate.plots import plot_roc, plot_score_histogram
    from imitate.policy import load_policy
    from imitate.spaces import CategoricalHead

    env = command_env(args.env, args.env_kwargs)
    _require_positive(episodes=args.episodes)
    if not 0.0 < args.quantile < 1.0:
        raise ImitateError(f"--quantile must be in (0, 1), got {args.quantile}")
    env_spaces(env)
    if args.out is not None:
        check_out(args.out, "dir")
    policy = load_policy(args.policy)
    check_policy_env(policy, env, str(args.policy))
    if not isinstance(policy.head, CategoricalHead):
        raise ImitateError("OOD scores need a policy with a Discrete action space")
    expert = resolve_expert(args.expert, env, safe=args.safe, vecnormalize=args.vecnormalize)
    if args.data is not None:
        reference = load_dataset_for(args.data, env).obs
    else:
        reference = collect(
            expert, env, args.episodes, args.seed + args.episodes,
            progress=_progress(), desc="ood: reference",
        ).obs  # fmt: skip
    expert_states = collect(
        expert, env, args.episodes, args.seed, progress=_progress(), desc="ood: expert"
    ).obs
    clone_states = collect(
        policy, env, args.episodes, args.seed, progress=_progress(), desc="ood: clone"
    ).obs
    support = off_support(reference, expert_states, clone_states, args.quantile)
    drifted = clone_states[support.mask]
    source = "clone drift states"
    if len(drifted) < 50:  # a clone that hardly drifts: use perturbed expert states instead
        rng = np.random.default_rng(args.seed)
        drifted = expert_states + rng.normal(0, 3.0, expert_states.shape) * expert_states.std(0)
        source = "expert states perturbed by 3 std"
    out_dir = make_run_dir(args.env, "ood", args.seed, args.out)
    scores = {}
    for name, states in (("in", expert_states), ("out", drifted)):
        logits = torch.as_tensor(policy.logits(states.astype(np.float32)))
        scores[name] = {
            "energy": energy_score(logits).numpy(),
            "neg_msp": (-max_softmax_probability(logits)).numpy(),
        }
    result: dict[str, Any] = {
        "in_states": len(expert_states),
        "out_states": len(drifted),
        "out_source": source,
        "clone_states": len(clone_states),
        "off_support_states": int(support.mask.sum()),
        "support_threshold": support.threshold,
    }
    for key in ("energy", "neg_msp"):
        result[key] = {
            "auroc": auroc(scores["in"][key], scores["out"][key]),
            "fpr_at_95_tpr": fpr_at_95_tpr(scores["in"][key], scores["out"][key]),
        }
    result["figures"] = {
        "histogram": str(
            plot_score_histogram(
                {"expert states": scores["in"]["energy"], source: scores["out"]["energy"]},
                out_dir / "energy_histogram.png",
                "energy score -logsumexp(logits)",
            )
        ),
        "roc": str(
            plot_roc(
                {k: (scores["in"][k], scores["out"][k]) for k in ("energy", "neg_msp")},
                out_dir / "roc.png",
            )
        ),
    }
    write_json(out_dir / "ood.json", result)
    _record_run(out_dir, args, "ood", result)
    return result


def run_main_job(args: RunCommand) -> dict[str, Any]:
    from imitate.collect import env_spaces
    from imitate.pipeline import run_pipeline
    from imitate.runs import keep_state, resumable

    env = command_env(args.env, args.env_kwargs)
    config = args.config
    _require_positive(episodes=config.episodes, eval_episodes=config.eval_episodes)
    env_spaces(env)
    expert_name = args.expert
    if expert_name == "auto":
        expert_name = default_expert(env) or "heuristic"
    expert = resolve_expert(expert_name, env, safe=args.safe, vecnormalize=args.vecnormalize)
    config = _scaled_run_config(env, config)
    recorded = config_to_json(replace(args, config=config))
    target = _resume_target(args.out, args.resume) or default_run_dir(args.env, "run", config.seed)
    settings = _resumable(replace(args, config=config))
    with (
        artefact_dir(target, "run", inputs=_expert_inputs(expert_name)) as artefacts,
        resumable(target, "run", settings, args.resume is not None) as (state, resuming),
    ):
        out_dir = artefacts.work
        write_json(out_dir / "config.json", recorded)
        log = RunLogger(out_dir, args.logger, recorded)
        results = run_pipeline(
            env,
            expert,
            expert_name,
            config,
            out_dir,
            progress=_progress(),
            metrics=log,
            state_dir=state,
            resume=resuming,
        )
        keep_state(state, out_dir)
        result = {
            "run": str(out_dir),
            "report": str(out_dir / "report.md"),
            "report_html": str(out_dir / "report.html"),
            **results,
        }
    return artefacts.final(result)


def _scaled_run_config(env_id: EnvLike, config: RunConfig) -> RunConfig:
    """MuJoCo tasks left at every default get :func:`long_episode_config` (1000-step
    episodes would make the classic-control defaults take an hour here)."""
    from imitate.configs import long_episode_config
    from imitate.environments import env_spec

    entry_point = str(env_spec(env_id).entry_point)
    if config == RunConfig() and entry_point.startswith("gymnasium.envs.mujoco"):
        return long_episode_config()
    return config


def _one_line(text: str) -> str:
    """Condense tyro's boxed error message into one line: the first informative row."""
    rows = [re.sub(r"[│╭╮╰╯┃]", " ", line).strip() for line in text.splitlines()]
    rows = [row for row in rows if row and not re.fullmatch(r"[-─━ ]+", row)]
    titles = ("Value error", "Parsing error", "Required options", "Unrecognized options")
    rows = [row for row in rows if row not in titles and not row.startswith("usage:")]
    if not rows:
        return "invalid arguments (see imitate --help)"
    if rows[0].startswith("Error parsing "):  # a value refused by imitate.validate, wrapped
        message = []
        for row in rows:
            if row.startswith("For full helptext"):
                break
            message.append(row)
        return re.sub(r"^Error parsing [^:]*: ", "", " ".join(message))
    if rows[0].endswith(":") and len(rows) > 1:
        return f"{rows[0]} {rows[1]}"
    return rows[0]


def _boxed_rows(text: str) -> list[str]:
    """tyro's boxed message as rows of text, box drawing removed; '' marks a separator."""
    rows = []
    for line in text.splitlines():
        row = re.sub(r"[│╭╮╰╯┃]", " ", line).strip()
        if re.fullmatch(r"[-─━ ]+", row):
            row = ""
        elif not row:
            continue
        rows.append(row)
    return rows


def _did_you_mean(word: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, else ''."""
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _subcommand_path(argv: list[str]) -> str:
    """The subcommands the user typed (``expert eval``), i.e. the leading non-flag words."""
    words = []
    for arg in argv:
        if arg.startswith("-"):
            break
        words.append(arg)
    return " ".join(words)


def _error_message(text: str, argv: list[str]) -> str:
    """One line from tyro's error box: an invalid choice names the flag and the choices;
    an unknown command or flag gets a did-you-mean from the command's own vocabulary."""
    commands = _command_names()
    if argv and not argv[0].startswith("-") and argv[0] not in commands:
        # (tyro words this differently when a flag follows the word, e.g. `colect --json`)
        hint = _did_you_mean(argv[0], commands)
        return f"unknown command {argv[0]!r}{hint}; commands: {', '.join(commands)}"
    rows = _boxed_rows(text)
    titles = {"Value error", "Parsing error", "Required options", "Unrecognized options"}
    body = [r for r in rows if r not in titles and not r.startswith("usage:")]
    if "Invalid choice" in rows and "" in rows:
        paragraph = []  # tyro wraps its sentence over several rows of the box
        for row in rows[rows.index("") + 1 :]:
            if row == "":
                break
            paragraph.append(row)
        return " ".join(paragraph)
    unknown = next((r for r in body if r.startswith("Unrecognized options:")), None)
    if unknown is not None:
        words = [w.strip() for w in unknown.split(":", 1)[1].split(",")]
        flags = [w for w in words if w.startswith("-")]
        available = next((r for r in body if r.startswith("Available subcommands:")), None)
        if available is not None and not words[0].startswith("-"):  # an unknown (sub)command
            at = rows.index(available)
            listed = " ".join(r for r in rows[at : at + 3] if r and not r.startswith("For full"))
            commands = [c.strip() for c in listed.split(":", 1)[1].split(",")]
            hint = _did_you_mean(words[0], commands)
            return f"unknown command {words[0]!r}{hint}; commands: {', '.join(commands)}"
        if flags:
            where = _subcommand_path(argv)
            # tyro lists near matches across all commands: keep this command's own
            candidates, flag = [], None
            for row in body:
                if row.startswith("--"):
                    flag = row.split()[0]
                elif flag and row == f"in imitate {where} --help":
                    candidates.append(flag)
            hint = _did_you_mean(flags[0], candidates)
            return f"unrecognized option {flags[0]}{hint} (see imitate {where} --help)".replace(
                "imitate  --help", "imitate --help"
            )
    return _one_line(text)


def _command_names() -> list[str]:
    """The subcommand names of :data:`Command`, in their order."""
    names = []
    for member in get_args(Command):
        for marker in get_args(member)[1:]:
            name = getattr(marker, "name", None)
            if isinstance(name, str):
                names.append(name)
    return names


def _report_error(message: str, as_json: bool) -> None:
    """The error line on stderr and, under ``--json``, ``{"error": message}`` on stdout."""
    if as_json:
        print(json.dumps({"error": message}))
    print(f"imitate: error: {message}", file=sys.stderr)


def parse(argv: list[str]) -> Any:
    """Parse ``argv`` into a command dataclass; bad flags exit 2 with one line on stderr."""
    from imitate.tyro_hooks import install

    install()  # plain help text; no typeguard import for default checks
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            return tyro.cli(
                Command,
                args=argv,
                prog="imitate",
                description=DESCRIPTION,
                config=(tyro.conf.OmitSubcommandPrefixes,),
            )
    except SystemExit as exc:
        if exc.code in (0, None):
            sys.stdout.write(captured.getvalue())
            raise
        _report_error(_error_message(captured.getvalue(), argv), "--json" in argv)
        raise SystemExit(2) from None
    except ValueError as exc:
        _report_error(str(exc), "--json" in argv)
        raise SystemExit(2) from None


def run_dagger(args: DaggerCommand) -> dict[str, Any]:
    from imitate.collect import env_spaces
    from imitate.runs import keep_state, resumable

    env = command_env(args.env, args.env_kwargs)
    env_spaces(env)
    expert = resolve_expert(args.expert, env, safe=args.safe, vecnormalize=args.vecnormalize)
    config = args.config
    backend = args.rollouts.to_backend()
    target = _resume_target(args.out, args.resume) or default_run_dir(
        args.env, "dagger", config.seed
    )
    resume = args.resume is not None
    with (
        artefact_dir(target, "dagger", inputs=_expert_inputs(args.expert)) as artefacts,
        resumable(target, "dagger", _resumable(args), resume) as (state, resuming),
    ):
        with backend.open() as rollouts:
            result = _dagger_into(args, expert, rollouts, artefacts.work, state, resuming)
        keep_state(state, artefacts.work)
    return artefacts.final(result)


def _resume_target(out: Path | None, resume: Path | None) -> Path | None:
    """The run folder: ``--resume DIR`` (``--out``, if also given, must name it too)."""
    if resume is None:
        return out
    if out is not None and out.resolve() != resume.resolve():
        raise ImitateError(f"--resume {resume} continues that folder; drop --out {out}")
    return resume


def _resumable(args: Any) -> dict[str, Any]:
    """The settings a ``--resume`` must repeat: the command's, without where and how it
    reports (``--out``, ``--resume``, ``--json``, ``--logger``)."""
    recorded = config_to_json(args)
    for key in ("out", "resume", "json", "logger"):
        recorded.pop(key, None)
    return dict(recorded)


def _dagger_into(
    args: DaggerCommand,
    expert: Policy,
    rollouts: Rollouts,
    out_dir: Path,
    state: Path,
    resuming: bool,
) -> dict[str, Any]:
    from imitate.collect import evaluate
    from imitate.dagger import bc_label_curve, dagger
    from imitate.plots import plot_return_vs_labels
    from imitate.policy import save_policy

    env = command_env(args.env, args.env_kwargs)
    config = args.config
    log = RunLogger(out_dir, args.logger, config_to_json(args))
    policy, history = dagger(
        env,
        expert,
        config,
        progress=_progress(),
        rollouts=rollouts,
        run_dir=state / "rounds",
        resume=resuming and (state / "rounds" / "dagger.json").is_file(),
    )
    save_policy(
        policy,
        out_dir / "policy.pt",
        {"dagger": config_to_json(config)},  # env (kwargs) and expert: recorded by dagger()
    )
    write_json(out_dir / "config.json", config_to_json(args))
    log.log_records("dagger", history.records)
    result: dict[str, Any] = {
        "policy": str(out_dir / "policy.pt"),
        "rounds": history.records,
        "expert_labels": history.expert_labels,
    }
    if config.eval_episodes > 0:
        labels = [r["expert_labels"] for r in history.records]
        curves: list[Curve] = [("DAgger", labels, [r["learner_return"] for r in history.records])]
        if args.compare_bc:
            bc_curve = bc_label_curve(
                env,
                expert,
                [int(n) for n in labels],
                config.bc,
                config.seed,
                config.eval_episodes,
            )
            result["bc_same_labels"] = bc_curve
            for point in bc_curve:
                log.log("bc_same_labels", point, step=int(point["expert_labels"]))
            curves.append(("BC, same labels", labels, [p["learner_return"] for p in bc_curve]))
        expert_return = evaluate(expert, env, config.eval_episodes, EVAL_SEED).mean_return
        result["expert_return"] = expert_return
        result["plot"] = str(
            plot_return_vs_labels(
                curves, out_dir / "dagger.png", expert_return, title=f"{args.env}: DAgger vs BC"
            )
        )
    log.close()
    return result


def run_drift(args: DriftCommand) -> dict[str, Any]:
    from imitate.collect import env_spaces
    from imitate.policy import load_policy

    env = command_env(args.env, args.env_kwargs)
    _require_positive(episodes=args.episodes)
    if not args.policy:
        raise ImitateError("give at least one --policy to compare with the expert")
    if not args.horizons or min(args.horizons) < 1:
        raise ImitateError("--horizons must be positive integers")
    env_spaces(env)
    expert = resolve_expert(args.expert, env, safe=args.safe, vecnormalize=args.vecnormalize)
    clones: dict[str, Policy] = {}
    for path in args.policy:
        clone = load_policy(path)
        check_policy_env(clone, env, str(path))
        clones[path.parent.name + "/" + path.name if path.parent.name else path.name] = clone
    target = args.out or default_run_dir(args.env, "drift", args.seed)
    inputs = (*args.policy, *_expert_inputs(args.expert))
    with artefact_dir(target, "drift", inputs=inputs) as artefacts:
        result = _drift_into(args, expert, clones, artefacts.work)
    return artefacts.final(result)


def _drift_into(
    args: DriftCommand, expert: Policy, clones: dict[str, Policy], out_dir: Path
) -> dict[str, Any]:
    from imitate.drift import analyse_drift, drift_figures, drift_markdown, drift_results

    env = command_env(args.env, args.env_kwargs)
    analysis = analyse_drift(
        env,
        expert,
        clones,
        args.episodes,
        args.seed,
        args.threshold,
        args.horizons,
        args.cost,
        progress=_progress(),
    )
    results = drift_results(analysis, drift_figures(analysis, out_dir))
    if args.video:
        from imitate.report import write_html_report
        from imitate.video import showcase_videos

        videos = showcase_videos(analysis, expert, clones, out_dir, progress=_progress())
        results["videos"] = [v.to_json() for v in videos]
        html_path = write_html_report(
            out_dir / "report.html", f"{args.env}: drift report", analysis, (), videos
        )
        results["report_html"] = str(html_path)
    write_json(out_dir / "drift.json", results)
    _record_run(out_dir, args, "drift", results)
    write_text(out_dir / "report.md", f"# {args.env}: drift report\n\n" + drift_markdown(results))
    return {"report": str(out_dir / "report.md"), **results}


def run_distill(args: DistillCommand) -> dict[str, Any]:
    from imitate.collect import env_spaces
    from imitate.configs import DistillConfig, PolicyConfig

    env = command_env(args.env, args.env_kwargs)
    _require_positive(episodes=args.episodes)
    if not args.hidden or min(args.hidden) < 1:
        raise ImitateError("--hidden must be positive layer widths")
    env_spaces(env)
    teacher = resolve_expert(args.teacher, env, safe=args.safe, vecnormalize=args.vecnormalize)
    config = DistillConfig(
        student=PolicyConfig(hidden=args.hidden, activation=args.activation),
        temperature=args.temperature,
        alpha=args.alpha,
        mode=args.mode,
        seed=args.seed,
    )
    target = args.out or default_run_dir(args.env, "distill", args.seed)
    with artefact_dir(target, "distill", inputs=_expert_inputs(args.teacher)) as artefacts:
        result = _distill_into(args, teacher, config, artefacts.work)
    return artefacts.final(result)


def _distill_into(args: DistillCommand, teacher: Any, config: Any, out_dir: Path) -> dict[str, Any]:
    from imitate.collect import collect
    from imitate.distill import distill, distillation_report
    from imitate.environments import env_record
    from imitate.policy import save_policy

    env = command_env(args.env, args.env_kwargs)
    log = RunLogger(out_dir, args.logger, config_to_json(args))
    student, history = distill(teacher, env, config, progress=_progress())
    if args.qat:
        from imitate.export.int8 import quantization_aware_finetune

        own_states = collect(student, env, 10, args.seed + 1).obs
        student = quantization_aware_finetune(student, own_states, seed=args.seed)
        history["qat"] = {"states": len(own_states), "weights": "int8 grid, per channel"}
    log.log_records("distill", history.pop("training_records", None) or history.get("rounds", []))
    save_policy(
        student,
        out_dir / "policy.pt",
        {**env_record(env), "expert": args.teacher, "distill": config_to_json(config)},
    )
    write_json(out_dir / "config.json", config_to_json(args))
    report = distillation_report(teacher, student, env, args.episodes, EVAL_SEED)
    result = {"policy": str(out_dir / "policy.pt"), **report, **history}
    write_json(out_dir / "distill.json", result)
    log.log("eval", {k: v for k, v in report.items() if isinstance(v, (int, float))}, step=0)
    log.close()
    return result


def _int8_calibration(args: ExportCommand, policy: Any, env_id: str) -> Any:
    """States of the policy's own rollouts, for the int8 activation ranges."""
    from imitate.collect import collect, env_spaces

    _require_positive(episodes=args.episodes)
    env = args.env or (None if env_id == "policy" else env_id)
    if env is None:
        raise ImitateError("--int8 calibrates on the policy's own states: give --env")
    env_spaces(env)
    return collect(policy, env, args.episodes, args.seed).obs


def run_export(args: ExportCommand) -> dict[str, Any]:
    from imitate.export import export_policy
    from imitate.export.c import weight_bytes
    from imitate.policy import load_checkpoint, load_policy

    policy = load_policy(args.policy)
    if args.int8 and args.format != "c":
        raise ImitateError("--int8 applies to the C export only")
    if args.algo is not None and args.format != "sb3":
        raise ImitateError("--algo applies to --format sb3 only")
    if args.format == "c":
        from imitate.export.c import check_prefix

        check_prefix(args.prefix)
    elif args.prefix != "policy":
        raise ImitateError("--prefix applies to the C export only")
    env_id = load_checkpoint(args.policy)["config"].get("env_id", "policy")
    calibration = _int8_calibration(args, policy, env_id) if args.int8 else None
    target = args.out or default_run_dir(str(env_id), "export", 0)
    with artefact_dir(target, "export", inputs=(args.policy,)) as artefacts:
        out_dir = artefacts.work
        files = export_policy(
            policy,
            args.format,
            out_dir,
            args.int8,
            calibration,
            args.prefix,
            args.activation_bits,
            algo=args.algo,
        )
        result: dict[str, Any] = {
            "format": args.format,
            "files": [str(f) for f in files],
            "bytes": {f.name: f.stat().st_size for f in files},
            "parameters": policy.n_parameters(),
        }
        if args.format == "c":
            result["weight_bytes"] = weight_bytes(policy, args.int8, args.activation_bits)
        _record_run(out_dir, args, "export", result)
    return artefacts.final(result)


def run_expert(args: ExpertCommand) -> dict[str, Any]:
    from agents import zoo

    action = args.action
    if isinstance(action, ExpertListCommand):  # reads the manifest: no env, no rollouts
        manifest = zoo.read_manifest()
        return {
            "experts": [
                {k: entry[k] for k in ("env_id", "algo", "file", "mean_return", "std_return")}
                | {"required_return": zoo.ZOO[env_id].required_return}
                for env_id, entry in sorted(manifest.items())
            ]
        }
    from imitate.collect import env_spaces, evaluate

    if isinstance(action, ExpertTrainCommand):
        zoo.zoo_spec(action.env)
        if action.timesteps is not None:
            _require_positive(timesteps=action.timesteps)
        if action.out is not None:
            check_out(action.out, "file")
        if action.ship:
            out = zoo.expert_file(action.env)
        else:
            out = action.out or make_run_dir(action.env, "expert-train", action.seed) / "expert.zip"
        entry = zoo.train_expert(action.env, action.seed, out, action.timesteps, _progress())
        result = evaluate(zoo.teacher_from_entry(out, entry), action.env, 50, EVAL_SEED)
        where = "--ship" if action.ship else f"--out {out}"
        steps = f" --timesteps {action.timesteps}" if action.timesteps else ""
        entry.update(
            command=f"imitate expert train --env {action.env} --seed {action.seed}{steps} {where}",
            mean_return=result.mean_return,
            std_return=result.std_return,
            returns=result.to_json()["returns"],
            eval=f"50 episodes, reset seeds {EVAL_SEED} + i",
        )
        if action.ship:
            from agents.actors import cache_actor

            zoo.update_manifest(entry)
            entry["actor_cache"] = str(cache_actor(out, entry))  # numpy actor beside the zip
        else:
            write_json(out.with_suffix(".json"), entry)
            if action.out is None:
                _record_run(out.parent, action, "expert_train", entry)
        return entry
    _require_positive(episodes=action.episodes)
    env = command_env(action.env, action.env_kwargs)
    env_spaces(env)
    expert = resolve_expert(action.expert, env, safe=action.safe, vecnormalize=action.vecnormalize)
    result = evaluate(expert, env, action.episodes, action.seed, progress=_progress())
    return {"env": action.env, "expert": action.expert, **result.to_json()}


def run_sweep_command(args: SweepCommand) -> dict[str, Any]:
    from imitate.collect import env_spaces
    from imitate.sweep import (
        SweepConfig,
        parse_axis,
    )

    _require_positive(episodes=args.episodes, eval_episodes=args.eval_episodes)
    backend = args.rollouts.to_backend()
    env_spaces(args.env)
    axes = tuple(parse_axis(text) for text in (args.grid or ("episodes=1,2,5",)))
    config = SweepConfig(
        env_id=args.env,
        axes=axes,
        seeds=args.seeds,
        episodes=args.episodes,
        eval_episodes=args.eval_episodes,
        bc=args.config,
    )
    expert = resolve_expert(args.expert, args.env, safe=args.safe)
    target = args.out or default_run_dir(args.env, "sweep", args.seeds[0] if args.seeds else 0)
    inputs = _expert_inputs(args.expert)
    with artefact_dir(target, "sweep", inputs=inputs) as artefacts, backend.open() as rollouts:
        result = _sweep_into(args, expert, config, axes, rollouts, artefacts.work)
    return artefacts.final(result)


def _sweep_into(
    args: SweepCommand, expert: Policy, config: Any, axes: Any, rollouts: Rollouts, out_dir: Path
) -> dict[str, Any]:
    from imitate.sweep import plot_sweep, run_sweep, summarise, sweep_markdown

    start = time.perf_counter()
    rows = run_sweep(expert, config, rollouts, progress=_progress())
    curves = [row.pop("curve", []) for row in rows]
    summary = summarise(rows, axes)
    write_json(out_dir / "config.json", config_to_json(args))
    write_jsonl(out_dir / "trials.jsonl", rows)
    with RunLogger(out_dir, args.logger, config_to_json(args)) as log:
        for index, (row, curve) in enumerate(zip(rows, curves, strict=True)):
            log.log("sweep", {"trial": index, **row})
            # one stage per trial: its BC curve in metrics.jsonl and training_curves.png
            log.log_records(f"trial {index}", curve)
    write_text(out_dir / "sweep.md", sweep_markdown(summary, axes, args.env))
    plot_sweep(summary, axes, out_dir / "sweep.png", f"{args.env}: BC sweep")
    return {
        "table": str(out_dir / "sweep.md"),
        "plot": str(out_dir / "sweep.png"),
        "trials": len(rows),
        "wall_time_s": time.perf_counter() - start,
        "summary": summary,
    }


def run_data(args: DataCommand) -> dict[str, Any]:
    import os

    from imitate.data import load_dataset
    from imitate.minari_io import export_minari, import_minari

    action = args.action
    if action.root is not None:
        check_out(action.root, "dir")
        os.environ["MINARI_DATASETS_PATH"] = str(action.root)
    if isinstance(action, DataExportMinariCommand):
        dataset = load_dataset(action.data)
        path = export_minari(dataset, action.dataset_id, description=f"from {action.data}")
        return {
            "dataset_id": action.dataset_id,
            "path": path,
            "episodes": dataset.n_episodes,
            "transitions": len(dataset),
        }
    if action.out is not None:
        check_out(action.out, "file")
        _refuse_foreign_file(action.out)
    dataset = import_minari(action.dataset_id)
    out = action.out or make_run_dir(dataset.meta.env_id, "import-minari", 0) / "demos.npz"
    with out_lock(out):
        dataset.save(out)
    return {
        "data": str(out),
        "dataset_id": action.dataset_id,
        "env": dataset.meta.env_id,
        "episodes": dataset.n_episodes,
        "transitions": len(dataset),
    }


def run_compress(args: CompressCommand) -> dict[str, Any]:
    from imitate.compress import compress_actions, write_imz
    from imitate.data import load_dataset
    from imitate.policy import load_policy

    policy = load_policy(args.policy)
    dataset = load_dataset(args.data)
    obs_space, action_space = dataset.meta.spaces()
    if policy.observation_space.shape != obs_space.shape or policy.action_space != action_space:
        raise EnvError(
            f"{args.policy} acts on {policy.observation_space.shape} -> {policy.action_space}, "
            f"but {args.data} holds {obs_space.shape} -> {action_space}"
        )
    identity = {"env_id": dataset.meta.env_id, "source": dataset.meta.source}
    compressed = compress_actions(policy, dataset.obs, dataset.actions, args.resolution, identity)
    out = write_imz(args.out or args.data.with_suffix(".imz"), compressed)
    n, stats = len(dataset), compressed.stats
    return {
        "out": str(out),
        "actions": n,
        "file_bytes": out.stat().st_size,
        "header_bytes": len(compressed.header_bytes()),
        "payload_bits": compressed.payload_bits,
        "bits_per_action": compressed.payload_bits / n,
        "cross_entropy_bits_per_action": stats["cross_entropy_bits"] / n,
        "raw_action_bytes": int(dataset.actions.nbytes),
    }


def run_decompress(args: DecompressCommand) -> dict[str, Any]:
    from dataclasses import replace

    from imitate.compress import decompress_actions, read_imz
    from imitate.data import load_dataset
    from imitate.policy import load_policy

    policy = load_policy(args.policy)
    compressed = read_imz(args.imz)
    dataset = load_dataset(args.data)
    actions = decompress_actions(policy, dataset.obs, compressed)
    out = replace(dataset, actions=actions).save(args.out)
    return {"out": str(out), "actions": len(actions)}


HANDLERS: dict[type, Any] = {
    CollectCommand: run_collect,
    BCCommand: run_bc,
    EvalCommand: run_eval,
    RunCommand: run_main_job,
    ExpertCommand: run_expert,
    DaggerCommand: run_dagger,
    DriftCommand: run_drift,
    DistillCommand: run_distill,
    ExportCommand: run_export,
    OodCommand: run_ood,
    SweepCommand: run_sweep_command,
    DataCommand: run_data,
    CompressCommand: run_compress,
    DecompressCommand: run_decompress,
}


def _print_human(result: dict[str, Any], indent: str = "") -> None:
    for key, value in result.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_human(value, indent + "  ")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            print(f"{indent}{key}:")
            for row in value:
                cells = (
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                )
                print(f"{indent}  " + "  ".join(cells))
        elif isinstance(value, list):
            continue  # per-episode lists are in --json output
        elif isinstance(value, float):
            print(f"{indent}{key}: {value:.4g}")
        else:
            print(f"{indent}{key}: {value}")


def _prepare_runtime() -> None:
    """What every command needs once its arguments parse: the custom envs registered,
    gymnasium's warnings quiet, the thread policy (``IMITATE_THREADS``, default 1)."""
    import warnings as python_warnings  # ("warnings" names the commands' warning lists)

    import gymnasium as gym

    import envs  # noqa: F401  (registers the imitate/... envs)
    from imitate.threads import set_threads

    set_threads()
    gym.logger.min_level = 40  # keep library warnings out of the one-line error contract
    python_warnings.showwarning = _warning_line


def _warning_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Python warnings raised while a command runs (e.g. DAgger's PartialRoundWarning) as
    one line ``imitate: warning: ...``, like the command's own data warnings."""
    _stderr_line(f"imitate: warning: {message}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``imitate`` console script.

    Exit codes: 0, 2 (bad input or a file-system fault, one line), 130/143 (SIGINT/SIGTERM,
    one line ``imitate: interrupted``)."""
    from imitate.signals import signals_raise

    code: int | None = None
    with signals_raise():
        try:
            return _main(argv)
        except Interrupted as exc:
            code = 128 + exc.signum
        except KeyboardInterrupt:  # raised by code that caught our handler's signal itself
            code = 130
        except BaseException as exc:  # Ray's Cython wraps our Interrupted in a SystemError
            signum = _interrupt_behind(exc)
            if signum is None:
                raise
            code = 128 + signum
        finally:
            if code is not None:
                _stderr_line("imitate: interrupted")
            ray_used = "ray" in sys.modules
            _shutdown_ray()
            if code is not None and ray_used and argv is None:
                # The process is ending on a signal after Ray ran in it: skip the interpreter's
                # teardown, where Ray's native objects sometimes crash (SIGSEGV) afterwards.
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
    return code


def _interrupt_behind(exc: BaseException) -> int | None:
    """The signal of an ``Interrupted`` that caused ``exc`` (its cause/context chain)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, Interrupted):
            return current.signum
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _stderr_line(text: str) -> None:
    with contextlib.suppress(BrokenPipeError, ValueError, OSError):
        print(text, file=sys.stderr, flush=True)


def _shutdown_ray() -> None:
    """Stop the Ray this command started (or joined): no Ray process outlives the driver."""
    ray = sys.modules.get("ray")
    if ray is None:
        return
    try:
        if ray.is_initialized():
            ray.shutdown()
    except Exception:  # shutting down after a failure: nothing more to report
        pass


def _main(argv: list[str] | None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        command = parse(args)
    except ImitateError as exc:
        _report_error(str(exc), "--json" in args)
        return 2
    if not (isinstance(command, ExpertCommand) and isinstance(command.action, ExpertListCommand)):
        _prepare_runtime()  # (`expert list` only reads the manifest)
    try:
        result = HANDLERS[type(command)](command)
    except ImitateError as exc:
        if _interrupt_behind(exc) is not None:  # e.g. a backend error wrapping the signal
            raise
        _report_error(str(exc), bool(getattr(command, "json", False)))
        return 2
    except OSError as exc:  # disk full, read-only, permission, path kind: one line too
        _report_error(str(os_error(exc)), bool(getattr(command, "json", False)))
        return 2
    try:
        if command.json:
            print(json.dumps(result, default=float))
        elif isinstance(command, RunCommand):
            from imitate.pipeline import console_summary

            print(console_summary(Path(result["report"]).read_text()))
            print(f"\nreport: {result['report']}\nreport.html: {result['report_html']}")
        else:
            _print_human(result)
    except BrokenPipeError:  # e.g. piped into `head`: the reader has gone, nothing to report
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
