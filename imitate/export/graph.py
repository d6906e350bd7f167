"""The torch modules that exports trace: observation -> env action, and the JS-gated step."""

from __future__ import annotations

from torch import Tensor, nn

from imitate.policy import MLPPolicy, js_gate
from imitate.spaces import CategoricalHead


class ActionGraph(nn.Module):
    """Normalisation, the MLP and the head's decision (``ActionHead.mode_graph``) in one
    traceable module.

    Input ``obs [B, obs_dim]`` float32; output actions ``[B, *action_shape]``
    (int64 for discrete heads, float32 for Box)."""

    def __init__(self, policy: MLPPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: Tensor) -> Tensor:
        return self.policy.head.mode_graph(self.policy(obs))


class GatedActionGraph(nn.Module):
    """One step of :class:`imitate.policy.JSGatedPolicy` (Discrete heads) as a module.

    Inputs ``obs [B, obs_dim]``, ``anchor [B, n]`` (the logits the held action was chosen
    at; NaN rows start an episode) and ``threshold []`` (nats); outputs the env actions
    ``[B]`` int64 and the next ``anchor [B, n]``."""

    def __init__(self, policy: MLPPolicy) -> None:
        super().__init__()
        if not isinstance(policy.head, CategoricalHead):
            raise TypeError("the JS gate needs a Discrete action head")
        self.policy = policy

    def forward(self, obs: Tensor, anchor: Tensor, threshold: Tensor) -> tuple[Tensor, Tensor]:
        anchor = js_gate(self.policy(obs), anchor, threshold)
        return self.policy.head.mode_graph(anchor), anchor  # the held action: anchor's argmax
