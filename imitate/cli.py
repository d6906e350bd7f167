"""The ``imitate`` command: wiring only, from flags to one library call per command.

Each subcommand is a frozen dataclass that embeds the library's own config where there is
one (``BCConfig``, ``DAggerConfig``, ``DistillConfig``, ``RunConfig``); tyro generates the
command line from it, so flags, the Python API and the saved ``config.json`` say the same
thing, and ``imitate <command> --from runs/X/config.json`` repeats a run (into a new run
folder unless ``--out`` is given; any other flag overrides the file). The shared
vocabulary: ``--env``, ``--expert``, ``--policy``, ``--data``, ``--episodes``, ``--seed``,
``--out``, ``--json`` (one JSON object on stdout).

This is the composition root: the only module of imitate/ that imports :mod:`agents`
(expert resolution, the zoo) and :mod:`envs` (custom envs). The jobs are
:mod:`imitate.jobs`, :mod:`imitate.evaluation`, :mod:`imitate.ood`,
:mod:`imitate.pipeline` and :func:`agents.zoo.train_and_record`; the terminal contract
(one-line errors, exit codes 2 and 130/143) is :mod:`imitate.console`. SB3 zips are
pickles: one is loaded only when named on the command line, and ``--safe`` loads it
without unpickling.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imitate import commands as c
from imitate import console, validate
from imitate.errors import ImitateError, interrupted_in
from imitate.fileio import write_json
from imitate.runs import artefact_dir, check_out, config_to_json, default_run_dir, out_lock
from imitate.tracking import RunLogger

if TYPE_CHECKING:
    from imitate.environments import EnvLike
    from imitate.runtime import Policy


def _progress() -> bool:
    return sys.stderr.isatty()


def _resolve(flags: c.SB3Flags | c.EnvExpert, spec: str, env: EnvLike) -> Policy:
    """``--expert`` -> a Policy (:func:`agents.registry.resolve_expert`: the one registry)."""
    from agents.registry import resolve_expert

    return resolve_expert(spec, env, flags.vecnormalize, safe=flags.safe)


def _env(env: str, env_kwargs: tuple[str, ...] = ()) -> EnvLike:
    """``--env`` and ``--env-kwargs`` -> what the library takes (an id, or a spec with kwargs)."""
    from imitate.environments import env_spec, parse_env_kwargs

    kwargs = parse_env_kwargs(env_kwargs)
    return env_spec(env, kwargs) if kwargs else env


def _checked_env(env: str, env_kwargs: tuple[str, ...] = ()) -> EnvLike:
    """:func:`_env`, with an unknown env id reported before anything else."""
    from imitate.collect import env_spaces

    spec = _env(env, env_kwargs)
    console.route_mujoco_warnings(spec)
    env_spaces(spec)
    return spec


def _inputs(spec: str) -> tuple[Path | None, ...]:
    """The expert's file, if it is one (an artefact folder must not swallow its input)."""
    return (Path(spec),) if spec.endswith((".zip", ".pt")) else ()


def _log(out_dir: Path, args: Any) -> RunLogger:
    return RunLogger(out_dir, args.logger, config_to_json(args))


def run_collect(args: c.CollectCommand) -> dict[str, Any]:
    from imitate.jobs import collect_demos, record_run
    from imitate.runs import refuse_foreign_file

    backend = args.rollouts.to_backend()
    seeding = backend.seeding(args.seeding)  # stream on Ray: refused before Ray starts
    env = _checked_env(args.setup.env, args.setup.env_kwargs)
    if args.out is not None:
        check_out(args.out, "file")
        refuse_foreign_file(args.out)
    warnings: list[str] = []
    expert = _resolve(args.setup, args.setup.expert, env)
    target = args.out or default_run_dir(args.setup.env, "collect", args.seed) / "demos.npz"

    def job(path: Path) -> dict[str, Any]:
        with backend.open() as rollouts:
            summary = collect_demos(
                expert, env, path, args.episodes, args.seed, args.num_envs, seeding,
                args.setup.expert, rollouts, _progress(), lambda m: console.warn(warnings, m),
            )  # fmt: skip
        return {"data": str(target), **summary}

    if args.out is None:  # our run folder (an --out file's folder is the user's)
        with artefact_dir(target.parent, "collect") as artefacts:
            result = job(artefacts.work / "demos.npz")
            record_run(artefacts.work, args, "collect", result)
    else:
        with out_lock(target):
            result = job(target)
    return console.with_warnings(warnings, result)


