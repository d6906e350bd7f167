"""DAgger (Ross, Gordon and Bagnell 2011): train on the states the learner visits.

BC only sees expert states, so its mistakes compound (cost ~ T^2 * eps over a
horizon T). DAgger rolls out the mixture ``beta_i * expert + (1 - beta_i) *
learner`` in round ``i``, labels the visited states with the expert,
aggregates everything in memory and retrains with BC's own ``train_bc``
(warm start), which brings the cost down to ~ T * eps.

Gated queries (after SafeDAgger / ThriftyDAgger) ask the expert only about
the states where the learner is least sure: action entropy, energy score, or
disagreement of a small bootstrap ensemble. The learner still drives every
state; after each round the ``query_rate`` share of its states with the highest
scores is labelled (ties broken at random). Every expert call that
labels a state is counted, including the calls that let the expert drive.

Defaults (chosen so that DAgger does not lose to BC on the same labels; measured in
``benchmarks/bench_dagger.py``): every round is made of *whole* episodes, as many as
``steps_per_round`` holds and at least one (episodes run one after another with reset
seeds ``seed + i``; the episode the budget cuts short is dropped, its steps counted in
``env_steps`` but not in ``expert_labels``). Round 0 is therefore ordinary BC data, and a
learner round always holds at least one episode the learner finished (or failed) on its
own. With ``whole_episodes=False`` a round is exactly ``steps_per_round`` states on
``num_envs`` envs, and a round that holds no complete episode warns. DAgger stops after
``rounds`` rounds, or when the evaluated learner return has not improved on its best for
``patience`` rounds; the best evaluated learner is returned.
"""

from __future__ import annotations

import contextlib
import copy
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from imitate.bc import BCConfig, train_bc
from imitate.calibration import energy_score, vote_disagreement
from imitate.collect import LOCAL, Backend, EvalResult, collect, evaluate
from imitate.configs import BetaSchedule as BetaSchedule  # re-exported
from imitate.configs import DAggerConfig as DAggerConfig
from imitate.configs import Gate as Gate
from imitate.data import Dataset, concatenate
from imitate.environments import EnvLike, env_record
from imitate.errors import ImitateError
from imitate.policy import MLPPolicy, Policy, SoftPolicy, fast_policy
from imitate.runs import config_to_json


class PartialRoundWarning(UserWarning):
    """A DAgger round of cut episodes held no complete episode."""


@dataclass
class DAggerHistory:
    """One record per round: labels and env steps so far, learner return, wall time."""

    records: list[dict[str, float]] = field(default_factory=list)
    best_round: int | None = None
    """The round whose learner was returned (with ``patience``: the best evaluated one)."""

    @property
    def expert_labels(self) -> int:
        return int(self.records[-1]["expert_labels"]) if self.records else 0

    def __repr__(self) -> str:
        last = self.records[-1] if self.records else {}
        ret = last.get("learner_return")
        shown = "" if ret is None else f", learner_return={ret:.2f}"
        return (
            f"DAggerHistory(rounds={len(self.records)}, expert_labels={self.expert_labels}{shown})"
        )


class MixturePolicy:
    """Per-state coin flip: the expert acts with probability ``beta``, else the learner.

    Counts the expert's calls (each one labels a state)."""

    def __init__(self, expert: Policy, learner: Policy, beta: float, rng: np.random.Generator):
        self.expert, self.learner, self.beta, self.rng = expert, learner, beta, rng
        self.expert_calls = 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        actions = self.learner.act(obs)
        use_expert = self.rng.random(len(obs)) < self.beta
        if use_expert.any():
            actions = actions.copy()
            actions[use_expert] = self.expert.act(obs[use_expert])
            self.expert_calls += int(use_expert.sum())
        return actions

    def reseed(self, seed: int) -> None:
        """A new coin stream (each Ray shard gets its own)."""
        self.rng = np.random.default_rng(seed)


def uncertainty(
    policy: MLPPolicy, members: list[MLPPolicy], obs: np.ndarray, config: DAggerConfig
) -> np.ndarray:
    """Per-state score ``[N]`` of the configured gate (higher = ask the expert)."""
    with torch.no_grad():
        outputs = policy(torch.as_tensor(obs, dtype=torch.float32))
    if config.gate == "entropy":
        return policy.head.entropy(outputs).numpy()
    if config.gate == "energy":
        if policy.head.action_shape != ():
            raise ImitateError("the energy gate needs a Discrete action space")
        return energy_score(outputs, config.energy_temperature).numpy()
    return vote_disagreement(np.stack([m.act(obs) for m in (policy, *members)]))


