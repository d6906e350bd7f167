"""Shipped zoo experts: offline loading, recorded returns, parity with SB3, training smoke."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from agents.actors import NumpyActor, cache_actor, read_actor
from agents.teachers import SB3Teacher
from agents.zoo import (
    PRETRAINED,
    ZOO,
    load_zip_teacher,
    load_zoo_teacher,
    obs_norm_of,
    read_manifest,
    teacher_from_entry,
    train_expert,
)
from imitate import BCConfig, EnvError, collect, evaluate, train_bc
from imitate.cli import main

MANIFEST = read_manifest()
SHIPPED = sorted(MANIFEST)


def _sb3(env_id: str) -> SB3Teacher:
    """The reference: an SB3Teacher around ``SB3.load`` of the shipped zip."""
    entry = MANIFEST[env_id]
    return teacher_from_entry(PRETRAINED / entry["file"], entry)


def _states(teacher: SB3Teacher, env_id: str, n: int = 1000) -> np.ndarray:
    episodes = 2
    while True:
        obs = collect(teacher, env_id, episodes, seed=123).obs
        if len(obs) >= n:
            return obs[:n]
        episodes *= 2


@pytest.mark.parametrize("env_id", SHIPPED)
def test_shipped_expert_meets_its_figure_and_reproduces_it(env_id: str) -> None:
    entry = MANIFEST[env_id]
    assert entry["mean_return"] >= ZOO[env_id].required_return
    assert (PRETRAINED / entry["file"]).stat().st_size < 1_000_000
    teacher = load_zoo_teacher(env_id)  # offline: a local zip, constants for schedules
    result = evaluate(teacher, env_id, n_episodes=5, seed=10_000)
    recorded = np.asarray(entry["returns"])
    # The same seeds replay the recorded episodes; float32 rounding (batch size, BLAS kernel)
    # may flip a near-tie action on another CPU, so the check is statistical: the mean of the
    # first 5 episodes lies within 3 standard errors of the recorded 50-episode mean.
    tolerance = 3 * recorded.std() / np.sqrt(5) + 1e-3
    assert abs(result.mean_return - recorded.mean()) <= tolerance, (result.returns, recorded[:5])
    assert result.returns.min() >= recorded.min() - tolerance


@pytest.mark.parametrize("env_id", SHIPPED)
def test_wrapper_matches_sb3_predict_on_1000_states(env_id: str) -> None:
    teacher = _sb3(env_id)  # SB3Teacher around the SB3 model
    states = _states(teacher, env_id)
    normalized = teacher.normalize(states)
    expected = np.stack([teacher.model.predict(s, deterministic=True)[0] for s in normalized])
    actions = teacher.act(states)
    if isinstance(teacher.action_space, gym.spaces.Discrete):
        np.testing.assert_array_equal(actions, expected)
    else:
        np.testing.assert_allclose(actions, expected, atol=1e-5)
    np.testing.assert_allclose(
        teacher.logits(states[:50]), teacher.torch_logits(states[:50]), atol=1e-4
    )


@pytest.mark.parametrize("env_id", SHIPPED)
def test_cached_numpy_actor_acts_exactly_as_the_sb3_model(env_id: str) -> None:
    """The actor cached beside the zip (what --expert zoo loads) gives SB3's own actions."""
    teacher = _sb3(env_id)  # SB3Teacher around the SB3 model
    actor = load_zoo_teacher(env_id)
    assert isinstance(actor, NumpyActor)
    assert actor.output_kind == teacher.output_kind
    assert actor.n_actor_parameters() == teacher.n_actor_parameters()
    states = _states(teacher, env_id)
    expected = np.stack(
        [teacher.model.predict(s, deterministic=True)[0] for s in teacher.normalize(states)]
    )
    if isinstance(teacher.action_space, gym.spaces.Discrete):
        np.testing.assert_array_equal(actor.act(states), expected)
    else:
        np.testing.assert_allclose(actor.act(states), expected, atol=1e-5)
    np.testing.assert_allclose(actor.logits(states), teacher.torch_logits(states), atol=1e-4)


