"""The numpy trainer's maths (:class:`imitate.training.NumpyTrainer`): softmax CE on an MLP.

For the common case (Discrete actions, an MLP, hard labels, optional per-sample
weights, no toolbox term) a training step is ~15 small array operations. Torch
spends ~10 µs of dispatch and autograd bookkeeping on each operation on this kind
of machine, numpy ~1-2 µs, so a numpy step (the runtime's forward,
:meth:`imitate.runtime.NumpyLayers.trace`, on views of the weights; the hand-written
backward below) runs a 2x64 MLP step several times faster than autograd at batch 32-256.

The math is the torch path's, in float32: ``loss = mean_i(w_i * CE(z_i, a_i))``,
gradients by the chain rule (checked against autograd in the tests). The update is
:class:`~imitate.optim.FastAdam`, the torch trainer's Adam too, on its flat buffer.

While training, the torch parameters are views of the trainer's flat numpy buffer,
so held-out evaluation and checkpoints see the current weights without copies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from imitate.optim import FastAdam
from imitate.policy import MLPPolicy
from imitate.runtime import NumpyLayers
from imitate.spaces import CategoricalHead


def supports(policy: MLPPolicy, uses_extra_terms: bool) -> bool:
    """Whether the numpy step computes the same loss as the torch path for this setup."""
    return (
        not uses_extra_terms
        and isinstance(policy.head, CategoricalHead)
        and policy.config.activation in ("tanh", "relu")
        and all(p.dtype == torch.float32 and p.device.type == "cpu" for p in policy.parameters())
    )


class NumpyMLPTrainer:
    """Adam on softmax cross-entropy for ``policy.net`` (Linear/activation layers).

    Args:
        policy: the MLP; its parameters become views of this trainer's buffer
            until :meth:`release` is called.
        lr, betas, eps, weight_decay: as ``torch.optim.Adam``.
    """

    def __init__(
        self,
        policy: MLPPolicy,
        lr: float,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.policy = policy
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.tanh = policy.config.activation == "tanh"
        linears = [m for m in policy.net if isinstance(m, nn.Linear)]
        params = [p for layer in linears for p in (layer.weight, layer.bias)]
        # FastAdam binds the parameters to its flat buffers: torch sees every update.
        self.adam = FastAdam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.flat, self.grad = self.adam.flat, self.adam.grad
        views = [p.data.numpy() for p in params]
        grad_views = [p.grad.numpy() for p in params if p.grad is not None]
        for p in params:
            p.grad = None  # the backward below writes into the views directly
        # [(W [out, in], b [out], gW, gb)] per Linear, input layer first.
        self.layers = [
            (views[i], views[i + 1], grad_views[i], grad_views[i + 1])
            for i in range(0, len(views), 2)
        ]
        # The forward is the runtime's numpy MLP (one implementation) on views of the buffer.
        activation = "tanh" if self.tanh else "relu"
        ops: list[tuple[str, Any, Any]] = []
        for w, b, _, _ in self.layers:
            ops += [("linear", w.T, b), (activation, None, None)]
        self.forward = NumpyLayers(ops[:-1])

    def release(self) -> None:
        """Give the torch parameters their own memory again (the trainer can be dropped)."""
        self.adam.release()

    def step(self, obs: np.ndarray, actions: np.ndarray, weights: np.ndarray | None) -> float:
        """One Adam step on a batch: ``obs [B, obs_dim]`` normalised float32, ``actions [B]``
        class indices (0-based), optional ``weights [B]``; returns the batch loss."""
        batch = len(obs)
        values = self.forward.trace(obs)  # input, then (pre-activation, activation) per layer
        inputs = values[0:-1:2]  # each Linear's input
        logits = values[-1]  # a fresh array: modified in place below
        # Softmax CE: nll_i = logsumexp(z_i) - z_i[a_i], gradient softmax - onehot.
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        total = probs.sum(axis=1, keepdims=True)
        rows = np.arange(batch)
        nll = np.log(total[:, 0]) - logits[rows, actions]
        probs /= total
        probs[rows, actions] -= 1.0
        if weights is None:
            loss = float(nll.mean())
            probs *= np.float32(1.0 / batch)
        else:
            loss = float((nll * weights).mean())
            probs *= (weights * np.float32(1.0 / batch))[:, None]
        upstream = probs  # d loss / d logits [B, out]
        for index in range(len(self.layers) - 1, -1, -1):
            w, _, grad_w, grad_b = self.layers[index]
            layer_input = inputs[index]
            np.matmul(upstream.T, layer_input, out=grad_w)
            np.sum(upstream, axis=0, out=grad_b)
            if index == 0:
                break
            upstream = upstream @ w
            if self.tanh:  # d tanh = 1 - h^2, with h the layer's output
                upstream *= 1.0 - layer_input * layer_input
            else:
                upstream *= layer_input > 0
        self.adam.step()
        return loss

    def state(self) -> dict[str, Any]:
        """Adam moments (flat numpy views) and step (for tests)."""
        return {
            "exp_avg": self.adam.exp_avg,
            "exp_avg_sq": self.adam.exp_avg_sq,
            "step": self.adam.step_count,
        }
