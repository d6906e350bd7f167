"""Compounding error made measurable: paired rollouts, distribution shift, horizon scaling.

* :func:`paired_rollouts` runs expert and clone from the same reset seeds and
  measures, per step, the distance between their states (normalised per
  dimension by the expert's state std), the first step where it exceeds a
  threshold, and when the clone fails (terminates).
* :func:`distribution_shift` compares the clone's expert-labelled loss and
  disagreement on expert states with those on its own states: the gap is the
  distribution shift that BC never trains on.
* :func:`off_support` finds the states a clone drifts into that the demonstrations
  do not cover: farther from every demonstration state than a held-out share of
  the expert's own states are (nearest-neighbour distance, per-dimension std units).
  These are the out-of-distribution states the energy score should flag.
* :func:`horizon_scaling` measures cumulative cost against the horizon ``T``
  and fits ``log cost = slope * log T + b`` with a bootstrap confidence
  interval: ~2 for BC, ~1 for DAgger on ``imitate/Tightrope-v0``
  (Ross and Bagnell 2010). The cost is the theory's: the expert's 0-1 imitation
  loss (or the task's failure indicator) summed over a fixed horizon on the
  policy's own rollouts, a failing termination being an absorbing state that keeps
  costing 1 per step, so a clone that falls early is not rewarded for it.
* :func:`analyse_drift` runs all of it for several clones (the data behind the
  figures, ``report.html`` and the videos); :func:`drift_report` also draws the
  figures and returns the JSON summary.

Observations of any space (Dict, Tuple, Discrete, MultiBinary, Text, images) are
compared in the feature space of :mod:`imitate.drift_space` (per-key normalised units;
images on the env's true state when it exposes one, else in the clone's image-encoder
features). A privileged expert (:mod:`imitate.privileged`, e.g. PixelCartPole's state
expert) cannot label recorded observations: its labels on the clone's states are
recorded while the clone drives (:class:`~imitate.privileged.PrivilegedMixture` with
``beta = 0``), so the shift gap and the disagreement cost work for it too.

Which terminations are failures is per env (:func:`failed_at_termination`):
CartPole falls, LunarLander crashes (its terminal reward is -100; a landing gets +100),
while Acrobot and MountainCar terminate when they reach the goal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from imitate._lazy import lazy_module
from imitate.backends import Rollouts
from imitate.collect import LocalRollouts, env_spaces, env_spec
from imitate.constants import EVAL_SEED
from imitate.data import Dataset
from imitate.environments import EnvLike, env_name
from imitate.privileged import is_privileged
from imitate.runtime import Policy

if TYPE_CHECKING:
    import torch

    from imitate.drift_space import DriftSpace
else:  # torch loads when a function here first needs it (eval imports action_flip_rate)
    torch = lazy_module("torch")

TERMINATION_IS_SUCCESS = frozenset({"Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0"})
"""Envs whose only termination is reaching the goal."""
TERMINATION_BY_REWARD_SIGN = frozenset({"LunarLander-v3", "LunarLanderContinuous-v3"})
"""Envs whose terminal reward tells success (> 0: landed) from failure (< 0: crashed)."""


def failed_at_termination(
    env_id: str, terminated: np.ndarray, final_rewards: np.ndarray
) -> np.ndarray:
    """``[E]`` True where an episode ended in failure: terminated, and the env's terminations
    are failures (CartPole, Tightrope, unknown envs), or its terminal reward is negative
    (LunarLander). Truncation (the time limit) is never a failure."""
    terminated = np.asarray(terminated, dtype=bool)
    if env_id in TERMINATION_IS_SUCCESS:
        return np.zeros_like(terminated)
    if env_id in TERMINATION_BY_REWARD_SIGN:
        return terminated & (np.asarray(final_rewards) < 0)
    return terminated


def episodes_padded(
    dataset: Dataset, field: str = "obs", values: np.ndarray | None = None
) -> np.ndarray:
    """Per-episode array ``[E, T_max, ...]`` of ``field`` (or of ``values [N, ...]``, one
    row per transition), NaN after each episode's end."""
    values = (getattr(dataset, field) if values is None else values).astype(np.float64)
    lengths = dataset.episode_lengths
    out = np.full((dataset.n_episodes, int(lengths.max()), *values.shape[1:]), np.nan)
    for e, (start, length) in enumerate(zip(dataset.episode_starts, lengths, strict=True)):
        out[e, :length] = values[start : start + length]
    return out


