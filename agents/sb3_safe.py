"""Load a stable-baselines3 zip without unpickling anything: the safe import.

An SB3 zip is a pickle container: its ``data`` entry holds cloudpickled objects
(schedules, spaces, the policy class), and ``PPO.load`` runs them, so loading a zip runs
whatever code its author put there. Its weights, though, are in ``policy.pth``, a plain
tensor dict that ``torch.load(weights_only=True)`` reads without running code. This
module rebuilds the acting network from those tensors alone:

* the architecture from the tensor names and shapes (``mlp_extractor.policy_net.<i>``
  + ``action_net`` for PPO/A2C, ``q_net.q_net.<i>`` for DQN, ``actor.latent_pi.<i>`` +
  ``actor.mu`` / ``actor.log_std`` for SAC), checked to be one chain of linear layers;
* the activation from the ``data`` entry's plain JSON fields (``policy_kwargs`` is
  stored there as JSON with the class's name as a string; the ``:serialized:`` pickles
  are never decoded), else SB3's default (tanh for PPO/A2C, ReLU for DQN/SAC);
* the spaces from the env the caller names (sizes checked against the tensors).

The result, :class:`SafeSB3Teacher`, is a numpy ``SoftPolicy`` whose ``act`` equals SB3's
``predict(deterministic=True)`` (tested against it) and whose ``logits`` are those of
:class:`agents.teachers.SB3Teacher`. Anything else (image encoders, gSDE, recurrent or
dict-observation policies, an activation other than tanh/ReLU) is refused in one line:
load such a zip with SB3 itself, only if you trust it.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.actors import NumpyActor
from imitate.errors import ImitateError, scrub
from imitate.runtime import NumpyLayers
from imitate.spaces import flat_obs_dim

MAX_MEMBER_BYTES = 1 << 30  # policy.pth / data larger than this are refused unread
_ACTIVATIONS = {"Tanh": "tanh", "ReLU": "relu"}
_DEFAULT_ACTIVATION = {"ppo": "tanh", "dqn": "relu", "sac": "relu"}


class SafeLoadError(ImitateError):
    """An SB3 zip that the safe import cannot rebuild (the message says why)."""


def _read_member(archive: zipfile.ZipFile, name: str, path: Path) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise SafeLoadError(f"{path}: not a stable-baselines3 zip (no '{name}' inside)") from None
    if info.file_size > MAX_MEMBER_BYTES:
        raise SafeLoadError(f"{path}: '{name}' claims {info.file_size} bytes, too large")
    return archive.read(name)


def read_sb3_zip(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``policy.pth`` as float32 arrays (``weights_only``) and the plain JSON ``data``."""
    import torch

    if not path.is_file():
        raise ImitateError(f"{path}: expert file not found")
    try:
        with zipfile.ZipFile(path) as archive:
            weights = _read_member(archive, "policy.pth", path)
            data_bytes = _read_member(archive, "data", path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SafeLoadError(f"{path}: not a readable zip ({scrub(str(exc))})") from None
    try:
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or corrupt payloads
        raise SafeLoadError(
            f"{path}: policy.pth is not a plain tensor file ({scrub(str(exc))})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SafeLoadError(f"{path}: policy.pth is not a dict of tensors")
    try:
        data = json.loads(data_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SafeLoadError(f"{path}: its 'data' entry is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SafeLoadError(f"{path}: its 'data' entry is not a JSON object")
    arrays = {str(k): v.detach().to(torch.float32).numpy() for k, v in state.items()}
    return arrays, data


def _chain(state: dict[str, np.ndarray], prefix: str, path: Path) -> list[int]:
    """Indices of the Linear layers ``<prefix><i>.weight`` of a Sequential, checked to sit
    at even positions (Linear, activation, Linear, ...)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.weight$")
    indices = sorted(int(m.group(1)) for k in state if (m := pattern.match(k)))
    if indices != list(range(0, 2 * len(indices), 2)):
        raise SafeLoadError(f"{path}: {prefix}* is not a chain of linear layers {indices}")
    return indices


def _linear(state: dict[str, np.ndarray], name: str, path: Path) -> tuple[str, Any, Any]:
    weight = state.get(f"{name}.weight")
    bias = state.get(f"{name}.bias")
    if weight is None or weight.ndim != 2 or (bias is not None and bias.shape != weight.shape[:1]):
        raise SafeLoadError(f"{path}: {name} is not a linear layer")
    if not (np.isfinite(weight).all() and (bias is None or np.isfinite(bias).all())):
        raise SafeLoadError(f"{path}: {name} holds NaN or inf")
    return ("linear", np.ascontiguousarray(weight.T), None if bias is None else bias.copy())


def _activation(data: dict[str, Any], algo: str, path: Path) -> str:
    kwargs = data.get("policy_kwargs")
    if not isinstance(kwargs, dict):
        return _DEFAULT_ACTIVATION[algo]
    for key in ("features_extractor_class", "net_arch_class"):
        if key in kwargs and "FlattenExtractor" not in str(kwargs[key]):
            raise SafeLoadError(f"{path}: policy_kwargs.{key} = {kwargs[key]} is not supported")
    if kwargs.get("use_sde") or data.get("use_sde"):
        raise SafeLoadError(f"{path}: gSDE policies are not supported by the safe import")
    if "activation_fn" not in kwargs:
        return _DEFAULT_ACTIVATION[algo]
    text = str(kwargs["activation_fn"])  # "<class 'torch.nn.modules.activation.ReLU'>"
    match = re.fullmatch(r"<class 'torch\.nn\.modules\.activation\.(\w+)'>", text)
    if match is None or match.group(1) not in _ACTIVATIONS:
        raise SafeLoadError(f"{path}: activation {text} is not supported (tanh or ReLU)")
    return _ACTIVATIONS[match.group(1)]


def _ops(
    state: dict[str, np.ndarray], prefix: str, activation: str, path: Path, last_activated: bool
) -> list[tuple[str, Any, Any]]:
    ops: list[tuple[str, Any, Any]] = []
    indices = _chain(state, prefix, path)
    for j, i in enumerate(indices):
        ops.append(_linear(state, f"{prefix}{i}", path))
        if last_activated or j < len(indices) - 1:
            ops.append((activation, None, None))
    return ops


def _check_chain(ops: list[tuple[str, Any, Any]], n_in: int, path: Path) -> int:
    """Input width ``n_in`` flows through the linear layers; returns the output width."""
    width = n_in
    for kind, weight, _ in ops:
        if kind == "linear":
            if weight.shape[0] != width:
                raise SafeLoadError(
                    f"{path}: a layer takes {weight.shape[0]} inputs where {width} arrive"
                )
            width = int(weight.shape[1])
    return width


SafeSB3Teacher = NumpyActor
"""The safe import's result is the same numpy actor as the cache beside a shipped zip
(:class:`agents.actors.NumpyActor`): one forward pass and one action rule for both."""


def load_safe(
    path: Path,
    observation_space: gym.Space[Any],
    action_space: gym.Space[Any],
    obs_norm: dict[str, Any] | None = None,
) -> SafeSB3Teacher:
    """Rebuild the actor of the SB3 zip at ``path`` for these spaces, unpickling nothing."""
    path = Path(path)
    state, data = read_sb3_zip(path)
    if not isinstance(observation_space, gym.spaces.Box):
        raise SafeLoadError(f"{path}: the safe import needs a Box observation space")
    if not isinstance(action_space, gym.spaces.Discrete | gym.spaces.Box):
        raise SafeLoadError(f"{path}: the safe import supports Discrete and Box actions only")
    if any(k.split(".")[0].endswith("features_extractor") for k in state) or any(
        ".features_extractor." in k for k in state
    ):
        raise SafeLoadError(
            f"{path}: a features extractor with weights (e.g. a CNN) is not supported"
        )
    n_in = flat_obs_dim(observation_space)
    discrete = isinstance(action_space, gym.spaces.Discrete)
    if isinstance(action_space, gym.spaces.Discrete):
        n_out = int(action_space.n)
    else:
        n_out = int(np.prod(action_space.shape or (1,)))
    log_std: np.ndarray | None = None
    if "q_net.q_net.0.weight" in state:
        kind = "dqn"
        if not discrete:
            raise SafeLoadError(f"{path}: a DQN zip needs a Discrete action space")
        ops = _ops(state, "q_net.q_net.", _activation(data, kind, path), path, False)
        heads = [ops]
    elif "actor.mu.weight" in state:
        kind = "sac"
        if discrete:
            raise SafeLoadError(f"{path}: a SAC zip needs a Box action space")
        activation = _activation(data, kind, path)
        trunk = _ops(state, "actor.latent_pi.", activation, path, True)
        heads = [
            [*trunk, _linear(state, "actor.mu", path)],
            [*trunk, _linear(state, "actor.log_std", path)],
        ]
    elif "action_net.weight" in state:
        kind = "ppo"
        activation = _activation(data, kind, path)
        trunk = _ops(state, "mlp_extractor.policy_net.", activation, path, True)
        heads = [[*trunk, _linear(state, "action_net", path)]]
        if not discrete:
            if "log_std" not in state or state["log_std"].shape != (n_out,):
                raise SafeLoadError(f"{path}: a Box policy without a log_std of {n_out} values")
            log_std = state["log_std"].astype(np.float32)
    else:
        raise SafeLoadError(
            f"{path}: not an MLP PPO, A2C, DQN or SAC policy (no action_net, q_net or actor.mu)"
        )
    _check_recorded_spaces(data, n_in, action_space, path)
    for ops in heads:
        width = _check_chain(ops, n_in, path)
        if width != n_out:
            raise SafeLoadError(
                f"{path}: the actor has {width} outputs, but the action space needs {n_out}"
            )
    return NumpyActor(
        kind,
        observation_space,
        action_space,
        [NumpyLayers(ops) for ops in heads],
        log_std=log_std,
        obs_norm=obs_norm,
    )


def _check_recorded_spaces(
    data: dict[str, Any], n_in: int, action_space: gym.Space[Any], path: Path
) -> None:
    """Compare the plain size fields the zip records with the env's spaces."""
    recorded_obs = data.get("observation_space")
    shape = recorded_obs.get("_shape") if isinstance(recorded_obs, dict) else None
    if isinstance(shape, list) and int(np.prod(shape)) != n_in:
        raise SafeLoadError(
            f"{path}: trained for observations {tuple(shape)}, the env has {n_in} features"
        )
    recorded_actions = data.get("action_space")
    n = recorded_actions.get("n") if isinstance(recorded_actions, dict) else None
    if isinstance(n, int) and isinstance(action_space, gym.spaces.Discrete) and n != action_space.n:
        raise SafeLoadError(f"{path}: trained for {n} actions, the env has {action_space.n}")


def load_safe_for_env(
    path: Path, env_id: str, obs_norm: dict[str, Any] | None = None
) -> SafeSB3Teacher:
    """:func:`load_safe` with the spaces of ``env_id``."""
    from imitate.collect import env_spaces

    observation_space, action_space = env_spaces(env_id)
    return load_safe(path, observation_space, action_space, obs_norm)