@pytest.mark.parametrize("env_id", SHIPPED)
def test_cached_numpy_actor_equals_the_safe_import(env_id: str) -> None:
    """The cache and agents/sb3_safe.py (issue 16's no-unpickle loader) are the same actor."""
    sb3_safe = pytest.importorskip("agents.sb3_safe")  # present once issue 16 is merged
    entry = MANIFEST[env_id]
    safe = sb3_safe.load_safe_for_env(PRETRAINED / entry["file"], env_id, obs_norm_of(entry))
    actor = load_zoo_teacher(env_id)
    assert isinstance(actor, NumpyActor)
    states = _states(actor, env_id, 300)
    np.testing.assert_allclose(actor.logits(states), safe.logits(states), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(actor.act(states), safe.act(states))


def test_stale_actor_cache_is_ignored(tmp_path: Path) -> None:
    """A cache made from another zip (hash mismatch) is not used."""
    entry = MANIFEST["CartPole-v1"]
    zip_path = tmp_path / "CartPole-v1-ppo.zip"
    zip_path.write_bytes((PRETRAINED / entry["file"]).read_bytes())
    cache = cache_actor(zip_path, entry)
    assert read_actor(cache, zip_path) is not None
    zip_path.write_bytes(zip_path.read_bytes() + b"\0")  # another file now
    assert read_actor(cache, zip_path) is None
    cache.write_bytes(b"corrupt")
    assert read_actor(cache) is None


def test_zoo_collection_imports_neither_torch_nor_sb3() -> None:
    code = (
        "import sys; from agents.zoo import load_zoo_teacher; from imitate.collect import collect;"
        "d = collect(load_zoo_teacher('CartPole-v1'), 'CartPole-v1', 1, 0);"
        "print(len(d), 'torch' in sys.modules, 'stable_baselines3' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[1:] == ["False", "False"], out.stdout


@pytest.mark.parametrize("env_id", SHIPPED)
def test_logits_have_the_documented_shape(env_id: str) -> None:
    teacher = _sb3(env_id)  # SB3Teacher around the SB3 model
    space = teacher.action_space
    width = (
        int(space.n) if isinstance(space, gym.spaces.Discrete) else 2 * int(np.prod(space.shape))
    )
    assert teacher.logits(np.zeros((7, *teacher.model.observation_space.shape))).shape == (7, width)


def test_vecnormalize_statistics_are_applied_like_sb3() -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    rng = np.random.default_rng(0)
    stats = {
        "mean": rng.normal(size=4),
        "var": rng.uniform(0.1, 4, 4),
        "clip": 3.0,
        "epsilon": 1e-8,
    }
    entry = {
        **MANIFEST["CartPole-v1"],
        "obs_norm": {k: np.asarray(v).tolist() for k, v in stats.items()},
    }
    teacher = teacher_from_entry(PRETRAINED / entry["file"], entry)
    vec = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]), training=False, clip_obs=3.0)
    vec.obs_rms.mean, vec.obs_rms.var = stats["mean"], stats["var"]
    states = rng.normal(0, 3, size=(500, 4)).astype(np.float32)
    np.testing.assert_allclose(teacher.normalize(states), vec.normalize_obs(states), atol=1e-5)
    plain = teacher_from_entry(PRETRAINED / entry["file"], MANIFEST["CartPole-v1"])
    assert not np.allclose(teacher.logits(states), plain.logits(states))


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MountainCar-v0", "Pendulum-v1"])
def test_training_smoke(env_id: str, tmp_path: Path) -> None:
    out = tmp_path / "expert.zip"
    entry = train_expert(env_id, seed=0, out=out, n_timesteps=300)
    teacher = teacher_from_entry(out, entry)
    obs = gym.make(env_id).observation_space.sample()[None]
    assert teacher.act(obs).shape[0] == 1
    assert entry["timesteps"] == 300 and entry["algo"] == ZOO[env_id].algo


