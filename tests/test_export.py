"""Every export format acts like the torch policy on 10,000 real states."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from agents.heuristics import CartPoleExpert
from envs import EXPERTS
from imitate import BCConfig, MLPPolicy, OptimConfig, collect, evaluate, save_policy, train_bc
from imitate.cli import main
from imitate.drift import action_flip_rate
from imitate.export import FORMATS, export_policy, load_exported
from imitate.export.c import CFLAGS, CPolicy, weight_bytes
from imitate.export.onnx import OnnxPolicy
from imitate.policy import JSGatedPolicy, PolicyConfig

ENVS = [
    "CartPole-v1",
    "imitate/LabelMultiDiscrete-v0",
    "imitate/LabelMultiBinary-v0",
    "imitate/LabelBox-v0",
]


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[MLPPolicy, np.ndarray]]:
    """A small BC policy per action space and 10,000 states from its own rollouts."""
    out = {}
    for env_id in ENVS:
        expert = CartPoleExpert() if env_id == "CartPole-v1" else EXPERTS[env_id]()
        demos = collect(expert, env_id, 10, seed=0)  # type: ignore[arg-type]
        policy, _ = train_bc(
            demos, BCConfig(policy=PolicyConfig((16, 16)), optim=OptimConfig(max_steps=1500))
        )
        states = collect(policy, env_id, 400, seed=1, max_steps=10_000).obs[:10_000]
        out[env_id] = (policy, states)
    return out


def _artefact(files: list[Path]) -> Path:
    return next(f for f in files if f.suffix != ".h")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("env_id", ENVS)
def test_float_exports_match_the_torch_policy(
    env_id: str, fmt: str, trained: dict[str, tuple[MLPPolicy, np.ndarray]], tmp_path: Path
) -> None:
    policy, states = trained[env_id]
    assert len(states) == 10_000
    exported = load_exported(_artefact(export_policy(policy, fmt, tmp_path)))  # type: ignore[arg-type]
    expected, actions = policy.act(states), exported.act(states)
    assert actions.shape == expected.shape
    if policy.head.discrete:
        same = (actions == expected).reshape(len(states), -1).all(axis=1)
        # float32 reassociation can only flip exact ties between outputs
        assert same.mean() >= 0.9999, same.mean()
    else:
        np.testing.assert_allclose(actions, expected, atol=1e-5)


@pytest.mark.parametrize("env_id", ENVS)
def test_int8_c_export_agrees_on_99_percent(
    env_id: str, trained: dict[str, tuple[MLPPolicy, np.ndarray]], tmp_path: Path
) -> None:
    policy, states = trained[env_id]
    calibration = collect(policy, env_id, 10, seed=100, max_steps=10_000).obs
    files = export_policy(policy, "c", tmp_path, int8=True, calibration=calibration)
    exported = load_exported(_artefact(files))
    expected, actions = policy.act(states), exported.act(states)
    if policy.head.discrete:
        assert (actions == expected).reshape(len(states), -1).all(axis=1).mean() >= 0.99
    else:
        assert np.abs(actions - expected).mean() < 0.02
    source = (tmp_path / "policy.c").read_text()
    assert "int32_t acc" in source and "float x[" not in source


def test_int8_cartpole_keeps_its_return_and_is_small(
    trained: dict[str, tuple[MLPPolicy, np.ndarray]], tmp_path: Path
) -> None:
    policy, states = trained["CartPole-v1"]
    exported = load_exported(
        _artefact(export_policy(policy, "c", tmp_path, int8=True, calibration=states[:5000]))
    )
    torch_return = evaluate(policy, "CartPole-v1", 20, 10_000).mean_return
    c_return = evaluate(exported, "CartPole-v1", 20, 10_000).mean_return
    assert c_return >= 0.98 * torch_return
    relu = MLPPolicy(policy.observation_space, policy.action_space, PolicyConfig((16, 16), "relu"))
    assert weight_bytes(relu, int8=True) < weight_bytes(relu, int8=False) / 2
    # a tanh student adds one 257-entry int16 table per hidden layer
    assert weight_bytes(policy, int8=True, bits=16) == weight_bytes(relu, int8=True) + 2 * 514
    # int8 activations: one 129-entry int8 table (tanh is odd) per hidden layer
    assert weight_bytes(policy, int8=True) == weight_bytes(relu, int8=True) + 2 * 129
    assert {"-std=c99", "-Wall", "-Wextra", "-Wconversion", "-pedantic", "-Werror"} <= set(CFLAGS)


def test_export_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["export", "--policy", str(tmp_path / "missing.pt"), "--format", "c"]) == 2
    torch.save(
        {"format": "imitate-policy", "format_version": 1, "kind": "transformer"}, tmp_path / "t.pt"
    )
    assert main(["export", "--policy", str(tmp_path / "t.pt"), "--format", "onnx"]) == 2
    assert "unsupported policy kind 'transformer'" in capsys.readouterr().err
    demos = collect(CartPoleExpert(), "CartPole-v1", 1, seed=0)
    policy, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=50)))
    save_policy(policy, tmp_path / "p.pt", {"env_id": "CartPole-v1"})
    monkeypatch.chdir(tmp_path)  # a default run folder would appear under ./runs
    assert main(["export", "--policy", str(tmp_path / "p.pt"), "--format", "onnx", "--int8"]) == 2
    assert "--int8 applies to the C export only" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing written for bad input
    assert (
        main(
            [
                "export",
                "--policy",
                str(tmp_path / "p.pt"),
                "--format",
                "c",
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    assert (tmp_path / "c" / "policy.h").is_file()


def test_export_refuses_int8_only_flags_and_a_folder_for_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--activation-bits and --min-parity choose the int8 width: a float32 export refuses
    them (it used to ignore them), and so does the Python API. A run folder given as
    --policy is refused in one line naming the checkpoint inside it."""
    from cli_helpers import run_cli

    from imitate.errors import ImitateError
    from imitate.jobs import check_export_options, export_into

    demos = collect(CartPoleExpert(), "CartPole-v1", 1, seed=0)
    policy, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=50)))
    run = tmp_path / "bc"
    save_policy(policy, run / "policy.pt", {"env_id": "CartPole-v1"})
    monkeypatch.chdir(tmp_path)  # a default run folder would appear under ./runs
    base = ["export", "--policy", str(run / "policy.pt"), "--out", str(tmp_path / "e")]
    for flags, named in [
        (["--format", "c", "--activation-bits", "16"], "--activation-bits applies"),
        (["--format", "c", "--min-parity", "0.98"], "--min-parity applies"),
        (["--format", "onnx", "--activation-bits", "8", "--min-parity", "0.9"],
         "--activation-bits/--min-parity apply"),
        (["--format", "c", "--episodes", "3", "--input-bits", "8"],
         "--input-bits/--episodes apply"),
        (["--format", "onnx", "--env", "CartPole-v1", "--seed", "4"], "--env/--seed apply"),
        (["--format", "c", "--episodes", "10"], "--episodes applies"),  # the default, given
        (["--format", "c", "--activation-bits", "auto"], "--activation-bits applies"),
    ]:  # fmt: skip
        code, out, err = run_cli([*base, *flags], capsys)
        assert code == 2 and out == "", err
        assert err == f"imitate: error: {named} to --int8 C exports only " + (
            "(a float32 export has no activation width to choose and nothing to calibrate)\n"
        )
    with pytest.raises(ImitateError, match="--activation-bits applies to --int8"):
        export_into(policy, "c", tmp_path / "api", activation_bits=16)
    with pytest.raises(ImitateError, match="--min-parity applies to --int8"):
        check_export_options("c", False, None, "policy", min_parity=0.5)
    check_export_options("c", True, None, "policy", None, 16, 0.5)  # int8: they apply
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bc"]  # nothing written

    code, out, err = run_cli(["export", "--policy", str(run), "--format", "c"], capsys)
    assert (code, out) == (2, "")
    hint = f"--policy {run / 'policy.pt'}"
    assert err == f"imitate: error: {run}: is a folder; pass its checkpoint: {hint}\n"
    for sub in ("dagger", "student"):  # an `imitate run` folder: one checkpoint per stage
        save_policy(policy, tmp_path / "run" / sub / "policy.pt")
    code, _, err = run_cli(["export", "--policy", str(tmp_path / "run")], capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"pass one of its checkpoints: --policy {tmp_path}/run/dagger/policy.pt (or " in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["export", "--policy", str(tmp_path / "empty")], capsys)
    assert (code, err) == (2, f"imitate: error: {tmp_path}/empty: is a folder, not a policy "
                              "checkpoint (a .pt file)\n")  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bc", "empty", "run"]  # nothing new
    code, _, err = run_cli([*base, "--format", "c", "--int8", "--activation-bits", "16"], capsys)
    assert code == 0, err
    assert (tmp_path / "e" / "policy.c").is_file()


