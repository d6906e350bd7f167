"""ONNX export (opset 18, torch.export-based exporter) and an onnxruntime Policy.

Policies with Text observations take token ids (``int64 [B, max_tokens]``), not strings:
tokenisation stays outside the graph. So that the graph can be used on raw text without
imitate, their export carries the tokenizer (:func:`tokenizer_spec`: the vocabulary and
every setting of :meth:`imitate.encoders.TextEncoder.tokenize`, per text input) twice:
as ``tokenizer.json`` beside ``policy.onnx`` and in the model's ``metadata_props`` under
:data:`TOKENIZER_METADATA_KEY` (the same JSON; ``onnxruntime``:
``session.get_modelmeta().custom_metadata_map``). :class:`OnnxPolicy` (what
:func:`imitate.export.load_exported` returns) reads it from there, so it runs any exported
graph on raw observation batches from the ``.onnx`` file alone."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import warnings
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imitate.encoded import EncodedActionGraph, EncodedPolicy, onnx_input_names
from imitate.encoders import ObsEncoder, text_encoders
from imitate.errors import ImitateError
from imitate.export.graph import ActionGraph, GatedActionGraph
from imitate.fileio import write_bytes, write_json
from imitate.observations import ObsBatch, obs_len
from imitate.policy import MLPPolicy

OPSET = 18
TOKENIZER_FORMAT = "imitate-onnx-tokenizer"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_METADATA_KEY = "imitate.tokenizer"


def export_onnx(policy: MLPPolicy | EncodedPolicy, path: str | os.PathLike[str]) -> Path:
    """Write ``policy`` (normalisation and decision included) as one ONNX file."""
    if isinstance(policy, EncodedPolicy):
        return export_encoded_onnx(policy, path)
    example = torch.zeros(2, policy.obs_dim)
    batch = torch.export.Dim("batch")
    return _export(ActionGraph(policy), (example,), ["obs"], ["action"], ({0: batch},), path)


def export_gated_onnx(policy: MLPPolicy, path: str | os.PathLike[str]) -> Path:
    """Write one step of the JS gate (Discrete policies): inputs ``obs [B, obs_dim]``,
    ``anchor [B, n]`` (NaN rows start an episode), ``threshold []`` (nats); outputs
    ``action [B]`` and the next ``anchor [B, n]``."""
    example = (
        torch.zeros(2, policy.obs_dim),
        torch.full((2, policy.head.n_outputs), float("nan")),
        torch.tensor(0.1),
    )
    batch = torch.export.Dim("batch")
    shapes: tuple[dict[int, Any], ...] = ({0: batch}, {0: batch}, {})
    names = (["obs", "anchor", "threshold"], ["action", "next_anchor"])
    return _export(GatedActionGraph(policy), example, *names, shapes, path)


def _export(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    input_names: list[str],
    output_names: list[str],
    dynamic_shapes: tuple[dict[int, Any], ...],
    path: str | os.PathLike[str],
    metadata: dict[str, str] | None = None,
) -> Path:
    """Export ``module``; ``metadata``: ONNX ``metadata_props`` to add (key -> string)."""
    graph = module.eval()
    buffer = io.BytesIO()
    # The exporter prints progress on stdout and warns about torchvision on stderr.
    with (
        contextlib.redirect_stdout(io.StringIO()),
        _quiet_logger("torch.onnx"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", FutureWarning)
        # Batch axes of several inputs share one constraint; the exporter says so per input.
        warnings.filterwarnings("ignore", "# The axis name: .* will not be used", UserWarning)
        program = torch.onnx.export(
            graph,
            example,
            dynamo=True,
            opset_version=OPSET,
            input_names=input_names,
            output_names=output_names,
            dynamic_shapes=dynamic_shapes,
            verbose=False,
        )
    assert program is not None
    program.save(buffer)  # type: ignore[arg-type]
    data = buffer.getvalue()
    if metadata:
        import onnx

        model = onnx.load_from_string(data)
        for key, value in metadata.items():
            model.metadata_props.add(key=key, value=value)
        data = model.SerializeToString()
    return write_bytes(path, data)


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _session(path: str | os.PathLike[str]) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ImitateError("ONNX export needs the onnx extra: pip install 'imitate[onnx]'") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


_ONNX_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


class OnnxPolicy:
    """Run an exported ONNX policy with onnxruntime (one thread, CPU), from the file alone.

    An MLP's graph takes ``obs [B, obs_dim]`` float32 (observations are flattened). An
    encoded policy's takes one input per observation leaf (``obs``, ``obs.<key>``,
    ``obs.<key>.<index>``): each leaf is cast to its input's dtype, and Text leaves (a str
    array, or the tuple of str a gymnasium vector env gives) are tokenised with the
    tokenizer in the model's metadata (:func:`tokenizer_spec`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)  # str too (the README's form); gated() needs its folder
        self.session = _session(path)
        self.inputs = [(i.name, i.type, len(i.shape)) for i in self.session.get_inputs()]
        meta = self.session.get_modelmeta().custom_metadata_map
        spec = json.loads(meta[TOKENIZER_METADATA_KEY]) if TOKENIZER_METADATA_KEY in meta else {}
        self.text: dict[str, dict[str, Any]] = dict(spec.get("text", {}))

    def gated(self, threshold: float) -> OnnxGatedPolicy:
        """The JS gate exported beside this file (``policy_gated.onnx``, Discrete policies)."""
        gated_path = self.path.with_name("policy_gated.onnx")
        if not gated_path.is_file():
            raise ImitateError(f"{gated_path} is missing (the gate is exported for Discrete heads)")
        return OnnxGatedPolicy(gated_path, threshold)

    def act(self, obs: ObsBatch) -> np.ndarray:
        if [n for n, _, _ in self.inputs] == ["obs"] and self.inputs[0][1:] == ("tensor(float)", 2):
            flat = np.asarray(obs, dtype=np.float32).reshape(obs_len(obs), -1)
            return self.session.run(None, {"obs": flat})[0]
        leaves = _named_leaves(obs, "obs", {n for n, _, _ in self.inputs})
        feeds = {}
        for name, kind, _rank in self.inputs:
            if name not in leaves:
                raise ImitateError(f"{self.path}: the observation has no entry for input {name!r}")
            if name in self.text:
                feeds[name] = _tokenize(self.text[name], leaves[name])
            else:
                feeds[name] = np.asarray(leaves[name]).astype(_ONNX_DTYPES.get(kind, np.float32))
        return self.session.run(None, feeds)[0]