def run_bc(args: c.BCCommand) -> dict[str, Any]:
    from imitate.data import dataset_warnings
    from imitate.jobs import load_dataset_for, train_bc_into

    given = None if args.env is None else _env(args.env, args.env_kwargs)
    dataset = load_dataset_for(args.data, given)
    warnings: list[str] = []
    for message in dataset_warnings(dataset):
        console.warn(warnings, f"{args.data}: {message}")
    target = args.out or default_run_dir(dataset.meta.env_id, "bc", args.config.seed)
    with artefact_dir(target, "bc", inputs=(args.data,)) as artefacts:
        write_json(artefacts.work / "config.json", config_to_json(args))
        _, result = train_bc_into(
            dataset, args.config, artefacts.work, given, args.eval_episodes,
            _log(artefacts.work, args), _progress(),
        )  # fmt: skip
    return console.with_warnings(warnings, artefacts.final(result))


def run_eval(args: c.EvalCommand) -> dict[str, Any]:
    from imitate.evaluation import check_js_gate, evaluate_checkpoint
    from imitate.jobs import record_run

    check_js_gate(args.js_gate)
    if args.policy is None and args.expert is None:
        raise ImitateError("give --policy, --expert, or both (calibration against the expert)")
    if args.out is not None:
        check_out(args.out, "dir")
    backend = args.rollouts.to_backend()
    if args.policy is None:
        if args.env is None:
            raise ImitateError("--expert needs --env")
        if args.js_gate:
            raise ImitateError("--js-gate gates a --policy (a Discrete imitate policy)")
        setup = c.EnvExpert(args.env, args.env_kwargs, str(args.expert), **vars(args.sb3))
        return run_expert_eval(setup, args.episodes, args.seed, backend, named=False)
    env = None if args.env is None else _env(args.env, args.env_kwargs)
    warnings: list[str] = []
    with backend.open() as rollouts:
        result = evaluate_checkpoint(
            args.policy, env, args.episodes, args.seed, args.js_gate, args.expert,
            lambda name, on: _resolve(args.sb3, name, on), args.out, rollouts, _progress(),
            lambda message: console.warn(warnings, message),
        )  # fmt: skip
    if args.out is not None:
        record_run(args.out, args, "eval", result)
    return console.with_warnings(warnings, result)


def run_expert_eval(
    setup: c.EnvExpert, episodes: int, seed: int, backend: Any = None, named: bool = True
) -> dict[str, Any]:
    from imitate.backends import LOCAL

    env = _checked_env(setup.env, setup.env_kwargs)
    expert = _resolve(setup, setup.expert, env)
    with (backend or LOCAL).open() as rollouts:
        result = rollouts.evaluate(expert, env, episodes, seed, progress=_progress())
    return {"env": setup.env, **({"expert": setup.expert} if named else {}), **result.to_json()}


def run_ood(args: c.OodCommand) -> dict[str, Any]:
    from imitate.jobs import check_policy_env, load_dataset_for, record_run
    from imitate.ood import check_quantile, ood_report
    from imitate.policy import load_policy
    from imitate.runs import run_folder

    check_quantile(args.quantile)
    env = _checked_env(args.setup.env, args.setup.env_kwargs)
    if args.out is not None:
        check_out(args.out, "dir")
    policy = load_policy(args.policy)
    check_policy_env(policy, env, str(args.policy))
    expert = _resolve(args.setup, args.setup.expert, env)
    reference = None if args.data is None else load_dataset_for(args.data, env).obs
    with run_folder(args.setup.env, "ood", args.seed, args.out) as out_dir:
        result = ood_report(
            policy, expert, env, out_dir, args.episodes, args.seed, args.quantile, reference,
            _progress(),
        )  # fmt: skip
        write_json(out_dir / "ood.json", result)
        record_run(out_dir, args, "ood", result)
    return result


