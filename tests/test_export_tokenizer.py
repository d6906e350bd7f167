"""The ONNX export of a Text-observation policy carries its tokenizer: raw strings,
tokenised with nothing but ``tokenizer.json`` (or the model's metadata) and ``re``, then
run by onnxruntime, give the torch policy's actions."""

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