def test_mujoco_expert_zip_is_actor_only_and_acts_like_the_full_model(tmp_path: Path) -> None:
    """``--ship`` for a MuJoCo entry: critic and optimiser dropped, JSON policy_kwargs
    (the activation by name), VecNormalize statistics as numbers; the actor-only zip
    gives the full zip's outputs."""
    pytest.importorskip("mujoco")
    import shutil
    import zipfile

    import torch
    from stable_baselines3 import PPO

    from agents.zoo import (
        MUJOCO_POLICY,
        PPO_MUJOCO,
        load_sb3,
        resolve_policy_kwargs,
        strip_to_actor,
    )

    out = tmp_path / "expert.zip"
    spec = PPO_MUJOCO["Hopper-v5"]  # the PPO entry Hopper shipped with before SAC
    entry = train_expert("Hopper-v5", seed=0, out=out, n_timesteps=64, spec=spec)
    assert entry["actor_only"] and entry["policy_kwargs"]["activation_fn"] == "relu"
    assert len(entry["obs_norm"]["mean"]) == 11
    json.dumps(entry)  # nothing but numbers and strings in the manifest entry
    with zipfile.ZipFile(out) as archive:
        assert "policy.optimizer.pth" not in archive.namelist()
    teacher = teacher_from_entry(out, entry)
    assert isinstance(teacher.policy.mlp_extractor.policy_net[1], torch.nn.ReLU)

    model = PPO("MlpPolicy", "Hopper-v5", policy_kwargs=resolve_policy_kwargs(MUJOCO_POLICY))
    full, slim = tmp_path / "full.zip", tmp_path / "slim.zip"
    model.save(full)
    shutil.copy(full, slim)
    strip_to_actor(slim)
    assert slim.stat().st_size < 0.6 * full.stat().st_size
    obs = np.random.default_rng(0).normal(size=(20, 11)).astype(np.float32)
    a = SB3Teacher(load_sb3(full, "ppo", MUJOCO_POLICY))
    b = SB3Teacher(load_sb3(slim, "ppo", MUJOCO_POLICY, actor_only=True))
    np.testing.assert_array_equal(a.torch_logits(obs), b.torch_logits(obs))
    assert (
        a.n_actor_parameters() == b.n_actor_parameters() == (11 + 1) * 256 + 257 * 256 + 257 * 3 + 3
    )


def test_sac_zip_is_actor_only_and_its_cache_squashes_the_mean_to_the_bounds(
    tmp_path: Path,
) -> None:
    """SAC's actor-only zip: no critics, optimisers or entropy coefficient; the same
    actor as the full zip; its numpy cache acts as SB3 does, low + (tanh(mu) + 1) / 2 *
    (high - low) (Pendulum's bounds are +-2, so the rescaling is checked too)."""
    import shutil
    import zipfile

    import torch
    from stable_baselines3 import SAC

    from agents.actors import actor_file
    from agents.zoo import load_sb3, strip_to_actor

    model = SAC("MlpPolicy", "Pendulum-v1", seed=3, policy_kwargs={"net_arch": [32, 32]})
    full, slim = tmp_path / "full.zip", tmp_path / "slim.zip"
    model.save(full)
    shutil.copy(full, slim)
    strip_to_actor(slim)
    with zipfile.ZipFile(slim) as archive:
        names = archive.namelist()
        state = torch.load(archive.open("policy.pth"), weights_only=True)
        variables = torch.load(archive.open("pytorch_variables.pth"), weights_only=True)
    assert not [n for n in names if n.endswith("optimizer.pth")] and variables == {}
    assert state and all(k.startswith("actor.") for k in state), sorted(state)
    assert slim.stat().st_size < 0.5 * full.stat().st_size

    entry = {"env_id": "Pendulum-v1", "algo": "sac", "actor_only": True, "obs_norm": None}
    a = SB3Teacher(load_sb3(full, "sac"))
    b = teacher_from_entry(slim, entry)
    obs = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
    np.testing.assert_array_equal(a.torch_logits(obs), b.torch_logits(obs))
    actor = read_actor(cache_actor(slim, entry), slim)
    assert isinstance(actor, NumpyActor) and actor_file(slim).is_file()
    expected = np.stack([a.model.predict(o, deterministic=True)[0] for o in obs])
    np.testing.assert_allclose(actor.act(obs), expected, atol=1e-5)
    mu = actor.logits(obs)[:, :1]
    np.testing.assert_allclose(actor.act(obs), -2 + (np.tanh(mu) + 1) * 2, atol=1e-6)
    assert np.abs(expected).max() > 0.5  # the scale matters on these states
    from agents.sb3_safe import load_safe_for_env  # nothing unpickled: the same actor

    np.testing.assert_allclose(load_safe_for_env(slim, "Pendulum-v1").act(obs), actor.act(obs),
                               atol=1e-6)  # fmt: skip


