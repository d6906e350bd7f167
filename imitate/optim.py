"""The one Adam of BC: both trainers (:mod:`imitate.training`) take their steps with it.

``torch.optim.Adam.step`` spends ~100 µs per call in Python bookkeeping (parameter
groups, state dicts, compile guards) before its kernel runs; for a 2x64 MLP on a batch
of 32 that is a third of the whole training step. :class:`FastAdam` moves the
parameters into one flat float32 buffer (each ``param.data`` and ``param.grad`` becomes
a view of it; autograd accumulates into the gradient views in place) and updates the
whole buffer with a dozen numpy operations, whatever the number of tensors.

Hand-written because it is the fastest correct one measured here. The code had three
Adams: this numpy update inside the numpy trainer, a wrapper calling torch's private
fused kernel (``torch._fused_adam_``) for the torch trainer, and ``torch.optim.Adam`` as
that wrapper's fallback. Step for step inside the numpy trainer (2x64 MLP, one process
on the shared 2-core machine), this update took ~285 µs per step at batch 32 against
~351 µs with the fused kernel on the same buffer (best of 6; 811 vs 855 µs at batch
256). In the torch trainer the fused kernel was the faster one (best of 5: 827 vs 858 µs
per step at batch 32, 1499 vs 1697 µs at 256): the numpy trainer, the default where it
applies, is the one kept fast, and no private torch API is called. Tests compare the
update step by step with ``torch.optim.Adam`` (``tests/test_optim.py``,
``tests/test_training.py``).

Also tried and dropped: torch's public fused Adam (``torch.optim.Adam(fused=True)``) on
this flat buffer as one tensor for large policies. Per optimiser step (best of 5 x 200,
one thread, µs, numpy / fused) it is faster from ~20,000 parameters: 98 / 63 at 60,000,
410 / 196 at 250,000, 1,594 / 688 at 1M. But on the pixel CartPole Nature CNN (242,530
parameters), where that is ~4 % of a training step, a paired A/B of whole ``train_bc``
runs (six alternating runs of 1,000 steps) showed no gain: fused / numpy 0.81-1.04,
median 1.0. Its different rounding also moved a trained student enough that its int8
export's parity in ``tests/test_export_encoded.py`` fell from >= 99 % to 97 %.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor


class FastAdam:
    """Adam (Kingma and Ba 2015) with L2 weight decay, as ``torch.optim.Adam``.

    ``denom = sqrt(v) / sqrt(1 - b2^t) + eps``, ``p -= lr / (1 - b1^t) * m / denom``.
    The parameters (float32, CPU) are bound to :attr:`flat` and their gradients to
    :attr:`grad` ([n_parameters] each) until :meth:`release`; :meth:`step` uses
    :attr:`grad` as scratch space, so gradients are cleared (:meth:`zero_grad`) or
    overwritten before the next step.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        if any(p.dtype != torch.float32 or p.device.type != "cpu" for p in self.params):
            raise ValueError("FastAdam updates float32 CPU parameters")
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        arrays = [p.detach().numpy().ravel() for p in self.params]
        self.flat = np.concatenate(arrays).astype(np.float32) if arrays else np.zeros(0, np.float32)
        self.grad = np.zeros_like(self.flat)
        self.exp_avg = np.zeros_like(self.flat)
        self.exp_avg_sq = np.zeros_like(self.flat)
        self.step_count = 0
        start = 0
        for p in self.params:
            stop = start + p.numel()
            shape = tuple(p.shape)
            p.data = torch.from_numpy(self.flat[start:stop].reshape(shape))  # shares memory
            p.grad = torch.from_numpy(self.grad[start:stop].reshape(shape))
            start = stop

    def __repr__(self) -> str:
        return f"FastAdam(parameters={self.flat.size}, lr={self.lr}, step={self.step_count})"

    def zero_grad(self) -> None:
        self.grad.fill(0.0)

    def step(self) -> None:
        """Apply one update from the gradient buffer."""
        beta1, beta2 = self.betas
        grad = self.grad
        if self.weight_decay:
            grad += self.weight_decay * self.flat
        self.step_count += 1
        self.exp_avg *= beta1
        self.exp_avg += (1.0 - beta1) * grad
        self.exp_avg_sq *= beta2
        grad *= grad
        grad *= 1.0 - beta2
        self.exp_avg_sq += grad
        bias1 = 1.0 - beta1**self.step_count
        bias2_sqrt = np.sqrt(1.0 - beta2**self.step_count)
        denom = np.sqrt(self.exp_avg_sq, out=grad)  # grad is free again: reuse its memory
        denom /= bias2_sqrt
        denom += self.eps
        np.divide(self.exp_avg, denom, out=denom)
        denom *= -self.lr / bias1
        self.flat += denom

    def release(self) -> None:
        """Give the parameters their own memory again and drop their gradients."""
        for p in self.params:
            p.data = p.data.clone()
            p.grad = None
