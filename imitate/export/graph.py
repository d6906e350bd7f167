"""The torch module that ONNX and TorchScript exports trace: observation -> env action."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from imitate.policy import MLPPolicy
from imitate.spaces import CategoricalHead


class ActionGraph(nn.Module):
    """Normalisation, the MLP and the head's decision in one traceable module.

    Input ``obs [B, obs_dim]`` float32; output actions ``[B, *action_shape]``
    (int64 for discrete heads, float32 for Box)."""

    def __init__(self, policy: MLPPolicy) -> None:
        super().__init__()
        self.policy = policy
        head = policy.head
        self.offset = head.start if isinstance(head, CategoricalHead) else 0

    def forward(self, obs: Tensor) -> Tensor:
        action = self.policy.head.mode(self.policy(obs))
        if self.policy.head.discrete:
            action = action.to(torch.int64) + self.offset
        return action
