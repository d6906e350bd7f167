"""Exports of encoded policies (any observation space) act like the torch policy.

numpy and TorchScript: every encoder; C float32 and int8: vector, Discrete,
MultiDiscrete, MultiBinary, Dict/Tuple of those and pixel CNNs (generated from the
module's layer sequence), compiled with the system cc; the int8 C is checked bit for bit
against its numpy model (:class:`imitate.export.c_encoders.QuantizedEncoded`) and for
>= 99 % action agreement with the torch policy on recorded states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from imitate import BCConfig, collect, train_bc
from imitate.configs import OptimConfig, PolicyConfig
from imitate.encoded import EncodedPolicy
from imitate.encoders import EncoderConfig, ImageEncoder, encoder_for_space
from imitate.errors import ImitateError
from imitate.export import export_policy, load_exported
from imitate.export.c_encoders import EncodedCPolicy, UnsupportedExport, quantize_encoded
from imitate.observations import obs_len
from tests.cli_helpers import run_cli

C_ENVS = [e for e, kind in envs.OBS_ENVS.items() if kind != "text"]


def _same(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of rows whose actions are equal."""
    return float((a.reshape(len(a), -1) == b.reshape(len(b), -1)).all(axis=1).mean())


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[EncodedPolicy, Any, Any]]:
    """Per observation env: a BC policy, 2,000 states of its own rollouts and 500 more
    (other seeds) for int8 calibration."""
    out = {}
    for env_id in envs.OBS_ENVS:
        expert: Any = envs.EXPERTS[env_id]()
        demos = collect(expert, env_id, 20, seed=0, num_envs=4)
        policy, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=600)))
        assert isinstance(policy, EncodedPolicy)
        states = collect(policy, env_id, 40, seed=1, num_envs=4).obs
        calibration = collect(policy, env_id, 10, seed=100, num_envs=4).obs
        out[env_id] = (policy, states, calibration)
    return out


def _artefact(files: list[Path]) -> Path:
    return next(f for f in files if f.suffix != ".h")


@pytest.mark.parametrize("fmt", ["numpy", "torchscript", "c"])
@pytest.mark.parametrize("env_id", list(envs.OBS_ENVS))
def test_float_exports_match_the_torch_policy(
    env_id: str, fmt: str, trained: dict[str, Any], tmp_path: Path
) -> None:
    policy, states, _ = trained[env_id]
    assert obs_len(states) == 2000
    if fmt == "c" and env_id not in C_ENVS:
        with pytest.raises(UnsupportedExport, match="no TextEncoder"):
            export_policy(policy, "c", tmp_path / "c")
        assert not (tmp_path / "c").exists()
        return
    exported = load_exported(_artefact(export_policy(policy, fmt, tmp_path)))  # type: ignore[arg-type]
    expected, actions = policy.act(states), exported.act(states)
    assert actions.shape == expected.shape
    # float32 reassociation (the C folds the normalisation) can only flip exact ties
    assert _same(actions, expected) >= 0.9995


@pytest.mark.parametrize("env_id", C_ENVS)
def test_int8_c_export_is_its_numpy_model_and_agrees_on_99_percent(
    env_id: str, trained: dict[str, Any], tmp_path: Path
) -> None:
    policy, states, calibration = trained[env_id]
    files = export_policy(policy, "c", tmp_path, int8=True, calibration=calibration)
    exported = load_exported(_artefact(files))
    assert isinstance(exported, EncodedCPolicy)
    actions = exported.act(states)
    assert _same(actions, policy.act(states)) >= 0.99
    model = quantize_encoded(policy, calibration)
    np.testing.assert_array_equal(actions, model.act(states))
    source = (tmp_path / "policy.c").read_text()
    assert "int32_t acc" in source and "policy_trunk_act_q(q, action);" in source


def _image_policy(space: gym.Space[Any], seed: int, **encoder: Any) -> tuple[EncodedPolicy, Any]:
    """An untrained encoded policy of ``space`` (fitted on random observations) and 400
    random observations of it."""
    space.seed(seed)
    obs = [space.sample() for _ in range(400)]
    if isinstance(space, gym.spaces.Dict):
        batch: Any = {k: np.stack([o[k] for o in obs]) for k in space.spaces}
    else:
        batch = np.stack(obs)
    torch.manual_seed(seed)
    config = EncoderConfig(
        **{"image_features": 24, "cnn": "small", "image_mode": "pixels", **encoder}
    )
    policy = EncodedPolicy(
        space,
        gym.spaces.Discrete(3),
        PolicyConfig((16,), "relu"),
        encoder_for_space(space, batch, config),
    )
    return policy.eval(), batch