def test_sac_mujoco_entry_trains_and_saves_the_actor_only(tmp_path: Path) -> None:
    pytest.importorskip("mujoco")
    import zipfile

    from agents.zoo import SAC_MUJOCO

    out = tmp_path / "hopper.zip"
    spec = SAC_MUJOCO["Hopper-v5"]
    entry = train_expert("Hopper-v5", 0, out, n_timesteps=32, spec=spec)  # warm-up only
    assert entry["algo"] == "sac" and entry["actor_only"]
    assert entry["obs_norm"] is None  # sac.yml's MuJoCo entries use no VecNormalize
    with zipfile.ZipFile(out) as archive:
        assert not [n for n in archive.namelist() if n.endswith("optimizer.pth")]
    teacher = teacher_from_entry(out, entry)
    assert teacher.act(np.zeros((2, 11), np.float32)).shape == (2, 3)


def test_sac_snapshot_ships_as_the_shorter_run_it_equals(tmp_path: Path) -> None:
    """A snapshot taken at step N during a longer SAC run has exactly the weights of
    ``--timesteps N - 1`` (constant learning rate; saved before step N's update), and
    record_snapshot records it with that command, checked against the zoo entry."""
    import torch

    from agents.zoo import best_snapshot, evaluate_snapshots, record_snapshot, snapshot_timesteps

    snapshots = tmp_path / "snapshots"
    train_expert("Pendulum-v1", 0, tmp_path / "long.zip", 170, snapshot_every=80,
                 snapshots=snapshots)  # fmt: skip
    assert sorted(p.name for p in snapshots.iterdir()) == ["160.buffer.npz", "160.zip", "80.zip"]
    short = train_expert("Pendulum-v1", 0, tmp_path / "short.zip", 159)
    assert snapshot_timesteps("Pendulum-v1", snapshots / "160.zip", 0, 160) == (159, 59)

    out = tmp_path / "shipped.zip"
    entry = record_snapshot("Pendulum-v1", snapshots / "160.zip", 0, 160, out=out,
                            wall_time_s=1.5, source="test run")  # fmt: skip
    assert (
        entry["command"]
        == f"imitate expert train --env Pendulum-v1 --seed 0 --timesteps 159 --out {out}"
    )
    assert entry["timesteps"] == 159 and entry["snapshot"]["num_timesteps"] == 160
    assert entry["snapshot"]["gradient_steps"] == 59 and entry["wall_time_s"] == 1.5
    assert len(entry["returns"]) == 50 and json.loads(out.with_suffix(".json").read_text())
    shipped = teacher_from_entry(out, entry).policy.actor.state_dict()
    reference = teacher_from_entry(tmp_path / "short.zip", short).policy.actor.state_dict()
    assert shipped.keys() == reference.keys()
    assert all(torch.equal(shipped[k], reference[k]) for k in shipped)
    longer = teacher_from_entry(tmp_path / "long.zip", short).policy.actor.state_dict()
    assert not all(torch.equal(longer[k], reference[k]) for k in shipped)  # it trained on

    evals = evaluate_snapshots("Pendulum-v1", snapshots, episodes=2)
    assert [r["steps"] for r in evals] == [80, 160] and len(evaluate_snapshots(
        "Pendulum-v1", snapshots, episodes=2, min_steps=100)) == 1  # fmt: skip
    rows = [{"steps": 80, "mean_return": -5.0}, {"steps": 160, "mean_return": -5.0}]
    assert best_snapshot(rows)["steps"] == 160  # the latest of equals
    assert best_snapshot([*rows, {"steps": 240, "mean_return": -9.0}])["steps"] == 160


