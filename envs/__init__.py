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
from envs.obs_envs import ObsExpert
from envs.pixel_cartpole import PixelCartPoleExpert
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

# Observation envs: one per observation space, the correct action a function of it. They
# end themselves after OBS_HORIZON steps; the TimeLimit says so to horizon-aware tools.
OBS_HORIZON = 50
OBS_ENVS = {
    "imitate/ObsDict-v0": "dict",
    "imitate/ObsTuple-v0": "tuple",
    "imitate/ObsDiscrete-v0": "discrete",
    "imitate/ObsMultiBinary-v0": "multi_binary",
    "imitate/ObsText-v0": "text",
}
for _env_id, _kind in OBS_ENVS.items():
    if _env_id not in gym.registry:
        gym.register(
            _env_id,
            entry_point="envs.obs_envs:ObsEnv",
            kwargs={"kind": _kind, "horizon": OBS_HORIZON},
            max_episode_steps=OBS_HORIZON,
        )
    EXPERTS[_env_id] = functools.partial(ObsExpert, _kind)

# Pixel CartPole: stacked 40x60 grey frames; the expert acts on the true state (privileged).
if "imitate/PixelCartPole-v1" not in gym.registry:
    gym.register(
        "imitate/PixelCartPole-v1",
        entry_point="envs.pixel_cartpole:PixelCartPoleEnv",
        max_episode_steps=500,
        reward_threshold=475.0,
    )
EXPERTS["imitate/PixelCartPole-v1"] = PixelCartPoleExpert
STATE_TWINS = {"imitate/PixelCartPole-v1": "CartPole-v1"}
"""Pixel envs -> the state env whose expert acts for them (on ``env.unwrapped.state``)."""

__all__ = ["EXPERTS", "LABEL_ENVS", "OBS_ENVS", "OBS_HORIZON", "STATE_TWINS", "TIGHTROPE_HORIZON"]
