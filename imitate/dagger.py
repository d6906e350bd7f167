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
own. With ``whole_episodes=False`` a round is ``steps_per_round`` states on ``num_envs``
envs (rounded up to a multiple of ``num_envs``), and a round that holds no complete
episode warns; ``whole_first_round`` then keeps round 0 of whole expert episodes
(``imitate run``'s DAgger). DAgger stops after ``rounds`` rounds, or when the evaluated
learner return has not improved on its best for
``patience`` rounds. Then (``final_refit``, on by default) a new learner is trained on the
whole aggregate with BC's own length of training and returned: the short warm-started
round trainings leave learners that BC's training on the same labels beats (Pendulum), and
the 20 selection episodes do not pick the better rounds (measured: README). It asks no
labels. With ``final_refit=False`` the best evaluated round's learner is returned (with
``patience``; else the last round's).

The mixture marks the states where its expert chose the action (the data's
``expert_acted`` column, filled by the rollout on every backend), so those calls are
counted from the data. With a run folder (``run_dir``), every round's labels, learner and
record are saved as the round finishes (:class:`RoundStore`); ``resume=True`` loads them
and continues. The random streams of round ``k`` (mixture coins, gate tie-breaks,
bootstrap weights) come from ``SeedSequence([seed, k])`` and its rollouts reset from
:func:`round_seed`, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from imitate.backends import Rollouts
from imitate.bc import BCConfig, train_bc
from imitate.calibration import energy_score, vote_disagreement
from imitate.collect import EvalResult, LocalRollouts, collect, evaluate
from imitate.configs import BetaSchedule as BetaSchedule  # re-exported
from imitate.configs import DAggerConfig as DAggerConfig
from imitate.configs import Gate as Gate
from imitate.configs import refit_training
from imitate.constants import EVAL_SEED
from imitate.data import Dataset, concatenate, load_dataset
from imitate.environments import EnvLike, env_record
from imitate.errors import ImitateError, ResumeError
from imitate.fileio import write_json
from imitate.policy import MLPPolicy, Policy, SoftPolicy, fast_policy, load_policy, save_policy
from imitate.privileged import PrivilegedMixture, is_privileged
from imitate.runs import artefact_dir, check_same_settings, config_to_json, json_form


class PartialRoundWarning(UserWarning):
    """A DAgger round of cut episodes held no complete episode."""


@dataclass(frozen=True)
class DAggerRound:
    """The record of one round (its JSON form: :meth:`to_json`, in ``history.records``,
    metrics.jsonl and the round's ``record.json``). Counts are cumulative where named so."""

    round: int
    beta: float
    """Share of the mixture's steps the expert drove (1: round 0)."""
    states: int
    """States kept from the round's rollout."""
    episodes: int
    labelled: int
    """States labelled by the expert in this round (the round's dataset)."""
    query_rate: float
    """Expert calls of the round (labels + driving) per kept state."""
    expert_labels: int
    """Expert calls so far."""
    env_steps: int
    """Env steps so far (cut episodes included)."""
    dataset_size: int
    """Size of the aggregate trained on."""
    wall_time_s: float
    """Training and rollouts so far."""
    train_loss: float | None = None
    holdout_bits_per_action: float | None = None
    learner_return: float | None = None
    """Mean evaluated return of the round's learner (None: not evaluated)."""

    def to_json(self) -> dict[str, float]:
        """The fields that are set, by name."""
        return _set_fields(self)

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> DAggerRound:
        return cls(**_known_fields(cls, record))


def _set_fields(record: Any) -> dict[str, float]:
    """A round or refit record's JSON form: the fields that are set, by name."""
    return {f.name: v for f in fields(record) if (v := getattr(record, f.name)) is not None}


def _known_fields(cls: Any, record: dict[str, Any]) -> dict[str, Any]:
    """The entries of a saved record that are fields of ``cls`` (older files lack some)."""
    return {f.name: record[f.name] for f in fields(cls) if f.name in record}


@dataclass(frozen=True)
class DAggerRefit:
    """The record of the final refit (``final_refit``): a new learner trained on the whole
    aggregate after the last round (its JSON form: :meth:`to_json`, in the run's result as
    ``refit``, and ``refit/record.json`` in the run folder). It asks no labels."""

    expert_labels: int
    """Expert calls of the run (the last round's count: the refit adds none)."""
    dataset_size: int
    """Size of the aggregate trained on (every round's labels)."""
    wall_time_s: float
    """Training and rollouts of the run, the refit's training included."""
    train_loss: float | None = None
    holdout_bits_per_action: float | None = None
    learner_return: float | None = None
    """Mean evaluated return of the refit learner (the rounds' evaluation episodes)."""

    def to_json(self) -> dict[str, float]:
        """The fields that are set, by name."""
        return _set_fields(self)

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> DAggerRefit:
        return cls(**_known_fields(cls, record))


@dataclass
class DAggerHistory:
    """One record per round: labels and env steps so far, learner return, wall time."""

    rounds: list[DAggerRound] = field(default_factory=list)
    best_round: int | None = None
    """With ``patience``: the best evaluated round (its learner is returned unless the final
    refit is)."""
    refit: DAggerRefit | None = None
    """The final refit's record (``final_refit``; its learner is the one returned, whatever
    the rounds' evaluations: the best round's return is picked on the same episodes, so it
    is biased upwards against the refit's)."""

    @property
    def records(self) -> list[dict[str, float]]:
        """The rounds as JSON records."""
        return [r.to_json() for r in self.rounds]

    @property
    def expert_labels(self) -> int:
        return self.rounds[-1].expert_labels if self.rounds else 0

    def __repr__(self) -> str:
        ret = self.rounds[-1].learner_return if self.rounds else None
        shown = "" if ret is None else f", learner_return={ret:.2f}"
        return (
            f"DAggerHistory(rounds={len(self.rounds)}, expert_labels={self.expert_labels}{shown})"
        )


class MixturePolicy:
    """Per-state coin flip: the expert acts with probability ``beta``, else the learner.

    :meth:`act_marked` says which rows the expert chose (each one labels a state); the
    rollout records that as the data's ``expert_acted`` column, on every backend."""

    def __init__(self, expert: Policy, learner: Policy, beta: float, rng: np.random.Generator):
        self.expert, self.learner, self.beta, self.rng = expert, learner, beta, rng

    def act_marked(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from imitate.observations import obs_len, take

        actions = self.learner.act(obs)
        use_expert = self.rng.random(obs_len(obs)) < self.beta
        if use_expert.any():
            actions = actions.copy()
            rows: Any = take(obs, use_expert)
            actions[use_expert] = self.expert.act(rows)
        return actions, use_expert

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.act_marked(obs)[0]

    def reseed(self, seed: int) -> None:
        """A new coin stream (each Ray shard gets its own)."""
        self.rng = np.random.default_rng(seed)


def round_rngs(seed: int, round_index: int) -> tuple[np.random.Generator, ...]:
    """The random streams of one round (mixture coins, gate tie-breaks, ensemble bootstrap),
    derived from ``(seed, round)`` alone: a resumed run draws what an uninterrupted one does."""
    streams = np.random.SeedSequence([seed, round_index]).spawn(3)
    return tuple(np.random.default_rng(s) for s in streams)


def round_seed(seed: int, round_index: int) -> int:
    """The first reset seed of a round's rollouts."""
    return seed * 1_000_003 + round_index * 10_007


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


RoundCallback = Callable[[DAggerRound], None]
"""Called after each finished (and, with a run folder, saved) round with its record."""


def dagger(
    env_id: EnvLike,
    expert: Policy,
    config: DAggerConfig = DAggerConfig(),
    progress: bool = False,
    rollouts: Rollouts | None = None,
    desc: str = "dagger",
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    on_round: RoundCallback | None = None,
) -> tuple[MLPPolicy, DAggerHistory]:
    """Run DAgger on ``env_id`` with ``expert`` labelling; returns the learner and the history.

    ``rollouts`` (:meth:`imitate.backends.Backend.open`; default: this process) runs the
    rollout phase and the evaluations (on Ray: each shard's mixture draws its own coins).
    ``run_dir``: each round's labels, learner and record are saved there as they finish
    (:class:`RoundStore`); with ``resume``, the rounds found there are loaded instead of
    run again (the expert is not asked about them) and the run continues: every random
    stream of a round derives from ``(config.seed, round)``, so the result equals an
    uninterrupted run's. ``on_round(record)`` is called after each new round.

    History records per round: ``round``, ``beta``, ``states`` visited, ``labelled``
    in the round, cumulative ``expert_labels`` and ``env_steps``, ``query_rate``,
    ``learner_return`` (if evaluated) and ``wall_time`` (training and rollouts only).
    """
    info = getattr(expert, "provenance", None)
    store = None
    if run_dir is not None:
        expert_info = info if isinstance(info, dict) else None
        store = RoundStore(Path(run_dir), env_id, config, resume, expert_info)
    runner = _RoundRollouts(env_id, config, rollouts or LocalRollouts())
    return _dagger_rounds(env_id, expert, config, progress, runner, desc, store, on_round)


class _RoundRollouts:
    """DAgger's rollout phase and evaluations on the given :class:`Rollouts`."""

    def __init__(self, env_id: EnvLike, config: DAggerConfig, rollouts: Rollouts) -> None:
        self.env_id, self.config, self.rollouts = env_id, config, rollouts

    def collect(self, driver: Policy, seed: int, first: bool = False) -> tuple[Dataset, int, int]:
        """States visited by ``driver`` (budget: steps_per_round), the env steps taken and
        the expert's calls while driving (counted from ``expert_acted``, the cut episode's
        included; see the module docstring for ``whole_episodes``). ``first``: round 0,
        whole episodes also under ``whole_first_round``."""
        whole = self.config.whole_episodes or (first and self.config.whole_first_round)
        if not whole:
            rollout = self._collect(driver, seed, self.config.num_envs)
            if not rollout.truncated.any() and not rollout.terminated.any():
                warnings.warn(
                    f"DAgger round of {len(rollout)} states on {self.config.num_envs} envs holds "
                    "no complete episode: raise steps_per_round or use whole_episodes",
                    PartialRoundWarning,
                    stacklevel=4,
                )
            return rollout, len(rollout), _driving_calls(rollout)
        rollout = self._collect(driver, seed, 1)
        complete = whole_episode_index(rollout)
        if len(complete) == 0:  # one episode is longer than the budget: run it to its end
            rollout = self._collect(driver, seed, 1, budget=None)
            return rollout, len(rollout), _driving_calls(rollout)
        return rollout.select_episodes(complete), len(rollout), _driving_calls(rollout)

    def _collect(
        self, driver: Policy, seed: int, num_envs: int, budget: int | None = -1
    ) -> Dataset:
        config = self.config
        max_steps = config.steps_per_round if budget == -1 else budget
        n_episodes = 10**9 if max_steps is not None else 1
        return self.rollouts.collect(
            driver, self.env_id, n_episodes, seed, num_envs, "per-episode", "dagger",
            max_steps=max_steps,
        )  # fmt: skip

    def evaluate(self, policy: Policy) -> EvalResult:
        episodes, num_envs = self.config.eval_episodes, self.config.num_envs
        return self.rollouts.evaluate(policy, self.env_id, episodes, EVAL_SEED, num_envs)


def _driving_calls(rollout: Dataset) -> int:
    """States of ``rollout`` whose action the expert chose (0 for a learner alone)."""
    return 0 if rollout.expert_acted is None else int(rollout.expert_acted.sum())


def _dagger_rounds(
    env_id: EnvLike,
    expert: Policy,
    config: DAggerConfig,
    progress: bool,
    rollouts: _RoundRollouts,
    desc: str = "dagger",
    store: RoundStore | None = None,
    on_round: RoundCallback | None = None,
) -> tuple[MLPPolicy, DAggerHistory]:
    history = DAggerHistory()
    privileged = is_privileged(expert)
    if privileged and (config.gate != "none" or config.soft_labels):
        raise ImitateError(
            "a privileged expert (it acts on the env) labels every visited state online: "
            "use --gate none and no soft labels"
        )
    labelled: list[Dataset] = []
    policy: MLPPolicy | None = None
    members: list[MLPPolicy] = []
    expert_labels = env_steps = 0
    wall_time = 0.0
    best: tuple[float, MLPPolicy] | None = None
    since_best = 0
    first_round = 0
    stop = False
    if store is not None:
        for saved in store.load():
            labelled.append(saved.labels)
            policy, members, done = saved.policy, saved.members, saved.record
            history.rounds.append(done)
            expert_labels, env_steps = done.expert_labels, done.env_steps
            wall_time, first_round = done.wall_time_s, done.round + 1
            best, since_best = _track_best(done, policy, best, since_best)
            stop = _should_stop(done, config, since_best)
    bar = tqdm(range(first_round, config.rounds), desc=desc, unit="round", disable=not progress)
    for round_index in bar if not stop else ():
        start = time.perf_counter()
        coins, gate_rng, member_rng = round_rngs(config.seed, round_index)
        beta = config.beta.beta(round_index, config.rounds)
        if policy is None or beta >= 1.0:
            driver: Policy = expert
        elif privileged:  # asked at every visited state, its labels recorded online
            driver = PrivilegedMixture(expert, fast_policy(policy), beta, coins)  # type: ignore[arg-type]
        else:
            driver = MixturePolicy(expert, fast_policy(policy), beta, coins)
        rollout, steps, driving_calls = rollouts.collect(
            driver, round_seed(config.seed, round_index), first=round_index == 0
        )
        env_steps += steps
        if driver is expert:
            # the recorded actions are the labels, all chosen by the expert
            round_data = replace(rollout, expert_acted=np.ones(len(rollout), np.bool_))
            queried = len(rollout)
            if config.soft_labels:
                round_data = replace(round_data, teacher_logits=_logits(expert, rollout.obs))
        elif privileged:  # the rollout recorded the expert's label of every state
            round_data = rollout
            queried = len(rollout)
        else:
            assert policy is not None
            if config.gate == "none":
                index = np.arange(len(rollout))
            else:
                scores = uncertainty(policy, members, rollout.obs, config)
                index = most_uncertain(scores, config.query_rate, gate_rng)
            selected = rollout.select_transitions(index)
            round_data = replace(selected, actions=expert.act(selected.obs))
            if config.soft_labels:
                round_data = replace(round_data, teacher_logits=_logits(expert, selected.obs))
            queried = len(index) + driving_calls
        expert_labels += queried
        labelled.append(round_data)
        aggregate = concatenate(labelled)
        bc_config = replace(config.bc, seed=config.bc.seed + round_index)
        policy, round_bc = train_bc(
            aggregate, bc_config, policy=policy if config.warm_start else None
        )
        if config.gate == "ensemble":
            members = _train_members(aggregate, config, members, member_rng)
        wall_time += time.perf_counter() - start
        final = round_bc.final  # the round's training: the kept weights' loss and NLL
        record = DAggerRound(
            round=round_index,
            beta=beta,
            states=len(rollout),
            episodes=rollout.n_episodes,
            labelled=len(round_data),
            query_rate=queried / len(rollout),
            expert_labels=expert_labels,
            env_steps=env_steps,
            dataset_size=len(aggregate),
            wall_time_s=wall_time,
            train_loss=final.get("train_loss"),
            holdout_bits_per_action=final.get("holdout_bits_per_action"),
            learner_return=(
                rollouts.evaluate(policy).mean_return if config.eval_episodes > 0 else None
            ),
        )
        best, since_best = _track_best(record, policy, best, since_best)
        history.rounds.append(record)
        if store is not None:
            store.save(round_index, round_data, policy, members, record)
        if on_round is not None:
            on_round(record)
        shown: dict[str, float] = {"labels": expert_labels}  # return: where evaluated
        if record.learner_return is not None:
            shown["ret"] = round(record.learner_return, 1)
        bar.set_postfix(shown)
        if _should_stop(record, config, since_best):
            break
    bar.close()
    assert policy is not None
    if best is not None and config.patience is not None:
        returns = [
            -np.inf if r.learner_return is None else r.learner_return for r in history.rounds
        ]
        history.best_round = int(np.argmax(returns))
        policy = best[1]
    if config.final_refit:
        policy, history.refit = _final_refit(
            labelled, config, len(history.rounds), history.rounds[-1], rollouts, store
        )
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


def _final_refit(
    labelled: list[Dataset],
    config: DAggerConfig,
    trainings: int,
    last: DAggerRound,
    rollouts: _RoundRollouts,
    store: RoundStore | None,
) -> tuple[MLPPolicy, DAggerRefit]:
    """A new learner trained on every round's labels with BC's own length of training
    (:func:`~imitate.configs.refit_training`), seeded as the next round would be; with a
    run folder it is saved (``refit/``) and, on resume, loaded instead of trained again."""
    saved = store.load_refit() if store is not None else None
    if saved is not None:
        return saved
    start = time.perf_counter()
    aggregate = concatenate(labelled)
    refit_config = replace(refit_training(config.bc), seed=config.bc.seed + trainings)
    policy, trained = train_bc(aggregate, refit_config)
    final = trained.final
    record = DAggerRefit(
        expert_labels=last.expert_labels,
        dataset_size=len(aggregate),
        wall_time_s=last.wall_time_s + time.perf_counter() - start,
        train_loss=final.get("train_loss"),
        holdout_bits_per_action=final.get("holdout_bits_per_action"),
        learner_return=(
            rollouts.evaluate(policy).mean_return if config.eval_episodes > 0 else None
        ),
    )
    if store is not None:
        store.save_refit(policy, record)
    return policy, record


def _track_best(
    record: DAggerRound,
    policy: MLPPolicy,
    best: tuple[float, MLPPolicy] | None,
    since_best: int,
) -> tuple[tuple[float, MLPPolicy] | None, int]:
    """The best evaluated learner so far and the rounds since it (patience)."""
    value = record.learner_return
    if value is None:
        return best, since_best
    if best is None or value > best[0]:
        return (value, copy.deepcopy(policy)), 0
    return best, since_best + 1


def _should_stop(record: DAggerRound, config: DAggerConfig, since_best: int) -> bool:
    """The target return is reached, or ``patience`` rounds passed without improvement."""
    target, value = config.target_return, record.learner_return
    if target is not None and value is not None and value >= target:
        return True
    return config.patience is not None and since_best >= config.patience


@dataclass(frozen=True)
class SavedRound:
    """One finished round as :class:`RoundStore` keeps it."""

    labels: Dataset
    """The round's labelled states (``expert_acted`` marks where the expert drove)."""
    policy: MLPPolicy
    """The learner after the round's training."""
    members: list[MLPPolicy]
    """The ensemble gate's bootstrap members after the round (empty for other gates)."""
    record: DAggerRound
    """The round's history record."""


class RoundStore:
    """The rounds of one DAgger run, in a folder: ``dagger.json`` (env, config and the
    expert's provenance when it has one, written when the run starts) and, per finished
    round ``k``, ``round_<k>/`` holding ``labels.npz``, ``policy.pt``, ``member_<j>.pt``
    (ensemble gate) and ``record.json``; with ``final_refit``, ``refit/`` (``policy.pt``,
    ``record.json``) once the rounds are done.

    A round folder is written whole or not at all (:func:`imitate.runs.artefact_dir`: a
    temporary sibling renamed into place), so an interrupted run leaves only finished
    rounds. ``resume=False`` starts afresh (earlier rounds there are removed);
    ``resume=True`` refuses a folder saved with another env, config or expert
    (:class:`~imitate.errors.ResumeError`).
    """

    SETTINGS = "dagger.json"

    @classmethod
    def started(cls, root: Path | None) -> bool:
        """Whether a DAgger run was started in ``root`` (its settings file is there), i.e.
        whether a resumed command has DAgger rounds to continue rather than to begin."""
        return root is not None and (root / cls.SETTINGS).is_file()

    @classmethod
    def finished_rounds(cls, root: Path | None) -> int:
        """How many rounds (0, 1, ... with none missing) a run in ``root`` finished and saved:
        the ones a resume loads instead of rerunning."""
        count = 0
        while root is not None and (root / f"round_{count:03d}").is_dir():
            count += 1
        return count

    def __init__(
        self,
        root: Path,
        env_id: EnvLike,
        config: DAggerConfig,
        resume: bool,
        expert_info: dict[str, Any] | None = None,
    ) -> None:
        self.root = root
        expected = json_form(
            {"env": env_record(env_id), "config": config_to_json(config), "expert": expert_info}
        )
        path = root / self.SETTINGS
        if resume:
            if not path.is_file():
                raise ResumeError(f"{root}: no DAgger run to resume here (no dagger.json)")
            check_same_settings(path, expected, root)
            return
        for old in self._round_dirs():
            shutil.rmtree(old)
        if self.refit_path.is_dir():
            shutil.rmtree(self.refit_path)
        write_json(path, expected)

    def _round_dirs(self) -> list[Path]:
        return sorted(self.root.glob("round_[0-9][0-9][0-9]")) if self.root.is_dir() else []

    def path(self, round_index: int) -> Path:
        return self.root / f"round_{round_index:03d}"

    def save(
        self,
        round_index: int,
        labels: Dataset,
        policy: MLPPolicy,
        members: list[MLPPolicy],
        record: DAggerRound,
    ) -> Path:
        """Write round ``round_index`` (whole, or nothing if interrupted)."""
        target = self.path(round_index)
        with artefact_dir(target, "dagger-round") as artefacts:
            labels.save(artefacts.work / "labels.npz")
            save_policy(policy, artefacts.work / "policy.pt")
            for j, member in enumerate(members):
                save_policy(member, artefacts.work / f"member_{j}.pt")
            write_json(artefacts.work / "record.json", record.to_json())
        return target

    @property
    def refit_path(self) -> Path:
        """The final refit's folder (``policy.pt``, ``record.json``)."""
        return self.root / "refit"

    def save_refit(self, policy: MLPPolicy, record: DAggerRefit) -> Path:
        """Write the final refit (whole, or nothing if interrupted)."""
        with artefact_dir(self.refit_path, "dagger-refit") as artefacts:
            save_policy(policy, artefacts.work / "policy.pt")
            write_json(artefacts.work / "record.json", record.to_json())
        return self.refit_path

    def load_refit(self) -> tuple[MLPPolicy, DAggerRefit] | None:
        """The saved final refit, if the run got that far."""
        if not self.refit_path.is_dir():
            return None
        record = json.loads((self.refit_path / "record.json").read_text())
        return load_policy(self.refit_path / "policy.pt"), DAggerRefit.from_json(record)

    def load(self) -> Iterator[SavedRound]:
        """The saved rounds 0, 1, ... in order (up to the first one missing)."""
        for round_index in range(self.finished_rounds(self.root)):
            folder = self.path(round_index)
            members = sorted(folder.glob("member_*.pt"), key=lambda p: int(p.stem[7:]))
            yield SavedRound(
                labels=load_dataset(folder / "labels.npz"),
                policy=load_policy(folder / "policy.pt"),
                members=[load_policy(m) for m in members],
                record=DAggerRound.from_json(json.loads((folder / "record.json").read_text())),
            )

    def rounds(self) -> int:
        """How many rounds are saved."""
        return self.finished_rounds(self.root)


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
        result = evaluate(policy, env_id, eval_episodes, EVAL_SEED)
        curve.append({"expert_labels": count, "learner_return": result.mean_return})
    return curve