def most_uncertain(scores: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the ``ceil(rate * N)`` highest scores, ties broken at random.

    (A quantile threshold would over-select when many states share a score.)"""
    count = int(np.ceil(rate * len(scores)))
    shuffled = rng.permutation(len(scores))
    return shuffled[np.argsort(-scores[shuffled], kind="stable")[:count]]


def dagger(
    env_id: EnvLike,
    expert: Policy,
    config: DAggerConfig = DAggerConfig(),
    progress: bool = False,
    backend: Backend = LOCAL,
    desc: str = "dagger",
) -> tuple[MLPPolicy, DAggerHistory]:
    """Run DAgger on ``env_id`` with ``expert`` labelling; returns the learner and the history.

    ``backend`` runs the rollout phase and the evaluations (on Ray: one pool of actors for
    all rounds; each shard's mixture draws its own coins).

    History records per round: ``round``, ``beta``, ``states`` visited, ``labelled``
    in the round, cumulative ``expert_labels`` and ``env_steps``, ``query_rate``,
    ``learner_return`` (if evaluated) and ``wall_time`` (training and rollouts only).
    """
    with contextlib.ExitStack() as stack:
        rollouts = _Rollouts(env_id, config, backend, stack)
        return _dagger_rounds(env_id, expert, config, progress, rollouts, desc)


class _Rollouts:
    """DAgger's rollout phase and evaluations on the chosen backend."""

    def __init__(
        self, env_id: EnvLike, config: DAggerConfig, backend: Backend, stack: contextlib.ExitStack
    ) -> None:
        self.env_id, self.config = env_id, config
        self.pool = None
        if backend.kind == "ray":
            from imitate.distributed import RolloutPool

            self.pool = stack.enter_context(RolloutPool(backend))

    def collect(self, driver: Policy, seed: int) -> tuple[Dataset, int, int]:
        """States visited by ``driver`` (budget: steps_per_round), the env steps taken and the
        mixture's expert calls (see the module docstring for ``whole_episodes``)."""
        if not self.config.whole_episodes:
            rollout, calls = self._collect(driver, seed, self.config.num_envs)
            if not rollout.truncated.any() and not rollout.terminated.any():
                warnings.warn(
                    f"DAgger round of {len(rollout)} states on {self.config.num_envs} envs holds "
                    "no complete episode: raise steps_per_round or use whole_episodes",
                    PartialRoundWarning,
                    stacklevel=4,
                )
            return rollout, len(rollout), calls
        rollout, calls = self._collect(driver, seed, 1)
        complete = whole_episode_index(rollout)
        if len(complete) == 0:  # one episode is longer than the budget: run it to its end
            if isinstance(driver, MixturePolicy):
                driver.expert_calls = 0
            rollout, calls = self._collect(driver, seed, 1, budget=None)
            return rollout, len(rollout), calls
        return rollout.select_episodes(complete), len(rollout), calls

    def _collect(
        self, driver: Policy, seed: int, num_envs: int, budget: int | None = -1
    ) -> tuple[Dataset, int]:
        config = self.config
        max_steps = config.steps_per_round if budget == -1 else budget
        n_episodes = 10**9 if max_steps is not None else 1
        if self.pool is not None:
            return self.pool.collect(
                driver, self.env_id, n_episodes, seed, num_envs, "dagger", max_steps=max_steps
            )  # fmt: skip
        rollout = collect(
            driver,
            self.env_id,
            n_episodes=n_episodes,
            seed=seed,
            num_envs=num_envs,
            seeding="per-episode",
            source="dagger",
            max_steps=max_steps,
        )
        return rollout, driver.expert_calls if isinstance(driver, MixturePolicy) else 0

    def evaluate(self, policy: Policy) -> EvalResult:
        episodes, num_envs = self.config.eval_episodes, self.config.num_envs
        if self.pool is not None:
            return self.pool.evaluate(policy, self.env_id, episodes, 10_000, num_envs)
        return evaluate(policy, self.env_id, episodes, 10_000, num_envs)


def _dagger_rounds(
    env_id: EnvLike,
    expert: Policy,
    config: DAggerConfig,
    progress: bool,
    rollouts: _Rollouts,
    desc: str = "dagger",
) -> tuple[MLPPolicy, DAggerHistory]:
    rng = np.random.default_rng(config.seed)
    history = DAggerHistory()
    labelled: list[Dataset] = []
    policy: MLPPolicy | None = None
    members: list[MLPPolicy] = []
    expert_labels = env_steps = 0
    wall_time = 0.0
    best: tuple[float, MLPPolicy] | None = None
    since_best = 0
    bar = tqdm(range(config.rounds), desc=desc, unit="round", disable=not progress)
    for round_index in bar:
        start = time.perf_counter()
        beta = config.beta.beta(round_index, config.rounds)
        if policy is None or beta >= 1.0:
            driver: Policy = expert
            mixture = None
        else:
            mixture = MixturePolicy(expert, fast_policy(policy), beta, rng)
            driver = mixture
        rollout, steps, mixture_calls = rollouts.collect(
            driver, config.seed * 1_000_003 + round_index * 10_007
        )
        env_steps += steps
        if driver is expert:
            round_data, queried = rollout, len(rollout)  # the recorded actions are the labels
            if config.soft_labels:
                round_data = replace(rollout, teacher_logits=_logits(expert, rollout.obs))
        else:
            assert policy is not None and mixture is not None
            if config.gate == "none":
                index = np.arange(len(rollout))
            else:
                scores = uncertainty(policy, members, rollout.obs, config)
                index = most_uncertain(scores, config.query_rate, rng)
            selected = rollout.select_transitions(index)
            round_data = replace(selected, actions=expert.act(selected.obs))
            if config.soft_labels:
                round_data = replace(round_data, teacher_logits=_logits(expert, selected.obs))
            queried = len(index) + mixture_calls
        expert_labels += queried
        labelled.append(round_data)
        aggregate = concatenate(labelled)
        bc_config = replace(config.bc, seed=config.bc.seed + round_index)
        policy, round_bc = train_bc(
            aggregate, bc_config, policy=policy if config.warm_start else None
        )
        if config.gate == "ensemble":
            members = _train_members(aggregate, config, members, rng)
        wall_time += time.perf_counter() - start
        record: dict[str, float] = {
            "round": round_index,
            "beta": beta,
            "states": len(rollout),
            "episodes": rollout.n_episodes,
            "labelled": len(round_data),
            "query_rate": queried / len(rollout),
            "expert_labels": expert_labels,
            "env_steps": env_steps,
            "dataset_size": len(aggregate),
            "wall_time_s": wall_time,
        }
        # the round's training: loss and held-out NLL of the kept weights
        for key in ("train_loss", "holdout_bits_per_action"):
            if key in round_bc.final:
                record[key] = round_bc.final[key]
        if config.eval_episodes > 0:
            result = rollouts.evaluate(policy)
            record["learner_return"] = result.mean_return
            if best is None or result.mean_return > best[0]:
                best, since_best = (result.mean_return, copy.deepcopy(policy)), 0
            else:
                since_best += 1
        history.records.append(record)
        shown: dict[str, float] = {"labels": expert_labels}  # return: where evaluated
        if "learner_return" in record:
            shown["ret"] = round(record["learner_return"], 1)
        bar.set_postfix(shown)
        target = config.target_return
        if target is not None and record.get("learner_return", -np.inf) >= target:
            break
        if config.patience is not None and since_best >= config.patience:
            break
    assert policy is not None
    if best is not None and config.patience is not None:
        history.best_round = int(np.argmax([r["learner_return"] for r in history.records]))
        policy = best[1]
    expert_info = getattr(expert, "provenance", None)
    policy.provenance = {
        **env_record(env_id),
        "expert": expert_info.get("spec", "unknown")
        if isinstance(expert_info, dict)
        else "unknown",
        "expert_info": expert_info if isinstance(expert_info, dict) else {},
        "dagger_seed": config.seed,
        "dagger": config_to_json(config),
    }
    return policy, history


def whole_episode_index(data: Dataset) -> np.ndarray:
    """Indices of the episodes of ``data`` that ended (terminated or truncated)."""
    if len(data) == 0:
        return np.zeros(0, np.int64)
    last = data.episode_ends - 1
    return np.flatnonzero(data.terminated[last] | data.truncated[last])


def _logits(expert: Policy, obs: np.ndarray) -> np.ndarray:
    if not isinstance(expert, SoftPolicy):
        raise ImitateError("soft labels need an expert with logits (a SoftPolicy)")
    return expert.logits(obs).astype(np.float32)


def _train_members(
    aggregate: Dataset, config: DAggerConfig, members: list[MLPPolicy], rng: np.random.Generator
) -> list[MLPPolicy]:
    """Bootstrap copies of the learner (Poisson(1) sample weights), warm-started per round."""
    trained = []
    for k in range(config.ensemble_size - 1):
        weights = rng.poisson(1.0, len(aggregate)).astype(np.float32)
        member_config = replace(config.bc, seed=config.bc.seed + 1000 * (k + 1))
        warm = members[k] if k < len(members) else None
        member, _ = train_bc(replace(aggregate, weights=weights), member_config, policy=warm)
        trained.append(member)
    return trained


def bc_label_curve(
    env_id: EnvLike,
    expert: Policy,
    label_counts: list[int],
    config: BCConfig,
    seed: int = 0,
    eval_episodes: int = 20,
) -> list[dict[str, Any]]:
    """BC trained on the first ``L`` expert-trajectory transitions, for each ``L``: the baseline."""
    biggest = max(label_counts)
    demos = collect(expert, env_id, n_episodes=10**9, seed=seed, max_steps=biggest)
    curve = []
    for count in label_counts:
        subset = demos.select_transitions(np.arange(min(count, len(demos))))
        policy, _ = train_bc(subset, config)
        result = evaluate(policy, env_id, eval_episodes, 10_000)
        curve.append({"expert_labels": count, "learner_return": result.mean_return})
    return curve
