"""The expert zoo: stable-baselines3 experts trained with rl-baselines3-zoo hyperparameters.

Hyperparameters are copied as plain dicts from rl-baselines3-zoo's
``hyperparams/{ppo,dqn,sac}.yml`` (DLR-RM/rl-baselines3-zoo); the few
deviations are commented where they are. ``lin_<x>`` schedules become
:class:`LinearSchedule` objects at training time and are replaced by constants
at load time (``custom_objects``), so loading never unpickles a schedule.

Trained experts ship in ``agents/pretrained/`` as SB3 zips plus one manifest,
``experts.json``: training command, seed, steps, wall time, measured return
(50 episodes, reset seeds 10000 + i) and, for experts trained under
VecNormalize, the observation statistics (stored as numbers, not a pickle).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from imitate.errors import EnvError, ImitateError
from imitate.fileio import write_json

PRETRAINED = Path(__file__).parent / "pretrained"
MANIFEST = PRETRAINED / "experts.json"

Algo = Literal["ppo", "dqn", "sac"]


@dataclass(frozen=True)
class ZooSpec:
    """How one expert is trained and what it must reach."""

    env_id: str
    algo: Algo
    n_timesteps: int
    hyperparams: dict[str, Any]
    n_envs: int = 1
    normalize: bool = False
    required_return: float = 0.0
    policy_kwargs: dict[str, Any] = field(default_factory=dict)


ZOO: dict[str, ZooSpec] = {
    # ppo.yml, CartPole-v1 (tuned)
    "CartPole-v1": ZooSpec(
        "CartPole-v1",
        "ppo",
        100_000,
        {
            "n_steps": 32,
            "batch_size": 256,
            "gae_lambda": 0.8,
            "gamma": 0.98,
            "n_epochs": 20,
            "ent_coef": 0.0,
            "learning_rate": "lin_0.001",
            "clip_range": "lin_0.2",
        },
        n_envs=8,
        required_return=475.0,
    ),
    # ppo.yml, Acrobot-v1
    "Acrobot-v1": ZooSpec(
        "Acrobot-v1",
        "ppo",
        1_000_000,
        {"n_steps": 256, "gae_lambda": 0.94, "gamma": 0.99, "n_epochs": 4, "ent_coef": 0.0},
        n_envs=16,
        normalize=True,
        required_return=-90.0,
    ),
    # dqn.yml, MountainCar-v0 (tuned)
    "MountainCar-v0": ZooSpec(
        "MountainCar-v0",
        "dqn",
        120_000,
        {
            "learning_rate": 4e-3,
            "batch_size": 128,
            "buffer_size": 10_000,
            "learning_starts": 1000,
            "gamma": 0.98,
            "target_update_interval": 600,
            "train_freq": 16,
            "gradient_steps": 8,
            "exploration_fraction": 0.2,
            "exploration_final_eps": 0.07,
        },
        policy_kwargs={"net_arch": [256, 256]},
        required_return=-110.0,
    ),
    # ppo.yml, LunarLander-v2 (the zoo's entry for the env that is LunarLander-v3 today)
    "LunarLander-v3": ZooSpec(
        "LunarLander-v3",
        "ppo",
        1_000_000,
        {
            "n_steps": 1024,
            "batch_size": 64,
            "gae_lambda": 0.98,
            "gamma": 0.999,
            "n_epochs": 4,
            "ent_coef": 0.01,
        },
        n_envs=16,
        required_return=200.0,
    ),
    # sac.yml, Pendulum-v1; net_arch [64, 64] instead of SB3's default [256, 256]
    # keeps the shipped zip (which carries critics and optimiser states) small.
    "Pendulum-v1": ZooSpec(
        "Pendulum-v1",
        "sac",
        20_000,
        {"learning_rate": 1e-3},
        policy_kwargs={"net_arch": [64, 64]},
        required_return=-200.0,
    ),
}


def zoo_spec(env_id: str) -> ZooSpec:
    """The zoo entry for ``env_id``; ``EnvError`` lists those that exist."""
    try:
        return ZOO[env_id]
    except KeyError:
        raise EnvError(
            f"no zoo expert for {env_id!r} (available: {', '.join(sorted(ZOO))})"
        ) from None


def _algo_class(algo: Algo) -> Any:
    from stable_baselines3 import DQN, PPO, SAC

    return {"ppo": PPO, "dqn": DQN, "sac": SAC}[algo]


def _resolve_schedules(hyperparams: dict[str, Any]) -> dict[str, Any]:
    from stable_baselines3.common.utils import LinearSchedule

    resolved = {}
    for key, value in hyperparams.items():
        if isinstance(value, str) and value.startswith("lin_"):
            resolved[key] = LinearSchedule(float(value[4:]), 0.0, 1.0)
        else:
            resolved[key] = value
    return resolved


def expert_file(env_id: str) -> Path:
    """Where the shipped zip of ``env_id``'s expert lives."""
    spec = zoo_spec(env_id)
    return PRETRAINED / f"{env_id.replace('/', '-')}-{spec.algo}.zip"


