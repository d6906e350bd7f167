"""The ONNX export of a Text-observation policy carries its tokenizer: raw strings,
tokenised with nothing but ``tokenizer.json`` (or the model's metadata) and ``re``, then
run by onnxruntime, give the torch policy's actions; the loaded exports take a vector env's
batches with Text (tuples of str, in a Dict or Tuple too) as the torch policy does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from imitate import BCConfig, collect, train_bc
from imitate.configs import OptimConfig
from imitate.encoded import EncodedPolicy
from imitate.encoders import EncoderConfig, TextEncoder
from imitate.export import export_policy, load_exported
from imitate.policy import save_policy
from tests.cli_helpers import run_cli

ort = pytest.importorskip("onnxruntime")

# unseen words, upper case, punctuation, more words than max_tokens, no word at all
EDGE_STRINGS = [
    "LEFT agent, go quickly!!",
    "zebra right xylophone",
    "go " * 30 + "left",
    "right " + "now " * 30,
    "",
    "?!",
]


def tokenize_from_json(spec: dict[str, Any], strings: Any) -> np.ndarray:
    """What a user without imitate writes from the JSON's fields."""
    pattern = re.compile(spec["word_pattern"])
    ids_of = {w: spec["first_word_id"] + i for i, w in enumerate(spec["vocabulary"])}
    out = np.full((len(strings), spec["max_tokens"]), spec["pad_id"], dtype=np.int64)
    for row, text in enumerate(strings):
        text = text.lower() if spec["lowercase"] else text
        words = pattern.findall(text)[: spec["max_tokens"]]
        ids = [ids_of.get(w, spec["unknown_id"]) for w in words]
        out[row, : len(ids)] = ids
    return out


@pytest.fixture(scope="module")
def text_policy() -> tuple[EncodedPolicy, list[str]]:
    demos = collect(envs.EXPERTS["imitate/ObsText-v0"](), "imitate/ObsText-v0", 3, seed=0)
    policy, _ = train_bc(demos, BCConfig(seed=0, optim=OptimConfig(max_steps=200)))
    assert isinstance(policy, EncodedPolicy)
    return policy, [str(s) for s in np.asarray(demos.obs)]


def test_cli_onnx_export_of_text_has_the_tokenizer_and_parity(
    text_policy: tuple[EncodedPolicy, list[str]], tmp_path: Path, capsys: Any
) -> None:
    policy, missions = text_policy
    checkpoint = save_policy(policy, tmp_path / "policy.pt")
    out = tmp_path / "onnx"
    args = ["export", "--policy", str(checkpoint), "--format", "onnx", "--out", str(out)]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    spec = json.loads((out / "tokenizer.json").read_text())
    session = ort.InferenceSession(str(out / "policy.onnx"), providers=["CPUExecutionProvider"])
    # the same JSON is in the model itself
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["imitate.tokenizer"]) == spec
    assert spec["inputs"] == [i.name for i in session.get_inputs()] == ["obs"]
    text = spec["text"]["obs"]
    assert isinstance(policy.encoder, TextEncoder)
    assert text["vocabulary"] == policy.encoder.vocabulary and len(text["vocabulary"]) > 3
    assert text["shape"] == ["batch", policy.encoder.max_tokens]
    strings = missions + EDGE_STRINGS
    ids = tokenize_from_json(text, strings)
    assert np.array_equal(ids, policy.encoder.tokenize(strings))
    assert (ids == text["unknown_id"]).any() and (ids[:, -1] != text["pad_id"]).any()
    (actions,) = session.run(None, {"obs": ids})
    assert np.array_equal(actions, policy.act(np.asarray(strings)))
    # imitate's own loader runs the file alone on raw strings (tokenizer from its metadata)
    loaded = load_exported(out / "policy.onnx")
    assert np.array_equal(loaded.act(np.asarray(strings)), actions)


def test_dict_with_a_text_entry_names_its_input_and_other_exports_have_no_tokenizer(
    tmp_path: Path,
) -> None:
    text = gym.spaces.Text(40, min_length=0, charset="abcdefghijklmnopqrstuvwxyz ")
    space = gym.spaces.Dict([("vec", gym.spaces.Box(-1.0, 1.0, (2,), np.float32)), ("say", text)])
    rng = np.random.default_rng(0)
    words = ["red", "ball", "go", "to", "the", "blue", "key"]
    strings = [" ".join(rng.choice(words, 5)) for _ in range(32)]
    obs = {"vec": rng.uniform(-1, 1, (32, 2)).astype(np.float32), "say": np.asarray(strings)}
    torch.manual_seed(0)
    config = EncoderConfig(text_dim=4, max_tokens=6)
    policy = EncodedPolicy.for_data(space, gym.spaces.Discrete(3), obs, encoder_config=config)
    files = export_policy(policy, "onnx", tmp_path / "onnx")
    assert sorted(f.name for f in files) == ["policy.onnx", "tokenizer.json"]
    spec = json.loads((tmp_path / "onnx" / "tokenizer.json").read_text())
    assert spec["inputs"] == ["obs.vec", "obs.say"] and list(spec["text"]) == ["obs.say"]
    session = ort.InferenceSession(str(files[0]), providers=["CPUExecutionProvider"])
    feeds = {"obs.vec": obs["vec"], "obs.say": tokenize_from_json(spec["text"]["obs.say"], strings)}
    (actions,) = session.run(None, feeds)
    assert np.array_equal(actions, policy.act(obs))
    assert np.array_equal(load_exported(files[0]).act(obs), actions)

    no_text = EncodedPolicy.for_data(
        gym.spaces.Dict([("vec", space["vec"])]), gym.spaces.Discrete(3), {"vec": obs["vec"]}
    )
    files = export_policy(no_text, "onnx", tmp_path / "plain")
    assert [f.name for f in files] == ["policy.onnx"]
    assert not (tmp_path / "plain" / "tokenizer.json").exists()
    session = ort.InferenceSession(str(files[0]), providers=["CPUExecutionProvider"])
    assert "imitate.tokenizer" not in session.get_modelmeta().custom_metadata_map


