"""The pixel CNN's training forward (imitate.fastcnn): the encoder's features to float
rounding in float32 (bf16 rounding in bfloat16), the same loss trajectory as the
encoder's own forward, the same accuracy after training, and where it applies."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from imitate import BCConfig, fastcnn, train_bc
from imitate.configs import EarlyStopConfig, OptimConfig, PolicyConfig
from imitate.data import Dataset, make_meta
from imitate.encoded import EncodedPolicy, IndexedNet
from imitate.encoders import EncoderConfig, ImageEncoder
from imitate.losses import BCLoss, HeadNLL
from imitate.optim import FastAdam
from imitate.validate import ValueCheckError


def _frames(shape: tuple[int, ...], n: int = 24) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, *shape), dtype=np.uint8)


@pytest.mark.parametrize("shape", [(4, 40, 60), (40, 60, 3), (40, 60)])
@pytest.mark.parametrize("cnn", ["nature", "tiny"])
def test_training_forward_is_the_encoders_forward(shape: tuple[int, ...], cnn: str) -> None:
    space = gym.spaces.Box(0, 255, shape, np.uint8)
    frames = _frames(shape)
    torch.manual_seed(0)
    encoder = ImageEncoder(space, EncoderConfig(cnn=cnn))  # type: ignore[arg-type]
    encoder.fit(frames[:12] // 2 + 60)  # a mean and std far from 0 and 1
    index = torch.tensor([3, 0, 17, 5, 5, 23])
    reference = encoder(torch.as_tensor(frames[index.numpy()]))
    fast32 = fastcnn.PixelTrainingForward(encoder, frames, "float32")(index)
    torch.testing.assert_close(fast32, reference, rtol=1e-5, atol=1e-5)
    fast16 = fastcnn.PixelTrainingForward(encoder, frames, "bfloat16")(index)
    assert fast16.dtype == torch.float32
    reference = reference.detach()
    scale = float(reference.abs().max())
    assert float((fast16 - reference).abs().max()) < 0.02 * scale  # bf16: 8 mantissa bits
    assert float((fast16 - reference).abs().max()) > 0.0  # it did run in bf16


def _trajectory(precision: str | None, steps: int = 5) -> tuple[list[float], list[float]]:
    """Losses of ``steps`` FastAdam steps on one pixel policy, and the first gradient."""
    space = gym.spaces.Box(0, 255, (4, 40, 60), np.uint8)
    frames = _frames((4, 40, 60), 64)
    actions = torch.as_tensor(np.random.default_rng(1).integers(0, 2, 64))
    torch.manual_seed(0)
    policy = EncodedPolicy.for_data(space, gym.spaces.Discrete(2), frames[:32])
    net = IndexedNet(policy, frames, precision)  # type: ignore[arg-type]
    assert (net.fast is None) == (precision is None)
    loss = BCLoss(HeadNLL(policy.head))
    optimizer = FastAdam(policy.parameters(), lr=1e-3)
    losses = []
    for step in range(steps):
        index = torch.arange(16 * (step % 4), 16 * (step % 4) + 16)
        generator = torch.Generator().manual_seed(0)
        batch = loss.per_sample(net, index, actions[index], index, generator)
        value = batch.per_sample.mean()
        optimizer.zero_grad()
        value.backward()
        if step == 0:
            gradient = [float(v) for v in optimizer.grad]
        optimizer.step()
        losses.append(float(value))
    optimizer.release()
    return losses, gradient


def test_loss_trajectory_matches_the_encoders_forward() -> None:
    plain, plain_gradient = _trajectory(None)
    fast, fast_gradient = _trajectory("float32")
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-6)
    scale = max(abs(g) for g in plain_gradient)
    np.testing.assert_allclose(fast_gradient, plain_gradient, rtol=1e-4, atol=1e-5 * scale)
    bf16, _ = _trajectory("bfloat16")
    np.testing.assert_allclose(bf16, plain, rtol=3e-2, atol=3e-2)
    assert bf16 != plain
    assert plain[-1] < plain[0] and bf16[-1] < bf16[0]  # both learn


def _bar_task(n: int = 600) -> Dataset:
    """4 stacked 40x60 noisy gray frames with a bright vertical bar: action 1 when the
    bar is in the right half (a task a small CNN learns in a few hundred steps)."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 100, (n, 4, 40, 60), dtype=np.uint8)
    column = rng.integers(0, 56, n)
    for i, c in enumerate(column):
        frames[i, :, :, c : c + 4] += 40
    actions = (column + 2 >= 30).astype(np.int64)
    space = gym.spaces.Box(0, 255, (4, 40, 60), np.uint8)
    ends = np.zeros(n, bool)
    ends[99::100] = True
    return Dataset(
        obs=frames,
        actions=actions,
        rewards=np.ones(n, np.float32),
        terminated=ends,
        truncated=np.zeros(n, bool),
        episode_starts=np.arange(0, n, 100),
        meta=make_meta("bars", space, gym.spaces.Discrete(2), "test", 0, "per-episode"),
    )