def train_expert(
    env_id: str,
    seed: int,
    out: Path,
    n_timesteps: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Train ``env_id``'s zoo expert, save the zip to ``out``; returns its manifest entry."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    spec = zoo_spec(env_id)
    steps = n_timesteps or spec.n_timesteps
    venv = make_vec_env(env_id, n_envs=spec.n_envs, seed=seed)
    if spec.normalize:
        venv = VecNormalize(venv, norm_obs=True, norm_reward=True)
    model = _algo_class(spec.algo)(
        "MlpPolicy",
        venv,
        seed=seed,
        verbose=0,
        device="cpu",
        policy_kwargs=dict(spec.policy_kwargs) or None,
        **_resolve_schedules(spec.hyperparams),
    )
    start = time.perf_counter()
    model.learn(total_timesteps=steps, progress_bar=progress)
    wall_time = time.perf_counter() - start
    out.parent.mkdir(parents=True, exist_ok=True)
    strip_optimizer_state(model)
    model.save(out)
    entry: dict[str, Any] = {
        "env_id": env_id,
        "algo": spec.algo,
        "file": out.name,
        "seed": seed,
        "timesteps": steps,
        "wall_time_s": round(wall_time, 1),
        "obs_norm": None,
    }
    if isinstance(venv, VecNormalize):
        obs_rms: Any = venv.obs_rms
        entry["obs_norm"] = {
            "mean": obs_rms.mean.tolist(),
            "var": obs_rms.var.tolist(),
            "clip": float(venv.clip_obs),
            "epsilon": float(venv.epsilon),
        }
    venv.close()
    return entry


def strip_optimizer_state(model: Any) -> None:
    """Drop the optimisers' moment estimates: a shipped expert only infers (halves the zip)."""
    import torch

    owners = [model, model.policy, *(getattr(model.policy, n, None) for n in ("actor", "critic"))]
    for owner in owners:
        for value in vars(owner).values() if owner is not None else ():
            if isinstance(value, torch.optim.Optimizer):
                value.state.clear()


def read_manifest() -> dict[str, dict[str, Any]]:
    """The shipped experts' manifest (empty when none are shipped)."""
    if not MANIFEST.is_file():
        return {}
    return dict(json.loads(MANIFEST.read_text()))


def update_manifest(entry: dict[str, Any]) -> None:
    """Add or replace one expert's entry, atomically."""
    manifest = read_manifest()
    manifest[entry["env_id"]] = entry
    write_json(MANIFEST, manifest)


def load_sb3(path: Path, algo: Algo | None = None) -> Any:
    """Load an SB3 zip offline on the CPU, replacing schedules by constants."""
    if not path.is_file():
        raise ImitateError(f"{path}: expert file not found")
    custom_objects = {
        "learning_rate": 0.0,
        "lr_schedule": lambda _: 0.0,
        "clip_range": lambda _: 0.0,
        "exploration_schedule": lambda _: 0.0,
    }
    from stable_baselines3 import DQN, PPO, SAC

    candidates: list[Any] = [_algo_class(algo)] if algo else [PPO, DQN, SAC]
    errors = []
    for cls in candidates:
        try:
            return cls.load(path, device="cpu", custom_objects=custom_objects)
        except Exception as exc:  # SB3 raises various types for a zip of another algorithm
            errors.append(f"{cls.__name__}: {str(exc).splitlines()[0] if str(exc) else exc!r}")
    raise ImitateError(f"{path}: not a loadable stable-baselines3 model ({'; '.join(errors)})")


def obs_norm_of(entry: dict[str, Any] | None) -> dict[str, np.ndarray | float] | None:
    """The VecNormalize observation statistics recorded in a manifest entry, as arrays."""
    if not entry or not entry.get("obs_norm"):
        return None
    norm = entry["obs_norm"]
    return {
        "mean": np.asarray(norm["mean"], np.float64),
        "var": np.asarray(norm["var"], np.float64),
        "clip": float(norm["clip"]),
        "epsilon": float(norm["epsilon"]),
    }


def env_spaces_match(model: Any, env_id: str) -> bool:
    """Whether an SB3 model's spaces are those of ``env_id``."""
    env = gym.make(env_id)
    try:
        return bool(
            model.observation_space.shape == env.observation_space.shape
            and model.action_space == env.action_space
        )
    finally:
        env.close()


def teacher_from_entry(path: Path, entry: dict[str, Any] | None) -> Any:
    """An :class:`SB3Teacher` for the zip at ``path`` with its manifest entry's statistics."""
    from agents.teachers import SB3Teacher

    algo = entry.get("algo") if entry else None
    return SB3Teacher(load_sb3(path, algo), obs_norm_of(entry))


def load_zoo_teacher(env_id: str) -> Any:
    """The shipped zoo expert of ``env_id`` as a SoftPolicy (offline, no training objects)."""
    zoo_spec(env_id)
    entry = read_manifest().get(env_id)
    if entry is None:
        raise EnvError(
            f"no shipped zoo expert for {env_id!r}: train one with 'imitate expert train'"
        )
    return teacher_from_entry(PRETRAINED / entry["file"], entry)


def load_zip_teacher(path: Path, env_id: str) -> Any:
    """A user's SB3 zip as a SoftPolicy (see :func:`agents.registry.load_sb3_expert`)."""
    from agents.registry import load_sb3_expert

    return load_sb3_expert(str(path), env_id)