def run_main_job(args: c.RunCommand) -> dict[str, Any]:
    from agents.registry import default_expert
    from imitate.drift import checked_horizons
    from imitate.pipeline import run_pipeline, scaled_run_config
    from imitate.runs import resumable_artefacts, resume_settings, resume_target

    env = _checked_env(args.setup.env, args.setup.env_kwargs)
    checked_horizons(env, args.config.horizons)  # before any stage runs
    name = (
        (default_expert(env) or "heuristic") if args.setup.expert == "auto" else args.setup.expert
    )
    expert = _resolve(args.setup, name, env)
    recorded = replace(args, config=scaled_run_config(env, args.config))
    target = resume_target(args.out, args.resume) or default_run_dir(
        args.setup.env, "run", recorded.config.seed
    )
    settings, resume = resume_settings(recorded), args.resume is not None
    with resumable_artefacts(target, "run", settings, resume, _inputs(name)) as (
        artefacts, state, resuming,
    ):  # fmt: skip
        write_json(artefacts.work / "config.json", config_to_json(recorded))
        results = run_pipeline(
            env, expert, name, recorded.config, artefacts.work, progress=_progress(),
            metrics=_log(artefacts.work, recorded), state_dir=state, resume=resuming,
        )  # fmt: skip
        paths = {"run": str(artefacts.work), "report": str(artefacts.work / "report.md")}
        html = artefacts.work / "report.html"
        result = {**paths, **({"report_html": str(html)} if html.is_file() else {}), **results}
    return artefacts.final(result)


def run_dagger(args: c.DaggerCommand) -> dict[str, Any]:
    from imitate.jobs import dagger_into
    from imitate.runs import resumable_artefacts, resume_settings, resume_target

    env = _checked_env(args.setup.env, args.setup.env_kwargs)
    expert = _resolve(args.setup, args.setup.expert, env)
    backend = args.rollouts.to_backend()
    target = resume_target(args.out, args.resume) or default_run_dir(
        args.setup.env, "dagger", args.config.seed
    )
    settings, resume = resume_settings(args), args.resume is not None
    with resumable_artefacts(target, "dagger", settings, resume, _inputs(args.setup.expert)) as (
        artefacts, state, resuming,
    ):  # fmt: skip
        write_json(artefacts.work / "config.json", config_to_json(args))
        if resuming:
            _say_resumed_rounds(target, state / "rounds", args.config.rounds)
        with backend.open() as rollouts:
            result = dagger_into(
                env, expert, args.config, artefacts.work, args.compare_bc, rollouts,
                _log(artefacts.work, args), _progress(), state, resuming,
            )  # fmt: skip
    return artefacts.final(result)


def _say_resumed_rounds(target: Path, rounds_dir: Path, rounds: int) -> None:
    from imitate.console import stderr_line
    from imitate.dagger import RoundStore

    done = RoundStore.finished_rounds(rounds_dir)
    loaded = {0: "no round had finished", 1: "round 0 loaded"}.get(
        done, f"rounds 0-{done - 1} loaded"
    )
    rest = {rounds: "the final refit and the report", rounds - 1: f"round {done}"}.get(
        done, f"rounds {done}-{rounds - 1}"
    )
    stderr_line(f"imitate: resuming {target}: {loaded}; running {rest}")


def run_drift(args: c.DriftCommand) -> dict[str, Any]:
    from imitate.drift import checked_horizons
    from imitate.jobs import check_drift_options, check_policy_env, drift_into, record_run
    from imitate.policy import load_policy

    check_drift_options(len(args.policy), args.horizons)
    env = _checked_env(args.setup.env, args.setup.env_kwargs)
    checked_horizons(env, args.horizons)  # before the expert loads and anything rolls out
    expert = _resolve(args.setup, args.setup.expert, env)
    clones: dict[str, Policy] = {}
    for path in args.policy:
        clone = load_policy(path)
        check_policy_env(clone, env, str(path))
        clones[path.parent.name + "/" + path.name if path.parent.name else path.name] = clone
    target = args.out or default_run_dir(args.setup.env, "drift", args.seed)
    with artefact_dir(
        target, "drift", inputs=(*args.policy, *_inputs(args.setup.expert))
    ) as artefacts:
        result = drift_into(
            env, expert, clones, artefacts.work, args.episodes, args.seed, args.threshold,
            args.horizons, args.cost, args.video, _progress(),
        )  # fmt: skip
        record_run(artefacts.work, args, "drift", result)
    return artefacts.final(result)


def run_distill(args: c.DistillCommand) -> dict[str, Any]:
    from imitate.jobs import distill_into

    if args.qat_activation_bits is not None and (
        not args.qat or args.qat_activation_bits not in (8, 16)
    ):
        raise ImitateError("--qat-activation-bits needs --qat and a width of 8 or 16")
    env = _checked_env(args.env, args.env_kwargs)
    teacher: Any = _resolve(args.sb3, args.teacher, env)  # distill() refuses one without logits
    target = args.out or default_run_dir(args.env, "distill", args.config.seed)
    with artefact_dir(target, "distill", inputs=_inputs(args.teacher)) as artefacts:
        write_json(artefacts.work / "config.json", config_to_json(args))
        result = distill_into(
            env, teacher, args.config, artefacts.work, args.teacher, args.eval_episodes,
            args.qat, _log(artefacts.work, args), _progress(), args.qat_activation_bits,
        )  # fmt: skip
    return artefacts.final(result)