@dataclass(frozen=True)
class PairedRollouts:
    """Expert and clone from the same starts (episode i: reset seed ``seed + i``).

    Attributes:
        expert_obs, clone_obs: ``[E, T, obs_dim]`` states, NaN after an episode ends.
        distance: ``[E, T]`` normalised state distance, NaN once either episode ended.
        first_divergence: ``[E]`` first step with distance > threshold (NaN: never).
        clone_failure: ``[E]`` step at which the clone's episode ended in failure (NaN:
            never; see :func:`failed_at_termination`).
        expert_returns, clone_returns: ``[E]``.
        threshold: the divergence threshold (in expert-std units).
        seed: episode ``i`` reset with ``seed + i``.
        scale: ``[obs_dim]`` the expert's state std that normalises the distance.
        expert_data, clone_data: the rollouts; with a privileged expert the clone's
            actions are the expert's labels of its states (the clone acted).
        note: how the distance is measured (:attr:`imitate.drift_space.DriftSpace.note`).
    """

    expert_obs: np.ndarray
    clone_obs: np.ndarray
    distance: np.ndarray
    first_divergence: np.ndarray
    clone_failure: np.ndarray
    expert_returns: np.ndarray
    clone_returns: np.ndarray
    threshold: float
    seed: int = 0
    scale: np.ndarray | None = None
    expert_data: Dataset | None = None
    clone_data: Dataset | None = None
    note: str = ""

    def live_episodes(self) -> np.ndarray:
        """``[T]`` episodes in which both expert and clone still run at step t."""
        return np.asarray((~np.isnan(self.distance)).sum(axis=0))

    def showcase_episodes(self) -> dict[str, int]:
        """Up to three distinct episodes worth watching: the one that diverges earliest, a
        median one and the best (latest divergence, then smallest mean distance)."""
        horizon = self.distance.shape[1]
        first = np.where(np.isnan(self.first_divergence), horizon, self.first_divergence)
        mean_distance = np.nan_to_num(np.nanmean(self.distance, axis=1), nan=0.0)
        order = np.lexsort((mean_distance, first))  # earliest divergence first
        picks = {
            "earliest divergence": int(order[0]),
            "median": int(order[len(order) // 2]),
            "best": int(order[-1]),
        }
        chosen: dict[str, int] = {}
        for label, episode in picks.items():
            if episode not in chosen.values():
                chosen[label] = episode
        return chosen

    def summary(self) -> dict[str, float]:
        diverged = ~np.isnan(self.first_divergence)
        return {
            "expert_mean_return": float(self.expert_returns.mean()),
            "clone_mean_return": float(self.clone_returns.mean()),
            "diverged_share": float(diverged.mean()),
            "median_first_divergence": _nan_median(self.first_divergence),
            "mean_first_divergence_or_end": float(
                np.where(diverged, self.first_divergence, self.distance.shape[1]).mean()
            ),
            "failed_share": float((~np.isnan(self.clone_failure)).mean()),
            "median_time_to_failure": _nan_median(self.clone_failure),
        }


def _nan_median(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(np.median(finite)) if len(finite) else float("nan")


def paired_rollouts(
    expert: Policy,
    clone: Policy,
    env_id: EnvLike,
    n_episodes: int,
    seed: int = EVAL_SEED,
    threshold: float = 1.0,
    expert_data: Dataset | None = None,
    rollouts: Rollouts | None = None,
    space: DriftSpace | None = None,
    expert_states: np.ndarray | None = None,
) -> PairedRollouts:
    """Roll out both policies from the same seeds and compare their trajectories.

    ``expert_data``: the expert's rollouts from the same seeds, when already collected
    (comparing several clones needs them only once), with ``expert_states`` when the env's
    true state was recorded with them (:func:`imitate.drift_space.collect_states`; else
    it is replayed when needed). ``rollouts``: where (default: here). ``space``: the
    feature space of the distance (default: :func:`imitate.drift_space.drift_space`
    fitted on the expert's rollouts; for flat Box observations, the observations in
    expert-std units). Measured on the true state, both rollouts record it as they run."""
    from imitate.drift_space import collect_states, drift_space, true_state_attribute

    rollouts = rollouts or LocalRollouts()
    attribute = (
        true_state_attribute(env_spaces(env_id)[0], env_id)
        if space is None
        else space.state_attribute
    )
    if expert_data is None:
        expert_data, expert_states = collect_states(
            rollouts, expert, env_id, n_episodes, seed, attribute
        )
    clone_data, clone_states = collect_states(
        rollouts, _clone_driver(expert, clone), env_id, n_episodes, seed, attribute
    )
    if space is None:
        space = drift_space(expert_data, env_id, {"clone": clone}, expert_states)
    expert_features = space.features(expert_data, env_id, states=expert_states)
    expert_obs = episodes_padded(expert_data, values=expert_features)
    clone_obs = episodes_padded(clone_data, values=space.features(clone_data, states=clone_states))
    horizon = max(expert_obs.shape[1], clone_obs.shape[1])
    expert_obs, clone_obs = _pad_time(expert_obs, horizon), _pad_time(clone_obs, horizon)
    scale = space.scale
    diff = (clone_obs - expert_obs).reshape(n_episodes, horizon, -1) / scale
    distance = np.sqrt((diff**2).sum(axis=-1))  # NaN where either episode has ended
    beyond = np.nan_to_num(distance, nan=0.0) > threshold
    first = np.where(beyond.any(axis=1), beyond.argmax(axis=1), np.nan).astype(np.float64)
    ends = clone_data.episode_ends - 1
    failed = failed_at_termination(
        env_name(env_id), clone_data.terminated[ends], clone_data.rewards[ends]
    )
    failure = np.where(failed, clone_data.episode_lengths, np.nan)
    return PairedRollouts(
        expert_obs=expert_obs,
        clone_obs=clone_obs,
        distance=distance,
        first_divergence=first,
        clone_failure=failure.astype(np.float64),
        expert_returns=expert_data.episode_returns,
        clone_returns=clone_data.episode_returns,
        threshold=threshold,
        seed=seed,
        scale=scale,
        expert_data=expert_data,
        clone_data=clone_data,
        note=space.note,
    )


def _clone_driver(expert: Policy, clone: Policy) -> Policy:
    """What rolls out the clone: the clone itself, or, with a privileged expert, the clone
    driving while the expert labels every state (the data's actions are the labels)."""
    if not is_privileged(expert):
        return clone
    from imitate.privileged import PrivilegedMixture

    return PrivilegedMixture(expert, clone, 0.0, np.random.default_rng(0))  # type: ignore[arg-type]


def expert_labels(expert: Policy, data: Dataset, privileged_recorded: bool) -> np.ndarray:
    """The expert's actions at ``data``'s states: recorded with the data when the expert is
    privileged (``privileged_recorded``: they were recorded so), else asked now."""
    if is_privileged(expert):
        if not privileged_recorded:
            raise ValueError("a privileged expert's labels must be recorded during the rollout")
        return np.asarray(data.actions)
    return np.asarray(expert.act(data.obs))


def action_flip_rate(actions: np.ndarray, episode_starts: np.ndarray) -> float:
    """Share of steps whose action differs from the previous step's, within episodes.

    ``actions [N, ...]`` in episode order, ``episode_starts [E]``: a policy that holds each
    action for ``k`` steps scores ``1 / k``; the first step of an episode never counts."""
    actions = np.asarray(actions).reshape(len(actions), -1)
    changes = (actions[1:] != actions[:-1]).any(axis=1)
    starts = np.asarray(episode_starts)
    changes[starts[starts > 0] - 1] = False  # no flip across an episode boundary
    return float(changes.mean()) if len(changes) else 0.0


def nearest_distances(
    query: np.ndarray, reference: np.ndarray, scale: np.ndarray | None = None
) -> np.ndarray:
    """``[N]`` distance from each query state ``[N, D]`` to its nearest reference state
    ``[M, D]``, each dimension divided by ``scale`` (default: the reference's std, constant
    dimensions 1; a :class:`~imitate.drift_space.DriftSpace`'s for features of other
    observation spaces)."""
    reference = reference.reshape(len(reference), -1).astype(np.float64)
    if scale is None:
        scale = reference.std(axis=0)
        scale[scale < 1e-8] = 1.0
    ref = torch.as_tensor(reference / scale)
    queries = torch.as_tensor(query.reshape(len(query), -1).astype(np.float64) / scale)
    # chunks keep the [chunk, M] distance matrix small for large reference sets
    nearest = [torch.cdist(chunk, ref).min(dim=1).values for chunk in queries.split(1024)]
    return torch.cat(nearest).numpy() if nearest else np.zeros(0)


@dataclass(frozen=True)
class OffSupport:
    """Which clone states lie outside the demonstrations' support.

    Attributes:
        threshold: the ``quantile`` of the held-out expert states' nearest-neighbour
            distances to the reference (std units): farther than this is off support.
        expert_distances: ``[N_expert]`` those distances.
        clone_distances: ``[N_clone]`` the clone states' distances.
        mask: ``[N_clone]`` True for clone states beyond ``threshold``.
    """

    threshold: float
    expert_distances: np.ndarray
    clone_distances: np.ndarray
    mask: np.ndarray


def off_support(
    reference: np.ndarray,
    expert_states: np.ndarray,
    clone_states: np.ndarray,
    quantile: float = 0.99,
    scale: np.ndarray | None = None,
) -> OffSupport:
    """Clone states farther from every ``reference`` state than ``quantile`` of held-out
    ``expert_states`` are.

    ``reference``: ``[M, D]`` the states the clone was trained on (its demonstrations);
    ``expert_states``: ``[N_expert, D]`` expert states NOT in ``reference``, which calibrate
    how far in-distribution states lie; ``clone_states``: ``[N_clone, D]``. Unlike the
    paired distance of :func:`paired_rollouts`, this does not flag ordinary states that the
    clone merely reaches at a different time than the expert. ``scale``: the per-dimension
    divisors (default: the reference's std; see :func:`nearest_distances`).
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    if len(reference) == 0 or len(expert_states) == 0:
        raise ValueError("off_support needs reference and expert states")
    expert_distances = nearest_distances(expert_states, reference, scale)
    clone_distances = nearest_distances(clone_states, reference, scale)
    threshold = float(np.quantile(expert_distances, quantile))
    return OffSupport(threshold, expert_distances, clone_distances, clone_distances > threshold)


def _pad_time(values: np.ndarray, horizon: int) -> np.ndarray:
    if values.shape[1] == horizon:
        return values
    pad = np.full((values.shape[0], horizon - values.shape[1], *values.shape[2:]), np.nan)
    return np.concatenate([values, pad], axis=1)


def _disagreement(expert: Policy, clone: Policy, obs: Any) -> np.ndarray:
    """``[N]`` 1 where the clone's action differs from the expert's (Box: mean |diff|)."""
    return _disagreement_of(clone.act(obs), expert.act(obs))


def _disagreement_of(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """``[N]`` 1 where ``ours`` differs from the expert's ``theirs`` (Box: mean |diff|)."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if np.issubdtype(theirs.dtype, np.floating):
        return np.abs(ours - theirs).reshape(len(theirs), -1).mean(axis=1)
    return (ours != theirs).reshape(len(theirs), -1).any(axis=1).astype(np.float64)


def distribution_shift(
    expert: Policy, clone: Policy, expert_states: Any, clone_states: Any
) -> dict[str, float]:
    """Expert-labelled disagreement (and NLL for MLP and encoded clones) on expert vs clone
    states (observation batches of any space)."""
    return labelled_shift(
        clone, expert_states, expert.act(expert_states), clone_states, expert.act(clone_states)
    )


def labelled_shift(
    clone: Policy,
    expert_states: Any,
    expert_labels: np.ndarray,
    clone_states: Any,
    clone_labels: np.ndarray,
) -> dict[str, float]:
    """:func:`distribution_shift` with the expert's labels of both state sets given (a
    privileged expert's are recorded during the rollouts)."""
    result = {
        "disagreement_on_expert_states": float(
            _disagreement_of(clone.act(expert_states), expert_labels).mean()
        ),
        "disagreement_on_clone_states": float(
            _disagreement_of(clone.act(clone_states), clone_labels).mean()
        ),
    }
    from imitate.encoded import EncodedPolicy
    from imitate.policy import MLPPolicy

    for name, states, labels in (
        ("expert", expert_states, expert_labels),
        ("clone", clone_states, clone_labels),
    ):
        if isinstance(clone, MLPPolicy):
            with torch.no_grad():
                outputs = clone(torch.as_tensor(states, dtype=torch.float32))
        elif isinstance(clone, EncodedPolicy):
            with torch.no_grad():
                outputs = clone.outputs(states)
        else:
            continue
        with torch.no_grad():
            target = clone.head.actions_to_tensor(labels)
            result[f"nll_on_{name}_states"] = float(clone.head.nll(outputs, target).mean())
    result["disagreement_gap"] = (
        result["disagreement_on_clone_states"] - result["disagreement_on_expert_states"]
    )
    return result


@dataclass(frozen=True)
class HorizonScaling:
    """Mean cumulative cost at each horizon and the fitted log-log slope.

    Attributes:
        horizons: ``[H]``.
        costs: ``[E, H]`` cumulative cost of each episode up to each horizon.
        slope: fitted exponent; ``slope_ci``: 95 % bootstrap interval over episodes.
        cost: which per-step cost was summed (see :data:`COST_LABELS`).
        failed_share: share of episodes that ended in an (absorbing) failure before
            ``max(horizons)``.
    """

    horizons: np.ndarray
    costs: np.ndarray
    slope: float
    intercept: float
    slope_ci: tuple[float, float]
    cost: str = "negative_reward"
    failed_share: float = 0.0

    @property
    def mean_costs(self) -> np.ndarray:
        return np.asarray(self.costs.mean(axis=0))

    def to_json(self) -> dict[str, Any]:
        return {
            "horizons": self.horizons.tolist(),
            "mean_costs": self.mean_costs.tolist(),
            "slope": self.slope,
            "slope_ci": list(self.slope_ci),
            "cost": self.cost,
            "episodes": len(self.costs),
            "failed_share": self.failed_share,
        }


CostKind = Literal["disagreement", "negative_reward", "failure"]
COST_LABELS: dict[str, str] = {
    "disagreement": "steps where the clone's action differs from the expert's "
    "(0-1 loss; after a failure every step counts)",
    "negative_reward": "summed negated reward (after a failure every step costs 1)",
    "failure": "steps spent failed (a failing termination is absorbing)",
}
"""What the cumulative cost of each kind counts, for axis labels and reports."""


def fit_loglog(horizons: np.ndarray, mean_costs: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(slope, intercept)`` of ``log cost`` on ``log T`` (costs must be > 0)."""
    slope, intercept = np.polyfit(np.log(horizons), np.log(mean_costs), 1)
    return float(slope), float(intercept)


def imitation_loss01(
    expert: Policy, policy: Policy, obs: np.ndarray, box_tolerance: float | None = None
) -> np.ndarray:
    """``[N]`` the expert's 0-1 imitation loss: 1 where ``policy``'s action differs from the
    expert's. Continuous actions count as different when any component is farther than
    ``box_tolerance`` (action units) from the expert's."""
    return _loss01(policy.act(obs), expert.act(obs), box_tolerance)


def _loss01(ours: Any, theirs: Any, box_tolerance: float | None) -> np.ndarray:
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if np.issubdtype(theirs.dtype, np.floating):
        tolerance = 0.0 if box_tolerance is None else box_tolerance
        gap = np.abs(ours.astype(np.float64) - theirs).reshape(len(theirs), -1)
        return (gap > tolerance).any(axis=1).astype(np.float64)
    return (ours != theirs).reshape(len(theirs), -1).any(axis=1).astype(np.float64)


def box_tolerance_of(env_id: EnvLike, fraction: float = 0.05) -> float | None:
    """``fraction`` of the smallest action range of a bounded Box action space, else None."""
    _, action_space = env_spaces(env_id)
    low, high = getattr(action_space, "low", None), getattr(action_space, "high", None)
    if low is None or high is None or not np.all(np.isfinite(high - low)):
        return None
    return float(fraction * np.min(np.asarray(high) - np.asarray(low)))


def horizon_costs(
    step_cost: np.ndarray, lengths: np.ndarray, starts: np.ndarray, failed: np.ndarray, T: int
) -> np.ndarray:
    """``[E, T]`` per-step cost over a fixed horizon: each episode's own costs, then, after a
    failure, 1 per step up to ``T`` (the absorbing failure state); 0 after a success or a
    truncation (nothing left to imitate)."""
    padded = np.zeros((len(lengths), T))
    for e, (start, length) in enumerate(zip(starts, lengths, strict=True)):
        n = min(int(length), T)
        padded[e, :n] = step_cost[start : start + n]
        if failed[e] and n < T:
            padded[e, n:] = 1.0
    return padded


def episode_limit(env: EnvLike) -> int | None:
    """The step at which ``env`` cuts an episode: its gymnasium ``TimeLimit``
    (``max_episode_steps``), else the env's own ``max_steps`` (MiniGrid and BabyAI register
    no TimeLimit and truncate themselves; BabyAI levels set it at reset, so one env is made
    and reset), else None (no limit known: every horizon is kept)."""
    import gymnasium as gym

    spec = env_spec(env)
    if spec.max_episode_steps is not None:
        return int(spec.max_episode_steps)
    made = gym.make(spec)
    try:
        made.reset(seed=0)
        steps = getattr(made.unwrapped, "max_steps", None)
    finally:
        made.close()
    return int(steps) if isinstance(steps, int | np.integer) and steps > 0 else None


def checked_horizons(env: EnvLike, horizons: Sequence[int]) -> np.ndarray:
    """The distinct ``horizons`` within ``env``'s :func:`episode_limit`, sorted; a
    :class:`~imitate.errors.HorizonError` unless there are at least 2 of them (a
    cost-vs-horizon slope needs two points). Cheap: called before any rollout."""
    from imitate.errors import HorizonError

    given = [int(h) for h in horizons]
    if not given or min(given) < 1:
        raise HorizonError("--horizons must be positive integers")
    limit = episode_limit(env)
    kept = sorted({h for h in given if limit is None or h <= limit})
    if len(kept) >= 2:
        return np.asarray(kept)
    shown = " ".join(map(str, given))
    within = f" within {env_name(env)}'s time limit of {limit} steps" if limit is not None else ""
    raise HorizonError(
        f"--horizons {shown}: the cost-vs-horizon fit needs at least 2 distinct horizons"
        f"{within}, e.g. --horizons {_example_horizons(limit)}"
    )


def _example_horizons(limit: int | None) -> str:
    top = limit if limit is not None else 400
    fits = [h for h in (25, 50, 100, 200, 400) if h <= top]
    return " ".join(map(str, fits if len(fits) >= 2 else [max(1, top // 2), top]))


def horizon_scaling(
    policy: Policy,
    env_id: EnvLike,
    horizons: list[int],
    n_episodes: int,
    seed: int = 50_000,
    cost: CostKind = "negative_reward",
    expert: Policy | None = None,
    n_bootstrap: int = 1000,
    rollouts: Rollouts | None = None,
) -> HorizonScaling:
    """Cumulative cost up to each horizon along the policy's own trajectories.

    One episode of ``max(horizons)`` steps gives the cost of every shorter horizon;
    horizons beyond the env's time limit are dropped (the episode would be cut there).
    ``cost``: 1 per step where ``policy`` disagrees with ``expert`` (the 0-1 imitation
    loss; Box actions: beyond 5 % of the action range), the negated reward per step, or
    0 (``failure``: only failures cost). Whatever the kind, a failing termination
    (:func:`failed_at_termination`) is absorbing: every remaining step up to ``T`` costs 1.
    """
    hs = checked_horizons(env_id, horizons)
    labelled = cost == "disagreement" and expert is not None and is_privileged(expert)
    driver = _clone_driver(expert, policy) if labelled and expert is not None else policy
    data = (rollouts or LocalRollouts()).collect(driver, env_id, n_episodes, seed)
    if cost == "disagreement":
        if expert is None:
            raise ValueError("cost='disagreement' needs the expert")
        if labelled:  # the privileged expert's labels were recorded as the data's actions
            step_cost = _loss01(policy.act(data.obs), data.actions, box_tolerance_of(env_id))
        else:
            step_cost = imitation_loss01(expert, policy, data.obs, box_tolerance_of(env_id))
    elif cost == "failure":
        step_cost = np.zeros(len(data))
    else:
        step_cost = -data.rewards.astype(np.float64)
    ends = data.episode_ends - 1
    failed = failed_at_termination(env_name(env_id), data.terminated[ends], data.rewards[ends])
    failed &= data.episode_lengths < hs.max()
    padded = horizon_costs(step_cost, data.episode_lengths, data.episode_starts, failed, hs.max())
    costs = np.cumsum(padded, axis=1)[:, hs - 1]
    share = float(failed.mean())
    if not np.all(costs.mean(axis=0) > 0):  # a clone with zero cost has no log-log slope
        nan = float("nan")
        return HorizonScaling(hs, costs, nan, nan, (nan, nan), cost, share)
    slope, intercept = fit_loglog(hs, costs.mean(axis=0))
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_bootstrap):
        sample = costs[rng.integers(0, len(costs), len(costs))].mean(axis=0)
        if np.all(sample > 0):
            boot.append(fit_loglog(hs, sample)[0])
    ci = (
        (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5)))
        if boot
        else (np.nan, np.nan)
    )
    return HorizonScaling(hs, costs, slope, intercept, ci, cost, share)


def disagreement_along(
    expert: Policy, clone: Policy, clone_obs: np.ndarray | Dataset
) -> np.ndarray:
    """``[E, T]`` per-step disagreement on the clone's own states, NaN once an episode ended.

    ``clone_obs``: the clone's rollouts as a Dataset (any observation space: Dict, Tuple,
    Text, images; with a privileged expert, its labels recorded as the data's actions, as
    :func:`paired_rollouts` records them), or flat Box states padded ``[E, T, obs]`` (NaN
    after each episode's end, as :attr:`PairedRollouts.clone_obs`)."""
    if isinstance(clone_obs, Dataset):
        labels = expert_labels(expert, clone_obs, privileged_recorded=True)
        ours = np.asarray(clone.act(clone_obs.obs))
        return episodes_padded(clone_obs, values=_disagreement_of(ours, labels))
    n_episodes, horizon = clone_obs.shape[:2]
    flat = clone_obs.reshape(n_episodes * horizon, -1)
    alive = ~np.isnan(flat).any(axis=1)
    out = np.full(n_episodes * horizon, np.nan)
    out[alive] = _disagreement(expert, clone, flat[alive].astype(np.float32))
    return out.reshape(n_episodes, horizon)


STATE_NAMES: dict[str, tuple[str, ...]] = {
    "CartPole-v1": ("cart position", "cart velocity", "pole angle", "pole angular velocity"),
    "Acrobot-v1": (
        "cos θ1",
        "sin θ1",
        "cos θ2",
        "sin θ2",
        "angular velocity θ1",
        "angular velocity θ2",
    ),
    "MountainCar-v0": ("car position", "car velocity"),
    "MountainCarContinuous-v0": ("car position", "car velocity"),
    "LunarLander-v3": (
        "x position",
        "y position",
        "x velocity",
        "y velocity",
        "angle",
        "angular velocity",
        "left leg contact",
        "right leg contact",
    ),
    "Pendulum-v1": ("cos θ", "sin θ", "angular velocity"),
    "imitate/Tightrope-v0": ("lateral offset x", "wind (seen before it blows)"),
    "imitate/TightropeCalm-v0": ("lateral offset x", "wind (seen before it blows)"),
}
"""Names of the observation dimensions of the shipped envs (gymnasium's documentation)."""
STATE_NAMES["LunarLanderContinuous-v3"] = STATE_NAMES["LunarLander-v3"]
STATE_NAMES["imitate/PixelCartPole-v1"] = STATE_NAMES["CartPole-v1"]  # drift on its true state


def state_names(env_id: str, obs_dim: int) -> list[str]:
    """The env's dimension names when known (and of the right length), else ``state[i]``."""
    names = STATE_NAMES.get(env_id)
    if names is not None and len(names) == obs_dim:
        return list(names)
    return [f"state[{i}]" for i in range(obs_dim)]


@dataclass(frozen=True)
class DriftAnalysis:
    """Everything measured for a set of clones against one expert (what the figures, the
    HTML report and the videos are drawn from).

    Attributes:
        env_id, n_episodes, seed, threshold: the paired episodes' setting.
        pairs: clone name -> its paired rollouts.
        disagreement: clone name -> ``[E, T]`` per-step disagreement on its own states.
        fits: clone name -> cost-vs-horizon fit.
        summaries: clone name -> JSON-safe summary row.
    """

    env_id: str
    n_episodes: int
    seed: int
    threshold: float
    pairs: dict[str, PairedRollouts]
    disagreement: dict[str, np.ndarray]
    fits: dict[str, HorizonScaling]
    summaries: dict[str, dict[str, Any]]
    env: Any = None
    """The env as given (an id, or a spec with kwargs and wrappers), for re-rollouts."""
    note: str = ""
    """How distances are measured (:attr:`imitate.drift_space.DriftSpace.note`)."""
    feature_names: tuple[str, ...] = ()
    """Names of the compared features when the observations are not a flat Box."""

    @property
    def state_names(self) -> list[str]:
        if self.feature_names:
            return list(self.feature_names)
        first = next(iter(self.pairs.values()))
        return state_names(self.env_id, first.expert_obs.shape[-1])


def analyse_drift(
    env_id: EnvLike,
    expert: Policy,
    clones: dict[str, Policy],
    n_episodes: int = 20,
    seed: int = EVAL_SEED,
    threshold: float = 1.0,
    horizons: tuple[int, ...] = (25, 50, 100, 200, 400),
    cost: CostKind = "disagreement",
    progress: bool = False,
    rollouts: Rollouts | None = None,
) -> DriftAnalysis:
    """Paired rollouts, shift gap and horizon scaling for each clone (``progress``: a bar
    over the clones), rolled out on ``rollouts`` (default: this process)."""
    from tqdm.auto import tqdm

    from imitate.drift_space import (
        check_drift_space,
        collect_states,
        drift_space,
        true_state_attribute,
    )

    observation_space = env_spaces(env_id)[0]
    check_drift_space(observation_space, env_id, clones)  # before any rollout
    checked_horizons(env_id, horizons)
    pairs: dict[str, PairedRollouts] = {}
    fits: dict[str, HorizonScaling] = {}
    per_step: dict[str, np.ndarray] = {}
    summaries: dict[str, dict[str, Any]] = {}
    rollouts = rollouts or LocalRollouts()
    attribute = true_state_attribute(observation_space, env_id)  # images: their true state
    expert_data, states = collect_states(rollouts, expert, env_id, n_episodes, seed, attribute)
    space = drift_space(expert_data, env_id, clones, states)  # one space: clones comparable
    on_expert = expert_labels(expert, expert_data, privileged_recorded=True)
    for name, clone in tqdm(clones.items(), desc="drift", unit="clone", disable=not progress):
        pair = paired_rollouts(
            expert, clone, env_id, n_episodes, seed, threshold, expert_data, rollouts, space, states
        )
        pairs[name] = pair
        clone_data = pair.clone_data
        assert clone_data is not None
        on_clone = expert_labels(expert, clone_data, privileged_recorded=True)
        ours = np.asarray(clone.act(clone_data.obs))
        padded = episodes_padded(clone_data, values=_disagreement_of(ours, on_clone))
        per_step[name] = _pad_time(padded, pair.distance.shape[1])
        summary: dict[str, Any] = {
            **pair.summary(),
            **labelled_shift(clone, expert_data.obs, on_expert, clone_data.obs, on_clone),
        }
        fit = horizon_scaling(
            clone, env_id, list(horizons), n_episodes, seed, cost, expert, rollouts=rollouts
        )
        fits[name] = fit
        summary["horizon_scaling"] = fit.to_json()
        summaries[name] = summary
    return DriftAnalysis(
        env_name(env_id),
        n_episodes,
        seed,
        threshold,
        pairs,
        per_step,
        fits,
        summaries,
        env_id,
        space.note,
        () if space.flat or space.state_attribute else space.names,  # states: STATE_NAMES
    )


MAX_PLOTTED_FEATURES = 8
"""Feature rows drawn in the trajectory figures of a non-Box observation space."""
MAX_PLOTTED_DIMS = 24
"""State-dimension rows drawn in the trajectory figures of a flat Box space (all of them up
to this many: every shipped env but the largest MuJoCo ones)."""


def _mean_of_finite(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else 0.0


def _std_of_finite(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.std()) if len(finite) else 0.0


def plotted_features(analysis: DriftAnalysis) -> tuple[list[int], str]:
    """Which features the trajectory figures draw (indices, ascending) and a caption saying
    so ("" when all are drawn).

    Non-Box spaces (a Dict flattens to a one-hot per cell and key: BabyAI's to 138
    features) draw :data:`MAX_PLOTTED_FEATURES` rows, flat Box spaces up to
    :data:`MAX_PLOTTED_DIMS`. When there are more, the most informative are kept: those
    where the clones' states lie farthest from the expert's (mean absolute difference on
    the same reset seeds, in units of the feature's std over every plotted state), ties
    (e.g. no clone drifts) broken by that std; constant features come last."""
    names = analysis.state_names
    limit = MAX_PLOTTED_FEATURES if analysis.feature_names else MAX_PLOTTED_DIMS
    if len(names) <= limit:
        return list(range(len(names))), ""
    dim = len(names)
    pairs = list(analysis.pairs.values())
    expert = pairs[0].expert_obs.astype(np.float64)
    states = np.concatenate(
        [expert.reshape(-1, dim)] + [p.clone_obs.reshape(-1, dim) for p in pairs]
    )
    spread = np.array([_std_of_finite(states[:, d]) for d in range(dim)])
    gap = np.zeros(dim)
    for pair in pairs:  # same reset seeds: step t of episode e against the expert's
        steps = min(expert.shape[1], pair.clone_obs.shape[1])
        diff = np.abs(pair.clone_obs[:, :steps] - expert[:, :steps]).reshape(-1, dim)
        gap += [_mean_of_finite(diff[:, d]) for d in range(dim)]
    gap = np.divide(gap, spread, out=np.zeros(dim), where=spread > 0) / len(pairs)
    ranked = np.lexsort((-spread, -gap))  # the last key sorts first
    chosen = sorted(int(i) for i in ranked[:limit])
    caption = (
        f"{limit} of {len(names)} features: those where the clones' states differ most "
        "from the expert's (then the most varying)"
    )
    return chosen, caption


def drift_figures(analysis: DriftAnalysis, out_dir: Any) -> dict[str, str]:
    """Draw the drift figures of ``analysis`` into ``out_dir``; name -> PNG path."""
    from pathlib import Path

    from imitate.plots import (
        plot_disagreement,
        plot_distance,
        plot_horizon_scaling,
        plot_trajectories,
    )

    out = Path(out_dir)
    pairs = analysis.pairs
    first = next(iter(pairs.values()))
    dims, caption = plotted_features(analysis)  # many features: the most informative
    names = [analysis.state_names[d] for d in dims]
    title = f"{analysis.env_id}: expert vs clone trajectories"
    figures = {
        "trajectories": plot_trajectories(
            first.expert_obs,
            {n: p.clone_obs for n, p in pairs.items()},
            out / "trajectories.png",
            dims,
            names,
            title=f"{title}\n{caption}" if caption else title,
        ),
        "distance": plot_distance(
            {n: p.distance for n, p in pairs.items()}, out / "distance.png", analysis.threshold
        ),
        "disagreement": plot_disagreement(analysis.disagreement, out / "disagreement.png"),
    }
    fits = {n: f for n, f in analysis.fits.items() if np.isfinite(f.slope)}
    if fits:
        kind = next(iter(fits.values())).cost
        figures["horizon"] = plot_horizon_scaling(
            fits, out / "horizon.png", cost_label=COST_LABELS.get(kind, kind)
        )
    return {k: str(v) for k, v in figures.items()}


def drift_report(
    env_id: EnvLike,
    expert: Policy,
    clones: dict[str, Policy],
    out_dir: Any,
    n_episodes: int = 20,
    seed: int = EVAL_SEED,
    threshold: float = 1.0,
    horizons: tuple[int, ...] = (25, 50, 100, 200, 400),
    cost: CostKind = "disagreement",
) -> dict[str, Any]:
    """Paired rollouts, shift gap and horizon scaling for each clone; writes four figures.

    Returns a JSON-safe dict with per-clone summaries and the figure paths.
    """
    analysis = analyse_drift(env_id, expert, clones, n_episodes, seed, threshold, horizons, cost)
    return drift_results(analysis, drift_figures(analysis, out_dir))


def drift_results(analysis: DriftAnalysis, figures: dict[str, str]) -> dict[str, Any]:
    """The JSON-safe summary of ``analysis`` with the paths of its figures."""
    return {
        "env": analysis.env_id,
        "episodes": analysis.n_episodes,
        "seed": analysis.seed,
        "distance": analysis.note,
        "clones": analysis.summaries,
        "figures": figures,
    }


DRIFT_HEADER = (
    "clone",
    "return",
    "first divergence (mean step, or episode end)",
    "diverged share",
    "failed share",
    "disagreement on expert states",
    "on clone states",
    "cost-vs-T slope [95 % CI]",
)


def drift_rows(summaries: dict[str, dict[str, Any]]) -> tuple[list[list[str]], str]:
    """The cells of the drift table (one row per clone, :data:`DRIFT_HEADER`'s columns) and
    the note that says what the slope's cost is."""
    rows = []
    kind = "disagreement"
    for name, s in summaries.items():
        hs = s["horizon_scaling"]
        kind = hs.get("cost", kind)
        lo, hi = hs["slope_ci"]
        rows.append(
            [
                name,
                f"{s['clone_mean_return']:.1f}",
                f"{s['mean_first_divergence_or_end']:.1f}",
                f"{s['diverged_share']:.2f}",
                f"{s['failed_share']:.2f}",
                f"{s['disagreement_on_expert_states']:.3f}",
                f"{s['disagreement_on_clone_states']:.3f}",
                f"{hs['slope']:.2f} [{lo:.2f}, {hi:.2f}]",
            ]
        )
    note = (
        f"Cost in the slope: {COST_LABELS.get(kind, kind)}, summed over a fixed horizon T on "
        "the clone's own rollouts; 95 % bootstrap interval over episodes."
    )
    return rows, note


def drift_table(results: dict[str, Any]) -> str:
    """The markdown table of drift figures per clone, with its note."""
    rows, note = drift_rows(results["clones"])
    lines = ["| " + " | ".join(DRIFT_HEADER) + " |", "|" + "---|" * len(DRIFT_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + f"\n\n{note}\n"


def drift_markdown(results: dict[str, Any]) -> str:
    """A markdown section: table of drift figures per clone, then the figures."""
    figures = "\n\n".join(
        f"![{name}]({path.split('/')[-1]})" for name, path in results["figures"].items()
    )
    return (
        f"Paired rollouts on {results['episodes']} seeds from {results['seed']}: "
        "expert and clone start from the same state. "
        + results.get("distance", "")
        + "\n\n"
        + drift_table(results)
        + "\n"
        + figures
        + "\n"
    )
