"""The main job, top to bottom: expert -> demonstrations -> BC -> DAgger -> distilled
student -> exports -> drift report -> side-by-side videos -> report.html.

Everything lands in one run folder: datasets, checkpoints, figures, ``results.json``,
``report.md`` with a results table and the figures embedded, ``videos/`` and the
self-contained ``report.html``. Each stage prints one line with its wall time to stderr
as it finishes. The CLI's ``imitate run`` resolves the expert and calls
:func:`run_pipeline`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from imitate.bc import train_bc
from imitate.collect import EvalResult, collect, evaluate
from imitate.configs import RunConfig as RunConfig  # re-exported
from imitate.constants import EVAL_SEED
from imitate.dagger import RoundStore, dagger
from imitate.data import load_dataset
from imitate.distill import distill, distillation_report
from imitate.drift import (
    analyse_drift,
    checked_horizons,
    drift_figures,
    drift_markdown,
    drift_results,
)
from imitate.encoded import EncodedPolicy, needs_encoder
from imitate.environments import EnvLike, env_name, env_record
from imitate.export import export_policy, export_unsupported, load_exported
from imitate.export.c import weight_bytes
from imitate.export.int8 import choose_bits
from imitate.fileio import write_json, write_text
from imitate.plots import plot_return_vs_labels
from imitate.policy import MLPPolicy, Policy, SoftPolicy, save_policy
from imitate.report import Table, html_report_or_reason
from imitate.runs import config_to_json
from imitate.tracking import RunLogger
from imitate.video import showcase_videos

RESULTS_HEADER = ("policy", "mean return ± std", "expert labels", "parameters", "checkpoint bytes")


def _row(
    name: str, returns: tuple[float, float], labels: int | str, policy: Any, size: int | str
) -> list[str]:
    """A results-table row: (mean, std) return, expert labels, parameters, bytes."""
    params = policy.n_parameters() if isinstance(policy, MLPPolicy | EncodedPolicy) else "-"
    score = f"{returns[0]:.1f} ± {returns[1]:.1f}"
    return [name, score, str(labels), str(params), str(size)]


class StageLog:
    """One line per finished stage on stderr: ``imitate run [k] stage: 1.2 s (total 3.4 s)``."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream
        self.start = time.perf_counter()
        self.times: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        begin = time.perf_counter()
        yield
        now = time.perf_counter()
        self.times[name] = now - begin
        stream = self.stream if self.stream is not None else sys.stderr
        print(
            f"imitate run [{len(self.times)}] {name}: {now - begin:.1f} s "
            f"(total {now - self.start:.1f} s)",
            file=stream,
            flush=True,
        )


def console_summary(report_md: str) -> str:
    """``report.md`` without its figure links: the tables and notes, for the terminal."""
    lines = [line for line in report_md.splitlines() if not line.startswith("![")]
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip()


def scaled_run_config(env_id: EnvLike, config: RunConfig) -> RunConfig:
    """MuJoCo tasks left at every default get :func:`long_episode_config` (1000-step
    episodes would make the classic-control defaults take an hour here)."""
    from imitate.configs import long_episode_config
    from imitate.environments import env_spec

    entry_point = str(env_spec(env_id).entry_point)
    if config == RunConfig() and entry_point.startswith("gymnasium.envs.mujoco"):
        return long_episode_config()
    return config


def _returns(result: EvalResult) -> tuple[float, float]:
    return result.mean_return, result.std_return


def _file_size(path: Path) -> int:
    return path.stat().st_size


def distill_unsupported(expert: Policy, expert_name: str) -> str | None:
    """Why ``imitate run`` cannot distil ``expert`` into a student (one line, recorded as a
    skipped stage), or None when it can: a teacher with logits, or a privileged teacher
    acting on an attribute of the env (:func:`imitate.privileged.state_expert_view`; the
    student then sees the observations). Students of any observation space are encoded."""
    from imitate.privileged import state_expert_view

    if isinstance(expert, SoftPolicy) or state_expert_view(expert) is not None:
        return None
    return f"the expert `{expert_name}` gives no logits (not a SoftPolicy): nothing to distil"


def _c_bytes(student: Any, bits: int | None = None) -> int:
    """Constant-table bytes of the student's int8 C export (``bits``: its hidden width)."""
    if isinstance(student, EncodedPolicy):
        from imitate.export.c_encoders import encoded_weight_bytes

        return encoded_weight_bytes(student, int8=True)
    return weight_bytes(student, int8=True, bits=bits)


def _load_export(artefact: Path, student: Any) -> Policy:
    """The exported student as a Policy (an encoded student's ONNX graph takes the encoder's
    arrays: the tokenizer runs outside it)."""
    if isinstance(student, EncodedPolicy) and artefact.suffix == ".onnx":
        from imitate.export.onnx import OnnxEncodedPolicy

        return OnnxEncodedPolicy(artefact, student.encoder)
    return load_exported(artefact)