@pytest.mark.parametrize("fmt", ["c", "onnx"])
def test_exported_js_gate_matches_the_python_gate(
    fmt: str, trained: dict[str, tuple[MLPPolicy, np.ndarray]], tmp_path: Path
) -> None:
    policy, _ = trained["CartPole-v1"]
    exported = load_exported(_artefact(export_policy(policy, fmt, tmp_path)))  # type: ignore[arg-type]
    assert isinstance(exported, (CPolicy, OnnxPolicy))
    python_gate, exported_gate = JSGatedPolicy.wrap(policy, 0.3), exported.gated(0.3)
    reference = collect(python_gate, "CartPole-v1", 6, seed=5, num_envs=3)
    ours = collect(exported_gate, "CartPole-v1", 6, seed=5, num_envs=3)
    np.testing.assert_array_equal(ours.actions, reference.actions)
    np.testing.assert_array_equal(ours.episode_starts, reference.episode_starts)
    ungated = collect(policy, "CartPole-v1", 6, seed=5, num_envs=3)
    assert action_flip_rate(reference.actions, reference.episode_starts) < action_flip_rate(
        ungated.actions, ungated.episode_starts
    )  # the gate held actions back, so the comparison above tested it
    if fmt == "c":
        header = (tmp_path / "policy.h").read_text()
        assert "policy_act_gated" in header and "#define POLICY_N_OUTPUTS 2" in header