def test_sac_run_resumes_from_its_snapshot_with_its_replay_buffer(tmp_path: Path) -> None:
    """A run stopped after a snapshot continues from it (weights, optimisers, entropy
    coefficient, counters and the saved replay buffer) and its later snapshots ship with
    the lineage, not with a one-command reproduction; a run without its buffer refills it
    before it trains again."""
    import torch

    from agents import training_state
    from agents.zoo import build_model, record_snapshot, zoo_spec
    from imitate.errors import ImitateError

    snapshots = tmp_path / "snapshots"
    train_expert("Pendulum-v1", 0, tmp_path / "first.zip", 120, snapshot_every=60,
                 snapshots=snapshots)  # fmt: skip
    model, venv = build_model(zoo_spec("Pendulum-v1"), 0)
    assert training_state.resume(model, snapshots, 0, 180) == 120
    saved = _sac_load(snapshots / "120.zip")
    assert torch.equal(model.log_ent_coef, saved.log_ent_coef)
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.actor.parameters(), saved.actor.parameters(), strict=True)
    )
    # the callback runs before SB3 stores step 120's transition: 119 saved
    assert model.replay_buffer.pos == 119 and model._n_updates == saved._n_updates > 0
    assert np.array_equal(model.replay_buffer.observations[:119], _saved_buffer(snapshots, 120))
    venv.close()
    (snapshots / training_state.LINEAGE).unlink()

    entry = train_expert("Pendulum-v1", 0, tmp_path / "resumed.zip", 180, snapshot_every=60,
                         snapshots=snapshots, resume=True)  # fmt: skip
    assert entry["resumed"] == [{"resumed_at": 120, "buffer_restored": True}]
    assert sorted(p.name for p in snapshots.glob("*.buffer.npz")) == ["180.buffer.npz"]
    assert not list(snapshots.glob("*.partial"))  # each zip written beside, then renamed
    assert _sac_load(snapshots / "180.zip").num_timesteps == 180
    shipped = record_snapshot("Pendulum-v1", snapshots / "180.zip", 0, 180,
                              out=tmp_path / "shipped.zip")  # fmt: skip
    assert shipped["timesteps"] == 180 and shipped["snapshot"]["resumed"] == entry["resumed"]
    assert "not bit-reproducible" in shipped["snapshot"]["equals"]
    assert shipped["command"].endswith(
        f"--timesteps 180 --out {tmp_path / 'shipped.zip'} --snapshots {snapshots} --resume "
        "(after 1 resume(s); not bit-reproducible)"
    )
    lineage = training_state.read_lineage(snapshots)
    with pytest.raises(ImitateError, match="newest snapshot is at 180 of 180"):
        train_expert("Pendulum-v1", 0, tmp_path / "x.zip", 180, snapshots=snapshots, resume=True)
    other_env = "is a snapshot of a SAC run on Pendulum-v1, not of CartPole-v1's PPO training"
    with pytest.raises(ImitateError, match=f"180.zip {other_env}$"):
        train_expert("CartPole-v1", 0, tmp_path / "x.zip", 900, snapshots=snapshots, resume=True)
    assert training_state.read_lineage(snapshots) == lineage  # refusals record nothing
    cli = ["expert", "train", "--env", "Pendulum-v1", "--timesteps", "240", "--resume"]
    cli += ["--snapshots", str(snapshots), "--out", str(tmp_path / "cli.zip"), "--json"]
    assert main(cli) == 0
    recorded = json.loads((tmp_path / "cli.json").read_text())
    assert "--resume (after 2 resume(s); not bit-reproducible)" in recorded["command"]

    (snapshots / "180.buffer.npz").unlink()  # e.g. snapshots of an older run
    model, venv = build_model(zoo_spec("Pendulum-v1"), 0)
    training_state.resume(model, snapshots, 0, 240)
    assert model.replay_buffer.pos == 0
    assert model.learning_starts == 180 + training_state.FRESH_BUFFER_WARMUP
    venv.close()
    with pytest.raises(ImitateError, match="seed 0, not 1"):
        training_state.resume(build_model(zoo_spec("Pendulum-v1"), 1)[0], snapshots, 1, 240)
    assert main(["expert", "train", "--env", "Pendulum-v1", "--resume"]) == 2
    assert main(["expert", "train", "--env", "Pendulum-v1", "--snapshot-every", "10"]) == 2