def run_export(args: c.ExportCommand) -> dict[str, Any]:
    from imitate.export import export_unsupported
    from imitate.jobs import (
        check_export_options,
        env_as_trained,
        export_into,
        int8_export_inputs,
        record_run,
        say_other_env,
    )  # fmt: skip
    from imitate.policy import load_policy
    from imitate.runtime import read_policy_meta

    policy = load_policy(args.policy)
    check_export_options(
        args.format, args.int8, args.algo, args.prefix, args.js_gate,
        calibration_flags=args.int8_flags_given(),
    )  # fmt: skip
    refusal = export_unsupported(policy, args.format, args.int8)
    if refusal is not None:  # before the int8 calibration's env and episodes
        raise ImitateError(refusal)
    int8 = args.int8_setting
    recorded_env = policy.provenance.get("env_id")
    env_id = recorded_env or "policy"
    calibration, choice = None, None
    bits = None if int8("activation_bits") == "auto" else int8("activation_bits")
    said: list[str] = []
    if args.int8:
        meta = read_policy_meta(args.policy)
        env = env_as_trained(meta, args.env)  # with the kwargs it was trained with
        calibration, choice = int8_export_inputs(
            policy, env, int8("episodes"), int8("seed"),
            int8("activation_bits"), int8("min_parity"), args.js_gate, int8("gate_episodes"),
            str(args.policy),
        )  # fmt: skip
        if env is not None:  # checked by now: the same spaces, said as eval says it
            say_other_env(
                meta, env, str(args.policy), "calibrated", lambda m: console.warn(said, m)
            )
        if choice is not None:
            print(f"imitate: int8 export: {choice.reason}", file=sys.stderr)
    target = args.out or default_run_dir(env_id, "export", 0)
    with artefact_dir(target, "export", inputs=(args.policy,)) as artefacts:
        result = export_into(
            policy, args.format, artefacts.work, args.int8, calibration, args.prefix,
            bits, args.algo, int8("input_bits"), not args.int8 or args.js_gate is not None, choice,
        )  # fmt: skip
        result = console.with_warnings(said, result)
        record_run(artefacts.work, args, "export", result)
    return artefacts.final(result)


def run_expert(args: c.ExpertCommand) -> dict[str, Any]:
    from agents import zoo

    action = args.action
    if isinstance(action, c.ExpertListCommand):  # reads the manifest: no env, no rollouts
        return {"experts": zoo.list_experts()}
    if isinstance(action, c.ExpertEvalCommand):
        return run_expert_eval(action.setup, action.episodes, action.seed)
    zoo.zoo_spec(action.env)
    if action.timesteps is not None:
        validate.count("timesteps", action.timesteps)
    if action.out is not None:
        check_out(action.out, "file")
    own_folder = action.out is None and not action.ship
    out = default_run_dir(action.env, "expert-train", action.seed) / "expert.zip"
    every = action.snapshot_every or zoo.Snapshots.every
    try:
        entry = zoo.train_and_record(
            action.env, action.seed, None if action.ship else (action.out or out),
            action.timesteps, action.ship, _progress(),
            zoo.Snapshots(action.snapshots, every, action.resume),
        )  # fmt: skip
    except BaseException as exc:
        if (inner := interrupted_in(exc)) is not None:  # also when SB3's save wrapped it
            inner.resume_hint = _expert_train_resume(action)
        raise
    if own_folder:
        from imitate.jobs import record_run

        record_run(out.parent, action, "expert_train", entry)
    return entry


def _expert_train_resume(action: c.ExpertTrainCommand) -> str | None:
    """``imitate expert train`` as ``action`` asked it, with ``--resume``: how an interrupted
    run continues from its newest snapshot; None without one (nothing to resume from)."""
    import dataclasses
    import shlex

    from agents.training_state import snapshot_zips

    if action.snapshots is None or not snapshot_zips(action.snapshots):
        return None
    words = ["imitate", "expert", "train", "--env", action.env]
    for spec in dataclasses.fields(action):
        value = getattr(action, spec.name)
        if spec.name in ("env", "resume") or value == spec.default:
            continue
        flag = "--" + spec.name.replace("_", "-")
        words += [flag] if value is True else [flag, str(value)]
    return shlex.join([*words, "--resume"])


