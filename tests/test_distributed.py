"""The Ray backend against the local one: same seeds, same data; dead workers replaced.

All tests here share one local Ray (2 CPUs) and run on one xdist worker (group "ray").
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from agents.heuristics import heuristic_expert
from imitate import Dataset, collect, evaluate, load_dataset
from imitate.backends import Backend
from imitate.bc import BCConfig
from imitate.configs import EarlyStopConfig, OptimConfig
from imitate.dagger import BetaSchedule, DAggerConfig, dagger
from imitate.errors import BackendError

pytestmark = pytest.mark.xdist_group("ray")
RAY = Backend(kind="ray", workers=2)
LANDER = "LunarLander-v3"


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    import ray  # the ray extra is part of the dev install: a missing Ray fails here, loudly

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def assert_same_data(left: Dataset, right: Dataset) -> None:
    assert left.arrays().keys() == right.arrays().keys()
    for name, array in left.arrays().items():
        np.testing.assert_array_equal(right.arrays()[name], array, err_msg=name)
        assert right.arrays()[name].dtype == array.dtype
    assert left.meta == right.meta


@pytest.mark.parametrize("expert", ["heuristic", "zoo"])
def test_ray_collection_equals_local(ray_cluster: None, expert: str) -> None:
    from agents.registry import resolve_expert

    env_id = LANDER if expert == "heuristic" else "CartPole-v1"
    policy = resolve_expert(expert, env_id)
    local = collect(policy, env_id, 13, seed=5, seeding="per-episode", source=expert)
    with RAY.open() as rollouts:
        remote = rollouts.collect(policy, env_id, 13, seed=5, source=expert)
    assert remote.n_episodes == 13
    assert_same_data(local, remote)


def test_ray_evaluation_equals_local(ray_cluster: None) -> None:
    policy = heuristic_expert(LANDER)
    local = evaluate(policy, LANDER, 9, seed=10_000)
    with RAY.open() as rollouts:
        remote = rollouts.evaluate(policy, LANDER, 9, seed=10_000)
    np.testing.assert_array_equal(remote.returns, local.returns)
    np.testing.assert_array_equal(remote.lengths, local.lengths)


def test_js_gated_collection_on_ray_equals_local(ray_cluster: None) -> None:
    from agents.zoo import load_zoo_teacher
    from imitate import train_bc
    from imitate.policy import JSGatedPolicy

    demos = collect(load_zoo_teacher("CartPole-v1"), "CartPole-v1", 2, seed=0)
    policy, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=300)))
    gated = JSGatedPolicy.wrap(policy, 0.2)  # per-episode state travels to the workers
    local = collect(gated, "CartPole-v1", 7, seed=3, seeding="per-episode")
    with RAY.open() as rollouts:
        assert_same_data(local, rollouts.collect(gated, "CartPole-v1", 7, seed=3))


def test_dead_worker_is_replaced_and_no_episode_is_lost_or_repeated(ray_cluster: None) -> None:
    from imitate.distributed import RayRollouts

    policy = heuristic_expert(LANDER)
    local = collect(policy, LANDER, 16, seed=0, seeding="per-episode")
    killed: list[int] = []
    with RAY.open() as pool:
        assert isinstance(pool, RayRollouts)
        before = pool.worker_pids()

        def kill_once(worker: int, chunks_done: int) -> None:
            # The worker that just finished a chunk has already been handed the next one.
            if not killed:
                killed.append(before[worker])
                os.kill(before[worker], signal.SIGKILL)

        remote = pool.collect(policy, LANDER, 16, seed=0, on_chunk=kill_once)
        after = pool.worker_pids()
    assert killed and killed[0] not in after  # replaced by a new process
    assert remote.n_episodes == 16
    assert_same_data(local, remote)


def test_workers_that_keep_dying_give_a_clear_error(ray_cluster: None) -> None:
    from imitate.distributed import RayRollouts

    policy = heuristic_expert(LANDER)
    with Backend(kind="ray", workers=1, max_restarts=0).open() as pool:
        assert isinstance(pool, RayRollouts)
        pid = pool.worker_pids()[0]

        def kill(worker: int, chunks_done: int) -> None:
            if chunks_done == 1:
                os.kill(pid, signal.SIGKILL)

        with pytest.raises(BackendError, match="died more than 0 times"):
            pool.collect(policy, LANDER, 8, seed=0, on_chunk=kill)


def test_dagger_rollouts_on_ray(ray_cluster: None) -> None:
    """A mixture round on Ray: the shards' expert calls are counted, the learner trains."""
    config = DAggerConfig(
        rounds=2,
        steps_per_round=400,
        beta=BetaSchedule("constant", 0.5),
        eval_episodes=4,
        bc=BCConfig(optim=OptimConfig(max_steps=300), early_stop=EarlyStopConfig(eval_every=100)),
        whole_episodes=False,  # cut rounds: every visited state is kept and counted
    )
    with RAY.open() as rollouts:
        _, history = dagger(
            "CartPole-v1", heuristic_expert("CartPole-v1"), config, rollouts=rollouts
        )
    second = history.records[1]
    assert second["states"] >= 400 and second["labelled"] == second["states"]
    # Every visited state is labelled, plus the ~half on which the expert drove.
    extra = second["query_rate"] * second["states"] - second["labelled"]
    assert 0.35 * second["states"] < extra < 0.65 * second["states"]
    assert "learner_return" in second