def test_export_and_load_take_str_paths(tmp_path: Path) -> None:
    """The README's ``load_exported("onnx/policy.onnx")``: every format's export and load
    take a str as well as a Path (and the gates found beside a str path)."""
    import gymnasium as gym

    from imitate.encoded import EncodedPolicy
    from imitate.export import ENCODED_FORMATS

    demos = collect(CartPoleExpert(), "CartPole-v1", 1, seed=0)
    torch.manual_seed(0)
    mlp = MLPPolicy(*demos.meta.spaces(), PolicyConfig((8,)))
    space = gym.spaces.Dict([("vec", gym.spaces.Box(-1.0, 1.0, (2,), np.float32)),
                             ("mode", gym.spaces.Discrete(2))])  # fmt: skip
    obs = {"vec": np.random.default_rng(0).uniform(-1, 1, (16, 2)).astype(np.float32),
           "mode": np.arange(16) % 2}  # fmt: skip
    encoded = EncodedPolicy.for_data(space, gym.spaces.Discrete(3), obs).eval()
    for policy, formats, states in (
        (mlp, FORMATS, demos.obs[:64]),
        (encoded, ENCODED_FORMATS, obs),
    ):
        for fmt in formats:
            out = str(tmp_path / type(policy).__name__ / fmt)
            artefact = _artefact(export_policy(policy, fmt, out))  # type: ignore[arg-type]
            loaded = load_exported(str(artefact))
            assert np.array_equal(loaded.act(states), policy.act(states)), fmt
            if policy is mlp and isinstance(loaded, (CPolicy, OnnxPolicy)):
                assert loaded.gated(0.3).act(states).shape == (64,)
