"""Start-up: what each command imports, the thread policy, short reprs, numpy calibration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from imitate import MLPPolicy, collect, save_policy
from imitate.calibration import softmax_and_nll

HEAVY = (
    "torch",
    "gymnasium",
    "matplotlib",
    "stable_baselines3",
    "ray",
    "tensorboard",
    "wandb",
    "typeguard",
)
REPO = Path(__file__).resolve().parents[1]


def _run(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",)}
    environ.update(env, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, check=True
    )
    return result.stdout.strip().splitlines()[-1]


def _loaded_after(statements: str) -> list[str]:
    code = f"import sys\n{statements}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    return list(json.loads(_run(code).replace("'", '"')))


def test_help_and_import_load_nothing_heavy() -> None:
    assert _loaded_after("import imitate, imitate.cli") == []
    help_ = "from imitate.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert _loaded_after(help_) == []
    assert _loaded_after("from imitate import BCConfig, DAggerConfig, Dataset") == ["gymnasium"]
    # parsing checks every default against its type: without typeguard (tyro_hooks)
    parsed = "from imitate.cli import parse\nparse(['run', '--episodes', '3', '--out', 'x'])"
    assert _loaded_after(parsed) == []


def test_eval_of_a_checkpoint_loads_neither_torch_nor_sb3(tmp_path: Path) -> None:
    obs = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    path = save_policy(
        MLPPolicy(obs, gym.spaces.Discrete(2)),
        tmp_path / "p.pt",
        {"env_id": "CartPole-v1", "expert": "zoo"},  # calibration against the zoo expert
    )
    argv = ["eval", "--policy", str(path), "--episodes", "1"]
    code = f"from imitate.cli import main\nassert main({argv!r}) == 0"
    assert _loaded_after(code) == ["gymnasium"]


@pytest.mark.slow  # five fresh processes that import torch (~26 s on the loaded machine)
def test_thread_policy() -> None:
    threads = "import imitate, torch\nprint(torch.get_num_threads())"
    assert _run(threads) == "1"  # the default for small MLPs
    assert _run(threads, IMITATE_THREADS="2") == "2"
    assert _run(threads, OMP_NUM_THREADS="2") == "2"  # the user's own setting is kept
    later = "import torch, imitate\nimitate.set_threads(2)\nprint(torch.get_num_threads())"
    assert _run(later) == "2"
    with pytest.raises(subprocess.CalledProcessError):
        _run(threads, IMITATE_THREADS="zero")


def test_reprs_are_one_short_line() -> None:
    obs = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    policy = MLPPolicy(obs, gym.spaces.Discrete(2))
    dataset = collect(policy, "CartPole-v1", 3, 0)
    for thing in (dataset, policy, policy.numpy_snapshot()):
        text = repr(thing)
        assert "\n" not in text and len(text) < 250, text
    assert repr(dataset).startswith("Dataset('CartPole-v1', episodes=3, transitions=")


def test_numpy_calibration_nll_equals_torch_cross_entropy() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 5, (200, 4)).astype(np.float32)
    labels = rng.integers(0, 4, 200)
    probs, nll = softmax_and_nll(logits, labels)
    expected = torch.nn.functional.cross_entropy(torch.as_tensor(logits), torch.as_tensor(labels))
    assert nll == pytest.approx(float(expected), rel=1e-5)
    np.testing.assert_allclose(probs, torch.softmax(torch.as_tensor(logits), -1).numpy(), atol=1e-6)


def test_fast_default_check_agrees_with_typeguard() -> None:
    import typeguard
    from tyro import _resolver

    from imitate.tyro_hooks import install

    install()
    cases = [
        (Path | None, None),
        (Path | None, Path("x")),
        (Path | None, "x"),
        (tuple[int, ...], (1, 2)),
        (tuple[int, ...], (1, "2")),
        (tuple[int, int], (1, 2)),
        (tuple[int, int], (1, 2, 3)),
        (tuple[float, float], (-8.0, -2.0)),
        (int | None, 3),
        (str | None, 3),
    ]
    for typ, value in cases:
        try:
            every_item = typeguard.CollectionCheckStrategy.ALL_ITEMS  # not only the first
            typeguard.check_type(value, typ, collection_check_strategy=every_item)
            expected = True
        except typeguard.TypeCheckError:
            expected = False
        assert _resolver.is_instance(typ, value) == expected, (typ, value)
