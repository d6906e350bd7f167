"""A user's SB3 PPO trained under VecNormalize, saved the SB3 way, evaluated by SB3 and by us.

Trains PPO (rl-zoo Acrobot-v1 hyperparameters, ``--timesteps`` steps: short, it need not
be good) in ``VecNormalize``, then ``model.save(<dir>/ppo)`` and
``vec_env.save(<dir>/vecnormalize.pkl)``, as SB3's docs do. Then 50 episodes each:

* SB3's own ``evaluate_policy`` on ``VecNormalize.load(pkl)`` (``training=False``,
  ``norm_reward=False``), deterministic;
* ``imitate``'s ``evaluate`` of ``resolve_expert("<dir>/ppo")`` (the pkl found beside);
* the same zip with the statistics ignored (what ``--expert ppo.zip`` did before).

    python -m benchmarks.bench_vecnormalize [--timesteps N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import emit
from imitate import evaluate

ENV = "Acrobot-v1"
EPISODES = 50


def main() -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    from agents.registry import resolve_expert
    from agents.teachers import SB3Teacher

    torch.set_num_threads(1)
    steps = (
        int(sys.argv[sys.argv.index("--timesteps") + 1]) if "--timesteps" in sys.argv else 100_000
    )
    folder = Path(tempfile.mkdtemp(prefix="vecnorm-"))
    venv = VecNormalize(make_vec_env(ENV, n_envs=16, seed=0))
    model = PPO(
        "MlpPolicy", venv, n_steps=256, gae_lambda=0.94, gamma=0.99, n_epochs=4, ent_coef=0.0,
        seed=0, device="cpu",
    )  # fmt: skip
    start = time.perf_counter()
    model.learn(steps)
    train_s = time.perf_counter() - start
    model.save(folder / "ppo")
    venv.save(str(folder / "vecnormalize.pkl"))

    eval_env = VecNormalize.load(
        str(folder / "vecnormalize.pkl"), make_vec_env(ENV, 1, seed=10_000)
    )
    eval_env.training, eval_env.norm_reward = False, False
    rewards, _ = evaluate_policy(
        PPO.load(folder / "ppo", device="cpu"), eval_env, EPISODES, deterministic=True,
        return_episode_rewards=True,
    )  # fmt: skip
    sb3 = np.asarray(rewards, np.float64)
    ours = evaluate(resolve_expert(str(folder / "ppo"), ENV), ENV, EPISODES, 10_000).returns
    raw = SB3Teacher(PPO.load(folder / "ppo", device="cpu"))  # statistics ignored
    ignored = evaluate(raw, ENV, EPISODES, 10_000).returns

    def summary(x: np.ndarray) -> dict[str, float]:
        return {"mean": float(x.mean()), "se": float(x.std(ddof=1) / np.sqrt(len(x)))}

    diff = abs(sb3.mean() - ours.mean())
    se = float(np.hypot(summary(sb3)["se"], summary(ours)["se"]))
    emit(
        "bench_vecnormalize",
        {
            "env": ENV,
            "timesteps": steps,
            "train_s": train_s,
            "episodes": EPISODES,
            "sb3_evaluate_policy": summary(sb3),
            "imitate_with_statistics": summary(ours),
            "imitate_statistics_ignored": summary(ignored),
            "difference_in_se": diff / se if se > 0 else 0.0,
            "folder": str(folder),
        },
    )


if __name__ == "__main__":
    main()