def _named_leaves(obs: ObsBatch, name: str, inputs: Collection[str]) -> dict[str, Any]:
    """The leaves of an observation batch by ONNX input name (``obs.<key>.<index>``). A
    graph input's name ends the walk: a vector env batches a Text leaf as a tuple of str,
    which is one leaf, not a Tuple's entries (the torch policy's encoder, led by the
    space, reads it so; the graph's input names stand for the space here)."""
    if name in inputs:
        return {name: obs}
    if isinstance(obs, dict):
        return {
            n: a for k, v in obs.items() for n, a in _named_leaves(v, f"{name}.{k}", inputs).items()
        }
    if isinstance(obs, tuple | list):
        return {
            n: a
            for i, v in enumerate(obs)
            for n, a in _named_leaves(v, f"{name}.{i}", inputs).items()
        }
    return {name: obs}


def _tokenize(spec: dict[str, Any], strings: Any) -> np.ndarray:
    """``[B]`` strings -> ``int64 [B, max_tokens]`` ids from one ``"text"`` entry of a
    tokenizer spec alone: what :meth:`imitate.encoders.TextEncoder.tokenize` does, written
    again on ``re`` and numpy so that running an ``.onnx`` file needs neither torch nor the
    checkpoint."""
    pattern = re.compile(str(spec["word_pattern"]))
    index = {str(w): i + int(spec["first_word_id"]) for i, w in enumerate(spec["vocabulary"])}
    max_tokens, unknown = int(spec["max_tokens"]), int(spec["unknown_id"])
    rows = np.asarray(strings, dtype=np.str_).reshape(-1)
    ids = np.full((len(rows), max_tokens), int(spec["pad_id"]), np.int64)
    for row, value in enumerate(rows):
        text = str(value).lower() if spec["lowercase"] else str(value)
        tokens = [index.get(w, unknown) for w in pattern.findall(text)[:max_tokens]]
        ids[row, : len(tokens)] = tokens
    return ids