SPACES = {
    "CHW stack": gym.spaces.Box(0, 255, (2, 9, 11), np.uint8),
    "HWC": gym.spaces.Box(0, 255, (10, 8, 3), np.uint8),
    "KHWC": gym.spaces.Box(0, 255, (2, 9, 10, 3), np.uint8),
    "Dict image+vector+MultiDiscrete": gym.spaces.Dict(
        [
            ("image", gym.spaces.Box(0, 255, (9, 9), np.uint8)),
            ("pos", gym.spaces.Box(-2.0, 2.0, (3,), np.float32)),
            ("cell", gym.spaces.MultiDiscrete([3, 4])),
        ]
    ),
}


@pytest.mark.parametrize("name", list(SPACES))
def test_cnn_layouts_and_mixed_dicts_in_c(name: str, tmp_path: Path) -> None:
    """Every image layout and a Dict mixing an image with vector leaves: the float C and
    the numpy/TorchScript exports take the policy's actions; the int8 C (8- and 16-bit
    activations) computes its numpy model exactly."""
    policy, obs = _image_policy(SPACES[name], seed=3)
    expected = policy.act(obs)
    for fmt in ("numpy", "torchscript", "c"):
        exported = load_exported(_artefact(export_policy(policy, fmt, tmp_path / fmt)))
        assert _same(exported.act(obs), expected) >= 0.995, fmt
    for bits in (None, 16):  # 8-bit activations (default), 16-bit
        out = tmp_path / f"int8_{bits}"
        files = export_policy(policy, "c", out, int8=True, calibration=obs, bits=bits)
        actions = load_exported(_artefact(files)).act(obs)
        np.testing.assert_array_equal(actions, quantize_encoded(policy, obs, bits).act(obs))
        assert _same(actions, expected) >= 0.9  # an untrained policy: near-ties are common