def test_interrupted_expert_training_says_how_to_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM after a snapshot: one line naming the same command with --resume (rebuilt
    from the parsed flags: it parses back to the interrupted command plus resume). Without
    a snapshot to continue from (no --snapshots, or none written yet) the line stays bare."""
    import dataclasses
    import os
    import shlex
    import signal
    import time

    from cli_helpers import run_cli

    from agents import zoo
    from imitate.cli import parse
    from imitate.errors import Interrupted

    snapshots = tmp_path / "snap shots"  # a space: the hint quotes it
    args = ["expert", "train", "--env", "Pendulum-v1", "--timesteps", "100000", "--seed", "3"]
    args += ["--snapshots", str(snapshots), "--snapshot-every", "50"]
    args += ["--out", str(tmp_path / "expert.zip")]
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "imitate.cli", *args], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (snapshots / "50.zip").is_file():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err
    prefix = "imitate: interrupted; continue with: "
    assert err.startswith(prefix) and err.count("\n") == 1, err
    words = shlex.split(err[len(prefix) :])
    assert words[:3] == ["imitate", "expert", "train"] and words[-1] == "--resume"
    assert parse(words[1:]).action == dataclasses.replace(parse(args).action, resume=True)
    assert not (tmp_path / "expert.zip").exists()

    empty = tmp_path / "empty"
    code, _, err = run_cli(["expert", "train", "--snapshots", str(empty), "--resume"], capsys)
    assert code == 2 and err.endswith("resume from (start the run without --resume)\n"), err

    def interrupted(*_: object, **__: object) -> None:
        raise Interrupted(signal.SIGINT)

    monkeypatch.setattr(zoo, "train_and_record", interrupted)
    for extra in ([], ["--snapshots", str(empty)]):  # nothing to resume from
        code, _, err = run_cli(["expert", "train", "--env", "Pendulum-v1", *extra], capsys)
        assert (code, err) == (130, "imitate: interrupted\n")
    again = [*args[:-2], "--resume"]  # interrupted again while resuming: the same hint
    code, _, err = run_cli(again, capsys)
    assert code == 130 and err.startswith(prefix) and err.count("\n") == 1, err
    assert parse(shlex.split(err[len(prefix) :])[1:]) == parse(again)


def _sac_load(path: Path) -> Any:
    from stable_baselines3 import SAC

    return SAC.load(path, device="cpu")


def _saved_buffer(folder: Path, steps: int) -> np.ndarray:
    with np.load(folder / f"{steps}.buffer.npz") as saved:
        return np.asarray(saved["observations"])


def test_snapshot_of_another_training_is_refused(tmp_path: Path) -> None:
    from stable_baselines3 import SAC

    from agents.zoo import record_snapshot, snapshot_timesteps
    from imitate.errors import ImitateError

    other = tmp_path / "other.zip"
    SAC("MlpPolicy", "Pendulum-v1", seed=0, learning_rate=3e-4,
        policy_kwargs={"net_arch": [64, 64]}).save(other)  # fmt: skip
    with pytest.raises(ImitateError, match=r"not built as the zoo entry .* learning_rate"):
        snapshot_timesteps("Pendulum-v1", other, 0, 0)
    with pytest.raises(ImitateError, match="seed 0 at 0 steps, not seed 1 at 0"):
        snapshot_timesteps("Pendulum-v1", other, 1, 0)
    with pytest.raises(ImitateError, match="only a SAC expert"):
        record_snapshot("CartPole-v1", other, 0, 0, out=tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_snapshot_of_another_env_or_algorithm_is_refused_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A resume from another env's or algorithm's snapshots says so first (the env named
    when its spaces are a zoo env's: a zip does not record its id), not as the list of
    every hyperparameter that differs; one of the same env and algorithm still lists them."""
    from stable_baselines3 import PPO, SAC

    from imitate.errors import ImitateError

    def snapshot(model: Any, name: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        model.save(folder / "2500.zip")
        return folder

    pendulum = snapshot(SAC("MlpPolicy", "Pendulum-v1", seed=0), "pendulum")
    code = main(["expert", "train", "--env", "CartPole-v1", "--snapshots", str(pendulum),
                 "--resume", "--out", str(tmp_path / "x.zip")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err == (
        f"imitate: error: {pendulum}/2500.zip is a snapshot of a SAC run on Pendulum-v1, "
        "not of CartPole-v1's PPO training\n"
    )
    mountain_car = snapshot(PPO("MlpPolicy", "MountainCar-v0", seed=0), "mountain_car")
    with pytest.raises(
        ImitateError, match=r"of a PPO run on MountainCar-v0, not of Pendulum-v1's SAC training$"
    ):
        train_expert("Pendulum-v1", 0, tmp_path / "x.zip", 900, snapshots=mountain_car, resume=True)
    own = snapshot(SAC("MlpPolicy", "MountainCarContinuous-v0", seed=0), "own")  # not a zoo env
    with pytest.raises(ImitateError) as refused:
        train_expert("Pendulum-v1", 0, tmp_path / "x.zip", 900, snapshots=own, resume=True)
    assert str(refused.value) == (
        f"{own}/2500.zip is a snapshot of a SAC run on another env (observations "
        "Box([-1.2 -0.07], [0.6 0.07], (2,), float32), actions Box(-1.0, 1.0, (1,), float32)), "
        "not of Pendulum-v1's SAC training"
    )
    same = snapshot(SAC("MlpPolicy", "Pendulum-v1", seed=0, learning_rate=3e-4,
                        policy_kwargs={"net_arch": [64, 64]}), "same")  # fmt: skip
    with pytest.raises(
        ImitateError,
        match=r"not a snapshot of this training \(differs in learning_rate, lr_schedule\)$",
    ):
        train_expert("Pendulum-v1", 0, tmp_path / "x.zip", 900, snapshots=same, resume=True)
    assert not (tmp_path / "x.zip").exists()


def test_every_zoo_expert_is_shipped() -> None:
    assert sorted(ZOO) == SHIPPED
    assert MANIFEST["Acrobot-v1"]["obs_norm"] is not None  # trained under VecNormalize


def test_zip_of_another_env_is_refused() -> None:
    with pytest.raises(EnvError, match="do not match Acrobot-v1"):
        load_zip_teacher(PRETRAINED / MANIFEST["CartPole-v1"]["file"], "Acrobot-v1")


@pytest.mark.slow
@pytest.mark.parametrize("env_id", [e for e in ("CartPole-v1", "Acrobot-v1") if e in MANIFEST])
def test_bc_from_20_zoo_episodes_keeps_95_percent(env_id: str) -> None:
    teacher = load_zoo_teacher(env_id)
    demos = collect(teacher, env_id, n_episodes=20, seed=0)
    policy, _ = train_bc(demos, BCConfig(seed=0))
    expert_return = MANIFEST[env_id]["mean_return"]
    clone_return = evaluate(policy, env_id, n_episodes=50, seed=10_000).mean_return
    assert clone_return >= expert_return - 0.05 * abs(expert_return)


def test_expert_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["expert", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["experts"]
    assert [e["env_id"] for e in listed] == SHIPPED
    assert all(e["mean_return"] >= e["required_return"] for e in listed)
    hopper = next(e for e in listed if e["env_id"] == "Hopper-v5")  # the README's columns
    assert (hopper["algo"], hopper["timesteps"], hopper["actor_only"]) == ("sac", 150_000, True)
    assert hopper["zip_kb"] == round((PRETRAINED / hopper["file"]).stat().st_size / 1000)


def test_expert_list_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json: a header and one aligned row per expert, returns in full (4,680.4
    was printed 4680, to 4 significant figures), steps with separators, no key=value."""
    assert main(["expert", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, rows = lines[1].split(), [line.split() for line in lines[2:]]
    assert header[:3] == ["env_id", "algo", "timesteps"] and len(rows) == len(SHIPPED)
    cheetah = dict(zip(header, next(r for r in rows if r[0] == "HalfCheetah-v5"), strict=True))
    assert cheetah["timesteps"] == f"{MANIFEST['HalfCheetah-v5']['timesteps']:,}"
    assert cheetah["mean_return"] == f"{MANIFEST['HalfCheetah-v5']['mean_return']:,.1f}"
    assert not any("=" in line for line in lines)


def test_fresh_run_into_a_folder_of_snapshots_is_refused(tmp_path: Path) -> None:
    """Without --resume a new run would overwrite some of an earlier run's snapshots and
    leave the rest, and a later --resume would pick from the mix: refused, nothing trained."""
    from imitate.errors import ImitateError

    snapshots = tmp_path / "snaps"
    snapshots.mkdir()
    (snapshots / "800.zip").write_bytes(b"an earlier run's")
    with pytest.raises(ImitateError, match=r"earlier run \(newest: 800 steps\).*--resume"):
        train_expert("Pendulum-v1", 0, tmp_path / "x.zip", 100, snapshot_every=50,
                     snapshots=snapshots)  # fmt: skip
    assert not (tmp_path / "x.zip").exists()
    assert sorted(p.name for p in snapshots.iterdir()) == ["800.zip"]
