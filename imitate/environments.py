"""What "an env" means to imitate: a gymnasium id, an ``EnvSpec`` or a factory, plus kwargs.

Every rollout function takes an :data:`EnvLike` and turns it into one gymnasium
``EnvSpec`` with :func:`env_spec`; gymnasium's own ``make``/``make_vec`` then build the
envs from it, so the kwargs and the user's wrappers (``EnvSpec.additional_wrappers``,
applied by ``gym.make`` to every copy) are the same in collection, DAgger, evaluation
and on Ray workers (the spec is what they receive).

* ``"CartPole-v1"``: a registered id.
* ``"mypkg.envs:Line-v0"``: gymnasium's ``module:EnvId`` form; the module is imported
  (it registers the env) and the returned spec keeps the ``module:`` prefix in its id, so
  a dataset or checkpoint that records the id can recreate the env in a fresh process.
* an ``EnvSpec`` (gymnasium's ``gym.spec(...)``, possibly edited).
* a factory ``() -> gym.Env`` (not restorable from a file: the id records its name only).

:func:`env_record` is what datasets and checkpoints store (``env_id``, ``env_kwargs``,
``env_wrappers``); :func:`env_spec` of that record recreates the env.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec, WrapperSpec

from imitate.errors import EnvError

EnvLike: TypeAlias = "str | EnvSpec | Callable[[], gym.Env[Any, Any]]"
"""An env id (``Id`` or ``module:Id``), a gymnasium ``EnvSpec``, or a factory."""


def env_spec(
    env: EnvLike,
    kwargs: Mapping[str, Any] | None = None,
    wrappers: Sequence[WrapperSpec | dict[str, Any] | type] = (),
) -> EnvSpec:
    """The gymnasium spec of ``env`` with ``kwargs`` over its registered kwargs and
    ``wrappers`` appended to its ``additional_wrappers``; unknown ids raise ``EnvError``.

    ``wrappers`` items: a ``WrapperSpec``, its JSON dict, or an importable ``gym.Wrapper``
    class taking only ``env`` (``gym.make`` imports wrappers by ``module:Class``).
    """
    if isinstance(env, EnvSpec):
        spec = env
    elif isinstance(env, str):
        spec = _registered(env)
    elif isinstance(env, gym.Env):
        raise EnvError(
            f"got an env instance ({type(env).__name__}); imitate makes one copy per vector "
            "slot: pass its id, its EnvSpec or a factory (lambda: MyEnv(...))"
        )
    elif callable(env):
        name = re.sub(r"[^\w.-]+", "_", getattr(env, "__name__", "factory")).strip("_")
        spec = EnvSpec(id=name or "factory", entry_point=env)  # type: ignore[arg-type]
    else:
        raise EnvError(f"not an env id, EnvSpec or factory: {env!r}")
    extra = tuple(_wrapper_spec(w) for w in wrappers)
    if not kwargs and not extra:
        return spec
    return dataclasses.replace(
        spec,
        kwargs={**spec.kwargs, **(kwargs or {})},
        additional_wrappers=(*spec.additional_wrappers, *extra),
    )


_MINIGRID_PREFIXES = ("BabyAI-", "MiniGrid-")


def _registered(env_id: str) -> EnvSpec:
    module = None
    name = env_id
    if ":" in env_id:
        module, name = env_id.split(":", 1)
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise EnvError(f"cannot import {module!r} for env {env_id!r}: {exc}") from exc
    elif name.startswith(_MINIGRID_PREFIXES) and name not in gym.registry:
        try:  # minigrid registers its BabyAI / MiniGrid envs when imported
            importlib.import_module("minigrid")
        except ImportError as exc:
            raise EnvError(
                f"env {env_id!r} needs the minigrid package: pip install 'imitate[babyai]'"
            ) from exc
    try:
        spec = gym.spec(name)
    except gym.error.Error as exc:
        raise EnvError(f"unknown env id {env_id!r}: {exc}") from exc
    return spec if module is None else dataclasses.replace(spec, id=env_id)


def _wrapper_spec(wrapper: WrapperSpec | dict[str, Any] | type) -> WrapperSpec:
    if isinstance(wrapper, WrapperSpec):
        return wrapper
    if isinstance(wrapper, dict):
        return WrapperSpec(**wrapper)
    if isinstance(wrapper, type) and issubclass(wrapper, gym.Wrapper):
        entry = f"{wrapper.__module__}:{wrapper.__qualname__}"
        return WrapperSpec(name=wrapper.__name__, entry_point=entry, kwargs={})
    raise EnvError(
        f"wrapper {wrapper!r}: give a gym.Wrapper class or a gymnasium WrapperSpec "
        "(with kwargs), so that every env copy gets the same wrapper"
    )


def env_name(env: EnvLike) -> str:
    """The id an env is recorded and displayed under."""
    return env if isinstance(env, str) else env_spec(env).id


def env_record(env: EnvLike) -> dict[str, Any]:
    """``env_id``, ``env_kwargs`` and ``env_wrappers`` (JSON) of ``env``: what datasets and
    checkpoints store; ``env_spec(id, kwargs, wrappers)`` recreates the env."""
    spec = env_spec(env)
    base = spec.kwargs
    if isinstance(spec.id, str):
        try:
            base = _registered(spec.id).kwargs
        except EnvError:  # a factory or an unregistered spec: record every kwarg
            base = {}
    kwargs = {k: v for k, v in spec.kwargs.items() if k not in base or base[k] != v}
    return {
        "env_id": spec.id,
        "env_kwargs": _jsonable(kwargs, spec.id),
        "env_wrappers": [
            {"name": w.name, "entry_point": w.entry_point, "kwargs": w.kwargs}
            for w in spec.additional_wrappers
        ],
    }


def _jsonable(kwargs: dict[str, Any], env_id: str) -> dict[str, Any]:
    try:
        return dict(json.loads(json.dumps(kwargs)))
    except TypeError as exc:
        raise EnvError(f"env kwargs of {env_id} must be JSON values to be recorded: {exc}") from exc


def spec_of_record(record: Mapping[str, Any]) -> EnvSpec:
    """The spec an :func:`env_record` (or a dataset's/checkpoint's metadata) describes."""
    return env_spec(
        str(record["env_id"]),
        record.get("env_kwargs") or None,
        tuple(record.get("env_wrappers") or ()),
    )


def parse_env_kwargs(items: Sequence[str]) -> dict[str, Any]:
    """``["size=5", "continuous=True", "mode=fast"]`` -> ``{"size": 5, ...}``.

    Values are JSON (numbers, ``true``, lists, quoted strings), Python's ``True``,
    ``False``, ``None``, or else plain strings."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise EnvError(f"--env-kwargs takes key=value items, got {item!r}")
        literal = {"True": True, "False": False, "None": None}
        if text in literal:
            parsed[key] = literal[text]
            continue
        try:
            parsed[key] = json.loads(text)
        except json.JSONDecodeError:
            parsed[key] = text
    return parsed
