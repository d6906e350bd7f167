"""What each ``imitate`` command does, as library functions.

A job takes what the command line names, already resolved (experts and teachers as
Policies, envs as :data:`~imitate.environments.EnvLike`, datasets loaded), writes the
command's artefacts into a folder it is given and returns the command's JSON result.
The CLI (:mod:`imitate.cli`) only parses flags, resolves experts (:mod:`agents`), opens
the artefact folder (:func:`imitate.runs.artefact_dir`) and prints; so a script that
calls a job with the same config gets the same numbers and files as the command.

The main job (``imitate run``) lives in :mod:`imitate.pipeline`, OOD scoring in
:mod:`imitate.ood`, evaluation with calibration in :mod:`imitate.evaluation`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imitate.constants import EVAL_SEED, INT8_GATE_EPISODES, INT8_MIN_PARITY, OWN_STATE_EPISODES
from imitate.errors import EnvError, ImitateError
from imitate.fileio import write_json, write_jsonl, write_text
from imitate.runs import config_to_json
from imitate.tracking import RunLogger

if TYPE_CHECKING:
    from imitate.backends import Rollouts
    from imitate.configs import BCConfig, DAggerConfig, DistillConfig, Seeding
    from imitate.data import Dataset
    from imitate.encoded import EncodedPolicy
    from imitate.environments import EnvLike
    from imitate.plots import Curve
    from imitate.policy import MLPPolicy
    from imitate.runtime import Policy, SoftPolicy
    from imitate.sweep import SweepConfig

Warn = Callable[[str], None]
"""Where a job sends a one-line warning (the CLI prints it and lists it in the result)."""


def _ignore(message: str) -> None:
    del message


def check_policy_env(policy: Any, env_id: EnvLike, name: str) -> None:
    """Raise ``EnvError`` when the policy's spaces (``observation_space``, ``action_space``)
    differ from the env's."""
    from imitate.collect import env_spaces
    from imitate.environments import env_name

    obs_space, action_space = env_spaces(env_id)
    same_obs = policy.observation_space.shape == obs_space.shape
    if obs_space.shape is None:  # Dict, Tuple, Text ...: compare the spaces themselves
        from imitate.observations import check_supported, obs_space_to_json

        check_supported(obs_space)  # an unsupported env space: the one line collect gives
        same_obs = obs_space_to_json(policy.observation_space) == obs_space_to_json(obs_space)
    if not same_obs or policy.action_space != action_space:
        from imitate.spaces import space_text

        raise EnvError(  # every space printed in full, the same way on both sides
            f"{name} was trained for observations {space_text(policy.observation_space)} "
            f"and actions {space_text(policy.action_space)}, but {env_name(env_id)} has "
            f"{space_text(obs_space)} and {space_text(action_space)}"
        )


def env_as_trained(meta: Any, env: EnvLike | None) -> EnvLike | None:
    """``env`` when given, else the env a checkpoint was trained on, with its recorded
    kwargs and wrappers (``meta``: its :class:`~imitate.runtime.PolicyMeta`); None when it
    records none."""
    if env is None and meta.env_id is not None:
        return meta.env()
    return env


def say_other_env(
    meta: Any, env: EnvLike, name: str, use: str, warn: Callable[[str], None]
) -> None:
    """Tell ``warn`` when ``env`` is another than the one checkpoint ``name`` was trained on
    (``use``: what is done on it, e.g. "evaluated"); after :func:`check_policy_env`, so
    only of an env with the same spaces."""
    from imitate.environments import env_name

    if meta.env_id is not None and env_name(env) != meta.env_id:
        warn(
            f"{name} was trained on {meta.env_id}, {use} on {env_name(env)} (the "
            "observation and action spaces match)"
        )


def load_dataset_for(path: Path, env_id: EnvLike | None) -> Dataset:
    """Load a dataset; ``EnvError`` if it was collected on another env than ``env_id``."""
    from imitate.data import load_dataset
    from imitate.environments import env_name

    dataset = load_dataset(path)
    if env_id is not None and dataset.meta.env_id != env_name(env_id):
        raise EnvError(f"{path} was collected on {dataset.meta.env_id}, not on {env_name(env_id)}")
    return dataset


def record_run(out_dir: Path, config: Any, stage: str, result: dict[str, Any]) -> None:
    """config.json and a one-record metrics.jsonl (the result's numbers) for jobs that do
    not train (collect, eval, drift, ood, export, expert train)."""
    write_json(out_dir / "config.json", config_to_json(config))
    with RunLogger(out_dir) as log:
        log.log(stage, {k: v for k, v in result.items() if isinstance(v, (int, float, str))}, 0)


