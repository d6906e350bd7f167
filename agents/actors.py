"""Numpy actors of the shipped zoo experts, cached beside their zips (no torch, no SB3).

An SB3 zip holds pickled Python objects and torch tensors; loading one imports
torch and stable-baselines3 (seconds) and unpickles. Rolling out a shipped expert
needs only its actor network, so each shipped ``<name>.zip`` has a cached
``<name>.actor.safetensors`` next to it: the actor's layers as float32 tensors and
a JSON header (algorithm, spaces, layer kinds, VecNormalize statistics, and the
SHA-256 of the zip it came from). :class:`NumpyActor` computes the same ``logits``
and ``act`` as :class:`agents.teachers.SB3Teacher`; ``tests/test_zoo.py`` checks
it against the SB3 model itself. A cache whose zip hash does not match is ignored
(the zip is loaded instead).

Regenerate the caches after training or replacing a shipped expert::

    python -m agents.actors            # every expert in agents/pretrained/experts.json

(``imitate expert train --ship`` writes the cache too.)
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imitate.runtime import NumpyLayers

if TYPE_CHECKING:
    import gymnasium as gym

    from agents.teachers import SB3Teacher

ACTOR_SUFFIX = ".actor.safetensors"
METADATA_KEY = "imitate-actor"
ACTOR_FORMAT_VERSION = 1
# SB3's clamp of the SAC actor's log-std (stable_baselines3.sac.policies).
SAC_LOG_STD_MIN, SAC_LOG_STD_MAX = -20.0, 2.0


def actor_file(zip_path: Path) -> Path:
    """Where the cached actor of an SB3 zip lives: ``<name>.actor.safetensors`` beside it."""
    return zip_path.with_name(zip_path.stem + ACTOR_SUFFIX)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def normalize_obs(obs: np.ndarray, obs_norm: dict[str, Any] | None) -> np.ndarray:
    """Flatten to ``[B, obs_dim]`` float32 and apply VecNormalize statistics, if any."""
    x = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
    if obs_norm is not None:
        mean = np.asarray(obs_norm["mean"], np.float32)
        std = np.sqrt(np.asarray(obs_norm["var"]) + obs_norm["epsilon"]).astype(np.float32)
        clip = float(obs_norm["clip"])
        x = np.clip((x - mean) / std, -clip, clip)
    return x


def actions_from_outputs(raw: np.ndarray, space: gym.Space[Any], kind: str) -> np.ndarray:
    """Deterministic env actions from an SB3 actor's raw outputs ``[B, K]``, as SB3's
    ``predict(deterministic=True)``: the action head's SB3 convention
    (:meth:`imitate.spaces.ActionHead.sb3_actions`): argmax (Discrete), tanh-squashed and
    rescaled mean (SAC), clipped mean (PPO/A2C Box)."""
    from imitate.spaces import head_for_space

    return head_for_space(space).sb3_actions(raw, squashed=kind == "sac")


class NumpyActor:
    """The actor of an SB3 model in numpy: a SoftPolicy with SB3Teacher's ``logits``
    (categorical logits, Q-values, or ``[mean, log_std]``) and ``act``.

    ``heads``: one layer chain (PPO/A2C/DQN) or two sharing the input (SAC: mean,
    log-std). ``log_std`` ``[D]``: PPO/A2C Box state-independent log-std."""

    def __init__(
        self,
        kind: str,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        heads: list[NumpyLayers],
        log_std: np.ndarray | None = None,
        obs_norm: dict[str, Any] | None = None,
    ) -> None:
        import gymnasium as gym

        self.kind = kind
        self.observation_space = observation_space
        self.action_space = action_space
        self.heads = heads
        self.log_std = log_std
        self.obs_norm = obs_norm
        self.output_kind = {"dqn": "q_values"}.get(kind, "logits")
        if isinstance(action_space, gym.spaces.Box):
            self.output_kind = "gaussian"

    def __repr__(self) -> str:
        return f"NumpyActor({self.kind}, {self.heads[0]!r}, actions={self.action_space})"

    def n_actor_parameters(self) -> int:
        """Parameters of the acting network (SAC's shared trunk counted once)."""
        if self.kind == "sac":
            mean, log_std = self.heads
            shared = sum(w.size + b.size for _, w, b in mean.ops[:-1] if w is not None)
            return int(mean.n_parameters() + log_std.n_parameters() - shared)
        extra = 0 if self.log_std is None else self.log_std.size
        return int(self.heads[0].n_parameters() + extra)

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        return normalize_obs(obs, self.obs_norm)

    def logits(self, obs: np.ndarray) -> np.ndarray:
        """Raw outputs ``[B, K]`` (see :mod:`agents.teachers`)."""
        x = self.normalize(obs)
        if self.kind == "sac":
            mean, log_std = (layers(x) for layers in self.heads)
            return np.concatenate([mean, np.clip(log_std, SAC_LOG_STD_MIN, SAC_LOG_STD_MAX)], -1)
        out = self.heads[0](x)
        if self.log_std is not None:
            return np.concatenate([out, np.broadcast_to(self.log_std, out.shape)], -1)
        return out

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions ``[B, *action_shape]``."""
        return actions_from_outputs(self.logits(obs), self.action_space, self.kind)


def write_actor(teacher: SB3Teacher, path: Path, zip_path: Path) -> Path:
    """Cache ``teacher``'s actor (its numpy layer chains) at ``path``."""
    import gymnasium as gym
    from safetensors.numpy import save

    from imitate.fileio import write_bytes
    from imitate.spaces import space_to_json

    heads = teacher._numpy  # the numpy copies SB3Teacher already makes
    if heads is None:
        raise ValueError(f"{zip_path}: the actor has layers numpy cannot run")
    tensors: dict[str, np.ndarray] = {}
    layouts = []
    for h, layers in enumerate(heads):
        layout = []
        for i, (kind, weight, bias) in enumerate(layers.ops):
            layout.append(kind)
            if weight is not None:
                tensors[f"head{h}.{i}.weight"] = np.ascontiguousarray(weight, np.float32)
                if bias is not None:
                    tensors[f"head{h}.{i}.bias"] = np.ascontiguousarray(bias, np.float32)
        layouts.append(layout)
    space = teacher.action_space
    if teacher.kind != "sac" and isinstance(space, gym.spaces.Box):
        tensors["log_std"] = teacher.policy.log_std.detach().numpy().astype(np.float32)
    header = {
        "format_version": ACTOR_FORMAT_VERSION,
        "kind": teacher.kind,
        "observation_space": space_to_json(teacher.model.observation_space),
        "action_space": space_to_json(space),
        "layouts": layouts,
        "obs_norm": None
        if teacher.obs_norm is None
        else {k: np.asarray(v).tolist() for k, v in teacher.obs_norm.items()},
        "zip_sha256": file_sha256(zip_path),
        "zip": zip_path.name,
    }
    return write_bytes(path, save(tensors, metadata={METADATA_KEY: json.dumps(header)}))


def read_actor(path: Path, zip_path: Path | None = None) -> NumpyActor | None:
    """The cached actor at ``path``; None when it is missing, unreadable, or was made from
    another zip than ``zip_path`` (hash mismatch)."""
    from safetensors import SafetensorError, safe_open

    from imitate.spaces import space_from_json

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="np") as f:
            header = json.loads((f.metadata() or {})[METADATA_KEY])
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, KeyError, ValueError):
        return None
    if header.get("format_version") != ACTOR_FORMAT_VERSION:
        return None
    if zip_path is not None and header.get("zip_sha256") != file_sha256(zip_path):
        return None
    heads = []
    for h, layout in enumerate(header["layouts"]):
        ops = []
        for i, kind in enumerate(layout):
            weight = tensors.get(f"head{h}.{i}.weight") if kind == "linear" else None
            bias = tensors.get(f"head{h}.{i}.bias") if kind == "linear" else None
            ops.append((kind, weight, bias))
        heads.append(NumpyLayers(ops))
    return NumpyActor(
        header["kind"],
        space_from_json(header["observation_space"]),
        space_from_json(header["action_space"]),
        heads,
        tensors.get("log_std"),
        header.get("obs_norm"),
    )


def cache_actor(zip_path: Path, entry: dict[str, Any] | None) -> Path:
    """Load the zip with SB3 and write its actor cache beside it."""
    from agents.zoo import teacher_from_entry

    return write_actor(teacher_from_entry(zip_path, entry), actor_file(zip_path), zip_path)


def main(argv: list[str] | None = None) -> int:
    """Regenerate the actor caches of every shipped expert (or of the env ids given)."""
    from agents.zoo import PRETRAINED, read_manifest

    wanted = set(sys.argv[1:] if argv is None else argv)
    for env_id, entry in sorted(read_manifest().items()):
        if wanted and env_id not in wanted:
            continue
        path = cache_actor(PRETRAINED / entry["file"], entry)
        print(f"{env_id}: {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