@pytest.mark.parametrize("env_id", list(envs.OBS_ENVS))
def test_load_exported_runs_every_encoded_onnx_graph_alone(env_id: str, tmp_path: Path) -> None:
    demos = collect(envs.EXPERTS[env_id](), env_id, 2, seed=0)
    torch.manual_seed(0)
    policy = EncodedPolicy.for_data(
        demos.meta.spaces()[0], demos.meta.spaces()[1], demos.obs
    ).eval()
    files = export_policy(policy, "onnx", tmp_path)
    assert np.array_equal(load_exported(files[0]).act(demos.obs), policy.act(demos.obs))


WORDS = ("red", "ball", "go", "to", "the", "blue", "key", "door")


class TextInside(gym.Env[Any, np.int64]):
    """Observations of ``space`` (Text anywhere inside), Text leaves 1-4 words of WORDS."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012  (gymnasium declares it so)

    def __init__(self, space: gym.Space[Any]) -> None:
        self.observation_space = space
        self.action_space = gym.spaces.Discrete(3)

    def _draw(self, space: gym.Space[Any]) -> Any:
        rng = self.np_random
        if isinstance(space, gym.spaces.Dict):
            return {k: self._draw(s) for k, s in space.spaces.items()}
        if isinstance(space, gym.spaces.Tuple):
            return tuple(self._draw(s) for s in space.spaces)
        if isinstance(space, gym.spaces.Text):
            return " ".join(rng.choice(WORDS, int(rng.integers(1, 5))))
        if isinstance(space, gym.spaces.Discrete):
            return np.int64(rng.integers(space.n))
        assert isinstance(space, gym.spaces.Box)
        return rng.uniform(space.low, space.high).astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        return self._draw(self.observation_space), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        return self._draw(self.observation_space), 0.0, False, False, {}


TEXT = gym.spaces.Text(40, min_length=0, charset="abcdefghijklmnopqrstuvwxyz ")
BOX = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


@pytest.mark.parametrize(
    ("space", "text_at"),
    [
        (TEXT, ()),
        (gym.spaces.Dict([("vec", BOX), ("say", TEXT)]), ("say",)),
        (gym.spaces.Tuple((TEXT, gym.spaces.Discrete(3))), (0,)),
        (
            gym.spaces.Dict(
                [("pair", gym.spaces.Tuple((BOX, TEXT))), ("mode", gym.spaces.Discrete(2))]
            ),
            ("pair", 1),
        ),
    ],
    ids=["text", "dict", "tuple", "dict-of-tuple"],
)
def test_exports_act_on_a_vector_env_batch_with_text_like_the_torch_policy(
    space: gym.Space[Any], text_at: tuple[str | int, ...], tmp_path: Path
) -> None:
    """A gymnasium vector env batches Text as a tuple of str (in a Dict or Tuple too); the
    ONNX policy reads it as the torch one does (it read the tuple as a Tuple's entries)."""
    from imitate.export.onnx import OnnxPolicy
    from imitate.observations import concatenate, from_vector

    vec = gym.vector.SyncVectorEnv([lambda: TextInside(space)] * 4)
    raw = [vec.reset(seed=0)[0]] + [vec.step(np.zeros(4, np.int64))[0] for _ in range(7)]
    vec.close()
    texts = raw[0]
    for key in text_at:
        texts = texts[key]
    assert isinstance(texts, tuple) and all(isinstance(t, str) for t in texts)  # the form
    stored = concatenate([from_vector(r, space) for r in raw])
    torch.manual_seed(0)
    config = EncoderConfig(text_dim=4, max_tokens=6)
    policy = EncodedPolicy.for_data(space, gym.spaces.Discrete(3), stored, encoder_config=config)
    policy.eval()
    assert len(np.unique(policy.act(stored))) > 1  # the parity below can tell actions apart
    loaded = {fmt: load_exported(export_policy(policy, fmt, tmp_path / fmt)[0])  # type: ignore[arg-type]
              for fmt in ("onnx", "torchscript", "numpy")}  # fmt: skip
    assert isinstance(loaded["onnx"], OnnxPolicy)
    for batch in raw:
        expected = policy.act(batch)
        assert np.array_equal(expected, policy.act(from_vector(batch, space)))
        for fmt, exported in loaded.items():
            assert np.array_equal(exported.act(batch), expected), fmt
    if space is TEXT:  # a list of str too, as the torch policy takes
        assert np.array_equal(loaded["onnx"].act(list(raw[0])), policy.act(list(raw[0])))