def collect_demos(
    expert: Policy,
    env: EnvLike,
    path: Path,
    episodes: int,
    seed: int,
    num_envs: int = 16,
    seeding: Seeding = "auto",
    source: str = "policy",
    rollouts: Rollouts | None = None,
    progress: bool = False,
    warn: Warn = _ignore,
) -> dict[str, Any]:
    """Roll out ``expert`` for ``episodes`` episodes and write the dataset to ``path``.

    A collection larger than memory should hold (:func:`imitate.data.collection_chunk_episodes`)
    is collected in chunks of whole episodes with per-episode seeding (episode i still resets
    with seed + i, so the file equals one per-episode collection), each written out before the
    next is collected (:func:`imitate.data.save_chunks`). Returns the summary (env, expert,
    episodes, transitions, return statistics, wall time)."""
    import numpy as np

    from imitate.collect import LocalRollouts
    from imitate.data import (
        collection_chunk_episodes,
        collection_estimate,
        dataset_warnings,
        save_chunks,
    )
    from imitate.environments import env_name

    runner: Rollouts = rollouts or LocalRollouts()
    name = env_name(env)
    estimate = collection_estimate(name, episodes)
    if estimate is not None:
        warn(estimate)
    chunk = collection_chunk_episodes(name, episodes)
    if chunk is not None and seeding == "stream":
        raise ImitateError(
            "a collection this large is streamed to disk in chunks of episodes, which "
            "needs --seeding per-episode (or auto)"
        )
    start = time.perf_counter()
    summary: dict[str, Any] = {"env": name, "expert": source}
    if chunk is None:
        dataset = runner.collect(
            expert, env, episodes, seed, num_envs, seeding=seeding, source=source,
            progress=progress,
        )  # fmt: skip
        elapsed = time.perf_counter() - start
        for message in dataset_warnings(dataset):
            warn(message)
        returns = dataset.episode_returns
        dataset.save(path)
        return {
            **summary,
            "episodes": dataset.n_episodes,
            "transitions": len(dataset),
            "mean_return": float(returns.mean()),
            "std_return": float(returns.std()),
            "wall_time_s": elapsed,
        }
    # running sums, not a list of returns: memory stays one chunk's whatever the count
    counts = {"episodes": 0, "transitions": 0, "total": 0.0, "total_sq": 0.0}
    warned: set[str] = set()

    def chunks() -> Iterator[Dataset]:
        for first in range(0, episodes, chunk):
            part = runner.collect(
                expert, env, min(chunk, episodes - first), seed + first, num_envs,
                seeding="per-episode", source=source, progress=progress,
            )  # fmt: skip
            for message in dataset_warnings(part):
                if message not in warned:
                    warned.add(message)
                    warn(message)
            part_returns = part.episode_returns.astype(np.float64)
            counts["episodes"] += len(part_returns)
            counts["transitions"] += len(part)
            counts["total"] += float(part_returns.sum())
            counts["total_sq"] += float((part_returns**2).sum())
            yield part

    save_chunks(path, chunks())
    n = counts["episodes"]
    mean = counts["total"] / n
    return {
        **summary,
        "episodes": int(n),
        "transitions": int(counts["transitions"]),
        "mean_return": mean,
        "std_return": float(np.sqrt(max(counts["total_sq"] / n - mean**2, 0.0))),
        "wall_time_s": time.perf_counter() - start,
        "chunk_episodes": chunk,
    }


def train_bc_into(
    dataset: Dataset,
    config: BCConfig,
    out_dir: Path,
    eval_env: EnvLike | None = None,
    eval_episodes: int = 0,
    log: RunLogger | None = None,
    progress: bool = False,
) -> tuple[MLPPolicy, dict[str, Any]]:
    """Train BC; write policy.pt (with the data's provenance) and metrics.jsonl into
    ``out_dir``, and with ``eval_episodes``, eval.json (reset seeds EVAL_SEED + i on
    ``eval_env``, default the dataset's env)."""
    from imitate.bc import train_bc
    from imitate.collect import evaluate
    from imitate.policy import save_policy

    policy, history = train_bc(dataset, config, progress=progress)
    log = log or RunLogger(out_dir)
    # provenance (PolicyMeta): env (kwargs), expert (eval's calibration labels), seed, config
    save_policy(policy, out_dir / "policy.pt")
    log.log_records("bc", history.records)
    log.close()
    result: dict[str, Any] = {"policy": str(out_dir / "policy.pt"), **history.summary()}
    if eval_episodes > 0:
        env = eval_env if eval_env is not None else dataset.meta.env()
        result["eval"] = evaluate(policy, env, eval_episodes, EVAL_SEED).to_json()
        write_json(out_dir / "eval.json", result["eval"])
    return policy, result