def test_dagger_whole_episode_rounds_on_ray(ray_cluster: None) -> None:
    """The default rounds on Ray: only complete episodes are kept, within the budget."""
    config = DAggerConfig(
        rounds=2,
        steps_per_round=600,
        eval_episodes=0,
        bc=BCConfig(optim=OptimConfig(max_steps=200)),
    )
    with RAY.open() as rollouts:
        _, history = dagger(
            "CartPole-v1", heuristic_expert("CartPole-v1"), config, rollouts=rollouts
        )
    for record in history.records:
        assert record["episodes"] >= 1 and record["states"] <= max(600, 500)
        assert record["env_steps"] >= record["states"] == record["labelled"]


def test_sweep_on_ray_equals_local(ray_cluster: None) -> None:
    from imitate.sweep import SweepConfig, parse_axis, run_sweep

    config = SweepConfig(
        env_id="CartPole-v1",
        axes=(parse_axis("episodes=1,2"),),
        seeds=(0, 1),
        eval_episodes=3,
        bc=BCConfig(optim=OptimConfig(max_steps=200), early_stop=EarlyStopConfig(eval_every=100)),
    )
    expert = heuristic_expert("CartPole-v1")
    local = run_sweep(expert, config)
    with RAY.open() as rollouts:
        remote = run_sweep(expert, config, rollouts)
    exact = ("seed", "episodes", "transitions")
    assert [{k: r[k] for k in exact} for r in remote] == [{k: r[k] for k in exact} for r in local]
    # Same data, same seeds, same arithmetic; approx only in case BLAS threads differ.
    for mine, theirs in zip(remote, local, strict=True):
        assert mine["mean_return"] == pytest.approx(theirs["mean_return"], rel=1e-6)
        assert mine["holdout_bits_per_action"] == pytest.approx(
            theirs["holdout_bits_per_action"], rel=1e-4, abs=1e-7
        )
    assert len({r["pid"] for r in remote} - {os.getpid()}) >= 1  # ran in Ray workers


def test_cli_collect_on_ray(ray_cluster: None, tmp_path: Path) -> None:
    from imitate.cli import main

    for env_id in (LANDER, "CartPole-v1"):  # CartPole's local default is stream seeding
        args = ["collect", "--env", env_id, "--episodes", "6", "--seed", "3"]
        local, remote = tmp_path / "local.npz", tmp_path / "ray.npz"
        assert main([*args, "--out", str(local), "--seeding", "per-episode"]) == 0
        assert main([*args, "--out", str(remote), "--backend", "ray"]) == 0
        assert_same_data(load_dataset(local), load_dataset(remote))


