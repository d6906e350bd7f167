"""Expert resolution: one place that turns what the user wrote after ``--expert`` into a Policy.

=============================  ===============================================================
``--expert``                   expert
=============================  ===============================================================
``heuristic``                  the scripted expert of the env (agents/heuristics, envs/;
                               BabyAI-* levels: the BabyAI bot, agents/babyai; plain
                               MiniGrid-* envs have none)
``zoo``                        the shipped SB3 expert (agents/pretrained, no pickle run)
``auto``                       ``zoo`` if shipped for the env, else ``heuristic``
``run/policy.pt``              an imitate checkpoint
``ppo.zip`` or ``ppo``         an SB3 (or sb3-contrib) zip, with or without ``.zip``
``logs/ppo/Acrobot-v1_1``      an rl-zoo3 run folder: ``<env>.zip`` (or ``best_model.zip``),
                               ``<env>/vecnormalize.pkl``, ``<env>/config.yml``
``mypkg.experts:LineExpert``   ``module:attr``: a Policy object, class or factory in user code
=============================  ===============================================================

VecNormalize: the statistics come from ``--vecnormalize PATH``, else a
``vecnormalize.pkl`` beside the zip (or in the rl-zoo ``<env>/`` folder), else the
legacy ``<zip>.json`` sidecar. A zip trained with observation normalisation but without
statistics is refused (:func:`agents.vecnorm.trained_with_obs_normalization` gives the
rules; an rl-zoo ``config.yml`` with ``normalize:`` set says it too). Where an off-policy
zip cannot tell and no ``config.yml`` says, one warning line asks for ``--vecnormalize``.

Trust: SB3 zips are pickles. A zip is only loaded (unpickled by SB3) when the user
names it, directly or by naming its rl-zoo run folder; ``module:attr`` imports code the
user named. ``vecnormalize.pkl`` files are read without running code
(:mod:`agents.vecnorm`), so one found beside a named zip is safe. Shipped zoo experts
load with schedules replaced by constants (:mod:`agents.zoo`).

Every resolved expert carries ``provenance``: a JSON dict (``spec``, ``kind``, ``path``,
``algo``, ``vecnormalize``) that collection records in datasets and training copies into
checkpoints, so ``imitate eval`` can name the expert it calibrates against.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from imitate.environments import EnvLike, env_name
from imitate.errors import EnvError, ImitateError
from imitate.runtime import Policy

# Which algorithm class loads a zip, from the module of its saved policy class.
_ALGOS_BY_MODULE = {
    "stable_baselines3.common.policies": ("PPO", "A2C"),
    "stable_baselines3.dqn.policies": ("DQN",),
    "stable_baselines3.sac.policies": ("SAC",),
    "stable_baselines3.td3.policies": ("TD3",),
    "sb3_contrib.qrdqn.policies": ("QRDQN",),
    "sb3_contrib.tqc.policies": ("TQC",),
    "sb3_contrib.crossq.policies": ("CrossQ",),
    "sb3_contrib.ars.policies": ("ARS",),
    "sb3_contrib.common.recurrent.policies": ("RecurrentPPO",),
    "sb3_contrib.common.maskable.policies": ("MaskablePPO",),
}
_CONTRIB = {"QRDQN", "TQC", "CrossQ", "ARS", "RecurrentPPO", "MaskablePPO", "TRPO"}
_ZOO_ALGOS = {
    "ppo": "PPO", "a2c": "A2C", "dqn": "DQN", "sac": "SAC", "td3": "TD3", "qrdqn": "QRDQN",
    "tqc": "TQC", "trpo": "TRPO", "ars": "ARS", "crossq": "CrossQ", "ppo_lstm": "RecurrentPPO",
}  # fmt: skip


@dataclass(frozen=True)
class SB3Files:
    """The files of one SB3 expert: the zip, its statistics (if any) and rl-zoo config."""

    zip: Path
    vecnormalize: Path | None = None
    config: Path | None = None
    algo: str | None = None
    """SB3 class name when known from an rl-zoo folder (``PPO``, ``QRDQN``, ...)."""


def find_sb3_files(spec: str, vecnormalize: Path | None = None) -> SB3Files | None:
    """The SB3 files ``spec`` names (zip with or without ``.zip``, or an rl-zoo run
    folder), or None when it names none."""
    path = Path(spec)
    if path.is_dir():
        return _zoo_run_folder(path, vecnormalize)
    if path.suffix != ".zip" and path.with_name(path.name + ".zip").is_file():
        path = path.with_name(path.name + ".zip")  # SB3 appends .zip on save
    if path.suffix != ".zip":
        return None
    if not path.is_file():
        raise ImitateError(f"{path}: expert file not found")
    beside = path.parent / "vecnormalize.pkl"
    stats = vecnormalize or (beside if beside.is_file() else None)
    return SB3Files(zip=path, vecnormalize=stats)


def _zoo_run_folder(folder: Path, vecnormalize: Path | None) -> SB3Files:
    """rl-zoo3 layout: ``logs/<algo>/<env>_<n>/{<env>.zip, best_model.zip, <env>/...}``."""
    match = re.fullmatch(r"(.+)_\d+", folder.name)
    env_id = match.group(1) if match else folder.name
    for name in (f"{env_id}.zip", "best_model.zip"):
        if (folder / name).is_file():
            zip_path = folder / name
            break
    else:
        zips = sorted(folder.glob("*.zip"))
        if len(zips) != 1:
            raise ImitateError(
                f"{folder}: not an rl-zoo run folder (expected {env_id}.zip or best_model.zip)"
            )
        zip_path = zips[0]
    inner = folder / env_id
    stats = vecnormalize
    if stats is None and (inner / "vecnormalize.pkl").is_file():
        stats = inner / "vecnormalize.pkl"
    if stats is None and (folder / "vecnormalize.pkl").is_file():
        stats = folder / "vecnormalize.pkl"
    config = inner / "config.yml" if (inner / "config.yml").is_file() else None
    algo = _ZOO_ALGOS.get(folder.parent.name.lower())
    return SB3Files(zip=zip_path, vecnormalize=stats, config=config, algo=algo)


class _ZooConfigLoader(yaml.SafeLoader):
    """rl-zoo3 writes ``config.yml`` as a python/object/apply:collections.OrderedDict
    of [key, value] pairs: read those as plain dicts, construct nothing else."""


def _ordered_dict(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.SequenceNode):
        items = loader.construct_sequence(node, deep=True)
        if items and isinstance(items[0], list) and items[0] and isinstance(items[0][0], list):
            items = items[0]  # apply: [[[k, v], ...]] (the args list)
        return {str(k): v for k, v in items}
    return dict(loader.construct_mapping(node, deep=True))


_ZooConfigLoader.add_constructor(
    "tag:yaml.org,2002:python/object/apply:collections.OrderedDict", _ordered_dict
)


def zoo_config_normalize(config: Path) -> bool:
    """Whether an rl-zoo ``config.yml`` trained under VecNormalize with observations
    normalised (``normalize: true`` or a kwargs string/dict without ``norm_obs: False``)."""
    try:
        data = yaml.load(config.read_text(), Loader=_ZooConfigLoader)
    except yaml.YAMLError as exc:
        raise ImitateError(f"{config}: unreadable rl-zoo config ({exc})") from exc
    value = data.get("normalize") if isinstance(data, dict) else None
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "none", "") and not re.search(
            r"norm_obs['\"]?\s*:\s*False", value
        )
    if isinstance(value, dict):
        return bool(value.get("norm_obs", True))
    return bool(value)


def _algo_classes(names: tuple[str, ...]) -> list[Any]:
    classes = []
    for name in names:
        module_name = "sb3_contrib" if name in _CONTRIB else "stable_baselines3"
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ImitateError(
                f"{name} experts need sb3-contrib: pip install 'imitate[sb3-contrib]'"
            ) from None
        classes.append(getattr(module, name))
    return classes


def load_sb3_model(files: SB3Files) -> Any:
    """Load the zip (a pickle: trusted input) with the class its policy module names."""
    from agents.vecnorm import policy_module

    module = policy_module(files.zip)
    names = (files.algo,) if files.algo else _ALGOS_BY_MODULE.get(module, ())
    if not names:
        names = ("PPO", "DQN", "SAC")
    custom_objects = {
        "learning_rate": 0.0,
        "lr_schedule": lambda _: 0.0,
        "clip_range": lambda _: 0.0,
        "exploration_schedule": lambda _: 0.0,
    }
    errors = []
    for cls in _algo_classes(names):
        try:
            return cls.load(files.zip, device="cpu", custom_objects=custom_objects)
        except Exception as exc:  # SB3 raises various types for a zip of another algorithm
            errors.append(f"{cls.__name__}: {str(exc).splitlines()[0] if str(exc) else exc!r}")
    raise ImitateError(f"{files.zip}: not a loadable stable-baselines3 model ({'; '.join(errors)})")


def obs_statistics(files: SB3Files) -> dict[str, Any] | None:
    """The VecNormalize observation statistics to apply, or None; refuses a zip trained
    with normalised observations when none are found."""
    import json

    from agents.vecnorm import read_vecnormalize, trained_with_obs_normalization

    if files.vecnormalize is not None:
        if files.vecnormalize.suffix == ".json":
            return dict(json.loads(files.vecnormalize.read_text()).get("obs_norm") or {}) or None
        return read_vecnormalize(files.vecnormalize)
    sidecar = files.zip.with_suffix(".json")  # imitate's own <zip>.json (expert train --out)
    if sidecar.is_file():
        entry = json.loads(sidecar.read_text())
        if isinstance(entry, dict) and entry.get("obs_norm"):
            return dict(entry["obs_norm"])
    evidence = trained_with_obs_normalization(files.zip)
    normalized = bool(evidence)
    if files.config is not None:
        normalized = normalized or zoo_config_normalize(files.config)
    if normalized:
        raise ImitateError(
            f"{files.zip} was trained with VecNormalize but its statistics are missing: put "
            "vecnormalize.pkl beside it or pass --vecnormalize PATH"
        )
    if evidence is None and files.config is None:
        warnings.warn(
            f"{files.zip}: an off-policy SB3 zip does not record whether it was trained with "
            "VecNormalize; if it was, pass --vecnormalize PATH (its actions are wrong without)",
            NormalizationUnknownWarning,
            stacklevel=3,
        )
    return None


class NormalizationUnknownWarning(UserWarning):
    """An off-policy SB3 zip without statistics whose data cannot say whether it was trained
    under VecNormalize (:func:`agents.vecnorm.trained_with_obs_normalization` gave None)."""


def load_sb3_expert(
    spec: str, env: EnvLike, vecnormalize: Path | None = None, safe: bool = False
) -> Any:
    """An SB3 teacher for the files ``spec`` names, checked against ``env``'s spaces; with
    ``safe``, the actor rebuilt from the zip's tensors (:mod:`agents.sb3_safe`, nothing
    unpickled) instead of SB3's loader (which runs the zip's pickles)."""
    from agents.teachers import SB3Teacher
    from agents.zoo import obs_norm_of

    files = find_sb3_files(spec, vecnormalize)
    if files is None:
        raise ImitateError(f"{spec}: not an SB3 zip or rl-zoo run folder")
    stats = obs_statistics(files)
    norm = obs_norm_of({"obs_norm": stats}) if stats else None
    if safe:
        from agents.sb3_safe import load_safe_for_env

        safe_teacher = load_safe_for_env(files.zip, env, norm)  # type: ignore[arg-type]
        safe_teacher.provenance = ExpertRecord(  # type: ignore[attr-defined]
            spec=spec,
            kind="sb3",
            path=str(files.zip),
            vecnormalize=None if stats is None else str(stats.get("file", files.vecnormalize)),
        ).to_json()
        return safe_teacher
    model = load_sb3_model(files)
    teacher = SB3Teacher(model, norm)
    _check_spaces(teacher.model, env, str(files.zip))
    teacher.provenance = ExpertRecord(  # type: ignore[attr-defined]
        spec=spec,
        kind="sb3",
        path=str(files.zip),
        algo=type(model).__name__,
        vecnormalize=None if stats is None else str(stats.get("file", files.vecnormalize)),
    ).to_json()
    return teacher


def _check_spaces(model: Any, env: EnvLike, name: str) -> None:
    from imitate.collect import env_spaces
    from imitate.spaces import space_text

    obs_space, action_space = env_spaces(env)
    if model.observation_space.shape != obs_space.shape or model.action_space != action_space:
        raise EnvError(
            f"{name} was trained for observations {space_text(model.observation_space)} and "
            f"actions {space_text(model.action_space)}, which do not match {env_name(env)}"
        )


@dataclass(frozen=True)
class ExpertRecord:
    """Provenance of a resolved expert (JSON in datasets and checkpoints)."""

    spec: str
    """What the user wrote (``zoo``, ``ppo.zip``, ...): ``resolve_expert(spec)`` again."""
    kind: str
    """``heuristic``, ``zoo``, ``sb3``, ``imitate`` or ``python``."""
    path: str | None = None
    algo: str | None = None
    vecnormalize: str | None = None
    """Statistics file applied (``--vecnormalize`` or found beside the zip)."""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def default_expert(env: EnvLike) -> str | None:
    """'zoo' when a zoo expert is shipped for the env, else 'heuristic' when one exists."""
    import envs
    from agents.babyai import bot_plays
    from agents.heuristics import HEURISTICS
    from agents.zoo import read_manifest

    env_id = env_name(env)
    if env_id in read_manifest():
        return "zoo"
    if env_id in HEURISTICS or env_id in envs.EXPERTS or bot_plays(env_id):
        return "heuristic"
    return None


def resolve_expert(
    spec: str, env: EnvLike, vecnormalize: Path | None = None, safe: bool = False
) -> Policy:
    """What ``--expert spec`` names (see the module table) -> a Policy for ``env``, with
    ``provenance``. ``vecnormalize`` only applies to SB3 experts; ``safe`` loads an SB3 zip
    from its tensors without unpickling (:mod:`agents.sb3_safe`)."""
    if vecnormalize is not None and not vecnormalize.is_file():
        raise ImitateError(f"{vecnormalize}: VecNormalize statistics not found")
    if spec == "auto":
        spec = default_expert(env) or "heuristic"
    expert = _resolve(spec, env, vecnormalize, safe)
    if getattr(expert, "provenance", None) is None:
        kind = spec if spec in ("heuristic", "zoo") else "imitate"
        if ":" in spec and not Path(spec).exists():
            kind = "python"
        with contextlib.suppress(AttributeError):  # a slotted user object: no provenance
            expert.provenance = ExpertRecord(spec=spec, kind=kind).to_json()  # type: ignore[attr-defined]
    return expert


def _check_registered_spaces(env: EnvLike, env_id: str) -> None:
    """A heuristic expert is written for its env as registered: refused (``EnvError``, before
    any step) when ``env``'s kwargs or wrappers give it other spaces (e.g. ``--env-kwargs
    kind=discrete`` on ``imitate/ObsDict-v0``), where it would fail inside its first act."""
    if isinstance(env, str):  # the registered env itself
        return
    from imitate.collect import env_spaces

    spaces, registered = env_spaces(env), env_spaces(env_id)
    if spaces != registered:
        raise EnvError(
            f"the heuristic expert of {env_id} acts on its registered spaces "
            f"({registered[0]}, {registered[1]}); these env settings give "
            f"{spaces[0]}, {spaces[1]}"
        )


def _resolve(spec: str, env: EnvLike, vecnormalize: Path | None, safe: bool) -> Policy:
    env_id = env_name(env)
    if vecnormalize is not None and (spec in ("heuristic", "zoo") or spec.endswith(".pt")):
        raise ImitateError("--vecnormalize applies to an SB3 zip expert only")
    if spec == "heuristic":
        import envs
        from agents.babyai import BabyAIExpert, bot_plays
        from agents.heuristics import HEURISTICS, heuristic_expert

        if bot_plays(env_id):  # the BabyAI bot (privileged: it plans on the env)
            return BabyAIExpert()
        if env_id in envs.EXPERTS or env_id in HEURISTICS:
            _check_registered_spaces(env, env_id)
        if env_id in envs.EXPERTS:
            return envs.EXPERTS[env_id]()  # type: ignore[return-value]
        if env_id in HEURISTICS:
            return heuristic_expert(env_id)
        known = ", ".join(sorted([*HEURISTICS, *envs.EXPERTS, "BabyAI-* (the BabyAI bot)"]))
        raise EnvError(f"no heuristic expert for {env_id!r} (available: {known})")
    if spec == "zoo":
        import envs
        from agents.zoo import PRETRAINED, load_zoo_teacher, read_manifest

        if env_id in envs.STATE_TWINS:  # a pixel env: the zoo expert of its state twin
            from envs.pixel_cartpole import PixelCartPoleExpert

            twin = envs.STATE_TWINS[env_id]
            expert = PixelCartPoleExpert(load_zoo_teacher(twin))
            entry = read_manifest()[twin]
            expert.provenance = ExpertRecord(  # type: ignore[attr-defined]
                spec="zoo", kind="zoo", path=str(PRETRAINED / entry["file"]), algo=entry["algo"]
            ).to_json()
            return expert

        teacher = load_zoo_teacher(env_id)
        entry = read_manifest()[env_id]
        teacher.provenance = ExpertRecord(
            spec="zoo", kind="zoo", path=str(PRETRAINED / entry["file"]), algo=entry["algo"]
        ).to_json()
        return teacher
    if spec.endswith(".pkl"):
        raise ImitateError(
            f"{spec} holds VecNormalize statistics, not a policy: pass the model as --expert "
            f"MODEL.zip and the statistics as --vecnormalize {spec}"
        )
    if spec.endswith(".pt"):
        return _imitate_policy(spec, env)
    if find_sb3_files(spec, vecnormalize) is not None:
        return load_sb3_expert(spec, env, vecnormalize, safe)
    if re.fullmatch(r"[\w.]+:[\w.]+", spec):
        return _python_expert(spec)
    raise ImitateError(
        f"unknown expert {spec!r}: use 'heuristic', 'zoo', an SB3 zip (with or without .zip), "
        "an rl-zoo run folder, an imitate policy .pt or module:attr"
    )


def _imitate_policy(spec: str, env: EnvLike) -> Policy:
    from imitate.jobs import check_policy_env
    from imitate.policy import load_policy

    policy = load_policy(spec)
    check_policy_env(policy, env, spec)  # eval's check: Dict spaces compared, not their shapes
    policy.provenance = ExpertRecord(spec=spec, kind="imitate", path=spec).to_json()
    return policy


def _python_expert(spec: str) -> Policy:
    module_name, attr = spec.split(":", 1)
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ImitateError(f"cannot import expert {spec!r}: {exc}") from exc
    expert = target() if callable(target) and not hasattr(target, "act") else target
    if isinstance(target, type):
        expert = target()
    if not callable(getattr(expert, "act", None)):
        raise ImitateError(f"expert {spec!r} has no act(obs) method")
    return expert
