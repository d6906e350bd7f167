"""BabyAI: BC success rate vs the number of BabyAI-bot demonstrations, and DAgger's.

The expert is minigrid's ``BabyAIBot`` (a privileged planner on the full grid,
:mod:`agents.babyai`); the student sees the Dict observation (7x7x3 symbolic view;
direction one-hot; mission bag of words), the view stacked over the last ``--stack``
steps (:class:`imitate.wrappers.StackObservation`: a memoryless clone of the bot, whose
plan remembers what it has seen, otherwise oscillates left/right). ``--encoder`` picks
how the view is encoded (:class:`imitate.encoders.EncoderConfig`): ``cnn``, one-hot per
channel into the small CNN; ``grid``, an embedding per cell value + same-padded 3x3
convolutions (:class:`~imitate.encoders.GridEncoder`); ``film``, that grid conditioned on
the mission (:class:`~imitate.encoders.FiLMEncoder`); ``film-embedding``, that FiLM
encoder with the summed cell embeddings conditioned too
(``EncoderConfig.film_embedding``). ``--no-mission`` adds, per demonstration count, the
same training with the mission blanked (in the demonstrations and at evaluation): the
ablation that shows what the mission text is worth (``--only-no-mission``: that
training alone, to run it in another process). DAgger's learner uses the same encoder.
Demonstrations from seeds 0.., evaluation episodes from seed 10,000.. (unseen layouts).

    python benchmarks/babyai_bc.py --demos 300 1000 3000 --episodes 500
    python benchmarks/babyai_bc.py --demos 4000 --stack 5 --encoder cnn   # 99.0 % (README)
    python benchmarks/babyai_bc.py --env BabyAI-GoToLocal-v0 --demos 3000 --no-mission
    python benchmarks/babyai_bc.py --env BabyAI-GoToLocal-v0 --demos 30000 \
        --encoder film-embedding --grid-channels 16 16 --grid-embedding 16 --steps 8000
    python benchmarks/babyai_bc.py --demos --dagger-rounds 4 --labels-per-round 3000

Writes ``benchmarks/results/babyai_bc.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.babyai import BabyAIExpert
from benchmarks.common import emit
from imitate import BCConfig, PolicyConfig, collect, evaluate, train_bc
from imitate.configs import DAggerConfig, EarlyStopConfig, OptimConfig
from imitate.dagger import dagger
from imitate.data import Dataset, load_dataset
from imitate.encoded import EncodedPolicy
from imitate.encoders import EncoderConfig
from imitate.environments import env_spec
from imitate.runtime import fast_policy
from imitate.wrappers import stack_spec

ENCODERS = {
    "cnn": EncoderConfig(),
    "grid": EncoderConfig(grid="embedding"),
    "film": EncoderConfig(grid="embedding", film=True),
    "film-embedding": EncoderConfig(grid="embedding", film=True, film_embedding=True),
}


class BlankMission:
    """``policy`` with every mission replaced by the empty string (the ablation)."""

    def __init__(self, policy: Any) -> None:
        self.policy: Any = fast_policy(policy)

    def act(self, obs: Any) -> np.ndarray:
        return np.asarray(self.policy.act(_blank(obs)))


def _blank(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {**obs, "mission": np.full(len(obs["mission"]), "", dtype=np.str_)}


def _train(demos: Dataset, config: BCConfig, encoder: EncoderConfig) -> tuple[Any, Any]:
    obs_space, action_space = demos.meta.spaces()
    policy = EncodedPolicy.for_data(obs_space, action_space, demos.obs, config.policy, encoder)
    return train_bc(demos, config, policy=policy)


def _demonstrations(args: argparse.Namespace, spec: Any) -> Dataset:
    """The bot's ``max(--demos)`` episodes from seed ``--seed``: collected now, or read from
    ``--data`` (a file this collection saved: ``imitate.collect(BabyAIExpert(), spec, n,
    seed=seed).save(path)`` with the same ``--env`` and ``--stack``; checked here)."""
    n = max(args.demos)
    if args.data is None:
        return collect(BabyAIExpert(), spec, n, seed=args.seed)
    data = load_dataset(args.data)
    obs_space = data.meta.spaces()[0]
    assert isinstance(obs_space, gym.spaces.Dict), obs_space
    stacked = tuple(obs_space["image"].shape or ())
    expected = (args.stack, 7, 7, 3) if args.stack > 1 else (7, 7, 3)
    seed = data.meta.provenance().get("data_seed")
    if (data.meta.env_id, stacked, seed) != (args.env, expected, args.seed) or data.n_episodes < n:
        raise SystemExit(
            f"--data {args.data}: {data.meta.env_id}, view {stacked}, seed {seed}, "
            f"{data.n_episodes} episodes; wanted {args.env}, view {expected}, seed "
            f"{args.seed}, >= {n} episodes"
        )
    return data.select_episodes(np.arange(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="BabyAI-GoToRedBallGrey-v0")
    parser.add_argument("--demos", type=int, nargs="*", default=[300, 1000])
    parser.add_argument("--episodes", type=int, default=500, help="evaluation episodes")
    parser.add_argument("--stack", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dagger-rounds", type=int, default=0, help="also run DAgger (0: BC only)")
    parser.add_argument("--labels-per-round", type=int, default=3000)
    parser.add_argument("--encoder", choices=sorted(ENCODERS), default="cnn")
    parser.add_argument("--no-mission", action="store_true", help="also train without mission")
    parser.add_argument(
        "--only-no-mission", action="store_true", help="train only without the mission"
    )
    parser.add_argument("--data", help="the bot's demonstrations saved from this collection")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--grid-channels", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--grid-embedding", type=int, default=32)
    args = parser.parse_args()
    encoder = dataclasses.replace(
        ENCODERS[args.encoder],
        grid_channels=tuple(args.grid_channels),
        grid_embedding=args.grid_embedding,
    )
    torch.set_num_threads(1)
    spec = env_spec(
        args.env, wrappers=[stack_spec(args.stack, ["image"])] if args.stack > 1 else []
    )
    policy_config = PolicyConfig(
        (128, 128),
        "relu",
        grid=encoder.grid,
        film=encoder.film,
        film_embedding=encoder.film_embedding,
        grid_channels=encoder.grid_channels,
        grid_embedding=encoder.grid_embedding,
    )
    config = BCConfig(
        policy=policy_config,
        optim=OptimConfig(lr=args.lr, batch_size=args.batch_size, max_steps=args.steps),
        early_stop=EarlyStopConfig(eval_every=500, patience=100),
        seed=args.seed,
    )
    rows = []
    # episode i resets with seed + i: the first n episodes of the largest collection are
    # the collection of n (collected once, the bot is the slow part)
    everything = _demonstrations(args, spec) if args.demos else None
    for n in args.demos:
        assert everything is not None
        demos = everything.select_episodes(np.arange(n))
        missions = [False] if args.only_no_mission else [True, False] if args.no_mission else [True]
        for mission in missions:
            start = time.perf_counter()
            data = demos if mission else dataclasses.replace(demos, obs=_blank(demos.obs))
            policy, history = _train(data, config, encoder)
            student = policy if mission else BlankMission(policy)
            result = evaluate(student, spec, args.episodes, seed=10_000)
            rows.append(
                {
                    "demos": n,
                    "mission": mission,
                    "transitions": len(demos),
                    "bc_steps": history.steps,
                    "lr": args.lr,
                    "batch_size": args.batch_size,
                    "success_rate": float(np.mean(result.returns > 0)),
                    "mean_return": result.mean_return,
                    "eval_episodes": args.episodes,
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
            print(rows[-1], flush=True)
    dagger_rows = []
    if args.dagger_rounds > 0:
        dagger_config = DAggerConfig(
            rounds=args.dagger_rounds,
            steps_per_round=args.labels_per_round,
            eval_episodes=50,
            bc=config,
            seed=args.seed,
            final_refit=False,  # the README's rows were measured without the final refit
        )
        start = time.perf_counter()
        policy, dagger_history = dagger(spec, BabyAIExpert(), dagger_config)
        result = evaluate(policy, spec, args.episodes, seed=10_000)
        dagger_rows = [
            {
                "round": r.round,
                "expert_labels": r.expert_labels,
                "learner_return_50": r.learner_return,
            }
            for r in dagger_history.rounds
        ]
        dagger_rows.append(
            {
                "final_success_rate": float(np.mean(result.returns > 0)),
                "eval_episodes": args.episodes,
                "expert_labels": dagger_history.expert_labels,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(dagger_rows[-1], flush=True)
    emit(
        "babyai_bc",
        {
            "env": args.env,
            "stack": args.stack,
            "encoder": args.encoder,
            "grid_channels": args.grid_channels,
            "grid_embedding": args.grid_embedding,
            "policy": "grid encoder + direction one-hot + mission bag of words, MLP 128x128",
            "bc": rows,
            "dagger": dagger_rows,
        },
    )


if __name__ == "__main__":
    main()