def run_sweep_command(args: c.SweepCommand) -> dict[str, Any]:
    from imitate.jobs import sweep_into
    from imitate.sweep import SweepConfig, parse_axis

    backend = args.rollouts.to_backend()
    from imitate.environments import parse_env_kwargs

    env = _checked_env(args.env, args.env_kwargs)
    axes = tuple(parse_axis(text) for text in (args.grid or ("episodes=1,2,5",)))
    config = SweepConfig(
        env_id=args.env, axes=axes, seeds=args.seeds, episodes=args.episodes,
        eval_episodes=args.eval_episodes, bc=args.config,
        env_kwargs=tuple(sorted(parse_env_kwargs(args.env_kwargs).items())),
    )  # fmt: skip
    expert = _resolve(args.sb3, args.expert, env)
    target = args.out or default_run_dir(args.env, "sweep", args.seeds[0] if args.seeds else 0)
    inputs = _inputs(args.expert)
    with artefact_dir(target, "sweep", inputs=inputs) as artefacts, backend.open() as rollouts:
        write_json(artefacts.work / "config.json", config_to_json(args))
        log = _log(artefacts.work, args)
        result = sweep_into(expert, config, artefacts.work, rollouts, log, _progress())
    return artefacts.final(result)


def run_data(args: c.DataCommand) -> dict[str, Any]:
    import os

    from imitate.data import load_dataset
    from imitate.minari_io import export_minari, import_minari
    from imitate.runs import refuse_foreign_file

    action = args.action
    if action.root is not None:
        check_out(action.root, "dir")
        os.environ["MINARI_DATASETS_PATH"] = str(action.root)
    if isinstance(action, c.DataExportMinariCommand):
        dataset = load_dataset(action.data)
        path = export_minari(dataset, action.dataset_id, description=f"from {action.data}")
        counts = {"episodes": dataset.n_episodes, "transitions": len(dataset)}
        return {"dataset_id": action.dataset_id, "path": path, **counts}
    if action.out is not None:
        check_out(action.out, "file")
        refuse_foreign_file(action.out)
    dataset = import_minari(action.dataset_id)
    out = action.out or default_run_dir(dataset.meta.env_id, "import-minari", 0) / "demos.npz"
    with out_lock(out):  # creates the run folder (removed again if the save fails)
        dataset.save(out)
    return {
        "data": str(out), "dataset_id": action.dataset_id, "env": dataset.meta.env_id,
        "episodes": dataset.n_episodes, "transitions": len(dataset),
    }  # fmt: skip


def run_compress(args: c.CompressCommand) -> dict[str, Any]:
    from imitate.data import load_dataset
    from imitate.jobs import compress_dataset
    from imitate.policy import load_policy

    policy, dataset = load_policy(args.policy), load_dataset(args.data)
    out = args.out or args.data.with_suffix(".imz")
    return compress_dataset(
        policy, dataset, out, args.resolution, (str(args.policy), str(args.data))
    )


def run_decompress(args: c.DecompressCommand) -> dict[str, Any]:
    from imitate.compress import decompress_actions, read_imz
    from imitate.data import load_dataset
    from imitate.policy import load_policy

    policy, compressed = load_policy(args.policy), read_imz(args.imz)
    dataset = load_dataset(args.data)
    actions = decompress_actions(policy, dataset.obs, compressed)
    out = replace(dataset, actions=actions).save(args.out)
    return {"out": str(out), "actions": len(actions)}


HANDLERS: dict[type, Any] = {
    c.CollectCommand: run_collect, c.BCCommand: run_bc, c.EvalCommand: run_eval,
    c.RunCommand: run_main_job, c.ExpertCommand: run_expert, c.DaggerCommand: run_dagger,
    c.DriftCommand: run_drift, c.DistillCommand: run_distill, c.ExportCommand: run_export,
    c.OodCommand: run_ood, c.SweepCommand: run_sweep_command, c.DataCommand: run_data,
    c.CompressCommand: run_compress, c.DecompressCommand: run_decompress,
}  # fmt: skip


