"""The BC training step's forward for pixel CNN encoders (issue 19's throughput target).

A Nature-shaped CNN on 4 stacked 40x60 frames spends ~80 % of a training step in its
convolutions (profiled: ``convolution_backward`` 58 %, forward convolutions 23 %, Adam
5 %), so a faster step needs faster convolutions. :class:`PixelTrainingForward` computes
exactly what :meth:`imitate.encoders.ImageEncoder.forward` computes (the same parameters,
the same maths up to float rounding) in the form oneDNN runs fastest on CPU:

* **frames pinned channels-last once**: the training frames are held as one uint8
  ``[N, H, W, C]`` tensor (a copy for ``CxHxW`` storage, none for ``HxWxC``); a batch
  is an ``index_select`` of rows (a quarter of advanced indexing's time here), one
  contiguous cast and a ``permute`` *view*, so the convolutions get NHWC inputs with
  no per-batch layout copy (casting NCHW uint8 into NHWC floats per batch took ~3 ms,
  as long as a convolution). oneDNN's CPU kernels for few input channels and small
  images are faster in NHWC than in NCHW, the backward above all;
* **normalisation folded into the first convolution**: ``conv(w, (x / 255 - m) / s)`` is
  ``conv(w / (255 s), x) + (b - sum(w m / s))``, so the frames go straight from uint8
  to the convolution's dtype (one cast instead of four elementwise passes);
* **bfloat16 arithmetic** (``precision="bfloat16"``): the convolutions and the dense
  layer run on bf16 copies of the float32 weights (cast inside the graph, so gradients
  flow back to the float32 parameters that Adam updates); pixel values 0-255 are exact
  in bf16. Chosen by :func:`resolve_precision` only on CPUs with native bf16
  (``avx512_bf16`` or AMX), where oneDNN's bf16 kernels do twice the multiply-adds per
  instruction; elsewhere bf16 is emulated and slower, so float32 is kept.

The trunk and the head stay float32, as do the weights, the gradients, Adam's state
and the loss. Forwards without gradients (held-out evaluations) and everything after
training (rollouts, exports) use the encoder's own forward. Hand-written because the
alternatives measured slower here (one training step vs the textbook step,
``python -m benchmarks.cnn_candidates``, Nature / tiny CNN): ``channels_last`` on the
model 1.36x / 1.04x, bf16 autocast of the model 2.28x / 1.04x, both 1.86x / 1.12x; this
forward 1.60x / 2.52x in float32 and 2.20x / 3.20x in bf16 (on the tiny CNN the four
normalisation passes over every pixel cost more than its convolutions). ``torch.compile``
(inductor) compiled for minutes and ran 1.17x (1.44x with bf16 autocast). Also measured
and dropped (bf16, one thread, batch 64, Nature CNN on 4x40x60): the first convolution as
space-to-depth (frames pre-arranged into 4x4 blocks, 8x8/4 as 2x2/1 on 64 channels) 9 %
faster on that layer's forward + backward alone and no faster over whole steps; the
convolutions as ``Tensor.unfold`` patches times a matmul 2.9-3.4x slower per layer; the
backward as ``conv_transpose2d`` plus a batch-as-channels weight gradient 13-30 % slower
per layer; reusing the batch buffers no faster (8.5 minor page faults per step). Later,
in paired windows of 25 steps: a whole step without autograd (the same aten
convolutions, ``convolution_backward`` called directly with output masks, the trunk's
and dense layer's gradients by hand) 3-6 % faster, not worth a second backward to keep
correct; bf16 weights cast to ``channels_last`` (to skip the convolutions' internal
weight copies) no faster (9.20 vs 9.22 ms); conv 2's backward-data through its
space-to-depth stride-1 equivalent 2.1x slower (1.68 vs 0.81 ms);
``torch.backends.mkldnn.conv.fp32_precision = "bf16"`` on the float32 path no faster.
Convolutions 2 and 3 as patches (one ``as_strided`` copy of the NHWC activations) times
a bf16 matmul, with a slice-add col2im for the backward, no faster either (8.46 vs 8.33
ms per step for the same step with oneDNN's convolutions). In oneDNN's own timings
(``ONEDNN_VERBOSE``) the convolutions are 4.2 ms of a ~8 ms step and already run at
80-200 GFLOP/s (conv 2's strided backward-data ~85, conv 1's forward ~190) against an
estimated bf16 peak of 170-240 GFLOP/s (64 FLOP per cycle at 2.6-3.7 GHz), and plain
matmuls of these layers' shapes run at 140-190 GFLOP/s in bf16 against 77-92 in float32
(1.5-2.4x): the 2x over the float32 textbook loop is about the ratio of the two
precisions' throughput on this CPU. Halving the optimiser step (~8 % of a step) with
torch's fused Adam on FastAdam's flat buffer (see :mod:`imitate.optim`) was not
measurable end to end (paired A/B of ``train_bc``: median 1.0).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imitate.configs import CnnPrecision
from imitate.encoders import ImageEncoder


def native_bf16() -> bool:
    """True when this CPU has bf16 arithmetic in hardware (AVX512-BF16 or AMX) for oneDNN."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    found = [getattr(cpu, name, None) for name in checks]
    has = any(bool(f()) for f in found if callable(f))
    return has and torch.backends.mkldnn.is_available()