class OnnxGatedPolicy:
    """An exported JS gate (``policy_gated.onnx``) as a RecurrentPolicy."""

    def __init__(self, path: str | os.PathLike[str], threshold: float) -> None:
        self.session = _session(path)
        self.threshold = np.array(threshold, dtype=np.float32)
        self.n_outputs = int(self.session.get_inputs()[1].shape[1])

    def initial_state(self, batch: int) -> np.ndarray:
        return np.full((batch, self.n_outputs), np.nan, dtype=np.float32)

    def step(self, obs: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        feeds = {"obs": flat, "anchor": state.astype(np.float32), "threshold": self.threshold}
        action, anchor = self.session.run(None, feeds)
        return action, anchor

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.step(obs, self.initial_state(len(obs)))[0]


def tokenizer_spec(policy: EncodedPolicy) -> dict[str, Any] | None:
    """The tokenizer of each Text input of ``policy``'s ONNX graph (None: no Text input).

    ``{"format": "imitate-onnx-tokenizer", "format_version": 1, "inputs": [every ONNX
    input name, in order], "text": {input name: TextEncoder.tokenizer_json() + "dtype"
    and "shape" of the ids}}``."""
    texts = text_encoders(policy.encoder)
    if not texts:
        return None
    return {
        "format": TOKENIZER_FORMAT,
        "format_version": 1,
        "inputs": onnx_input_names(policy),
        "text": {
            name.replace("/", "."): {
                "dtype": "int64",
                "shape": ["batch", encoder.max_tokens],
                **encoder.tokenizer_json(),
            }
            for name, encoder in texts
        },
    }


def export_encoded_onnx(policy: EncodedPolicy, path: str | os.PathLike[str]) -> Path:
    """Write ``policy`` (encoder, trunk, decision) as one ONNX file; tokenization stays
    outside (feed :meth:`ObsEncoder.inputs`, see :class:`OnnxEncodedPolicy`). With Text
    inputs the :func:`tokenizer_spec` is in its ``metadata_props``
    (:data:`TOKENIZER_METADATA_KEY`); :func:`write_tokenizer` writes it beside."""
    example = tuple(torch.as_tensor(a) for a in policy.encoder.example_inputs(2))
    batch = torch.export.Dim("batch")
    names = onnx_input_names(policy)
    shapes: tuple[Any, ...] = (tuple({0: batch} for _ in names),)  # one entry: *inputs
    spec = tokenizer_spec(policy)
    metadata = None if spec is None else {TOKENIZER_METADATA_KEY: json.dumps(spec)}
    graph = EncodedActionGraph(policy)
    return _export(graph, example, names, ["action"], shapes, path, metadata)


def write_tokenizer(policy: EncodedPolicy, out_dir: str | os.PathLike[str]) -> Path | None:
    """``out_dir/tokenizer.json`` (:func:`tokenizer_spec`) for a policy with Text inputs;
    None (no file) otherwise."""
    spec = tokenizer_spec(policy)
    return None if spec is None else write_json(Path(out_dir) / TOKENIZER_FILE, spec)


class OnnxEncodedPolicy:
    """An exported encoded policy run by onnxruntime; ``encoder`` prepares the inputs
    (tokenizes text) exactly as the torch policy does."""

    def __init__(self, path: str | os.PathLike[str], encoder: ObsEncoder) -> None:
        self.session = _session(path)
        self.encoder = encoder
        self.names = [i.name for i in self.session.get_inputs()]

    def act(self, obs: ObsBatch) -> np.ndarray:
        feeds = dict(zip(self.names, self.encoder.inputs(obs), strict=True))
        return self.session.run(None, feeds)[0]