def test_the_cnn_code_follows_the_module_sequence(tmp_path: Path) -> None:
    """A retuned CNN (three convolutions of other sizes, one without a ReLU) is generated
    from its layers; a layer kind the C export has no code for is refused."""
    policy, obs = _image_policy(SPACES["CHW stack"], seed=5)
    image = policy.encoder
    image.convs = torch.nn.Sequential(
        torch.nn.Conv2d(2, 6, 3, 2),
        torch.nn.ReLU(),
        torch.nn.Conv2d(6, 5, 2, 1),
        torch.nn.Conv2d(5, 4, 2, 1),
        torch.nn.ReLU(),
    )
    image.dense = torch.nn.Linear(4 * 2 * 3, 24)  # 9x11 -> 4x5 -> 3x4 -> 2x3
    expected = policy.act(obs)
    c = load_exported(_artefact(export_policy(policy, "c", tmp_path / "f")))
    assert _same(c.act(obs), expected) >= 0.995
    files = export_policy(policy, "c", tmp_path / "q", int8=True, calibration=obs)
    np.testing.assert_array_equal(
        load_exported(_artefact(files)).act(obs), quantize_encoded(policy, obs).act(obs)
    )
    image.convs = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, 1, padding=1), torch.nn.ReLU())
    with pytest.raises(UnsupportedExport, match=r"no\s+padding"):
        export_policy(policy, "c", tmp_path / "bad")
    image.convs = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, 1), torch.nn.Tanh())
    with pytest.raises(UnsupportedExport, match="Tanh"):
        export_policy(policy, "c", tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_a_dead_convolution_exports(tmp_path: Path) -> None:
    """A ReLU layer that is zero on every calibration frame (as in a collapsed BC student)
    gets a zero multiplier instead of an out-of-range one; C and model still agree. (The
    Dict's vector entries keep the trunk's inputs varying.)"""
    policy, obs = _image_policy(SPACES["Dict image+vector+MultiDiscrete"], seed=2)
    image = policy.encoder.parts["image"]
    assert isinstance(image, ImageEncoder)
    conv = image.convs[2]
    assert isinstance(conv, torch.nn.Conv2d) and conv.bias is not None
    with torch.no_grad():
        conv.bias.fill_(-1e3)
    files = export_policy(policy, "c", tmp_path, int8=True, calibration=obs)
    actions = load_exported(_artefact(files)).act(obs)
    np.testing.assert_array_equal(actions, quantize_encoded(policy, obs).act(obs))
    assert _same(actions, policy.act(obs)) >= 0.9  # an untrained policy: near-ties are common


def test_symbolic_images_are_refused_in_c_and_exported_elsewhere(tmp_path: Path) -> None:
    space = gym.spaces.Box(0, 10, (5, 5, 3), np.uint8)
    policy, obs = _image_policy(space, seed=1, image_mode="symbolic")
    with pytest.raises(UnsupportedExport, match="symbolic"):
        export_policy(policy, "c", tmp_path / "c")
    numpy = load_exported(_artefact(export_policy(policy, "numpy", tmp_path)))
    assert _same(numpy.act(obs), policy.act(obs)) >= 0.995


def test_c_header_states_one_argument_per_key(trained: dict[str, Any], tmp_path: Path) -> None:
    policy, _, _ = trained["imitate/ObsDict-v0"]
    export_policy(policy, "c", tmp_path, prefix="ctl")
    header = (tmp_path / "ctl.h").read_text()
    signature = "const float *obs_vec, const int32_t *obs_mode, const int8_t *obs_mask"
    assert f"void ctl_act({signature}, ctl_action_t *action);" in header
    assert f"void ctl_act_batch({signature}, int n, ctl_action_t *actions);" in header
    assert "#define CTL_OBS_VEC_LEN 2" in header and "(key 'mask')" in header


def test_command_line_exports_and_refusals(trained: dict[str, Any], capsys, tmp_path: Path) -> None:
    from imitate.policy import save_policy

    policy, states, _ = trained["imitate/ObsTuple-v0"]
    checkpoint = save_policy(policy, tmp_path / "policy.pt")
    for fmt in ("numpy", "torchscript", "c"):
        code, _, err = run_cli(
            ["export", "--policy", str(checkpoint), "--format", fmt, "--out", str(tmp_path / fmt)],
            capsys,
        )
        assert code == 0, err
    args = ["export", "--policy", str(checkpoint), "--format", "c", "--int8"]
    code, _, err = run_cli([*args, "--episodes", "4", "--out", str(tmp_path / "int8")], capsys)
    assert code == 0, err
    exported = load_exported(tmp_path / "int8" / "policy.c")
    assert _same(exported.act(states), policy.act(states)) >= 0.99
    text, _, _ = trained["imitate/ObsText-v0"]
    text_checkpoint = save_policy(text, tmp_path / "text.pt")
    out = tmp_path / "text_c"
    code, _, err = run_cli(
        ["export", "--policy", str(text_checkpoint), "--format", "c", "--out", str(out)], capsys
    )
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("imitate: error:"), err
    assert "TextEncoder" in lines[0] and not out.exists()
    code, _, err = run_cli(
        ["export", "--policy", str(text_checkpoint), "--format", "sb3", "--out", str(out)], capsys
    )
    assert code == 2 and "exports to onnx, torchscript, numpy, c" in err and not out.exists()
    with pytest.raises(ImitateError, match="calibration"):
        export_policy(policy, "c", tmp_path / "x", int8=True)


@pytest.mark.slow
def test_pixel_cartpole_cnn_int8_export(tmp_path: Path) -> None:
    """A CNN BC student of pixel CartPole: the int8 C export is integer-only from the uint8
    frames to the action, equals its numpy model bit for bit and takes the torch policy's
    action on >= 99 % of 1,000 expert-driven frames (the 10,000-frame acceptance figure is
    benchmarks/bench_pixel_export.py's)."""
    env_id = "imitate/PixelCartPole-v1"
    expert: Any = envs.EXPERTS[env_id]()
    demos = collect(expert, env_id, 2, seed=0, num_envs=2)
    policy, _ = train_bc(demos, BCConfig(optim=OptimConfig(max_steps=100)))
    assert isinstance(policy, EncodedPolicy)
    frames = np.asarray(collect(expert, env_id, 2, seed=50, num_envs=2).obs)
    own = np.asarray(collect(policy, env_id, 20, seed=100, num_envs=4, max_steps=500).obs)
    calibration = np.concatenate([own, np.asarray(demos.obs)[::2]])
    files = export_policy(policy, "c", tmp_path, int8=True, calibration=calibration)
    exported = load_exported(_artefact(files))
    actions = exported.act(frames)
    assert _same(actions, policy.act(frames)) >= 0.99
    np.testing.assert_array_equal(actions, quantize_encoded(policy, calibration).act(frames))
    source = (tmp_path / "policy.c").read_text()
    act = source[source.index("void policy_act(const uint8_t *obs") :]
    act = act[: act.index("\n}\n")]
    assert "float" not in act and "policy_cnn0(obs, q + 0);" in act


def test_film_embedding_student_exports_to_numpy_and_torchscript(tmp_path: Path) -> None:
    """The FiLM student with its cell embeddings conditioned too (``film_embedding``)
    keeps action parity in the numpy runtime and TorchScript; C refuses it."""
    space = gym.spaces.Dict(
        [
            ("image", gym.spaces.Box(0, 10, (5, 5, 3), np.uint8)),
            ("direction", gym.spaces.Discrete(4)),
            ("mission", gym.spaces.Text(40, charset="abcdefghijklmnopqrstuvwxyz ")),
        ]
    )
    rng = np.random.default_rng(0)
    words = np.array(["go to the red ball", "pick up the key", "open the door", "go left"])
    obs = {
        "image": rng.integers(0, 6, (300, 5, 5, 3)).astype(np.uint8),
        "direction": rng.integers(0, 4, 300),
        "mission": words[rng.integers(0, 4, 300)],
    }
    torch.manual_seed(0)
    config = EncoderConfig(
        grid="embedding", film=True, film_embedding=True, grid_channels=(8, 8),
        image_features=16,
    )  # fmt: skip
    policy = EncodedPolicy(
        space, gym.spaces.Discrete(3), PolicyConfig((16,)), encoder_for_space(space, obs, config)
    ).eval()
    with torch.no_grad():  # FiLM starts at zero (the plain grid): give it weights that matter
        policy.encoder.film.weight.normal_(0.0, 0.5)  # type: ignore[union-attr]
    expected = policy.act(obs)
    for fmt in ("numpy", "torchscript"):
        exported = load_exported(_artefact(export_policy(policy, fmt, tmp_path / fmt)))  # type: ignore[arg-type]
        assert _same(exported.act(obs), expected) >= 0.995, fmt
    with pytest.raises(UnsupportedExport, match="FiLMEncoder"):
        export_policy(policy, "c", tmp_path / "c")


@pytest.mark.parametrize("film", [False, True])
def test_grid_and_film_encoders_export_to_numpy_and_torchscript(film: bool, tmp_path: Path) -> None:
    """BabyAI's grid encoders (value embeddings, same-padded convolutions; FiLM: the grid
    conditioned on the mission) run in the numpy runtime and TorchScript; C refuses them."""
    space = gym.spaces.Dict(
        [
            ("image", gym.spaces.Box(0, 10, (5, 5, 3), np.uint8)),
            ("direction", gym.spaces.Discrete(4)),
            ("mission", gym.spaces.Text(40, charset="abcdefghijklmnopqrstuvwxyz ")),
        ]
    )
    rng = np.random.default_rng(0)
    words = np.array(["go to the red ball", "pick up the key", "open the door", "go left"])
    obs = {
        "image": rng.integers(0, 6, (300, 5, 5, 3)).astype(np.uint8),
        "direction": rng.integers(0, 4, 300),
        "mission": words[rng.integers(0, 4, 300)],
    }
    torch.manual_seed(0)
    config = EncoderConfig(grid="embedding", film=film, grid_channels=(8, 8), image_features=16)
    policy = EncodedPolicy(
        space, gym.spaces.Discrete(3), PolicyConfig((16,)), encoder_for_space(space, obs, config)
    ).eval()
    if film:  # FiLM starts at zero (the plain grid): give it weights that matter
        with torch.no_grad():
            policy.encoder.film.weight.normal_(0.0, 0.5)  # type: ignore[union-attr]
    expected = policy.act(obs)
    for fmt in ("numpy", "torchscript"):
        exported = load_exported(_artefact(export_policy(policy, fmt, tmp_path / fmt)))  # type: ignore[arg-type]
        assert _same(exported.act(obs), expected) >= 0.995, fmt
    with pytest.raises(UnsupportedExport, match="FiLMEncoder" if film else "GridEncoder"):
        export_policy(policy, "c", tmp_path / "c")