def test_missing_ray_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from imitate.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(BackendError, match=r"pip install 'imitate\[ray\]'"):
        RAY.open()
    out = tmp_path / "demos.npz"
    code = main(["collect", "--env", LANDER, "--backend", "ray", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("imitate: error: the ray backend needs Ray")
    assert "\n" not in err and not out.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--address", "auto"], "--address needs --backend ray"),
        (["--backend", "ray", "--workers", "0"], "--workers must be >= 1"),
        (["--backend", "ray", "--address", "127.0.0.1:1"], "cannot reach Ray at 127.0.0.1:1"),
        (["--backend", "ray", "--address", "nonsense"], "bad Ray address 'nonsense'"),
        (["--backend", "ray", "--seeding", "stream"], "stream is local only"),
    ],
)
def test_bad_backend_flags_are_one_line_errors(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from imitate.cli import main

    out = tmp_path / "demos.npz"
    assert main(["collect", "--env", LANDER, "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("imitate: error: ") and message in err and "\n" not in err
    assert not out.exists()


def test_dict_observations_on_ray_equal_local(ray_cluster: None) -> None:
    """An encoded (Dict) BC student collects and evaluates on Ray as it does here; a privileged
    pixel expert collects there too (the env objects live in the worker)."""
    import envs
    from envs.pixel_cartpole import PixelCartPoleExpert
    from imitate import train_bc

    env_id = "imitate/ObsDict-v0"
    demos = collect(envs.EXPERTS[env_id](), env_id, 4, seed=0)
    policy, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=200)))
    local = collect(policy, env_id, 5, seed=3, seeding="per-episode")
    local_eval = evaluate(policy, env_id, 5, seed=10_000)
    pixels = "imitate/PixelCartPole-v1"
    local_pixels = collect(PixelCartPoleExpert(), pixels, 3, seed=1, seeding="per-episode")
    with RAY.open() as rollouts:
        remote = rollouts.collect(policy, env_id, 5, seed=3)
        remote_eval = rollouts.evaluate(policy, env_id, 5, seed=10_000)
        remote_pixels = rollouts.collect(PixelCartPoleExpert(), pixels, 3, seed=1)
    assert isinstance(remote.obs, dict) and remote.obs["mode"].dtype == np.int64
    assert_same_data(local, remote)
    np.testing.assert_array_equal(remote_eval.returns, local_eval.returns)
    assert remote_pixels.obs.dtype == np.uint8
    assert_same_data(local_pixels, remote_pixels)


def test_dagger_on_a_dict_env_on_ray(ray_cluster: None) -> None:
    import envs

    env_id = "imitate/ObsDict-v0"
    config = DAggerConfig(
        rounds=2,
        steps_per_round=300,
        beta=BetaSchedule("constant", 0.5),
        eval_episodes=3,
        bc=BCConfig(optim=OptimConfig(max_steps=300), early_stop=EarlyStopConfig(eval_every=100)),
    )
    with RAY.open() as rollouts:
        _, history = dagger(env_id, envs.EXPERTS[env_id](), config, rollouts=rollouts)
    second = history.records[1]
    assert second["labelled"] == second["states"] >= 300
    assert second["learner_return"] >= 0.8 * 50


def test_true_state_drift_on_ray_equals_local(ray_cluster: None) -> None:
    """The workers make the env from the spec itself (its added wrappers kept), so pixel
    drift records the true state through the state-recording wrapper on Ray too."""
    from envs.pixel_cartpole import PixelCartPoleExpert
    from imitate.drift import analyse_drift

    class Left:
        def act(self, frames: np.ndarray) -> np.ndarray:
            return np.zeros(len(frames), np.int64)

    env, expert = "imitate/PixelCartPole-v1", PixelCartPoleExpert()
    local = analyse_drift(env, expert, {"left": Left()}, 2, horizons=(10, 20))
    with RAY.open() as rollouts:
        remote = analyse_drift(
            env, expert, {"left": Left()}, 2, horizons=(10, 20), rollouts=rollouts
        )
    assert "recorded beside each observation" in remote.note
    np.testing.assert_array_equal(remote.pairs["left"].distance, local.pairs["left"].distance)
    np.testing.assert_equal(remote.summaries["left"], local.summaries["left"])
