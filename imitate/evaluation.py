"""``imitate eval`` as library functions: a policy's return on seeded episodes, its action
flip rate, and its calibration against an expert on its own states.

The calibration measures (ECE, Brier, NLL) are :mod:`imitate.calibration`'s; this module
runs the rollouts they are measured on and chooses the labelling expert from what a
checkpoint records (a recorded name only, never a recorded file: see
:func:`calibration_expert`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imitate.constants import (
    CALIBRATION_EPISODES,
    CALIBRATION_MAX_STEPS,
    EVAL_SEED,
    SHIPPED_EXPERT_NAMES,
)
from imitate.errors import ImitateError

if TYPE_CHECKING:
    from imitate.backends import Rollouts
    from imitate.environments import EnvLike
    from imitate.policy import MLPPolicy
    from imitate.runtime import NumpyMLPPolicy, Policy


def check_js_gate(js_gate: float) -> None:
    """``js_gate`` must be in ``[0, ln 2)`` (the Jensen-Shannon divergence's range)."""
    import numpy as np

    if not 0.0 <= js_gate < np.log(2.0):
        raise ImitateError(f"--js-gate must be in [0, ln 2 = 0.693), got {js_gate}")


def evaluate_policy(
    policy: NumpyMLPPolicy | MLPPolicy,
    env: EnvLike,
    episodes: int,
    seed: int,
    js_gate: float = 0.0,
    rollouts: Rollouts | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Returns on ``episodes`` episodes (episode i resets with ``seed + i``); for a Discrete
    policy also the action-flip rate, executed through a JS gate of ``js_gate`` nats (0: off,
    see :class:`imitate.policy.JSGatedPolicy`)."""
    from imitate.collect import EvalResult, LocalRollouts
    from imitate.drift import action_flip_rate
    from imitate.environments import env_name
    from imitate.spaces import CategoricalHead

    runner: Rollouts = rollouts or LocalRollouts()
    check_js_gate(js_gate)
    discrete = isinstance(policy.head, CategoricalHead)
    if js_gate and not discrete:
        raise ImitateError("--js-gate needs a policy with a Discrete action space")
    if not discrete:
        result = runner.evaluate(policy, env, episodes, seed, progress=progress)
        return {"env": env_name(env), **result.to_json()}
    actor: Policy = policy  # record the actions too, for the flip rate
    if js_gate:
        from imitate.policy import JSGatedPolicy

        actor = JSGatedPolicy.wrap(policy, js_gate)
    episodes_data = runner.collect(
        actor, env, episodes, seed, seeding="per-episode", progress=progress, desc="eval"
    )
    result = EvalResult(episodes_data.episode_returns, episodes_data.episode_lengths, seed)
    return {
        "env": env_name(env),
        **result.to_json(),
        "js_gate": js_gate,
        "action_flip_rate": action_flip_rate(episodes_data.actions, episodes_data.episode_starts),
    }


def calibration_expert(expert: str | None, recorded: dict[str, Any]) -> tuple[str, str] | str:
    """The calibration labels' expert and where it came from: ``expert`` (``--expert``),
    else the expert recorded with the policy if it is a shipped name (a checkpoint never
    makes imitate load a file or import code: a recorded path could be anybody's); else
    why there is none."""
    if expert is not None:
        return expert, "--expert"
    info = recorded.get("expert_info") or {}
    spec = info.get("spec") or recorded.get("expert")
    if spec in SHIPPED_EXPERT_NAMES:
        return str(spec), "recorded with the policy"
    if not spec or spec in ("policy", "dagger", "teacher", "unknown"):
        return "no expert recorded with the policy: pass --expert to calibrate"
    return (
        f"the recorded expert {spec!r} is a file or code, which a checkpoint never makes "
        f"imitate load: pass --expert {spec} to calibrate against it"
    )


def calibration_report(
    policy: NumpyMLPPolicy | MLPPolicy,
    expert: Policy,
    env_id: EnvLike,
    seed: int,
    figure: Path | None = None,
) -> dict[str, Any]:
    """ECE, Brier and NLL (bits per action) of the policy on its own states, expert-labelled;
    with ``figure``, also the reliability diagram there. Any observation space (an encoded
    policy's logits); a privileged expert (:mod:`imitate.privileged`) labels the states
    during the policy's rollout, as it cannot label recorded observations."""
    import numpy as np

    from imitate.calibration import brier_score, expected_calibration_error, softmax_and_nll
    from imitate.collect import collect
    from imitate.spaces import CategoricalHead

    if not isinstance(policy.head, CategoricalHead):
        raise ImitateError("calibration needs a policy with a Discrete action space")
    from imitate.privileged import PrivilegedMixture, is_privileged

    if is_privileged(expert):  # it labels the policy's states as the policy drives
        driver: Any = PrivilegedMixture(expert, policy, 0.0, np.random.default_rng(seed))  # type: ignore[arg-type]
        data = collect(driver, env_id, CALIBRATION_EPISODES, seed, max_steps=CALIBRATION_MAX_STEPS)
        states, expert_actions = data.obs, data.actions
    else:
        states = collect(
            policy, env_id, CALIBRATION_EPISODES, seed, max_steps=CALIBRATION_MAX_STEPS
        ).obs
        expert_actions = expert.act(states)
    labels = np.asarray(expert_actions) - policy.head.start
    probs, nll = softmax_and_nll(policy.logits(states), labels)
    extra = {}
    if figure is not None:
        from imitate.plots import plot_reliability

        extra["reliability_figure"] = str(plot_reliability(probs, labels, figure))
    return {
        **extra,
        "states": len(labels),
        "ece": expected_calibration_error(probs, labels),
        "ece_adaptive": expected_calibration_error(probs, labels, adaptive=True),
        "brier": brier_score(probs, labels),
        "nll_bits_per_action": nll / np.log(2.0),
        "accuracy": float((probs.argmax(1) == labels).mean()),
    }


def evaluate_checkpoint(
    path: Path,
    env: EnvLike | None = None,
    episodes: int = 50,
    seed: int = EVAL_SEED,
    js_gate: float = 0.0,
    expert: str | None = None,
    resolve: Callable[[str, EnvLike], Policy] | None = None,
    out_dir: Path | None = None,
    rollouts: Rollouts | None = None,
    progress: bool = False,
    warn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """``imitate eval --policy``: the checkpoint at ``path`` (numpy inference, torch is not
    loaded) on ``env`` (default: the env it records, with its kwargs), as
    :func:`evaluate_policy`; a Discrete policy is also calibrated against ``expert``
    (default: the expert it records, if a shipped name; see :func:`calibration_expert`),
    resolved by ``resolve(name, env)`` (e.g. :func:`agents.registry.resolve_expert`; None:
    no calibration). With ``out_dir``: eval.json and reliability.png there.

    An ``env`` with other spaces than the policy's raises ``EnvError``; another env id with
    the same spaces is evaluated, with one line to ``warn`` naming both. The expert is
    resolved before any episode: an ``expert`` that fails is an error, a recorded one that
    is not available for ``env`` (no zoo expert for it, ...) skips calibration with a note."""
    from imitate.jobs import check_policy_env, env_as_trained, say_other_env
    from imitate.runtime import PolicyMeta, numpy_policy, read_checkpoint
    from imitate.spaces import CategoricalHead

    checkpoint = read_checkpoint(path)  # one read: weights and PolicyMeta
    policy: Any
    if checkpoint.get("kind") == "encoded":  # an observation encoder: rebuilt with torch
        from imitate.encoded import encoded_policy_from_checkpoint

        policy = encoded_policy_from_checkpoint(checkpoint, path).numpy_snapshot()
    else:
        policy = numpy_policy(checkpoint, str(path))
    meta = PolicyMeta.from_header(checkpoint)
    env = env_as_trained(meta, env)  # with the kwargs it was trained with
    if env is None:
        raise ImitateError(f"{path} does not record its env: pass --env")
    check_policy_env(policy, env, str(path))
    if warn is not None:
        say_other_env(meta, env, str(path), "evaluated", warn)
    calibration: dict[str, Any] | None = None
    labeller: tuple[str, str, Policy] | None = None
    if not isinstance(policy.head, CategoricalHead):  # said, so --expert is not silently unused
        calibration = {
            "skipped": f"{type(policy.head).__name__.removesuffix('Head')} head: calibration "
            "(ECE, Brier, reliability) is measured for Discrete actions only"
        }
    elif resolve is not None:
        labels = calibration_expert(expert, meta.to_config())
        if isinstance(labels, str):
            calibration = {"skipped": labels}
        else:
            try:
                labeller = (*labels, resolve(labels[0], env))
            except ImitateError as exc:
                if labels[1] == "--expert":
                    raise
                calibration = {
                    "skipped": f"recorded expert {labels[0]!r}: {exc}; pass --expert to calibrate"
                }
    out = evaluate_policy(policy, env, episodes, seed, js_gate, rollouts, progress)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    if labeller is not None:
        name, origin, labelling = labeller
        figure = None if out_dir is None else out_dir / "reliability.png"
        report = calibration_report(policy, labelling, env, seed, figure)
        calibration = {"expert": name, "expert_from": origin, **report}
    if calibration is not None:
        out["calibration"] = calibration
    if out_dir is not None:
        from imitate.fileio import write_json

        write_json(out_dir / "eval.json", out)
    return out