def dagger_into(
    env: EnvLike,
    expert: Policy,
    config: DAggerConfig,
    out_dir: Path,
    compare_bc: bool = True,
    rollouts: Rollouts | None = None,
    log: RunLogger | None = None,
    progress: bool = False,
    state_dir: Path | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """DAgger into ``out_dir``: policy.pt, metrics.jsonl and (with evaluation) dagger.png,
    the learner's return against expert labels, next to BC's on the same label counts.

    ``state_dir`` (:func:`imitate.runs.resumable`): each round is saved in its ``rounds``
    folder as it finishes; with ``resume``, the rounds found there are loaded, not rerun."""
    from imitate.collect import evaluate
    from imitate.dagger import RoundStore, bc_label_curve, dagger
    from imitate.environments import env_name
    from imitate.plots import plot_return_vs_labels
    from imitate.policy import save_policy

    log = log or RunLogger(out_dir)
    rounds = None if state_dir is None else state_dir / "rounds"
    policy, history = dagger(
        env,
        expert,
        config,
        progress=progress,
        rollouts=rollouts,
        run_dir=rounds,
        resume=resume and RoundStore.started(rounds),
    )
    save_policy(policy, out_dir / "policy.pt")  # env, expert, config: recorded by dagger()
    log.log_records("dagger", history.records)
    result: dict[str, Any] = {
        "policy": str(out_dir / "policy.pt"),
        "rounds": history.records,
        "expert_labels": history.expert_labels,
    }
    if history.refit is not None:  # the final refit, the learner saved as policy.pt
        result["refit"] = history.refit.to_json()
        log.log("dagger_refit", result["refit"], step=history.expert_labels)
    if config.eval_episodes > 0:
        labels = [r["expert_labels"] for r in history.records]
        curves: list[Curve] = [("DAgger", labels, [r["learner_return"] for r in history.records])]
        if compare_bc:
            bc_curve = bc_label_curve(
                env, expert, [int(n) for n in labels], config.bc, config.seed, config.eval_episodes
            )
            result["bc_same_labels"] = bc_curve
            for point in bc_curve:
                log.log("bc_same_labels", point, step=int(point["expert_labels"]))
            curves.append(("BC, same labels", labels, [p["learner_return"] for p in bc_curve]))
        refit = history.refit
        if refit is not None and refit.learner_return is not None:  # the learner returned
            curves.append(("DAgger, final refit", [refit.expert_labels], [refit.learner_return]))
        expert_return = evaluate(expert, env, config.eval_episodes, EVAL_SEED).mean_return
        result["expert_return"] = expert_return
        result["plot"] = str(
            plot_return_vs_labels(
                curves,
                out_dir / "dagger.png",
                expert_return,
                title=f"{env_name(env)}: DAgger vs BC",
            )
        )
    log.close()
    return result


def check_drift_options(clones: int, horizons: tuple[int, ...]) -> None:
    """Refuse a drift analysis without clones or with non-positive horizons."""
    if not clones:
        raise ImitateError("give at least one --policy to compare with the expert")
    if not horizons or min(horizons) < 1:
        raise ImitateError("--horizons must be positive integers")


def check_video_env(env: EnvLike) -> None:
    """Refuse side-by-side videos of an env whose observations are not a flat Box (the
    videos replay and plot flat observations; the drift figures cover the others)."""
    from imitate.collect import env_spaces
    from imitate.encoded import needs_encoder
    from imitate.environments import env_name

    space = env_spaces(env)[0]
    if needs_encoder(space):
        raise ImitateError(
            f"--video needs flat Box observations; {env_name(env)} has {space} "
            "(the drift report's figures cover it without --video)"
        )


def drift_into(
    env: EnvLike,
    expert: Policy,
    clones: dict[str, Policy],
    out_dir: Path,
    episodes: int = 20,
    seed: int = EVAL_SEED,
    threshold: float = 1.0,
    horizons: tuple[int, ...] = (25, 50, 100, 200, 400),
    cost: str = "disagreement",
    video: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Paired expert/clone rollouts into ``out_dir``: figures, drift.json, report.md,
    report.html and, with ``video``, side-by-side videos (also in report.html)."""
    from imitate.drift import analyse_drift, drift_figures, drift_markdown, drift_results
    from imitate.environments import env_name

    check_drift_options(len(clones), horizons)
    if video:
        check_video_env(env)
    name = env_name(env)
    analysis = analyse_drift(
        env, expert, clones, episodes, seed, threshold, horizons, cost,  # type: ignore[arg-type]
        progress=progress,
    )  # fmt: skip
    results = drift_results(analysis, drift_figures(analysis, out_dir))
    videos: list[Any] = []
    if video:
        from imitate.video import showcase_videos

        videos = showcase_videos(analysis, expert, clones, out_dir, progress=progress)
        results["videos"] = [v.to_json() for v in videos]
    from imitate.report import html_report_or_reason

    html_path, why = html_report_or_reason(
        out_dir / "report.html", f"{name}: drift report", analysis, (), videos
    )
    if html_path is not None:
        results["report_html"] = str(html_path)
    else:
        results["skipped"] = {"report.html": why}
    write_json(out_dir / "drift.json", results)
    write_text(out_dir / "report.md", f"# {name}: drift report\n\n" + drift_markdown(results))
    return {"report": str(out_dir / "report.md"), **results}


def distill_into(
    env: EnvLike,
    teacher: SoftPolicy,
    config: DistillConfig,
    out_dir: Path,
    teacher_name: str = "teacher",
    eval_episodes: int = 50,
    qat: bool = False,
    log: RunLogger | None = None,
    progress: bool = False,
    qat_bits: int | None = None,
) -> dict[str, Any]:
    """Distil ``teacher`` into a student; write its policy.pt, distill.json and metrics
    into ``out_dir``; with ``qat``, fine-tune it through the int8 scheme on its own states
    (``qat_bits``: the hidden activations' width it trains for, None: the export's default).
    The report compares teacher and student on ``eval_episodes`` (seeds EVAL_SEED + i)."""
    from imitate.collect import collect
    from imitate.distill import distill, distillation_report
    from imitate.policy import save_policy

    log = log or RunLogger(out_dir)
    student, history = distill(teacher, env, config, progress=progress)
    if qat:
        from imitate.export.int8 import quantization_aware_finetune

        own_states = collect(student, env, OWN_STATE_EPISODES, config.seed + 1).obs
        student = quantization_aware_finetune(student, own_states, seed=config.seed, bits=qat_bits)
        history["qat"] = {
            "states": len(own_states),
            "weights": "int8 grid, per channel",
            "activation_bits": qat_bits,
        }
    log.log_records("distill", history.pop("training_records", None) or history.get("rounds", []))
    save_policy(student, out_dir / "policy.pt", {"expert": teacher_name})  # + distill()'s record
    report = distillation_report(teacher, student, env, eval_episodes, EVAL_SEED)
    result = {"policy": str(out_dir / "policy.pt"), **report, **history}
    write_json(out_dir / "distill.json", result)
    log.log("eval", {k: v for k, v in report.items() if isinstance(v, (int, float))}, step=0)
    log.close()
    return result


def int8_calibration_states(
    policy: Policy, env: EnvLike | None, episodes: int, seed: int, name: str = "the policy"
) -> Any:
    """States of the policy's own rollouts, for the int8 activation ranges. An ``env`` with
    other spaces than the policy's (``name`` in the message) raises ``EnvError`` before any
    episode, as ``imitate eval`` does: a rollout would fail deep in the policy's forward."""
    from imitate.collect import collect

    if env is None:
        raise ImitateError("--int8 calibrates on the policy's own states: give --env")
    check_policy_env(policy, env, name)
    return collect(policy, env, episodes, seed).obs


def int8_gate_episodes(
    policy: Policy, env: EnvLike, episodes: int, seed: int, threshold: float
) -> Any:
    """``episodes`` of the Python JS gate on ``policy`` from reset seed ``seed`` (the CLI:
    after the calibration rollouts' own), which the int8 gate is checked along
    (:class:`GateEpisodes`)."""
    from imitate.collect import collect
    from imitate.export.int8 import GateEpisodes
    from imitate.policy import JSGatedPolicy, MLPPolicy
    from imitate.spaces import CategoricalHead

    if not (isinstance(policy, MLPPolicy) and isinstance(policy.head, CategoricalHead)):
        raise ImitateError("--js-gate needs an MLP policy with Discrete actions")
    if not 0.0 <= threshold < math.log(2.0):
        raise ImitateError(f"--js-gate must be in [0, ln 2) nats, got {threshold}")
    data = collect(JSGatedPolicy.wrap(policy, threshold), env, episodes, seed)
    return GateEpisodes(data.obs, data.actions, data.episode_starts, threshold)


def int8_width(
    policy: Policy,
    calibration: Any,
    activation_bits: int | str | None,
    min_parity: float,
    gate: Any = None,
) -> Any:
    """The hidden width of an int8 C export: ``auto`` measures it
    (:func:`imitate.export.int8.choose_bits`); a fixed width with a gate is checked
    against the Python gate at that width only, and without a gate measured on held-out
    calibration states (recorded, not chosen). None: no measurement (a fixed width for
    Box actions; or a policy with an observation encoder, whose int8 default stays 8 / 16)."""
    from imitate.encoded import EncodedPolicy
    from imitate.export.int8 import choose_bits

    if isinstance(policy, EncodedPolicy):
        if gate is not None:
            raise ImitateError("--js-gate: the int8 C export of an encoded policy has no gate")
        return None
    discrete = bool(getattr(getattr(policy, "head", None), "discrete", False))
    if activation_bits != "auto" and gate is None and not discrete:
        return None
    widths = (8, 16) if activation_bits == "auto" else (int(activation_bits or 8),)
    return choose_bits(policy, calibration, min_parity, gate=gate, widths=widths)  # type: ignore[arg-type]


def int8_export_inputs(
    policy: Policy,
    env: EnvLike | None,
    episodes: int,
    seed: int,
    activation_bits: int | str | None,
    min_parity: float,
    js_gate: float | None = None,
    gate_episodes: int = INT8_GATE_EPISODES,
    name: str = "the policy",
) -> tuple[Any, Any]:
    """What an int8 C export is made from: the calibration states (``episodes`` rollouts
    of the policy from reset seed ``seed``; ``EnvError`` naming ``name`` when ``env`` has
    other spaces) and the hidden-width choice (:func:`int8_width`; None: not measured),
    checked along ``gate_episodes`` episodes of the Python gate when ``js_gate`` (its
    threshold) is given."""
    from imitate import validate

    validate.count("episodes", episodes)
    calibration = int8_calibration_states(policy, env, episodes, seed, name)
    gate = None
    if js_gate is not None:
        validate.count("gate_episodes", gate_episodes)
        gate = int8_gate_episodes(policy, env, gate_episodes, seed + episodes, js_gate)  # type: ignore[arg-type]
    return calibration, int8_width(policy, calibration, activation_bits, min_parity, gate)


def check_export_options(
    format: str,
    int8: bool,
    algo: str | None,
    prefix: str,
    js_gate: float | None = None,
    activation_bits: int | str | None = "auto",
    min_parity: float = INT8_MIN_PARITY,
    calibration_flags: Sequence[str] = (),
) -> None:
    """Refuse options that do not apply to ``format`` (before any work). ``activation_bits``
    (None or ``auto``: not asked) and ``min_parity`` (its default: not asked) set the int8
    width only, and ``calibration_flags`` (the int8-only flags the command line was given,
    :meth:`imitate.commands.ExportCommand.int8_flags_given`) its width and calibration, so
    an export without ``int8`` refuses them rather than ignoring them."""
    if int8 and format != "c":
        raise ImitateError("--int8 applies to the C export only")
    if not int8:
        given = [
            flag
            for flag, asked in (
                ("--activation-bits", activation_bits not in (None, "auto")),
                ("--min-parity", min_parity != INT8_MIN_PARITY),
            )
            if asked
        ] + list(calibration_flags)
        if given:
            raise ImitateError(
                f"{'/'.join(given)} {'apply' if len(given) > 1 else 'applies'} to --int8 C "
                "exports only (a float32 export has no activation width to choose and "
                "nothing to calibrate)"
            )
    if js_gate is not None and not (int8 and format == "c"):
        raise ImitateError(
            "--js-gate applies to the int8 C export (the float32 C and ONNX exports always "
            "carry their exact gate)"
        )
    if algo is not None and format != "sb3":
        raise ImitateError("--algo applies to --format sb3 only")
    if format == "c":
        from imitate.export.c import check_prefix

        check_prefix(prefix)
    elif prefix != "policy":
        raise ImitateError("--prefix applies to the C export only")


def export_into(
    policy: MLPPolicy | EncodedPolicy,
    format: str,
    out_dir: Path,
    int8: bool = False,
    calibration: Any = None,
    prefix: str = "policy",
    activation_bits: int | None = None,
    algo: str | None = None,
    input_bits: int = 16,
    gate: bool = True,
    choice: Any = None,
) -> dict[str, Any]:
    """Export ``policy`` into ``out_dir``; the files, their sizes and the parameter count."""
    from imitate.encoded import EncodedPolicy
    from imitate.export import export_policy
    from imitate.export.c import weight_bytes

    check_export_options(format, int8, algo, prefix, activation_bits=activation_bits)
    files = export_policy(
        policy, format, out_dir, int8, calibration, prefix, activation_bits,  # type: ignore[arg-type]
        input_bits, algo=algo, gate=gate, choice=choice,
    )  # fmt: skip
    result: dict[str, Any] = {
        "format": format,
        "files": [str(f) for f in files],
        "bytes": {f.name: f.stat().st_size for f in files},
        "parameters": policy.n_parameters(),
    }
    if choice is not None:
        result["int8_width"] = choice.as_dict()
        activation_bits = choice.bits
    if format == "c":
        if isinstance(policy, EncodedPolicy):
            from imitate.export.c_encoders import encoded_weight_bytes

            result["weight_bytes"] = encoded_weight_bytes(policy, int8, activation_bits)
        else:
            result["weight_bytes"] = weight_bytes(policy, int8, activation_bits)
    return result


def sweep_into(
    expert: Policy,
    config: SweepConfig,
    out_dir: Path,
    rollouts: Rollouts | None = None,
    log: RunLogger | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """BC over the grid of ``config``: trials.jsonl, sweep.md, sweep.png and metrics."""
    from imitate.sweep import plot_sweep, run_sweep, summarise, sweep_markdown

    start = time.perf_counter()
    rows = run_sweep(expert, config, rollouts, progress=progress)
    curves = [row.pop("curve", []) for row in rows]
    summary = summarise(rows, config.axes)
    write_jsonl(out_dir / "trials.jsonl", rows)
    with log or RunLogger(out_dir) as logger:
        for index, (row, curve) in enumerate(zip(rows, curves, strict=True)):
            logger.log("sweep", {"trial": index, **row})
            # one stage per trial: its BC curve in metrics.jsonl and training_curves.png
            logger.log_records(f"trial {index}", curve)
    write_text(out_dir / "sweep.md", sweep_markdown(summary, config.axes, config.env_id))
    plot_sweep(summary, config.axes, out_dir / "sweep.png", f"{config.env_id}: BC sweep")
    return {
        "table": str(out_dir / "sweep.md"),
        "plot": str(out_dir / "sweep.png"),
        "trials": len(rows),
        "wall_time_s": time.perf_counter() - start,
        "summary": summary,
    }


def compress_dataset(
    policy: MLPPolicy | EncodedPolicy,
    dataset: Dataset,
    out: Path,
    resolution: float | None = None,
    names: tuple[str, str] = ("the policy", "the dataset"),
) -> dict[str, Any]:
    """Arithmetic-code the dataset's actions with the policy's distribution into ``out``
    (``names``: how errors name the policy and the dataset)."""
    from imitate.compress import compress_actions, observation_signature, write_imz

    obs_space, action_space = dataset.meta.spaces()
    theirs, ours = observation_signature(policy.observation_space), observation_signature(obs_space)
    if theirs != ours or policy.action_space != action_space:
        raise EnvError(
            f"{names[0]} acts on {theirs} -> {policy.action_space}, "
            f"but {names[1]} holds {ours} -> {action_space}"
        )
    identity = {"env_id": dataset.meta.env_id, "source": dataset.meta.source}
    compressed = compress_actions(policy, dataset.obs, dataset.actions, resolution, identity)
    path = write_imz(out, compressed)
    n, stats = len(dataset), compressed.stats
    return {
        "out": str(path),
        "actions": n,
        "file_bytes": path.stat().st_size,
        "header_bytes": len(compressed.header_bytes()),
        "payload_bits": compressed.payload_bits,
        "bits_per_action": compressed.payload_bits / n,
        "cross_entropy_bits_per_action": stats["cross_entropy_bits"] / n,
        "raw_action_bytes": int(dataset.actions.nbytes),
    }
