"""A user's own SB3 expert (VecNormalize, SB3 naming, rl-zoo folders, sb3-contrib) and the
hand-off back to SB3 (export --format sb3, then fine-tuning with PPO)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import yaml
from cli_helpers import run_cli as cli

from agents.heuristics import CartPoleExpert
from agents.registry import resolve_expert
from agents.teachers import SB3Teacher
from imitate import BCConfig, OptimConfig, collect, evaluate, train_bc
from imitate.errors import ImitateError

ACROBOT = "Acrobot-v1"


@pytest.fixture(scope="module")
def acrobot_ppo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PPO trained briefly under VecNormalize and saved the SB3 way:
    ``model.save(dir/"ppo")`` and ``vec_env.save(dir/"vecnormalize.pkl")``."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    folder = tmp_path_factory.mktemp("acrobot")
    venv = VecNormalize(make_vec_env(ACROBOT, n_envs=4, seed=0))
    model = PPO("MlpPolicy", venv, n_steps=128, batch_size=128, seed=0, device="cpu")
    model.learn(2048)
    model.save(folder / "ppo")
    venv.save(str(folder / "vecnormalize.pkl"))
    return folder


def sb3_stats(folder: Path) -> Any:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    venv = VecNormalize.load(str(folder / "vecnormalize.pkl"), make_vec_env(ACROBOT, 1))
    venv.training, venv.norm_reward = False, False
    return venv


def acrobot_states(n: int = 10_000) -> np.ndarray:
    rng = np.random.default_rng(0)
    theta = rng.uniform(-np.pi, np.pi, (n, 2))
    speed = rng.uniform(-1, 1, (n, 2)) * [4 * np.pi, 9 * np.pi]
    return np.column_stack([np.cos(theta[:, 0]), np.sin(theta[:, 0]), np.cos(theta[:, 1]),
                            np.sin(theta[:, 1]), speed]).astype(np.float32)  # fmt: skip


def test_vecnormalize_beside_the_zip_is_applied_as_sb3_does(acrobot_ppo: Path) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy

    expert = resolve_expert(str(acrobot_ppo / "ppo"), ACROBOT)  # SB3 naming: no .zip
    assert expert.provenance["vecnormalize"] == str(acrobot_ppo / "vecnormalize.pkl")  # type: ignore[attr-defined]
    model = PPO.load(acrobot_ppo / "ppo", device="cpu")
    venv = sb3_stats(acrobot_ppo)
    states = acrobot_states()
    reference, _ = model.predict(venv.normalize_obs(states), deterministic=True)
    np.testing.assert_array_equal(expert.act(states), reference)
    ignored = SB3Teacher(model).act(states)  # what --expert ppo.zip did without the statistics
    assert (ignored != reference).mean() > 0.05
    # returns: SB3's own evaluation with the statistics vs ours, within 3 standard errors
    rewards, _ = evaluate_policy(model, venv, 20, deterministic=True, return_episode_rewards=True)
    sb3 = np.asarray(rewards, np.float64)
    ours = evaluate(expert, ACROBOT, 20, 10_000).returns
    se = np.hypot(sb3.std(ddof=1), ours.std(ddof=1)) / np.sqrt(20)
    assert abs(sb3.mean() - ours.mean()) <= 3 * se + 1e-9


def test_vecnormalize_flag_and_missing_statistics(
    acrobot_ppo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(acrobot_ppo / "ppo.zip", alone / "ppo.zip")
    stats = tmp_path / "stats.pkl"
    shutil.copy(acrobot_ppo / "vecnormalize.pkl", stats)
    base = ["expert", "eval", "--env", ACROBOT, "--episodes", "3", "--json"]
    code, out, err = cli(
        [*base, "--expert", str(alone / "ppo.zip"), "--vecnormalize", str(stats)], capsys
    )
    assert code == 0, err
    beside = cli([*base, "--expert", str(acrobot_ppo / "ppo.zip")], capsys)
    assert json.loads(out)["returns"] == json.loads(beside[1])["returns"]
    # trained with normalisation, no statistics: one line, exit 2
    code, out, err = cli([*base, "--expert", str(alone / "ppo.zip")], capsys)
    assert code == 2 and "VecNormalize" in json.loads(out)["error"]  # --json: the error too
    assert err.startswith("imitate: error: ") and err.count("\n") == 1
    assert "VecNormalize" in err and "--vecnormalize" in err
    # the statistics file named as the expert: a hint, exit 2
    code, _, err = cli([*base, "--expert", str(stats)], capsys)
    assert code == 2 and "--vecnormalize" in err


def test_a_zip_trained_without_normalisation_needs_no_statistics(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    from agents.vecnorm import trained_with_obs_normalization

    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64, seed=0, device="cpu")
    model.learn(64)
    model.save(tmp_path / "plain")
    assert trained_with_obs_normalization(tmp_path / "plain.zip") is False
    expert = resolve_expert(str(tmp_path / "plain"), "CartPole-v1")
    assert expert.obs_norm is None  # type: ignore[attr-defined]


def _off_policy_zip(
    folder: Path, algo: str, env_id: str, n_envs: int, normalise: bool, seed: int = 0
) -> Path:
    """A few hundred steps of SAC/DQN (optionally under VecNormalize), saved the SB3 way."""
    from stable_baselines3 import DQN, SAC
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    folder.mkdir(parents=True)
    venv = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    if normalise:
        venv = VecNormalize(venv)
    if algo == "SAC":
        model: Any = SAC("MlpPolicy", venv, learning_starts=50, batch_size=32, seed=seed,
                         policy_kwargs={"net_arch": [16]}, device="cpu")  # fmt: skip
    else:
        model = DQN("MlpPolicy", venv, learning_starts=50, seed=seed, device="cpu")
    model.learn(200)
    model.save(folder / "model")
    if normalise:
        venv.save(str(folder / "vecnormalize.pkl"))
    return folder / "model.zip"


def test_off_policy_zips_trained_with_vecnormalize_are_refused_without_statistics(
    tmp_path: Path,
) -> None:
    """SAC and DQN keep the last observation pair in the zip: a normalised observation
    outside the observation space (SAC, Pendulum, one env) or one affine map per dimension
    across 3+ envs (DQN, CartPole, 4 envs) says VecNormalize; without statistics that is
    refused, with the pkl beside the zip the expert acts as SB3 predicts."""
    from stable_baselines3 import DQN, SAC
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from agents.registry import NormalizationUnknownWarning
    from agents.vecnorm import trained_with_obs_normalization

    cases = [("SAC", "Pendulum-v1", 1), ("DQN", "CartPole-v1", 4)]
    for algo, env_id, n_envs in cases:
        zip_path = _off_policy_zip(tmp_path / algo, algo, env_id, n_envs, normalise=True)
        assert trained_with_obs_normalization(zip_path) is True
        model = (SAC if algo == "SAC" else DQN).load(zip_path, device="cpu")
        venv = VecNormalize.load(
            str(zip_path.parent / "vecnormalize.pkl"), DummyVecEnv([lambda e=env_id: gym.make(e)])
        )
        expert = resolve_expert(str(zip_path), env_id)  # the pkl beside it
        states = collect(expert, env_id, 2, seed=0).obs
        reference, _ = model.predict(venv.normalize_obs(states), deterministic=True)
        np.testing.assert_allclose(expert.act(states), reference, atol=1e-5)
        (zip_path.parent / "vecnormalize.pkl").unlink()
        with pytest.raises(ImitateError, match="VecNormalize but its statistics are missing"):
            resolve_expert(str(zip_path), env_id)
    # no VecNormalize: 4 envs say so (no warning); one env cannot tell: a warning, no refusal
    plain = _off_policy_zip(tmp_path / "plain4", "DQN", "CartPole-v1", 4, normalise=False)
    assert trained_with_obs_normalization(plain) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error", NormalizationUnknownWarning)
        resolve_expert(str(plain), "CartPole-v1")
    alone = _off_policy_zip(tmp_path / "plain1", "DQN", "CartPole-v1", 1, normalise=False)
    assert trained_with_obs_normalization(alone) is None
    with pytest.warns(NormalizationUnknownWarning, match="--vecnormalize"):
        resolve_expert(str(alone), "CartPole-v1")


def test_rl_zoo_run_folder(acrobot_ppo: Path, tmp_path: Path) -> None:
    """``logs/ppo/Acrobot-v1_1/{Acrobot-v1.zip, Acrobot-v1/{vecnormalize.pkl, config.yml}}``."""
    run = tmp_path / "logs" / "ppo" / f"{ACROBOT}_1"
    (run / ACROBOT).mkdir(parents=True)
    shutil.copy(acrobot_ppo / "ppo.zip", run / f"{ACROBOT}.zip")
    shutil.copy(acrobot_ppo / "vecnormalize.pkl", run / ACROBOT / "vecnormalize.pkl")
    config = OrderedDict([("n_envs", 4), ("normalize", True), ("policy", "MlpPolicy")])
    (run / ACROBOT / "config.yml").write_text(yaml.dump(config))  # rl-zoo3 dumps an OrderedDict
    expert = resolve_expert(str(run), ACROBOT)
    assert expert.provenance["algo"] == "PPO"  # type: ignore[attr-defined]
    assert expert.provenance["vecnormalize"].endswith("Acrobot-v1/vecnormalize.pkl")  # type: ignore[attr-defined]
    beside = resolve_expert(str(acrobot_ppo / "ppo.zip"), ACROBOT)
    states = acrobot_states(2000)
    np.testing.assert_array_equal(expert.act(states), beside.act(states))
    # config.yml says normalize, the statistics are gone: refused
    (run / ACROBOT / "vecnormalize.pkl").unlink()
    with pytest.raises(ImitateError, match="statistics are missing"):
        resolve_expert(str(run), ACROBOT)


def test_rl_zoo_config_alone_marks_a_zip_as_normalised(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    from agents.registry import zoo_config_normalize

    run = tmp_path / "ppo" / "CartPole-v1_2"
    (run / "CartPole-v1").mkdir(parents=True)
    PPO("MlpPolicy", "CartPole-v1", n_steps=64, device="cpu").save(run / "CartPole-v1")
    config = run / "CartPole-v1" / "config.yml"
    config.write_text(yaml.dump(OrderedDict([("normalize", "{'norm_obs': True}")])))
    assert zoo_config_normalize(config)
    with pytest.raises(ImitateError, match="--vecnormalize"):
        resolve_expert(str(run), "CartPole-v1")
    config.write_text(yaml.dump(OrderedDict([("normalize", False)])))
    assert resolve_expert(str(run), "CartPole-v1") is not None


def test_a_statistics_pickle_beside_a_zip_never_runs_code(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    PPO("MlpPolicy", "CartPole-v1", n_steps=64, device="cpu").save(tmp_path / "model")
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    (tmp_path / "vecnormalize.pkl").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ImitateError, match="refusing to load"):
        resolve_expert(str(tmp_path / "model.zip"), "CartPole-v1")
    assert not marker.exists()


def test_qrdqn_expert_acts_as_sb3_contrib_predicts(tmp_path: Path) -> None:
    from sb3_contrib import QRDQN

    model = QRDQN(
        "MlpPolicy", "CartPole-v1", learning_starts=50, train_freq=4, seed=0, device="cpu",
        policy_kwargs={"net_arch": [32, 32], "n_quantiles": 10},
    )  # fmt: skip
    model.learn(300)
    model.save(tmp_path / "qrdqn")
    from agents.vecnorm import trained_with_obs_normalization

    assert trained_with_obs_normalization(tmp_path / "qrdqn.zip") is None  # off-policy: unknown
    expert = resolve_expert(str(tmp_path / "qrdqn"), "CartPole-v1")
    assert expert.provenance["algo"] == "QRDQN" and expert.output_kind == "q_values"  # type: ignore[attr-defined]
    states = collect(CartPoleExpert(), "CartPole-v1", 3, seed=0).obs
    states = np.concatenate([states, np.random.default_rng(0).normal(0, 1, (2000, 4))]).astype(
        np.float32
    )
    reference, _ = model.predict(states, deterministic=True)
    np.testing.assert_array_equal(expert.act(states), reference)
    small = states[:32]  # the numpy path (small batches) against SB3's torch modules
    np.testing.assert_allclose(expert.logits(small), expert.torch_logits(small), atol=1e-5)  # type: ignore[attr-defined]


def test_tqc_expert_acts_as_sb3_contrib_predicts(tmp_path: Path) -> None:
    from sb3_contrib import TQC

    model = TQC(
        "MlpPolicy", "Pendulum-v1", learning_starts=50, seed=0, device="cpu",
        policy_kwargs={"net_arch": [32, 32], "n_quantiles": 5},
    )  # fmt: skip
    model.learn(100)
    model.save(tmp_path / "tqc")
    expert = resolve_expert(str(tmp_path / "tqc.zip"), "Pendulum-v1")
    states = np.random.default_rng(0).normal(0, 1, (1000, 3)).astype(np.float32)
    reference, _ = model.predict(states, deterministic=True)
    np.testing.assert_allclose(expert.act(states), reference, atol=1e-5)


# ---- hand-off to RL ----------------------------------------------------------------


def test_sb3_export_round_trips_a_discrete_and_a_box_clone(tmp_path: Path) -> None:
    from imitate.export import export_policy, load_exported

    rng = np.random.default_rng(0)
    demos = collect(CartPoleExpert(), "CartPole-v1", 5, seed=0)
    clone, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=1000)))
    [path] = export_policy(clone, "sb3", tmp_path / "ppo", algo="ppo")
    states = (rng.normal(size=(10_000, 4)) * 2 * demos.obs.std(0) + demos.obs.mean(0)).astype(
        np.float32
    )
    np.testing.assert_array_equal(load_exported(path).act(states), clone.act(states))

    pendulum = resolve_expert("zoo", "Pendulum-v1")
    box_demos = collect(pendulum, "Pendulum-v1", 3, seed=0)
    box_clone, _ = train_bc(box_demos, BCConfig(optim=OptimConfig(max_steps=500)))
    [box_path] = export_policy(box_clone, "sb3", tmp_path / "sac", algo="sac")
    box_states = rng.normal(size=(10_000, 3)).astype(np.float32) * 2 * box_demos.obs.std(0)
    np.testing.assert_allclose(
        load_exported(box_path).act(box_states), box_clone.act(box_states), atol=1e-5
    )
    with pytest.raises(ImitateError, match="--algo sac"):
        export_policy(box_clone, "sb3", tmp_path / "bad", algo="ppo")


@pytest.mark.slow
def test_fine_tuning_a_bc_clone_with_ppo_starts_from_the_clone(tmp_path: Path) -> None:
    """The README's BC -> PPO example, in small: the first evaluation is the clone's."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from imitate.export import export_policy

    demos = collect(CartPoleExpert(), "CartPole-v1", 2, seed=0)
    clone, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=300)))
    [path] = export_policy(clone, "sb3", tmp_path, algo="ppo")
    model = PPO.load(path, env=make_vec_env("CartPole-v1", n_envs=4, seed=0), device="cpu")

    class Predict:
        def act(self, obs: np.ndarray) -> np.ndarray:
            return model.predict(obs, deterministic=True)[0]

    before = evaluate(Predict(), "CartPole-v1", 10, 10_000)
    np.testing.assert_array_equal(
        before.returns, evaluate(clone, "CartPole-v1", 10, 10_000).returns
    )
    model.learn(2048)
    after = evaluate(Predict(), "CartPole-v1", 10, 10_000)
    assert np.isfinite(after.mean_return) and model.num_timesteps >= 2048
