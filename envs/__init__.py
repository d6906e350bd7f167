"""Custom gymnasium envs, registered under ``imitate/...`` on import.

``import envs`` registers them; each has an expert in :data:`EXPERTS`.
This package depends on gymnasium only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import gymnasium as gym

from envs.braking import BrakingExpert
from envs.buttons import ButtonsExpert
from envs.label_envs import LabelExpert
from envs.tightrope import TightropeExpert

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

# Tightrope: the drift test env (with slips) and its calm twin for demonstrations.
TIGHTROPE_HORIZON = 400
for _env_id, _slip in (("imitate/Tightrope-v0", 0.002), ("imitate/TightropeCalm-v0", 0.0)):
    if _env_id not in gym.registry:
        gym.register(
            _env_id,
            entry_point="envs.tightrope:TightropeEnv",
            kwargs={"slip_prob": _slip},
            max_episode_steps=TIGHTROPE_HORIZON,
        )
    EXPERTS[_env_id] = TightropeExpert

# Braking: a rare (about 4 %) but critical action.
if "imitate/Braking-v0" not in gym.registry:
    gym.register("imitate/Braking-v0", entry_point="envs.braking:BrakingEnv", max_episode_steps=200)
EXPERTS["imitate/Braking-v0"] = BrakingExpert

# Buttons: a stochastic expert presses 3 correlated buttons with a known joint (MultiBinary).
if "imitate/Buttons-v0" not in gym.registry:
    gym.register("imitate/Buttons-v0", entry_point="envs.buttons:ButtonsEnv", max_episode_steps=100)
EXPERTS["imitate/Buttons-v0"] = ButtonsExpert

__all__ = ["EXPERTS", "LABEL_ENVS", "TIGHTROPE_HORIZON"]