def test_bf16_training_reaches_the_accuracy_of_float32() -> None:
    """A tiny CNN, 100 steps from the same seed: the held-out accuracy and NLL of the
    bfloat16 and float32 training forwards agree at every evaluation (measured: 0.900 /
    0.371 nats vs 0.908 / 0.364 after 25 steps, 0.992 / 0.011 both after 100)."""
    demos = _bar_task()
    records = {}
    for precision in ("float32", "bfloat16"):
        config = BCConfig(
            policy=PolicyConfig((32,), "relu", cnn="tiny", image_features=32),
            optim=OptimConfig(lr=1e-3, batch_size=64, max_steps=100),
            early_stop=EarlyStopConfig(eval_every=25, patience=10, holdout_fraction=0.2),
            cnn_precision=precision,
        )
        _, history = train_bc(demos, config)
        assert history.cnn_precision == precision
        records[precision] = history.records
    for f32, b16 in zip(records["float32"], records["bfloat16"], strict=True):
        assert abs(f32["holdout_accuracy"] - b16["holdout_accuracy"]) <= 0.03, records
        assert abs(f32["holdout_nll"] - b16["holdout_nll"]) <= 0.03, records
    assert records["float32"][0]["holdout_nll"] > 0.1  # the first evaluation is mid-way
    assert records["bfloat16"][-1]["holdout_accuracy"] > 0.95, records


def test_where_the_training_forward_applies() -> None:
    pixels = ImageEncoder(gym.spaces.Box(0, 255, (4, 40, 60), np.uint8))
    grid = ImageEncoder(gym.spaces.Box(0, 10, (7, 7, 3), np.uint8), levels=(11, 6, 3))
    stacked_rgb = ImageEncoder(gym.spaces.Box(0, 255, (2, 40, 60, 3), np.uint8))
    assert fastcnn.applies(pixels)
    assert not fastcnn.applies(grid) and not fastcnn.applies(stacked_rgb)
    with pytest.raises(ValueError, match="not a pixel image encoder"):
        fastcnn.PixelTrainingForward(grid, _frames((7, 7, 3)) % 3)
    assert fastcnn.resolve_precision("float32") == "float32"
    assert fastcnn.resolve_precision("bfloat16") == "bfloat16"
    native = "bfloat16" if fastcnn.native_bf16() else "float32"
    assert fastcnn.resolve_precision("auto") == native


def test_history_records_the_precision_and_evaluation_stays_float32() -> None:
    space = gym.spaces.Box(0, 255, (4, 40, 60), np.uint8)
    frames = _frames((4, 40, 60), 64)
    torch.manual_seed(0)
    policy = EncodedPolicy.for_data(space, gym.spaces.Discrete(2), frames)
    net = IndexedNet(copy.deepcopy(policy), frames, "bfloat16")
    index = torch.arange(8)
    with torch.no_grad():  # held-out evaluations: the policy's own float32 forward
        torch.testing.assert_close(net(index), policy.outputs(frames[:8]), rtol=0, atol=0)
    assert net.precision == "bfloat16"
    assert IndexedNet(policy, frames, "float32").precision == "float32"
    with pytest.raises(ValueCheckError, match="--cnn-precision"):
        BCConfig(cnn_precision="float16")  # type: ignore[arg-type]


def test_cnn_precision_flag_reaches_the_config() -> None:
    from imitate.cli import parse

    bc = parse(["bc", "--data", "d.npz", "--cnn-precision", "float32"]).config
    assert bc.cnn_precision == "float32"
    assert BCConfig().cnn_precision == "auto"
