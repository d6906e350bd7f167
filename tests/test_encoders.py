"""Observation encoders: the factory, hand-computed features, numpy == torch, JSON
round trips through a checkpoint file, ONNX parity."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imitate import runtime
from imitate.encoders import (
    BoxEncoder,
    DictEncoder,
    DiscreteEncoder,
    EncoderConfig,
    FiLMEncoder,
    GridEncoder,
    ImageEncoder,
    MultiBinaryEncoder,
    MultiDiscreteEncoder,
    TextEncoder,
    conv2d_numpy,
    encoder_for_space,
    encoder_from_json,
    fit_vocabulary,
    image_layout,
)
from imitate.errors import UnsupportedSpaceError
from imitate.observations import batch, canonical_space

TEXT = gym.spaces.Text(40, min_length=0, charset="abcdefghijklmnopqrstuvwxyz ")
MISSIONS = ["go to the red ball", "go to the blue key", "pick up the red box"]


def _sample(space: gym.Space, n: int, seed: int = 0):
    """``n`` sampled observations as a storage batch (missions for Text)."""
    space.seed(seed)
    rng = np.random.default_rng(seed)

    def one(sub: gym.Space):
        if isinstance(sub, gym.spaces.Dict):
            return {k: one(s) for k, s in sub.spaces.items()}
        if isinstance(sub, gym.spaces.Tuple):
            return tuple(one(s) for s in sub.spaces)
        if isinstance(sub, gym.spaces.Text):
            return MISSIONS[rng.integers(len(MISSIONS))]
        return sub.sample()

    return batch([one(space) for _ in range(n)], space)


ALL_SPACES = {
    "box": gym.spaces.Box(-2.0, 3.0, (5,), np.float32),
    "box2d": gym.spaces.Box(-1.0, 1.0, (2, 3), np.float64),
    "discrete": gym.spaces.Discrete(4, start=-1),
    "multi_discrete": gym.spaces.MultiDiscrete([3, 2, 5]),
    "multi_binary": gym.spaces.MultiBinary(6),
    "image_hwc": gym.spaces.Box(0, 255, (7, 7, 3), np.uint8),
    "image_chw": gym.spaces.Box(0, 255, (4, 40, 40), np.uint8),
    "image_stack": gym.spaces.Box(0, 255, (2, 9, 9, 1), np.uint8),
    "text": TEXT,
    "dict": gym.spaces.Dict(
        [
            ("image", gym.spaces.Box(0, 255, (7, 7, 3), np.uint8)),
            ("direction", gym.spaces.Discrete(4)),
            ("mission", TEXT),
        ]
    ),
    "tuple": gym.spaces.Tuple(
        (gym.spaces.Discrete(32), gym.spaces.Discrete(11), gym.spaces.MultiBinary(2))
    ),
}
EXPECTED = {
    "box": BoxEncoder,
    "box2d": BoxEncoder,
    "discrete": DiscreteEncoder,
    "multi_discrete": MultiDiscreteEncoder,
    "multi_binary": MultiBinaryEncoder,
    "image_hwc": ImageEncoder,
    "image_chw": ImageEncoder,
    "image_stack": ImageEncoder,
    "text": TextEncoder,
    "dict": DictEncoder,
    "tuple": DictEncoder,
}


@pytest.mark.parametrize("name", list(ALL_SPACES))
def test_factory_numpy_matches_torch_and_json_round_trips(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    space = ALL_SPACES[name]
    obs = _sample(space, 64)
    encoder = encoder_for_space(space, obs, EncoderConfig(image_features=16, text_dim=8))
    assert type(encoder) is EXPECTED[name]
    with torch.no_grad():
        features = encoder.encode(obs).numpy()
    assert features.shape == (64, encoder.out_dim)
    assert features.dtype == np.float32
    np.testing.assert_allclose(encoder.encode_numpy(obs), features, rtol=1e-5, atol=1e-5)
    # the checkpoint form: constructor JSON + weights in a safetensors file, no pickle
    header = {
        "format": runtime.CHECKPOINT_FORMAT,
        "format_version": runtime.CHECKPOINT_VERSION,
        "encoder": encoder.to_json(),
    }
    weights = {k: v.numpy() for k, v in encoder.state_dict().items()}
    path = runtime.write_checkpoint(tmp_path / "enc.safetensors", weights, header)
    loaded = runtime.read_checkpoint(path)
    rebuilt = encoder_from_json(json.loads(json.dumps(loaded["encoder"])))
    assert type(rebuilt) is type(encoder)
    rebuilt.load_state_dict(
        {k: torch.from_numpy(np.array(v)) for k, v in loaded["weights"].items()}
    )
    with torch.no_grad():
        np.testing.assert_array_equal(rebuilt.encode(obs).numpy(), features)


def test_box_encoder_standardises_with_fitted_statistics() -> None:
    space = gym.spaces.Box(-10.0, 10.0, (3,), np.float32)
    obs = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, -2.0]], np.float32)
    encoder = encoder_for_space(space, obs)
    expected = np.array([[-1.0, 0.0, 1.0], [1.0, 0.0, -1.0]], np.float32)  # constant: std 1
    np.testing.assert_allclose(encoder.encode(obs).detach().numpy(), expected, atol=1e-6)


def test_discrete_and_multi_discrete_are_one_hot() -> None:
    discrete = encoder_for_space(gym.spaces.Discrete(3, start=2))
    np.testing.assert_array_equal(
        discrete.encode(np.array([2, 4, 3])).numpy(), [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    )
    multi = encoder_for_space(gym.spaces.MultiDiscrete([2, 3]))
    out = multi.encode(np.array([[1, 0], [0, 2]])).numpy()
    np.testing.assert_array_equal(out, [[0, 1, 1, 0, 0], [1, 0, 0, 0, 1]])
    np.testing.assert_array_equal(multi.encode_numpy(np.array([[1, 0], [0, 2]])), out)


def test_multi_binary_passes_bits() -> None:
    encoder = encoder_for_space(gym.spaces.MultiBinary([2, 2]))
    bits = np.array([[[1, 0], [0, 1]]], np.int8)
    np.testing.assert_array_equal(encoder.encode(bits).numpy(), [[1, 0, 0, 1]])


def test_text_tokenizer_vocabulary_padding_unknown_and_bag_of_words() -> None:
    assert fit_vocabulary(["Go to the RED ball.", "go to the key"]) == [
        "ball",
        "go",
        "key",
        "red",
        "the",
        "to",
    ]
    encoder = encoder_for_space(
        TEXT, np.array(["go to the red ball", "go to the key"]), EncoderConfig(max_tokens=4)
    )
    assert isinstance(encoder, TextEncoder)
    ids = encoder.tokenize(["go purple ball", "", "go to the red ball"])
    # vocabulary ids start at 2 (ball=2, go=3, ..., to=7); 1 is unknown, 0 padding
    np.testing.assert_array_equal(ids, [[3, 1, 2, 0], [0, 0, 0, 0], [3, 7, 6, 5]])
    weight = encoder.embedding.weight.detach().numpy()
    features = encoder.encode(np.array(["go purple ball", ""])).detach().numpy()
    np.testing.assert_allclose(features[0], weight[[3, 1, 2]].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(features[1], np.zeros(encoder.out_dim))


def test_conv2d_numpy_matches_torch() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 2, 11, 9)).astype(np.float32)
    w = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    for stride in (1, 2):
        expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride)
        np.testing.assert_allclose(conv2d_numpy(x, w, b, stride), expected.numpy(), atol=1e-4)


def test_image_layouts_and_cnn_shapes() -> None:
    assert image_layout((7, 7, 3)) == "HWC"
    assert image_layout((3, 64, 64)) == "CHW"
    assert image_layout((4, 64, 64)) == "CHW"  # 4 stacked grey frames
    assert image_layout((64, 64)) == "HW"
    assert image_layout((4, 32, 32, 3)) == "KHWC"
    nature = ImageEncoder(gym.spaces.Box(0, 255, (4, 64, 64), np.uint8))
    assert [m.kernel_size[0] for m in nature.convs if isinstance(m, torch.nn.Conv2d)] == [8, 4, 3]
    small = ImageEncoder(gym.spaces.Box(0, 255, (7, 7, 3), np.uint8))
    assert [m.kernel_size[0] for m in small.convs if isinstance(m, torch.nn.Conv2d)] == [3, 3]
    with pytest.raises(UnsupportedSpaceError, match="too small"):
        ImageEncoder(gym.spaces.Box(0, 255, (20, 20), np.uint8), EncoderConfig(cnn="nature"))


def test_image_channels_last_equals_channels_first_with_the_same_weights() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (5, 9, 9, 3), dtype=np.uint8)
    a = ImageEncoder(gym.spaces.Box(0, 255, (9, 9, 3), np.uint8), EncoderConfig(image_features=8))
    b = ImageEncoder(gym.spaces.Box(0, 255, (3, 9, 9), np.uint8), EncoderConfig(image_features=8))
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        np.testing.assert_allclose(
            a.encode(hwc).numpy(), b.encode(hwc.transpose(0, 3, 1, 2)).numpy(), atol=1e-6
        )
    # uint8 stays uint8 up to the model, which scales it into [0, 1] itself
    assert a.inputs(hwc)[0].dtype == np.uint8


def test_frame_stack_is_channels() -> None:
    torch.manual_seed(0)
    stacked = ImageEncoder(gym.spaces.Box(0, 255, (2, 9, 9, 1), np.uint8))
    assert stacked.channels == 2
    frames = np.random.default_rng(0).integers(0, 256, (3, 2, 9, 9, 1), dtype=np.uint8)
    chw = ImageEncoder(gym.spaces.Box(0, 255, (2, 9, 9), np.uint8))
    chw.load_state_dict(stacked.state_dict())
    with torch.no_grad():
        np.testing.assert_allclose(
            stacked.encode(frames).numpy(), chw.encode(frames[..., 0]).numpy(), atol=1e-6
        )


def test_dict_concatenates_entries_in_space_order() -> None:
    space = ALL_SPACES["dict"]
    obs = _sample(space, 8)
    encoder = encoder_for_space(space, obs, EncoderConfig(image_features=16, text_dim=8))
    assert isinstance(encoder, DictEncoder)
    assert encoder.keys == ["image", "direction", "mission"]
    assert encoder.input_names() == ["obs/image", "obs/direction", "obs/mission"]
    assert encoder.out_dim == 16 + 4 + 8
    with torch.no_grad():
        features = encoder.encode(obs).numpy()
        parts = [encoder.parts[k].encode(obs[k]).numpy() for k in encoder.keys]
    np.testing.assert_array_equal(features, np.concatenate(parts, axis=1))


@pytest.mark.parametrize(
    ("space", "where"),
    [
        (gym.spaces.Graph(gym.spaces.Box(0, 1, (2,)), None), ""),
        (gym.spaces.Sequence(gym.spaces.Discrete(3)), ""),
        (
            gym.spaces.Dict({"ok": gym.spaces.Discrete(2), "bad": gym.spaces.Sequence(TEXT)}),
            "observation key 'bad': ",
        ),
        (
            gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Sequence(TEXT))),
            "observation index 1: ",
        ),
    ],
)
def test_unsupported_space_is_one_line_naming_it(space: gym.Space, where: str) -> None:
    with pytest.raises(UnsupportedSpaceError) as info:
        encoder_for_space(space)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{where}unsupported observation space")
    assert ("Graph" in message) or ("Sequence" in message)


def test_minigrid_mission_space_reads_as_text() -> None:
    minigrid = pytest.importorskip("minigrid")
    del minigrid
    env = gym.make("BabyAI-GoToRedBallGrey-v0")
    space = canonical_space(env.observation_space)
    env.close()
    assert isinstance(space["mission"], gym.spaces.Text)
    encoder = encoder_for_space(
        space,
        batch(
            [
                {
                    "image": np.zeros((7, 7, 3), np.uint8),
                    "direction": 1,
                    "mission": "go to the red ball",
                }
            ],
            space,
        ),
    )
    assert isinstance(encoder, DictEncoder)
    assert isinstance(encoder.parts["mission"], TextEncoder)


def test_onnx_export_of_a_dict_encoder_matches_torch(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from imitate.export.onnx import _export

    torch.manual_seed(0)
    space = gym.spaces.Dict(
        [
            ("image", gym.spaces.Box(0, 255, (7, 7, 3), np.uint8)),
            ("direction", gym.spaces.Discrete(4)),
            ("mission", TEXT),
            ("bits", gym.spaces.MultiBinary(3)),
            ("vec", gym.spaces.Box(-1.0, 1.0, (2,), np.float32)),
            ("md", gym.spaces.MultiDiscrete([2, 3])),
            ("grid", gym.spaces.Box(0, 255, (5, 5, 2), np.uint8)),
        ]
    )
    obs = _sample(space, 16)
    obs["grid"] = np.random.default_rng(0).integers(0, 4, (16, 5, 5, 2)).astype(np.uint8)
    encoder = encoder_for_space(space, obs, EncoderConfig(image_features=8, text_dim=4)).eval()
    assert encoder.parts["grid"].levels == (4, 4)  # symbolic, one-hot inside the graph
    example = tuple(torch.as_tensor(a) for a in encoder.example_inputs(2))
    names = [n.replace("/", "_") for n in encoder.input_names()]
    batch_dim = torch.export.Dim("batch")
    path = _export(
        encoder,
        example,
        names,
        ["features"],
        (tuple({0: batch_dim} for _ in names),),  # one entry: forward(*inputs)
        tmp_path / "enc.onnx",
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = dict(zip(names, encoder.inputs(obs), strict=True))
    (out,) = session.run(None, feeds)
    with torch.no_grad():
        np.testing.assert_allclose(out, encoder.encode(obs).numpy(), rtol=1e-4, atol=1e-5)


def test_symbolic_grid_is_one_hot_per_channel(tmp_path) -> None:
    torch.manual_seed(0)
    space = gym.spaces.Box(0, 255, (7, 7, 3), np.uint8)
    rng = np.random.default_rng(0)
    grid = np.stack([rng.integers(0, n, (20, 7, 7)) for n in (11, 6, 3)], axis=-1)
    grid = grid.astype(np.uint8)
    encoder = encoder_for_space(space, grid, EncoderConfig(image_features=8))
    assert isinstance(encoder, ImageEncoder)
    assert encoder.levels == (11, 6, 3)  # BabyAI: object, colour, state
    assert encoder.convs[0].in_channels == 20
    # the one-hot input by hand: cell (2, 5) of image 0
    codes = encoder._nchw(torch.as_tensor(grid))[:, encoder.one_hot_source]
    hot = (codes == encoder.one_hot_value[None, :, None, None]).numpy()[0, :, 2, 5]
    expected = np.concatenate([np.eye(n)[grid[0, 2, 5, c]] for c, n in enumerate((11, 6, 3))])
    np.testing.assert_array_equal(hot, expected)
    with torch.no_grad():
        features = encoder.encode(grid).numpy()
    np.testing.assert_allclose(encoder.encode_numpy(grid), features, rtol=1e-5, atol=1e-5)
    rebuilt = encoder_from_json(json.loads(json.dumps(encoder.to_json())))
    rebuilt.load_state_dict(encoder.state_dict())
    with torch.no_grad():
        np.testing.assert_array_equal(rebuilt.encode(grid).numpy(), features)
    # pixels (bright values) stay pixels; the mode can be forced
    frames = rng.integers(0, 256, (4, 7, 7, 3), dtype=np.uint8)
    assert encoder_for_space(space, frames).levels is None  # type: ignore[attr-defined]
    forced = encoder_for_space(space, grid, EncoderConfig(image_mode="pixels"))
    assert forced.levels is None  # type: ignore[attr-defined]


BABYAI_LEVELS = (11, 6, 3)  # object, colour, state


def _babyai_batch(n: int, seed: int = 0) -> tuple[gym.spaces.Dict, dict]:
    """A BabyAI-shaped Dict batch: a 3-frame stack of 7x7x3 symbolic views, direction,
    mission."""
    space = gym.spaces.Dict(
        [
            ("direction", gym.spaces.Discrete(4)),
            ("image", gym.spaces.Box(0, 255, (3, 7, 7, 3), np.uint8)),
            ("mission", TEXT),
        ]
    )
    obs = _sample(space, n, seed)
    rng = np.random.default_rng(seed)
    grid = np.stack([rng.integers(0, k, (n, 3, 7, 7)) for k in BABYAI_LEVELS], axis=-1)
    obs["image"] = grid.astype(np.uint8)
    return space, obs


def test_grid_encoder_sums_one_embedding_per_channel_value() -> None:
    torch.manual_seed(0)
    space, obs = _babyai_batch(12)
    config = EncoderConfig(grid="embedding", grid_embedding=5, grid_channels=(6, 4))
    encoder = encoder_for_space(space, obs, config)
    assert isinstance(encoder, DictEncoder)
    grid = encoder.parts["image"]
    assert isinstance(grid, GridEncoder)
    assert grid.levels == BABYAI_LEVELS * 3  # stacked frames are channels
    # cell (2, 5) of observation 0 by hand: the sum of its 9 values' embedding rows
    table = grid.embedding.weight.detach().numpy()
    image = obs["image"][0]  # [K, H, W, C]
    offsets = np.concatenate([[0], np.cumsum(grid.levels)[:-1]])
    values = image[:, 2, 5, :].reshape(-1)  # frame-major, as the channels
    expected = sum(table[offsets[c] + v] for c, v in enumerate(values))
    h = grid.embedding(grid.rows(torch.as_tensor(obs["image"]))).sum(dim=1)
    np.testing.assert_allclose(h[0, 2, 5].detach().numpy(), expected, rtol=1e-6)
    # values outside the fitted categories embed to zero (the padding row)
    unseen = np.full((1, 3, 7, 7, 3), 200, np.uint8)
    assert not grid.embedding(grid.rows(torch.as_tensor(unseen))).detach().numpy().any()
    # the grid keeps its size through the padded convolutions: 4 channels x 7 x 7
    assert grid.dense.in_features == 4 * 7 * 7
    with torch.no_grad():
        features = encoder.encode(obs).numpy()
    np.testing.assert_allclose(encoder.encode_numpy(obs), features, rtol=1e-5, atol=1e-5)
    rebuilt = encoder_from_json(json.loads(json.dumps(encoder.to_json())))
    rebuilt.load_state_dict(encoder.state_dict())
    with torch.no_grad():
        np.testing.assert_array_equal(rebuilt.encode(obs).numpy(), features)
    # pixel images keep the CNN whatever the grid option says
    frames = np.random.default_rng(1).integers(0, 256, (4, 7, 7, 3), dtype=np.uint8)
    pixels = encoder_for_space(gym.spaces.Box(0, 255, (7, 7, 3), np.uint8), frames, config)
    assert isinstance(pixels, ImageEncoder)


def test_film_conditions_the_grid_on_the_mission(tmp_path) -> None:
    torch.manual_seed(0)
    space, obs = _babyai_batch(16)
    config = EncoderConfig(grid="embedding", grid_channels=(8, 6), image_features=10, film=True)
    encoder = encoder_for_space(space, obs, config)
    assert isinstance(encoder, FiLMEncoder)
    assert encoder.film.out_features == 2 * (8 + 6)  # gamma and beta per conv channel
    grid = encoder.inner.parts["image"]
    text = encoder.inner.parts["mission"]
    assert isinstance(grid, GridEncoder) and isinstance(text, TextEncoder)
    with torch.no_grad():
        # zero-initialised FiLM: the plain Dict features
        plain = torch.cat(
            [
                encoder.inner.parts["direction"].encode(obs["direction"]),
                grid.encode(obs["image"]),
                text.encode(obs["mission"]),
            ],
            dim=-1,
        )
        np.testing.assert_allclose(encoder.encode(obs).numpy(), plain.numpy(), atol=1e-6)
        torch.nn.init.normal_(encoder.film.weight, std=0.5)
        torch.nn.init.normal_(encoder.film.bias, std=0.5)
        # by hand: each convolution scaled and shifted by gamma, beta of the mission
        inputs = [torch.as_tensor(a) for a in encoder.inputs(obs)]
        gamma, beta = encoder.film(text(inputs[2]))[:, :, None, None].chunk(2, dim=1)
        h = grid.embedding(grid.rows(inputs[1])).sum(dim=1).permute(0, 3, 1, 2)
        h = torch.relu(grid.convs[0](h) * (1 + gamma[:, :8]) + beta[:, :8])
        h = torch.relu(grid.convs[1](h) * (1 + gamma[:, 8:]) + beta[:, 8:])
        image = torch.relu(grid.dense(h.reshape(len(h), -1)))
        features = encoder.encode(obs)
        np.testing.assert_allclose(features[:, 4:14].numpy(), image.numpy(), rtol=1e-5, atol=1e-6)
        # another mission, same view: other image features
        other = {**obs, "mission": np.array(["go to the blue key"] * 16)}
        same = obs["mission"] == "go to the blue key"
        changed = ((encoder.encode(other) - features)[:, 4:14].abs().sum(dim=1) > 1e-4).numpy()
        assert changed[~same].all() and not changed[same].any()
    np.testing.assert_allclose(encoder.encode_numpy(obs), features.numpy(), rtol=1e-5, atol=1e-5)
    rebuilt = encoder_from_json(json.loads(json.dumps(encoder.to_json())))
    rebuilt.load_state_dict(encoder.state_dict())
    with torch.no_grad():
        np.testing.assert_array_equal(rebuilt.encode(obs).numpy(), features.numpy())
    ort = pytest.importorskip("onnxruntime")
    from imitate.export.onnx import _export

    names = [n.replace("/", "_") for n in encoder.input_names()]
    batch_dim = torch.export.Dim("batch")
    path = _export(
        encoder.eval(),
        tuple(torch.as_tensor(a) for a in encoder.example_inputs(2)),
        names,
        ["features"],
        (tuple({0: batch_dim} for _ in names),),
        tmp_path / "film.onnx",
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, dict(zip(names, encoder.inputs(obs), strict=True)))
    np.testing.assert_allclose(out, features.numpy(), rtol=1e-4, atol=1e-5)


def test_film_embedding_conditions_the_cell_embeddings_too(tmp_path) -> None:
    """``film_embedding``: gamma, beta also scale and shift the summed cell embeddings
    before the first convolution (a cell compared with the mission directly)."""
    torch.manual_seed(0)
    space, obs = _babyai_batch(16)
    config = EncoderConfig(
        grid="embedding", grid_embedding=5, grid_channels=(8, 6), image_features=10,
        film=True, film_embedding=True,
    )  # fmt: skip
    encoder = encoder_for_space(space, obs, config)
    assert isinstance(encoder, FiLMEncoder)
    assert encoder.film.out_features == 2 * (5 + 8 + 6)  # embedding, then each conv
    grid = encoder.inner.parts["image"]
    text = encoder.inner.parts["mission"]
    assert isinstance(grid, GridEncoder) and isinstance(text, TextEncoder)
    with torch.no_grad():
        plain = grid.encode(obs["image"])  # zero-initialised FiLM: the plain grid
        np.testing.assert_allclose(encoder.encode(obs)[:, 4:14].numpy(), plain.numpy(), atol=1e-6)
        torch.nn.init.normal_(encoder.film.weight, std=0.5)
        torch.nn.init.normal_(encoder.film.bias, std=0.5)
        inputs = [torch.as_tensor(a) for a in encoder.inputs(obs)]
        gamma, beta = encoder.film(text(inputs[2]))[:, :, None, None].chunk(2, dim=1)
        h = grid.embedding(grid.rows(inputs[1])).sum(dim=1).permute(0, 3, 1, 2)
        h = h * (1 + gamma[:, :5]) + beta[:, :5]
        h = torch.relu(grid.convs[0](h) * (1 + gamma[:, 5:13]) + beta[:, 5:13])
        h = torch.relu(grid.convs[1](h) * (1 + gamma[:, 13:]) + beta[:, 13:])
        image = torch.relu(grid.dense(h.reshape(len(h), -1)))
        features = encoder.encode(obs)
        np.testing.assert_allclose(features[:, 4:14].numpy(), image.numpy(), rtol=1e-5, atol=1e-6)
        # without the embedding's modulation the features differ (it is applied)
        without = grid.features(inputs[1], (gamma[:, 5:, 0, 0], beta[:, 5:, 0, 0]))
        assert (without - image).abs().max() > 1e-3
    np.testing.assert_allclose(encoder.encode_numpy(obs), features.numpy(), rtol=1e-5, atol=1e-5)
    spec = json.loads(json.dumps(encoder.to_json()))
    assert spec["parts"][1]["film_embedding"] is True
    rebuilt = encoder_from_json(spec)
    rebuilt.load_state_dict(encoder.state_dict())
    with torch.no_grad():
        np.testing.assert_array_equal(rebuilt.encode(obs).numpy(), features.numpy())
    # the option's default leaves the JSON (and old checkpoints) as they were
    assert (
        "film_embedding"
        not in encoder_for_space(space, obs, EncoderConfig(grid="embedding", film=True)).to_json()[
            "parts"
        ][1]
    )
    with pytest.raises(ValueError, match="needs film=True"):
        encoder_for_space(space, obs, EncoderConfig(grid="embedding", film_embedding=True))
    ort = pytest.importorskip("onnxruntime")
    from imitate.export.onnx import _export

    names = [n.replace("/", "_") for n in encoder.input_names()]
    batch_dim = torch.export.Dim("batch")
    path = _export(
        encoder.eval(),
        tuple(torch.as_tensor(a) for a in encoder.example_inputs(2)),
        names,
        ["features"],
        (tuple({0: batch_dim} for _ in names),),
        tmp_path / "film_embedding.onnx",
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, dict(zip(names, encoder.inputs(obs), strict=True)))
    np.testing.assert_allclose(out, features.numpy(), rtol=1e-4, atol=1e-5)


def test_film_needs_one_grid_and_one_text_entry() -> None:
    space, obs = _babyai_batch(4)
    with pytest.raises(UnsupportedSpaceError, match="film needs one symbolic grid"):
        encoder_for_space(space, obs, EncoderConfig(film=True))  # grid="cnn": no grid
    no_text = gym.spaces.Dict([("image", space["image"])])
    with pytest.raises(UnsupportedSpaceError, match="film needs"):
        encoder_for_space(
            no_text, {"image": obs["image"]}, EncoderConfig(grid="embedding", film=True)
        )


def test_settings_no_part_of_the_space_uses_are_named_and_warned() -> None:
    """A new user's --policy.grid embedding on pixel frames (and --policy.cnn on Text
    observations) trained without a word: such settings are named, and BC warns."""
    import warnings

    from imitate import BCConfig, PolicyConfig, collect, train_bc
    from imitate.configs import OptimConfig
    from imitate.encoders import UnusedSettingWarning, encoder_for_space, unused_settings

    frames_space = gym.spaces.Box(0, 255, (2, 40, 40), np.uint8)
    frames = np.random.default_rng(0).integers(0, 256, (6, 2, 40, 40), dtype=np.uint8)
    config = EncoderConfig(grid="embedding", grid_channels=(8,), text_dim=8)
    named = [
        name for name, _ in unused_settings(encoder_for_space(frames_space, frames, config), config)
    ]
    assert named == ["grid", "grid_channels", "text_dim"]  # the CNN is used: not named
    text_space = gym.spaces.Text(12)
    words = np.array(["go left", "go right"] * 3)
    config = EncoderConfig(cnn="tiny", image_features=16)
    named = [
        name for name, _ in unused_settings(encoder_for_space(text_space, words, config), config)
    ]
    assert named == ["cnn", "image_features"]
    assert unused_settings(encoder_for_space(text_space, words), EncoderConfig()) == []
    import envs

    data = collect(envs.EXPERTS["imitate/ObsText-v0"](), "imitate/ObsText-v0", 2, seed=0)
    bc = BCConfig(policy=PolicyConfig((8,), cnn="tiny"), optim=OptimConfig(max_steps=2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_bc(data, bc)
    messages = [str(w.message) for w in caught if w.category is UnusedSettingWarning]
    assert messages == ["policy.cnn has no effect: no image goes through a CNN"]
