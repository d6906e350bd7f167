"""The space drift distances are measured in, for any observation space.

:mod:`imitate.drift` compares expert and clone trajectories step by step. For flat
``Box`` observations the distance is the Euclidean distance of the observations with
each dimension divided by the expert's std (as it always was). For every other space,
:func:`drift_space` maps an observation batch to flat float64 feature rows whose
Euclidean distance, after dividing by :attr:`DriftSpace.scale`, is the drift distance:

=====================  ==============================================================
leaf                   features (divided by ``scale``)
=====================  ==============================================================
Box vector             its values / the expert's std per dimension
Discrete,              one-hot per factor / sqrt(2): two different values are 1
MultiDiscrete          apart, equal ones 0 (per factor)
MultiBinary            the bits: the squared distance is the Hamming distance
Text                   one indicator per word of the expert's missions (plus one for
                       any other word) / sqrt(2): equal missions are 0 apart, a
                       mission with one word replaced is 1 apart (the squared
                       distance is half the symmetric difference of the word sets)
image (uint8 Box)      the env's true state when the env exposes it (a numeric
                       ``state`` attribute of ``env.unwrapped``, as PixelCartPole's
                       privileged expert reads it), recorded beside the observations:
                       the whole observation is then replaced by that state,
                       per-dimension expert std; else the features of the first
                       clone's image encoder for that leaf, per-feature expert std
Dict / Tuple           the entries' features side by side: squared distances add
                       up over the keys, each in its own normalised units
=====================  ==============================================================

True-state drift is owned here, for every caller (``imitate drift`` / ``imitate run``
through :func:`imitate.drift.analyse_drift`, and :func:`imitate.distill.state_drift`, the
pixel benchmark's drift columns): :func:`collect_states` records the state beside each
observation while the rollout runs (the env with
:class:`~imitate.privileged.PrivilegedObservation` added, the same recording that labels a
pixel student in distillation), and :meth:`DriftSpace.features` measures those recorded
states. Recording is the mechanism: it costs nothing beyond the rollout, and it needs
neither a deterministic env nor per-episode seeds. :func:`replay_states` is the fallback
for a dataset recorded without the state (e.g. expert data handed to
:func:`imitate.drift.paired_rollouts`): it replays each episode from its reset seed
(episode ``i``: ``seed + i``) with the actions executed, reads the attribute before each
step and checks that the replay reproduces every recorded observation (if it does not,
e.g. a stochastic env, the image falls back to the encoder's features). Both read the
state the same way (:func:`imitate.privileged.read_attribute`, float32), so a faithful
replay gives the recorded numbers exactly. Hand-written: the features are a few lines per
space and must match :mod:`imitate.observations` batches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from imitate import observations as ob
from imitate.data import Dataset
from imitate.encoders import is_image_space, tokenize_words
from imitate.environments import EnvLike, env_spec
from imitate.errors import ImitateError
from imitate.privileged import (
    PRIVILEGED_KEY,
    both_views,
    probe_attribute,
    read_attribute,
    student_view,
)
from imitate.runtime import Policy

if TYPE_CHECKING:
    from imitate.backends import Rollouts

SQRT2 = float(np.sqrt(2.0))
OTHER_WORD = "<other>"


class DriftSpaceError(ImitateError):
    """No distance can be measured on these observations (an image without a state or an
    encoder)."""


@dataclass(frozen=True)
class Leaf:
    """How one observation leaf becomes feature columns.

    ``features(array [N, ...]) -> float64 [N, D]``; ``names``: ``D`` column names;
    ``scale``: ``[D]`` divisors."""

    path: str
    features: Callable[[np.ndarray], np.ndarray]
    names: tuple[str, ...]
    scale: np.ndarray


@dataclass(frozen=True)
class DriftSpace:
    """Observations as flat feature rows (see the module docstring).

    Attributes:
        space: the (canonical) observation space.
        leaves: one :class:`Leaf` per observation leaf (empty in ``state`` mode).
        names: ``[D]`` feature names, for figures.
        scale: ``[D]`` divisors: ``distance = ||(a - b) / scale||``.
        note: one sentence saying how distances are measured (for reports).
        state_attribute: in ``state`` mode, the attribute of ``env.unwrapped`` read.
        flat: a flat Box observation: the features are the observations themselves.
    """

    space: gym.Space[Any]
    leaves: tuple[Leaf, ...]
    names: tuple[str, ...]
    scale: np.ndarray
    note: str
    state_attribute: str | None = None
    flat: bool = False

    def features(
        self,
        data: Dataset,
        env: EnvLike | None = None,
        executed: np.ndarray | None = None,
        states: np.ndarray | None = None,
    ) -> np.ndarray:
        """``float64 [N, D]`` features of a dataset's observations (not yet divided by
        ``scale``). ``state`` mode measures the ``states [N, ...]`` recorded with the data
        (:func:`collect_states`); without them it replays the episodes: ``env`` and the
        ``executed`` actions ``[N, ...]`` (default: the data's actions) are needed."""
        if self.state_attribute is None:
            return self.obs_features(data.obs)
        if states is not None:
            if len(states) != len(data):
                raise ValueError(f"{len(states)} recorded states for {len(data)} transitions")
            return np.asarray(states, np.float64).reshape(len(states), -1)
        if env is None:
            raise ValueError("a state drift space needs the recorded states or the env to replay")
        replayed = replay_states(
            env, data, data.actions if executed is None else executed, self.state_attribute
        )
        if replayed is None:
            raise DriftSpaceError(
                f"replaying the episodes of {data.meta.env_id} did not reproduce the "
                "recorded observations (is the env deterministic given its seed?)"
            )
        return replayed

    def obs_features(self, obs: ob.ObsBatch) -> np.ndarray:
        """``float64 [N, D]`` features of an observation batch (not in ``state`` mode)."""
        if self.state_attribute is not None:
            raise ValueError("a state drift space measures replayed states, not observations")
        n = ob.obs_len(obs)
        if self.flat:
            return np.asarray(obs, dtype=np.float64).reshape(n, -1)
        arrays = ob.leaf_arrays(obs, self.space)
        parts = [leaf.features(a) for leaf, a in zip(self.leaves, arrays, strict=True)]
        return np.concatenate(parts, axis=1) if parts else np.zeros((n, 0))


def _std(values: np.ndarray) -> np.ndarray:
    scale = values.reshape(len(values), -1).std(axis=0) if len(values) else np.ones(0)
    scale[scale < 1e-8] = 1.0
    return scale


def _one_hot_leaf(path: str, space: gym.Space[Any]) -> Leaf:
    if isinstance(space, gym.spaces.Discrete):
        starts, counts = np.array([int(space.start)]), np.array([int(space.n)])
    else:
        assert isinstance(space, gym.spaces.MultiDiscrete)
        counts = space.nvec.reshape(-1).astype(np.int64)
        starts = np.broadcast_to(np.asarray(space.start), space.nvec.shape).reshape(-1)
    levels = [int(s) + np.arange(int(n)) for s, n in zip(starts, counts, strict=True)]
    single = isinstance(space, gym.spaces.Discrete)
    names = tuple(
        f"{path or 'obs'}{'' if single else f'[{f}]'}={v}"
        for f, values in enumerate(levels)
        for v in values
    )

    def features(array: np.ndarray) -> np.ndarray:
        flat = np.asarray(array, np.int64).reshape(len(array), -1)
        return np.concatenate(
            [(flat[:, [f]] == values[None, :]) for f, values in enumerate(levels)], axis=1
        ).astype(np.float64)

    return Leaf(path, features, names, np.full(len(names), SQRT2))


def _bits_leaf(path: str, space: gym.spaces.MultiBinary) -> Leaf:
    n = int(np.prod(space.shape))
    names = tuple(f"{path or 'obs'}[{i}]" for i in range(n))
    return Leaf(
        path,
        lambda a: np.asarray(a, np.float64).reshape(len(a), -1),
        names,
        np.ones(n),
    )


def _box_leaf(path: str, space: gym.spaces.Box, expert: np.ndarray) -> Leaf:
    n = int(np.prod(space.shape))
    names = tuple(f"{path or 'obs'}[{i}]" for i in range(n)) if n > 1 else (path or "obs",)
    return Leaf(
        path,
        lambda a: np.asarray(a, np.float64).reshape(len(a), -1),
        names,
        _std(np.asarray(expert, np.float64)),
    )


def _text_leaf(path: str, expert: np.ndarray) -> Leaf:
    vocabulary = sorted(
        {w for s in np.unique(np.asarray(expert, np.str_)) for w in tokenize_words(str(s))}
    )
    index = {w: i for i, w in enumerate(vocabulary)}
    other = len(vocabulary)

    def features(array: np.ndarray) -> np.ndarray:
        strings = np.asarray(array, np.str_).reshape(-1)
        out = np.zeros((len(strings), other + 1))
        for row, s in enumerate(strings):
            for w in tokenize_words(str(s)):
                out[row, index.get(w, other)] = 1.0
        return out

    names = tuple(f"{path or 'obs'}:{w}" for w in [*vocabulary, OTHER_WORD])
    return Leaf(path, features, names, np.full(len(names), SQRT2))


def _image_leaf(path: str, encoder: Any, expert: np.ndarray) -> Leaf:
    def features(array: np.ndarray) -> np.ndarray:
        rows = [encoder.encode_numpy(array[i : i + 512]) for i in range(0, len(array), 512)]
        return np.concatenate(rows).astype(np.float64) if rows else np.zeros((0, encoder.out_dim))

    names = tuple(f"{path or 'obs'}:feature[{i}]" for i in range(int(encoder.out_dim)))
    return Leaf(path, features, names, _std(features(np.asarray(expert))))


def leaf_encoder(policy: object, path: str) -> Any | None:
    """The sub-encoder of an :class:`~imitate.encoded.EncodedPolicy` (or of the policy a
    gate wraps) for the observation leaf at ``path``; None when it has none."""
    encoder = getattr(policy, "encoder", None)
    if encoder is None:
        inner = getattr(policy, "policy", None)
        encoder = getattr(inner, "encoder", None)
    for key in [k for k in path.split(ob.SEP) if k]:
        parts = getattr(encoder, "parts", None)
        if parts is None or key not in parts:
            return None
        encoder = parts[key]
    return encoder if callable(getattr(encoder, "encode_numpy", None)) else None


def env_state_attribute(env: EnvLike, attribute: str = "state") -> str | None:
    """``attribute`` when a fresh env's ``unwrapped`` has it as a numeric array after a
    reset (the true state a privileged expert reads), else None."""
    return attribute if probe_attribute(env, attribute) is not None else None


def true_state_attribute(
    space: gym.Space[Any], env: EnvLike | None, attribute: str = "state"
) -> str | None:
    """``attribute`` when drift on observations of ``space`` is measured on ``env``'s true
    state (an image leaf, and the env exposes the attribute), else None."""
    leaves = ob.leaves(ob.canonical_space(space))
    if env is None or not any(is_image_space(leaf) for _, leaf in leaves):
        return None
    return env_state_attribute(env, attribute)


def collect_states(
    rollouts: Rollouts,
    policy: Policy,
    env: EnvLike,
    n_episodes: int,
    seed: int,
    attribute: str | None,
) -> tuple[Dataset, np.ndarray | None]:
    """``n_episodes`` of ``policy`` on ``env`` (episode ``i``: reset seed ``seed + i``) and,
    when ``attribute`` is given, ``float64 [N, D]`` ``getattr(env.unwrapped, attribute)``
    recorded beside each observation (the env with
    :class:`~imitate.privileged.PrivilegedObservation`; the dataset returned is the one
    recorded on ``env`` itself, the wrapper's entry dropped). ``attribute`` None: the plain
    rollout and None."""
    if attribute is None:
        return rollouts.collect(policy, env, n_episodes, seed), None
    driver, spec = both_views(policy, env, attribute)
    recorded = rollouts.collect(driver, spec, n_episodes, seed)
    obs: Any = recorded.obs
    states = np.asarray(obs[PRIVILEGED_KEY], np.float64)
    return student_view(recorded, env), states.reshape(len(states), -1)


def replay_states(
    env: EnvLike, data: Dataset, executed: np.ndarray, attribute: str = "state"
) -> np.ndarray | None:
    """``float64 [N, D]``: ``getattr(env.unwrapped, attribute)`` at each recorded step,
    replaying episode ``i`` from reset seed ``data.meta.seed + i`` with the ``executed``
    actions; None when a replayed observation differs from the recorded one. The fallback
    for data recorded without the state (:func:`collect_states` records it)."""
    environment = gym.make(env_spec(env))
    space = data.meta.spaces()[0]
    rows: list[np.ndarray] = []
    try:
        for e, (start, length) in enumerate(
            zip(data.episode_starts, data.episode_lengths, strict=True)
        ):
            obs, _ = environment.reset(seed=int(data.meta.seed or 0) + e)
            for t in range(int(start), int(start) + int(length)):
                recorded = ob.leaf_arrays(ob.take(data.obs, [t]), space)
                replayed = ob.leaf_arrays(ob.batch([obs], space), space)
                if not all(np.array_equal(a, b) for a, b in zip(recorded, replayed, strict=True)):
                    return None
                rows.append(read_attribute(environment, attribute).astype(np.float64))
                obs, *_ = environment.step(np.asarray(executed[t]).item())
    finally:
        environment.close()
    return np.stack(rows).reshape(len(rows), -1) if rows else np.zeros((0, 0))


def check_drift_space(
    observation_space: gym.Space[Any], env: EnvLike, clones: Mapping[str, object]
) -> None:
    """``DriftSpaceError`` now, before any rollout, when :func:`drift_space` would find no
    way to measure an image leaf (no env state, no clone with an image encoder for it)."""
    space = ob.canonical_space(observation_space)
    images = [path for path, leaf in ob.leaves(space) if is_image_space(leaf)]
    if not images or env_state_attribute(env) is not None:
        return
    for path in images:
        if all(leaf_encoder(c, path) is None for c in clones.values()):
            raise DriftSpaceError(_no_image_distance(path))


def _no_image_distance(path: str) -> str:
    return (
        f"observation {path or 'obs'!r} is an image and the env exposes no state: "
        "drift needs a clone with an image encoder to measure it"
    )


def drift_space(
    expert_data: Dataset,
    env: EnvLike | None = None,
    clones: Mapping[str, object] | None = None,
    states: np.ndarray | None = None,
    attribute: str = "state",
) -> DriftSpace:
    """The feature space of drift distances for ``expert_data``'s observation space, its
    scales fitted on the expert's observations (see the module docstring).

    ``states``: ``[N, D]`` the env's ``attribute`` recorded with ``expert_data``
    (:func:`collect_states`); given, distances are measured on the true state. Else
    ``env`` lets images be measured on the true state, replayed; ``clones`` supply image
    encoders otherwise. ``DriftSpaceError`` when an image leaf has neither."""
    space = expert_data.meta.spaces()[0]
    how = "recorded beside each observation"
    if states is None and true_state_attribute(space, env, attribute) is not None:
        assert env is not None
        states = replay_states(env, expert_data, expert_data.actions, attribute)
        how = "recovered by replaying each episode from its seed"
    if states is not None:
        states = np.asarray(states, np.float64).reshape(len(states), -1)
        return DriftSpace(
            space,
            (),
            tuple(f"{attribute}[{i}]" for i in range(states.shape[1])),
            _std(states),
            f"Euclidean distance of the env's true state (env.unwrapped.{attribute}, {how}), "
            "each dimension in units of the expert's std; the observations are not compared.",
            state_attribute=attribute,
        )
    return observation_drift_space(space, expert_data.obs, clones)


def observation_drift_space(
    space: gym.Space[Any], obs: ob.ObsBatch, clones: Mapping[str, object] | None = None
) -> DriftSpace:
    """The feature space of :func:`drift_space` measured on the observations alone (images
    in a clone's encoder features), its scales fitted on ``obs`` (the expert's)."""
    space = ob.canonical_space(space)
    if isinstance(space, gym.spaces.Box) and not is_image_space(space):
        obs = np.asarray(obs).reshape(ob.obs_len(obs), -1)
        return DriftSpace(
            space,
            (),
            tuple(f"state[{i}]" for i in range(obs.shape[1])),
            _std(obs),  # in the storage dtype (float32), as drift always measured it
            "Euclidean distance of the observations, each dimension in units of the expert's std.",
            flat=True,
        )
    paths = ob.leaves(space)
    arrays = ob.leaf_arrays(obs, space)
    built: list[Leaf] = []
    for (path, leaf), expert in zip(paths, arrays, strict=True):
        if is_image_space(leaf):
            encoder = next(
                (e for c in (clones or {}).values() if (e := leaf_encoder(c, path)) is not None),
                None,
            )
            if encoder is None:
                raise DriftSpaceError(_no_image_distance(path))
            built.append(_image_leaf(path, encoder, expert))
        elif isinstance(leaf, gym.spaces.Box):
            built.append(_box_leaf(path, leaf, expert))
        elif isinstance(leaf, gym.spaces.Discrete | gym.spaces.MultiDiscrete):
            built.append(_one_hot_leaf(path, leaf))
        elif isinstance(leaf, gym.spaces.MultiBinary):
            built.append(_bits_leaf(path, leaf))
        else:
            built.append(_text_leaf(path, expert))
    kinds = sorted({_kind(s) for _, s in paths})
    note = (
        "Per-key normalised distance: the squared distances of the entries add up; "
        + "; ".join(NOTES[k] for k in kinds)
        + "."
    )
    return DriftSpace(
        space,
        tuple(built),
        tuple(n for leaf in built for n in leaf.names),
        np.concatenate([leaf.scale for leaf in built]),
        note,
    )


def _kind(space: gym.Space[Any]) -> str:
    if is_image_space(space):
        return "image"
    if isinstance(space, gym.spaces.Box):
        return "box"
    if isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete):
        return "discrete"
    if isinstance(space, gym.spaces.MultiBinary):
        return "binary"
    return "text"


NOTES = {
    "box": "vectors in units of the expert's std per dimension",
    "discrete": "discrete values 1 apart when they differ (one-hot / sqrt 2)",
    "binary": "bits by Hamming distance",
    "text": "missions 0 apart when equal, 1 per replaced word (word indicators / sqrt 2)",
    "image": "images in the clone's image-encoder features, units of the expert's std",
}