def resolve_precision(precision: CnnPrecision) -> Literal["float32", "bfloat16"]:
    """``precision`` with ``auto`` resolved: bfloat16 where the CPU has it natively."""
    if precision == "auto":
        return "bfloat16" if native_bf16() else "float32"
    return precision


def applies(encoder: nn.Module) -> bool:
    """The fast forward takes pixel :class:`ImageEncoder` s (not symbolic grids, whose
    one-hot input is built in the encoder) stored ``HxW``, ``CxHxW`` or ``HxWxC``."""
    return (
        isinstance(encoder, ImageEncoder)
        and encoder.levels is None
        and encoder.layout in ("HW", "CHW", "HWC")
    )


class PixelTrainingForward(nn.Module):
    """``forward(index [B]) -> encoder features [B, out_dim]`` (float32) of the rows
    ``index`` of ``frames``, by ``encoder``'s parameters (see the module docstring).

    ``frames``: the training observations in the encoder's storage layout, uint8."""

    def __init__(
        self,
        encoder: ImageEncoder,
        frames: np.ndarray,
        precision: Literal["float32", "bfloat16"] = "float32",
    ) -> None:
        super().__init__()
        if not applies(encoder):
            raise ValueError(f"{type(encoder).__name__} is not a pixel image encoder")
        self.encoder = encoder
        self.dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
        x = np.asarray(frames, dtype=np.uint8)
        if encoder.layout == "HW":
            x = x[..., None]
        elif encoder.layout == "CHW":
            # one plane at a time: a strided transpose with C innermost copied 4 stacked
            # 40x60 frames x 4,000 at a third of this speed (86 vs 22-37 ms here), which
            # was half of a short BC run's set-up
            nhwc = np.empty((x.shape[0], x.shape[2], x.shape[3], x.shape[1]), np.uint8)
            for c in range(x.shape[1]):
                nhwc[..., c] = x[:, c]
            x = nhwc
        self.frames = torch.from_numpy(np.ascontiguousarray(x))
        """[N, H, W, C] uint8: a copy for ``CxHxW`` storage, else the dataset's array."""

    def batch(self, index: Tensor) -> Tensor:
        """Rows ``index`` as ``[B, C, H, W]`` in :attr:`dtype`, stored channels-last."""
        return self.frames.index_select(0, index).to(self.dtype).permute(0, 3, 1, 2)

    def forward(self, index: Tensor) -> Tensor:
        enc = self.encoder
        x = self.batch(index)
        convs = [m for m in enc.convs if isinstance(m, nn.Conv2d)]
        first = convs[0]
        assert first.bias is not None
        scale = 1.0 / (255.0 * enc.std)
        shift = -enc.mean / enc.std
        weight = first.weight * scale[None, :, None, None]
        bias = first.bias + (first.weight.sum(dim=(2, 3)) * shift[None, :]).sum(dim=1)
        h = x
        for i, conv in enumerate(convs):
            w, b = (weight, bias) if i == 0 else (conv.weight, conv.bias)
            assert b is not None
            # in place: the convolution's backward does not need its output, and one
            # activation buffer fewer per layer was 5-10 % of the convolutions' time here
            h = torch.relu_(F.conv2d(h, w.to(self.dtype), b.to(self.dtype), conv.stride))
        flat = h.reshape(h.shape[0], -1)  # the NCHW order the dense layer was built for
        dense = F.linear(flat, enc.dense.weight.to(self.dtype), enc.dense.bias.to(self.dtype))
        return torch.relu_(dense).float()
