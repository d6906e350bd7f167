"""DAgger: schedules, label accounting, gating, and beating BC where errors compound."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from envs.tightrope import TightropeExpert
from imitate import BCConfig, EarlyStopConfig, OptimConfig, collect, evaluate, train_bc
from imitate.configs import short_round_bc
from imitate.dagger import BetaSchedule, DAggerConfig, MixturePolicy, dagger

FAST_BC = BCConfig(
    optim=OptimConfig(max_steps=600), early_stop=EarlyStopConfig(eval_every=100, patience=3)
)


def test_beta_schedules() -> None:
    rounds = 4
    assert [BetaSchedule().beta(i, rounds) for i in range(4)] == [1.0, 0.0, 0.0, 0.0]
    assert [BetaSchedule("constant", 0.3).beta(i, rounds) for i in range(3)] == [1.0, 0.3, 0.3]
    assert [BetaSchedule("linear").beta(i, rounds) for i in range(4)] == [1.0, 0.75, 0.5, 0.25]
    assert [BetaSchedule("exponential", 0.5).beta(i, rounds) for i in range(4)] == [
        1.0,
        0.5,
        0.25,
        0.125,
    ]


def test_mixture_counts_expert_calls() -> None:
    class Constant:
        def __init__(self, value: int) -> None:
            self.value = value

        def act(self, obs: np.ndarray) -> np.ndarray:
            return np.full(len(obs), self.value)

    mixture = MixturePolicy(Constant(1), Constant(0), 0.25, np.random.default_rng(0))
    actions, expert_acted = mixture.act_marked(np.zeros((4000, 2)))  # marks, not a counter
    expert_calls = int(expert_acted.sum())
    assert expert_calls == int(actions.sum())
    assert 0.22 < expert_calls / 4000 < 0.28


def test_aggregation_grows_as_counted() -> None:
    config = DAggerConfig(
        rounds=3, steps_per_round=300, eval_episodes=0, bc=FAST_BC, whole_episodes=False
    )
    with pytest.warns(UserWarning, match="holds no complete episode"):
        _, history = dagger("imitate/Tightrope-v0", TightropeExpert(), config)
    records = history.records
    assert [r["round"] for r in records] == [0, 1, 2]
    assert all(300 <= r["states"] < 300 + config.num_envs for r in records)
    assert np.cumsum([r["labelled"] for r in records]).tolist() == [
        r["dataset_size"] for r in records
    ]
    assert [r["expert_labels"] for r in records] == [r["dataset_size"] for r in records]
    assert np.cumsum([r["states"] for r in records]).tolist() == [r["env_steps"] for r in records]
    assert records[0]["beta"] == 1.0 and records[1]["beta"] == 0.0


def test_without_warm_start_each_round_is_bc_on_the_aggregate() -> None:
    """A learner trained from scratch on round r's aggregate: the same as train_bc on it."""
    from imitate.data import concatenate

    config = DAggerConfig(
        rounds=2,
        steps_per_round=300,
        eval_episodes=0,
        bc=FAST_BC,
        warm_start=False,
        whole_episodes=False,
        final_refit=False,  # the learner returned is the last round's
    )
    with pytest.warns(UserWarning, match="no complete episode"):
        learner, history = dagger("imitate/Tightrope-v0", TightropeExpert(), config)
        warm, _ = dagger(
            "imitate/Tightrope-v0", TightropeExpert(), replace(config, warm_start=True)
        )
    assert [r["dataset_size"] for r in history.records][-1] >= 600
    # Round 0 is the expert's rollout; round 1 relabels the learner's own states. Rebuild both.
    round0 = collect(TightropeExpert(), "imitate/Tightrope-v0", 10**9, 0, 8, "per-episode",
                     "dagger", max_steps=300)  # fmt: skip
    first, _ = train_bc(round0, FAST_BC)
    states = collect(first, "imitate/Tightrope-v0", 10**9, 10_007, 8, "per-episode", "dagger",
                     max_steps=300)  # fmt: skip
    round1 = replace(states, actions=TightropeExpert().act(states.obs))
    scratch, _ = train_bc(concatenate([round0, round1]), replace(FAST_BC, seed=FAST_BC.seed + 1))
    obs = round1.obs
    np.testing.assert_array_equal(learner.act(obs), scratch.act(obs))
    assert not np.array_equal(warm.logits(obs), learner.logits(obs))


def test_constant_beta_counts_driving_calls_as_labels() -> None:
    config = DAggerConfig(
        rounds=2,
        steps_per_round=400,
        beta=BetaSchedule("constant", 0.5),
        eval_episodes=0,
        bc=FAST_BC,
    )
    _, history = dagger("imitate/Tightrope-v0", TightropeExpert(), config)
    second = history.records[1]
    # every state is labelled, and about half were also driven by the expert
    assert 1.35 < second["query_rate"] < 1.65


