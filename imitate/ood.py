"""``imitate ood``: how well energy and max-softmax scores tell a clone's drift states from
expert states (AUROC, FPR at 95% TPR), with the score histogram and ROC figures.

Drift states are the clone's states farther from every reference (demonstration) state
than ``quantile`` of held-out expert states are (:func:`imitate.drift.off_support`:
nearest neighbour in std units). A clone that hardly drifts (fewer than
:data:`MIN_DRIFT_STATES`) is scored on expert states perturbed by 3 std instead, and the
result says so (``out_source``). The scores are :mod:`imitate.calibration`'s.

Observations other than a flat Box (Dict, Tuple, Discrete, Text, images; an encoded
policy) are compared in :func:`imitate.drift_space.observation_drift_space`'s features
(per-key normalised units; images in the policy's encoder features), and the fallback
out-of-distribution states are uniformly random observations of the space (seeded)
instead of perturbed ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from imitate.constants import EVAL_SEED
from imitate.errors import ImitateError

if TYPE_CHECKING:
    from imitate.encoded import EncodedPolicy
    from imitate.environments import EnvLike
    from imitate.policy import MLPPolicy
    from imitate.runtime import Policy

MIN_DRIFT_STATES = 50
"""Fewer off-support clone states than this: score perturbed expert states instead."""


def check_quantile(quantile: float) -> None:
    if not 0.0 < quantile < 1.0:
        raise ImitateError(f"--quantile must be in (0, 1), got {quantile}")


def ood_report(
    policy: MLPPolicy | EncodedPolicy,
    expert: Policy,
    env: EnvLike,
    out_dir: Path,
    episodes: int = 20,
    seed: int = EVAL_SEED,
    quantile: float = 0.99,
    reference: Any = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score ``episodes`` expert episodes (reset seeds ``seed + i``) against the clone's
    drift states on the same seeds; figures (energy_histogram.png, roc.png) into
    ``out_dir``. ``reference``: the clone's demonstration states, an observation batch
    (default: as many fresh expert episodes, reset seeds following the scored ones)."""
    import numpy as np
    import torch

    from imitate import observations as ob
    from imitate.calibration import auroc, energy_score, fpr_at_95_tpr, max_softmax_probability
    from imitate.collect import collect, env_spaces
    from imitate.drift import off_support
    from imitate.drift_space import observation_drift_space
    from imitate.encoded import needs_encoder
    from imitate.plots import plot_roc, plot_score_histogram
    from imitate.spaces import CategoricalHead

    check_quantile(quantile)
    if not isinstance(policy.head, CategoricalHead):
        raise ImitateError("OOD scores need a policy with a Discrete action space")
    if reference is None:
        reference = collect(
            expert, env, episodes, seed + episodes, progress=progress, desc="ood: reference"
        ).obs
    expert_states = collect(expert, env, episodes, seed, progress=progress, desc="ood: expert").obs
    clone_states = collect(policy, env, episodes, seed, progress=progress, desc="ood: clone").obs
    space = ob.canonical_space(env_spaces(env)[0])
    encoded = needs_encoder(space)
    if encoded:  # features in per-key normalised units (images: the policy's encoder)
        features = observation_drift_space(space, reference, {"policy": policy})
        support = off_support(
            features.obs_features(reference),
            features.obs_features(expert_states),
            features.obs_features(clone_states),
            quantile,
            features.scale,
        )
    else:
        support = off_support(reference, expert_states, clone_states, quantile)
    drifted: Any = ob.take(clone_states, support.mask)
    source = "clone drift states"
    n_expert = ob.obs_len(expert_states)
    if ob.obs_len(drifted) < MIN_DRIFT_STATES and encoded:  # random observations instead
        space.seed(seed)
        drifted = ob.batch([space.sample() for _ in range(n_expert)], space)
        source = "uniformly random observations of the space"
    elif ob.obs_len(drifted) < MIN_DRIFT_STATES:  # a clone that hardly drifts: perturbed
        rng = np.random.default_rng(seed)
        drifted = expert_states + rng.normal(0, 3.0, expert_states.shape) * expert_states.std(0)
        source = "expert states perturbed by 3 std"
    scores = {}
    pairs: tuple[tuple[str, Any], ...] = (("in", expert_states), ("out", drifted))
    for name, states in pairs:
        inputs = states if encoded else states.astype(np.float32)
        logits = torch.as_tensor(policy.logits(inputs))
        scores[name] = {
            "energy": energy_score(logits).numpy(),
            "neg_msp": (-max_softmax_probability(logits)).numpy(),
        }
    result: dict[str, Any] = {
        "in_states": n_expert,
        "out_states": ob.obs_len(drifted),
        "out_source": source,
        "clone_states": ob.obs_len(clone_states),
        "off_support_states": int(support.mask.sum()),
        "support_threshold": support.threshold,
    }
    for key in ("energy", "neg_msp"):
        result[key] = {
            "auroc": auroc(scores["in"][key], scores["out"][key]),
            "fpr_at_95_tpr": fpr_at_95_tpr(scores["in"][key], scores["out"][key]),
        }
    result["figures"] = {
        "histogram": str(
            plot_score_histogram(
                {"expert states": scores["in"]["energy"], source: scores["out"]["energy"]},
                out_dir / "energy_histogram.png",
                "energy score -logsumexp(logits)",
            )
        ),
        "roc": str(
            plot_roc(
                {k: (scores["in"][k], scores["out"][k]) for k in ("energy", "neg_msp")},
                out_dir / "roc.png",
            )
        ),
    }
    return result