def parse(argv: list[str]) -> Any:
    """Parse ``argv`` into a command dataclass; bad flags exit 2 with one line on stderr.
    ``--from config.json`` (a run folder's) gives the defaults: the run is repeated."""
    argv = [c.ALIASES.get(argv[0] if argv else "", {}).get(a, a) for a in argv]
    if argv and argv[0] == "distill":
        _refuse_two_teachers(argv)
    default = None
    if "--from" in argv:
        from imitate.runs import load_command_config

        at = argv.index("--from")
        if at + 1 >= len(argv):
            raise ImitateError("--from needs a config.json path")
        names = console.command_names(c.Command)
        kind = dict(zip(names, console.command_types(c.Command), strict=True)).get(argv[0])
        if kind is None or kind in (c.ExpertCommand, c.DataCommand):
            raise ImitateError("--from follows a command that records its config.json")
        default = replace(load_command_config(kind, Path(argv[at + 1])), out=None)
        argv = argv[:at] + argv[at + 2 :]
    resumed = _resumed_settings(argv)
    if resumed is not None:
        if default is not None:
            raise ImitateError("--resume restores the run's own settings: drop --from")
        default, saved = resumed
    command = console.parse(c.Command, argv, c.DESCRIPTION, default)
    if resumed is not None:
        from imitate.errors import ResumeError
        from imitate.runs import first_difference, json_form, resume_settings

        changed = first_difference(saved, json_form(resume_settings(command)))
        if changed is not None:  # a resumed run must equal the uninterrupted one
            raise ResumeError(
                f"{command.resume}: was started with other settings ({changed}); drop the "
                f"flag: --resume {command.resume} alone restores them"
            )
    return command


def _refuse_two_teachers(argv: list[str]) -> None:
    """distill's ``--expert`` is another name for ``--teacher`` (the last one given would
    win): both with different values name two teachers, refused rather than one dropped."""
    given: dict[str, str] = {}
    for i, arg in enumerate(argv):
        flag, sep, value = arg.partition("=")
        if flag in ("--teacher", "--expert"):
            if not sep:
                value = argv[i + 1] if i + 1 < len(argv) else ""
            given.setdefault(flag, value)
            if given.get("--teacher", value) != given.get("--expert", value):
                raise ImitateError(
                    f"--teacher {given['--teacher']} and --expert {given['--expert']} name "
                    "two teachers (--expert is distill's other name for --teacher): give one"
                )


def _resumed_settings(argv: list[str]) -> tuple[Any, dict[str, Any]] | None:
    """For ``dagger``/``run`` with ``--resume DIR``: the command rebuilt from the settings
    saved in ``DIR/.resume/config.json`` (the defaults of the parse, so only ``--resume``
    is needed; a flag given with the saved value changes nothing, another value is refused
    in :func:`parse`) and those settings; None when there is no such file (the command then
    says there is nothing to resume) or it was written by another command."""
    from imitate.runs import RESUME_DIR, config_from_json, saved_settings

    kinds = {"dagger": c.DaggerCommand, "run": c.RunCommand}
    if not argv or argv[0] not in kinds:
        return None
    folder = None
    for at, arg in enumerate(argv):
        if arg == "--resume" and at + 1 < len(argv):
            folder = argv[at + 1]
        elif arg.startswith("--resume="):
            folder = arg.split("=", 1)[1]
    if folder is None:
        return None
    settings = saved_settings(Path(folder), argv[0])
    if settings is None:
        return None  # the command's own resume check says why
    where = f"{Path(folder) / RESUME_DIR / 'config.json'} config"
    restored = config_from_json(kinds[argv[0]], settings, where)
    return replace(restored, resume=Path(folder)), settings


def _prepare_runtime() -> None:
    """What every command needs once its arguments parse: the custom envs registered,
    gymnasium's warnings quiet, the thread policy (``IMITATE_THREADS``, default 1)."""
    import warnings

    import gymnasium as gym

    import envs  # noqa: F401  (registers the imitate/... envs)
    from imitate.threads import set_threads

    set_threads()
    gym.logger.min_level = 40  # keep library warnings out of the one-line error contract
    warnings.showwarning = console.warning_line


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``imitate`` console script.

    Exit codes: 0, 2 (bad input or a file-system fault, one line), 130/143 (SIGINT/SIGTERM,
    one line ``imitate: interrupted``)."""
    return console.guarded(lambda: _main(argv), own_process=argv is None)


def _main(argv: list[str] | None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        command = parse(args)
    except ImitateError as exc:
        console.report_error(str(exc), "--json" in args)
        return 2
    if not (
        isinstance(command, c.ExpertCommand) and isinstance(command.action, c.ExpertListCommand)
    ):
        _prepare_runtime()  # (`expert list` only reads the manifest)
    as_json = bool(getattr(command, "json", False))
    return console.run_handler(lambda: HANDLERS[type(command)](command), as_json)


if __name__ == "__main__":
    raise SystemExit(main())