@pytest.mark.parametrize("gate", ["entropy", "energy", "ensemble"])
def test_gated_rounds_query_at_the_target_rate(gate: str) -> None:
    config = DAggerConfig(
        rounds=3,
        steps_per_round=400,
        gate=gate,  # type: ignore[arg-type]
        query_rate=0.3,
        ensemble_size=3,
        eval_episodes=0,
        bc=FAST_BC,
    )
    _, history = dagger("imitate/Tightrope-v0", TightropeExpert(), config)
    assert history.records[0]["query_rate"] == 1.0  # the expert's own round
    for record in history.records[1:]:
        assert 0.25 <= record["query_rate"] <= 0.45, record


@pytest.mark.slow
def test_dagger_beats_bc_with_the_same_labels_on_tightrope() -> None:
    config = DAggerConfig(
        rounds=4, steps_per_round=1000, eval_episodes=0, seed=0, bc=short_round_bc()
    )
    learner, history = dagger("imitate/Tightrope-v0", TightropeExpert(), config)
    labels = history.expert_labels
    demos = collect(TightropeExpert(), "imitate/TightropeCalm-v0", 20, seed=0, max_steps=labels)
    assert len(demos) == labels
    clone, _ = train_bc(demos, BCConfig(seed=0))
    dagger_return = evaluate(learner, "imitate/Tightrope-v0", 100, seed=10_000).mean_return
    bc_return = evaluate(clone, "imitate/Tightrope-v0", 100, seed=10_000).mean_return
    # returns are minus the steps spent off the rope, out of 400
    assert dagger_return > bc_return + 20, (dagger_return, bc_return)


def test_default_rounds_hold_whole_episodes_within_the_budget() -> None:
    """Round 0 is whole expert episodes (as many as the budget holds); so is every round."""
    from imitate.dagger import whole_episode_index

    config = DAggerConfig(rounds=3, steps_per_round=1000, eval_episodes=0, bc=FAST_BC)
    _, history = dagger("imitate/Tightrope-v0", TightropeExpert(), config)
    demos = collect(TightropeExpert(), "imitate/Tightrope-v0", 20, config.seed * 1_000_003, 1)
    fits = int(np.searchsorted(np.cumsum(demos.episode_lengths), 1000, side="right"))
    first = history.records[0]
    assert first["episodes"] == fits >= 1
    assert first["states"] == demos.episode_lengths[:fits].sum() <= 1000
    assert first["expert_labels"] == first["states"]
    for record in history.records:
        assert record["episodes"] >= 1 and record["env_steps"] >= record["states"]
    cut = collect(TightropeExpert(), "imitate/Tightrope-v0", 10**9, 0, 1, max_steps=1000)
    assert len(whole_episode_index(cut)) == fits


def test_a_round_keeps_one_episode_longer_than_its_budget() -> None:
    config = DAggerConfig(rounds=1, steps_per_round=5, eval_episodes=0, bc=FAST_BC)
    _, history = dagger("imitate/Tightrope-v0", TightropeExpert(), config)
    assert history.records[0]["episodes"] == 1 and history.records[0]["states"] > 5


def test_patience_stops_and_returns_the_best_round() -> None:
    config = DAggerConfig(
        rounds=8, steps_per_round=200, eval_episodes=5, bc=FAST_BC, patience=1, final_refit=False
    )
    learner, history = dagger("imitate/Tightrope-v0", TightropeExpert(), config)
    returns = [r["learner_return"] for r in history.records]
    assert history.best_round == int(np.argmax(returns))
    if len(returns) < 8:  # stopped early: the last round did not improve on the best
        assert returns[-1] <= max(returns[:-1])
    assert evaluate(learner, "imitate/Tightrope-v0", 5, 10_000).mean_return == max(returns)


def test_whole_first_round_keeps_only_round_0_of_whole_episodes() -> None:
    """``imitate run``'s rule: round 0 of whole expert episodes (the same as the defaults'
    round 0), the learner's rounds cut at exactly ``steps_per_round`` states."""
    env = "imitate/Tightrope-v0"
    cut = DAggerConfig(
        rounds=2, steps_per_round=1000, eval_episodes=0, bc=FAST_BC, whole_episodes=False,
        patience=None, whole_first_round=True,
    )  # fmt: skip
    _, history = dagger(env, TightropeExpert(), cut)
    _, whole = dagger(env, TightropeExpert(), replace(cut, rounds=1, whole_episodes=True))
    first, second = history.records
    assert {k: v for k, v in first.items() if k != "wall_time_s"} == {
        k: v for k, v in whole.records[0].items() if k != "wall_time_s"
    }
    assert first["states"] < 1000 and first["episodes"] >= 1
    assert 1000 <= second["states"] < 1000 + cut.num_envs