def run_pipeline(
    env_id: EnvLike,
    expert: Policy,
    expert_name: str,
    config: RunConfig,
    out_dir: Path,
    progress: bool = False,
    log: StageLog | None = None,
    metrics: RunLogger | None = None,
    state_dir: Path | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Run the whole job into ``out_dir``; returns the results written to ``results.json``.

    ``progress``: progress bars for the long stages (DAgger, distillation, videos);
    ``log``: where the per-stage lines go (default: stderr). ``metrics`` (default:
    metrics.jsonl only) receives every BC clone's training curve (stage ``bc_<k>``), the
    DAgger rounds (``dagger``) and the student's (``distill``); it is closed before the
    report is written (metrics.jsonl, training_curves.png).

    ``state_dir`` (a folder that outlives an interruption, e.g.
    :func:`imitate.runs.resume_state`'s) receives what the expert was asked as it is
    asked: the demonstrations (``demos.npz``) and each DAgger round (``dagger_rounds/``).
    With ``resume``, those found there are loaded instead of asked again; the other stages
    (BC, distillation, evaluations, drift) run again. The caller moves ``state_dir`` into
    the run folder at the end (:func:`imitate.runs.keep_state`); without it, the
    demonstrations go to ``out_dir/demos.npz``."""
    checked_horizons(env_id, config.horizons)  # before any stage: the drift fit needs 2
    log = log or StageLog()
    metrics = metrics or RunLogger(out_dir)
    start = time.perf_counter()
    episodes = max(config.episodes, *config.demo_counts)
    demos_path = (state_dir or out_dir) / "demos.npz"
    with log.stage(f"demonstrations ({episodes} expert episodes) + expert evaluation"):
        if resume and demos_path.is_file():
            demos = load_dataset(demos_path)
        else:
            demos = collect(expert, env_id, episodes, config.seed, source=expert_name)
            demos.save(demos_path)
        expert_eval = evaluate(expert, env_id, config.eval_episodes, EVAL_SEED)
    rows = [_row(f"expert (`{expert_name}`)", _returns(expert_eval), "-", expert, "-")]
    results: dict[str, Any] = {"env": env_name(env_id), "expert": expert_eval.to_json(), "bc": {}}
    skipped: dict[str, str] = {}  # stage -> why it did not run (in results.json and report.md)
    encoded_obs = needs_encoder(demos.meta.spaces()[0])

    # in every checkpoint's config: the env (kwargs, wrappers) and the expert
    expert_info = getattr(expert, "provenance", None) or {"spec": expert_name}
    recorded = {**env_record(env_id), "expert": expert_name, "expert_info": expert_info}
    clones: dict[str, Policy] = {}
    curve_labels, curve_returns = [], []
    counts = sorted({*config.demo_counts, config.episodes})
    with log.stage(f"BC on {', '.join(map(str, counts))} demonstrations"):
        for count in counts:
            subset = demos.select_episodes(np.arange(count))
            policy, history = train_bc(subset, config.bc)
            metrics.log_records(f"bc_{count}", history.records)
            path = save_policy(policy, out_dir / f"bc_{count}" / "policy.pt", recorded)
            result = evaluate(policy, env_id, config.eval_episodes, EVAL_SEED)
            results["bc"][str(count)] = {
                **history.summary(),
                "eval": result.to_json(),
                "labels": len(subset),
            }
            curve_labels.append(len(subset))
            curve_returns.append(result.mean_return)
            name = f"BC, {count} demonstration{'s' if count > 1 else ''}"
            rows.append(_row(name, _returns(result), len(subset), policy, _file_size(path)))
            if count in (1, config.episodes):
                clones[f"BC-{count}"] = policy

    with log.stage(f"DAgger ({config.dagger.rounds} rounds)"):
        rounds = None if state_dir is None else state_dir / "dagger_rounds"
        learner, dagger_history = dagger(
            env_id,
            expert,
            config.dagger,
            progress=progress,
            run_dir=rounds,
            resume=resume and RoundStore.started(rounds),
        )
        metrics.log_records("dagger", dagger_history.records)
        path = save_policy(learner, out_dir / "dagger" / "policy.pt", recorded)
        dagger_eval = evaluate(learner, env_id, config.eval_episodes, EVAL_SEED)
    results["dagger"] = {"rounds": dagger_history.records, "eval": dagger_eval.to_json()}
    rows.append(
        _row(
            "DAgger", _returns(dagger_eval), dagger_history.expert_labels, learner, _file_size(path)
        )
    )
    clones["DAgger"] = learner

    distillable = distill_unsupported(expert, expert_name)
    if distillable is None:
        teacher: Any = expert  # a SoftPolicy or a privileged state teacher
        with log.stage(f"distillation into {config.distill.student.hidden} + exports"):
            student, distilled = distill(teacher, env_id, config.distill, progress=progress)
            curve = distilled.get("training_records") or distilled.get("rounds", [])
            metrics.log_records("distill", curve)
            path = save_policy(student, out_dir / "student" / "policy.pt", recorded)
            report = distillation_report(
                expert, student, env_id, config.eval_episodes, EVAL_SEED, expert_eval
            )
            student_returns = (report["student_return"], report["student_return_std"])
            results["student"] = report
            rows.append(
                _row(
                    f"distilled student {config.distill.student.hidden}",
                    student_returns,
                    "-",
                    student,
                    _file_size(path),
                )
            )
            results["exports"] = {}
            calibration = collect(student, env_id, 10, config.seed + 999).obs  # int8 ranges
            for fmt in config.exports:
                reason = export_unsupported(student, fmt, int8=fmt == "c")
                if reason is not None:
                    skipped[f"export {fmt}"] = reason
                    continue
                choice = None  # the int8 width as `imitate export`'s default (auto, no gate)
                if fmt == "c" and isinstance(student, MLPPolicy):
                    choice = choose_bits(student, calibration)
                files = export_policy(
                    student,
                    fmt,  # type: ignore[arg-type]
                    out_dir / "export" / fmt,
                    int8=fmt == "c",
                    calibration=calibration,
                    gate=fmt != "c",
                    choice=choice,
                )

                artefact = next(f for f in files if f.suffix != ".h")  # the policy (not the gate)
                bits = None if choice is None else choice.bits
                size = _c_bytes(student, bits) if fmt == "c" else artefact.stat().st_size
                results["exports"][fmt] = {"files": [str(f) for f in files], "bytes": size}
                if choice is not None:
                    results["exports"][fmt]["int8_width"] = choice.as_dict()
                exported = _load_export(artefact, student)
                export_eval = evaluate(exported, env_id, config.eval_episodes, EVAL_SEED)
                label = "C int8 (weight bytes)" if fmt == "c" else fmt
                rows.append(
                    _row(f"student exported: {label}", _returns(export_eval), "-", student, size)
                )

    else:
        skipped["distillation and exports"] = distillable

    dagger_curve = [r for r in dagger_history.records if "learner_return" in r]
    with log.stage(f"drift analysis ({config.drift_episodes} paired episodes per clone)"):
        labels_figure = plot_return_vs_labels(
            [
                ("BC (expert demonstrations)", curve_labels, curve_returns),
                (
                    "DAgger",
                    [r["expert_labels"] for r in dagger_curve],
                    [r["learner_return"] for r in dagger_curve],
                ),
            ],
            out_dir / "return_vs_labels.png",
            expert_eval.mean_return,
            title=f"{env_name(env_id)}: return vs expert labels",
        )
        analysis = analyse_drift(
            env_id, expert, clones, config.drift_episodes, EVAL_SEED, horizons=config.horizons
        )
        drift = drift_results(analysis, drift_figures(analysis, out_dir))
    videos = []
    if config.videos_per_clone > 0 and encoded_obs:
        skipped["videos"] = (
            "side-by-side videos replay flat Box observations only; the drift figures "
            "cover this observation space"
        )
    elif config.videos_per_clone > 0:
        with log.stage(f"videos ({config.videos_per_clone} episodes x {len(clones)} clones)"):
            videos = showcase_videos(
                analysis, expert, clones, out_dir, config.videos_per_clone, progress=progress
            )
    drift["videos"] = [v.to_json() for v in videos]
    results["drift"] = drift
    results["skipped"] = skipped
    results["config"] = config_to_json(config)
    table = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    intro = (
        f"Expert `{expert_name}`; demonstrations: {demos.n_episodes} episodes, {len(demos)} "
        f"transitions (seed {config.seed}). Evaluation: {config.eval_episodes} episodes, reset "
        f"seeds {EVAL_SEED} + i."
    )
    metrics.close()
    curves = out_dir / "training_curves.png"
    curves_md = f"![training curves]({curves.name})\n\n" if curves.is_file() else ""
    with log.stage("report.md + report.html"):
        results["wall_time_s"] = time.perf_counter() - start
        video_links = "\n".join(
            f"- {v.clone}, {v.why} (seed {v.seed}): "
            + ", ".join(f"[{f.suffix[1:]}](videos/{f.name})" for f in v.files)
            for v in videos
        )
        html_path, why = html_report_or_reason(
            out_dir / "report.html",
            f"{env_name(env_id)}: imitation run",
            analysis,
            [Table("Results", RESULTS_HEADER, [[c.strip("`") for c in r] for r in rows])],
            videos,
            intro,
        )
        if html_path is None:
            skipped["report.html"] = why
        report_md = (
            f"# {env_name(env_id)}: imitation run\n\n{intro}"
            f" Wall time: {results['wall_time_s']:.0f} s."
            + (" Interactive version with videos: `report.html`." if html_path else "")
            + "\n\n"
            "## Results\n\n"
            "| " + " | ".join(RESULTS_HEADER) + " |\n"
            f"|---|---|---|---|---|\n{table}\n\n"
            f"![return vs labels]({labels_figure.name})\n\n{curves_md}"
            "## Drift from the expert\n\n"
            + drift_markdown(drift)
            + (f"\n## Videos (expert left, clone right)\n\n{video_links}\n" if videos else "")
            + (
                "\n## Skipped\n\n" + "".join(f"- {k}: {v}\n" for k, v in skipped.items())
                if skipped
                else ""
            )
        )
        write_text(out_dir / "report.md", report_md)
        write_json(out_dir / "results.json", results)
    return {**results, "summary": console_summary(report_md)}  # what the terminal shows
