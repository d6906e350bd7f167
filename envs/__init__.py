"""Custom gymnasium envs, registered under ``imitate/...`` on import.

``import envs`` registers them; each has an expert in :data:`EXPERTS`.
This package depends on gymnasium only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import gymnasium as gym

from envs.label_envs import LabelExpert

LABEL_ENVS = {
    "imitate/LabelDiscrete-v0": "discrete",
    "imitate/LabelMultiDiscrete-v0": "multi_discrete",
    "imitate/LabelMultiBinary-v0": "multi_binary",
    "imitate/LabelBox-v0": "box",
}

EXPERTS: dict[str, Callable[[], object]] = {}

for _env_id, _kind in LABEL_ENVS.items():
    if _env_id not in gym.registry:
        gym.register(_env_id, entry_point="envs.label_envs:LabelEnv", kwargs={"kind": _kind})
    EXPERTS[_env_id] = functools.partial(LabelExpert, _kind)

__all__ = ["EXPERTS", "LABEL_ENVS"]
