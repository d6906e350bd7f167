"""BabyAI's hand-written bot as a batched, privileged expert.

minigrid ships ``minigrid.utils.baby_ai_bot.BabyAIBot``, a planner that solves the
BabyAI levels from the full grid (not from the agent's 7x7 view): it needs the env
object, so :class:`BabyAIExpert` implements the privileged protocol of
:mod:`imitate.privileged` (``act_envs``): one bot per env, created when the env starts an
episode (``starts``), asked to ``replan`` once per step. When a learner acted instead
(DAgger), the action actually taken is passed to the bot, which then plans to undo or
absorb it; when the bot's own suggestion was taken it is told nothing (``None``), as its
docstring prescribes.

Needs the ``minigrid`` package (``pip install imitate[babyai]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from imitate.errors import EnvError
from imitate.privileged import PrivilegedExpertError

BABYAI_PREFIXES = ("BabyAI-", "MiniGrid-")


def ensure_minigrid() -> None:
    """Import minigrid (which registers the BabyAI and MiniGrid envs with gymnasium);
    ``EnvError`` with the install hint when it is missing."""
    try:
        import minigrid  # noqa: F401
    except ImportError as exc:
        raise EnvError(
            "BabyAI/MiniGrid envs need the minigrid package: pip install 'imitate[babyai]'"
        ) from exc


def is_babyai(env_id: str) -> bool:
    """True for a BabyAI or MiniGrid env id (``BabyAI-GoToLocal-v0``, ...)."""
    return env_id.split(":")[-1].startswith(BABYAI_PREFIXES)


def bot_plays(env_id: str) -> bool:
    """True for the envs the bot can plan on: BabyAI levels (``BabyAI-*``, whose envs carry
    the ``instrs`` the bot reads), not plain MiniGrid envs (``MiniGrid-Empty-5x5-v0``)."""
    return env_id.split(":")[-1].startswith("BabyAI-")


class BabyAIExpert:
    """``BabyAIBot`` per env slot, behind ``act_envs`` (see the module docstring).

    The bots are keyed by the unwrapped env object; ``starts[i]`` replaces env i's bot.
    Actions are ``int64 [B]`` in the env's ``Discrete(7)`` action space."""

    def __init__(self) -> None:
        ensure_minigrid()
        from minigrid.utils.baby_ai_bot import BabyAIBot

        self._bot_class = BabyAIBot
        self._bots: dict[int, tuple[Any, int]] = {}  # id(unwrapped env) -> (bot, suggestion)

    def act_envs(
        self,
        envs: Sequence[gym.Env[Any, Any]],
        obs: Any,
        starts: np.ndarray,
        taken: np.ndarray | None,
    ) -> np.ndarray:
        actions = np.empty(len(envs), np.int64)
        for i, env in enumerate(envs):
            base = env.unwrapped
            key = id(base)
            previous = self._bots.get(key)
            if bool(starts[i]) or previous is None:
                bot, action_taken = self._bot_class(base), None
            else:
                bot, suggested = previous
                other = taken is not None and int(taken[i]) != suggested
                action_taken = int(taken[i]) if other and taken is not None else None
            action = int(bot.replan(action_taken))
            self._bots[key] = (bot, action)
            actions[i] = action
        return actions

    def act(self, obs: Any) -> np.ndarray:
        raise PrivilegedExpertError(
            "the BabyAI bot plans on the env itself; it cannot label observations alone"
        )
