"""Distillation: shrink a teacher SoftPolicy into a small student MLP.

The student minimises ``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) +
(1 - alpha) * CE(teacher action)`` (Hinton et al. 2015): the softened teacher
distribution carries "dark knowledge", how much the teacher prefers each
non-chosen action, which hard labels throw away. The ``T^2`` factor keeps the
soft term's gradients on the scale of the hard term's as T grows. For a Q-value
teacher (DQN) the Q-values play the logits and a low T (Rusu et al. 2016 used
0.01) turns them into a sharp distribution.

Two data modes, both composed from existing pieces:

* ``offline``: states from teacher rollouts, teacher logits stored in the
  dataset, then ``train_bc`` with soft targets;
* ``on-student``: DAgger with soft labels, i.e. roll out the student and label
  its own states with the teacher's actions and logits.

Box heads distil by mean matching: the student regresses the teacher's
deterministic action (the Gaussian mean, clipped or squashed into the box as the
teacher acts) with BC's Box loss (``LossConfig.box_loss``, MSE by default), and its
std is fitted to the residuals. The temperature has no effect for Box teachers:
there is no softmax to soften, and the teacher's std is not a target (SB3 PPO's is
a state-independent exploration level, SAC's lives before the tanh squash, so
neither is the spread of the actions a student should reproduce). A Gaussian KL
with widened stds (``GaussianHead.soft_target_loss``) exists for teachers whose
outputs are in the student head's own parameterisation.

Students of any observation space: the student is what ``train_bc`` builds for the env's
observations (an :class:`~imitate.encoded.EncodedPolicy` for images, Dict, Text ...;
``config.student.cnn`` sizes its CNN). A teacher may also see *different* observations
than its student: a privileged expert that is an ordinary policy on an attribute of
``env.unwrapped`` (:class:`imitate.privileged.StateExpert`, e.g. pixel CartPole's state
expert). Then every rollout runs on the env with
:class:`~imitate.privileged.PrivilegedObservation` added, which records both views of each
state; the teacher labels (actions and logits) from the recorded attribute, and the
student is trained on the recorded observations alone (:func:`student_view`): the
teacher-student pattern of robot learning (Chen et al. 2019, "Learning by Cheating"),
with Hinton's soft targets. On-student rounds follow DAgger's default schedule (round 0:
the teacher drives; then the student drives and the teacher labels every state it
visits); they are a loop here rather than :func:`imitate.dagger.dagger`, whose learner is
trained on the observations the expert labels.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from imitate import observations as ob
from imitate.bc import BCConfig, train_bc
from imitate.collect import EvalResult, LocalRollouts, collect, env_spaces, evaluate
from imitate.configs import DEFAULT_BATCH_SIZE, LossConfig, OptimConfig, Seeding
from imitate.configs import DistillConfig as DistillConfig  # re-exported
from imitate.constants import EVAL_SEED
from imitate.dagger import DAggerConfig, PartialRoundWarning, dagger
from imitate.data import Dataset, concatenate
from imitate.drift import off_support, paired_rollouts
from imitate.drift_space import collect_states, drift_space
from imitate.environments import EnvLike, env_record
from imitate.errors import ImitateError
from imitate.policy import SoftPolicy
from imitate.privileged import (
    PRIVILEGED_KEY,
    STUDENT_KEY,
    EnvPolicy,
    OnEntry,
    both_views,
    privileged_spec,
    state_expert_view,
)
from imitate.privileged import student_view as student_view  # re-exported
from imitate.privileged import teacher_view as teacher_view  # re-exported
from imitate.runs import config_to_json
from imitate.runtime import Policy, fast_policy
from imitate.spaces import head_for_space


def resolve_temperature(teacher: Any, temperature: float | None) -> float:
    """The configured T, or the default for the teacher's kind of outputs."""
    if temperature is not None:
        return temperature
    return 0.01 if getattr(teacher, "output_kind", "logits") == "q_values" else 2.0


def distill(
    teacher: SoftPolicy | EnvPolicy,
    env_id: EnvLike,
    config: DistillConfig = DistillConfig(),
    progress: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Train a student of ``config.student`` size to act like ``teacher`` on ``env_id``.

    The student is an ``MLPPolicy`` for vector observations, else an ``EncodedPolicy``
    (typed ``Any`` as ``train_bc``'s). A privileged teacher on an attribute of the env
    (:class:`imitate.privileged.StateExpert`) labels from that attribute while its student
    sees the observations (see the module docstring)."""
    view = state_expert_view(teacher)
    if view is not None:
        return _distill_from_view(teacher, view[0], view[1], env_id, config, progress)
    if not isinstance(teacher, SoftPolicy):
        raise ImitateError("distillation needs a teacher with logits (a SoftPolicy)")
    temperature = resolve_temperature(teacher, config.temperature)
    obs_space, action_space = env_spaces(env_id)
    head = head_for_space(action_space)
    if _flat_box(obs_space):
        probe: Any = np.asarray(obs_space.sample(), dtype=np.float32)[None]
    else:
        probe = ob.batch([obs_space.sample()], ob.canonical_space(obs_space))
    soft_ok = teacher.logits(probe).shape[1] == head.n_outputs and head.discrete
    bc = _student_bc(config, soft_ok, temperature)
    # None without soft targets (a Box teacher: mean matching, where T has no effect)
    history: dict[str, Any] = {"temperature": temperature if soft_ok else None}
    history["soft_targets"] = soft_ok
    if config.mode == "offline":
        demos = collect(teacher, env_id, config.episodes, config.seed, source="teacher")
        if soft_ok:
            demos = replace(demos, teacher_logits=teacher.logits(demos.obs).astype(np.float32))
        student = _train_offline(demos, bc, progress, history)
    else:
        dagger_config = DAggerConfig(
            rounds=config.rounds,
            steps_per_round=config.steps_per_round,
            eval_episodes=0,
            bc=bc.with_setting("max_steps", max(1, config.max_steps // config.rounds)),
            seed=config.seed,
            soft_labels=soft_ok,
            whole_episodes=False,  # steps_per_round states on the student's own rollouts
            final_refit=False,  # the student's training budget is max_steps over the rounds
        )
        with warnings.catch_warnings():  # distillation labels states, not episodes
            warnings.simplefilter("ignore", PartialRoundWarning)
            student, dagger_history = dagger(
                env_id, teacher, dagger_config, progress=progress, desc="distill"
            )
        history.update(teacher_labels=dagger_history.expert_labels, rounds=dagger_history.records)
    _record_provenance(student, teacher, env_id, config)
    return student, history


def _flat_box(space: Any) -> bool:
    from imitate.encoded import needs_encoder

    return not needs_encoder(space)


def _train_offline(demos: Dataset, bc: BCConfig, progress: bool, history: dict[str, Any]) -> Any:
    """The student trained by BC on the teacher's labelled demonstrations; the labels and the
    training record go into ``history`` (both offline paths, plain and privileged)."""
    student, bc_history = train_bc(demos, bc, progress=progress)
    history.update(
        teacher_labels=len(demos),
        training=bc_history.summary(),
        training_records=[record.to_dict() for record in bc_history.records],
    )
    return student


def _student_bc(config: DistillConfig, soft: bool, temperature: float) -> BCConfig:
    return BCConfig(
        policy=config.student,
        seed=config.seed,
        # The student's own step size and minibatch for every head, Box included: students
        # of Box teachers reach 0.99-1.01 of the teacher at 3e-3 / 64 (README "Continuous
        # control"); BC's Box default (OptimConfig.resolved) was tuned on demonstrations.
        optim=OptimConfig(lr=config.lr, batch_size=DEFAULT_BATCH_SIZE, max_steps=config.max_steps),
        loss=LossConfig(soft_weight=config.alpha if soft else 0.0, temperature=temperature),
    )


def _record_provenance(student: Any, teacher: Any, env_id: EnvLike, config: DistillConfig) -> None:
    teacher_info = getattr(teacher, "provenance", None)
    teacher_info = teacher_info if isinstance(teacher_info, dict) else {}
    student.provenance = {  # into its checkpoint (PolicyMeta), as `imitate distill` records
        **env_record(env_id),
        "expert": str(teacher_info.get("spec", "teacher")),
        "expert_info": teacher_info,
        "distill": config_to_json(config),
    }


def _distill_from_view(
    teacher: Any,
    state_policy: Policy,
    attribute: str,
    env_id: EnvLike,
    config: DistillConfig,
    progress: bool,
) -> tuple[Any, dict[str, Any]]:
    """Distillation from a teacher on ``getattr(env.unwrapped, attribute)`` into a student
    on the observations (see the module docstring)."""
    temperature = resolve_temperature(state_policy, config.temperature)
    head = head_for_space(env_spaces(env_id)[1])
    spec = privileged_spec(env_id, attribute)
    on_view = OnEntry(state_policy, PRIVILEGED_KEY)
    soft_ok = bool(isinstance(state_policy, SoftPolicy) and head.discrete)
    if soft_ok:
        probe = np.zeros((1, *spec_shape(spec)), np.float32)
        soft_ok = state_policy.logits(probe).shape[1] == head.n_outputs  # type: ignore[attr-defined]
    bc = _student_bc(config, soft_ok, temperature)
    history: dict[str, Any] = {
        "temperature": temperature if soft_ok else None,  # as in distill()
        "soft_targets": soft_ok,
        "teacher_sees": attribute,
    }

    def labelled(rollout: Dataset) -> Dataset:
        states = rollout.obs[PRIVILEGED_KEY]
        data = replace(student_view(rollout, env_id), actions=np.asarray(state_policy.act(states)))
        if soft_ok:
            logits = state_policy.logits(states).astype(np.float32)  # type: ignore[attr-defined]
            data = replace(data, teacher_logits=logits)
        return data

    if config.mode == "offline":
        demos = labelled(collect(on_view, spec, config.episodes, config.seed, source="teacher"))
        student = _train_offline(demos, bc, progress, history)
    else:
        rounds: list[dict[str, Any]] = []
        parts: list[Dataset] = []
        student = None
        round_bc = bc.with_setting("max_steps", max(1, config.max_steps // config.rounds))
        for index in range(config.rounds):
            driver: Policy = on_view  # round 0: the teacher drives
            if student is not None:
                driver = OnEntry(fast_policy(student), STUDENT_KEY)
            rollout = collect(
                driver, spec, 10**9, config.seed + 1000 * index, num_envs=8,
                seeding="per-episode", source="distill", max_steps=config.steps_per_round,
            )  # fmt: skip
            parts.append(labelled(rollout))
            aggregate = concatenate(parts)
            student, bc_history = train_bc(
                aggregate, replace(round_bc, seed=config.seed + index), policy=student
            )
            rounds.append(
                {
                    "round": index,
                    "states": len(rollout),
                    "teacher_labels": len(aggregate),
                    "holdout_bits_per_action": bc_history.final.get("holdout_bits_per_action"),
                }
            )
        history.update(teacher_labels=sum(r["states"] for r in rounds), rounds=rounds)
    _record_provenance(student, teacher, env_id, config)
    return student, history


def spec_shape(spec: Any) -> tuple[int, ...]:
    """The privileged attribute's shape recorded in a :func:`privileged_spec` spec."""
    for wrapper in spec.additional_wrappers:
        if wrapper.name == "PrivilegedObservation":
            return tuple(int(s) for s in wrapper.kwargs["shape"])
    raise ImitateError(f"{spec.id}: no PrivilegedObservation wrapper")


def agreement(teacher: Any, student: Any, obs: Any) -> float:
    """Share of states where the student's action equals the teacher's (Box: within 5 %)."""
    n = ob.obs_len(obs)
    ours, theirs = np.asarray(student.act(obs)), np.asarray(teacher.act(obs))
    if np.issubdtype(theirs.dtype, np.floating):
        return float(np.mean(np.abs(ours - theirs).reshape(n, -1).max(axis=1) < 0.05))
    return float((ours == theirs).reshape(n, -1).all(axis=1).mean())


def _float_count(student: Any) -> int:
    """Parameters + normalisation buffers (what a float32 export stores)."""
    obs_dim = getattr(student, "obs_dim", None)
    if obs_dim is not None:  # MLPPolicy: mean and std of the observation
        return int(student.n_parameters() + 2 * obs_dim)
    buffers = sum(b.numel() for b in student.buffers() if b.is_floating_point())
    return int(student.n_parameters() + buffers)


def distillation_report(
    teacher: Any,
    student: Any,
    env_id: EnvLike,
    episodes: int = 50,
    seed: int = EVAL_SEED,
    teacher_eval: EvalResult | None = None,
) -> dict[str, Any]:
    """Returns, return retained, parameters, bytes and agreement on both state distributions.

    ``teacher_eval``: the teacher's evaluation on the same seeds, when already measured.
    A privileged teacher on an attribute of the env is compared with its student on
    rollouts recording both views (each acting on its own)."""
    if teacher_eval is None:
        teacher_eval = evaluate(teacher, env_id, episodes, seed)
    student_eval = evaluate(student, env_id, episodes, seed)
    view = state_expert_view(teacher)
    if view is None:
        env: EnvLike = env_id
        teacher_policy, student_policy, counted = teacher, student, teacher
    else:
        env = privileged_spec(env_id, view[1])
        teacher_policy = OnEntry(view[0], PRIVILEGED_KEY)
        student_policy, counted = OnEntry(student, STUDENT_KEY), view[0]
    teacher_states = collect(teacher_policy, env, 5, seed + 777).obs
    student_states = collect(student_policy, env, 5, seed + 777).obs
    teacher_params = int(getattr(counted, "n_actor_parameters", lambda: 0)())
    student_params = student.n_parameters()
    retained = (
        student_eval.mean_return / teacher_eval.mean_return if teacher_eval.mean_return else 1.0
    )
    if teacher_eval.mean_return < 0:  # negative returns: less negative is better
        retained = teacher_eval.mean_return / student_eval.mean_return
    return {
        "teacher_return": teacher_eval.mean_return,
        "student_return": student_eval.mean_return,
        "student_return_std": student_eval.std_return,
        "return_retained": retained,
        "teacher_actor_parameters": teacher_params,
        "student_parameters": student_params,
        "teacher_actor_bytes_float32": 4 * teacher_params,
        "student_bytes_float32": 4 * _float_count(student),
        "compression": teacher_params / student_params if student_params else float("nan"),
        "agreement_on_teacher_states": agreement(teacher_policy, student_policy, teacher_states),
        "agreement_on_student_states": agreement(teacher_policy, student_policy, student_states),
    }


class TeacherViewRollouts(LocalRollouts):
    """Local rollouts whose datasets hold ``getattr(env.unwrapped, attribute)`` as the
    observations (:func:`teacher_view`), whatever the policy sees: a student acts on the
    env's observations, a privileged expert on the env (the recording of
    :func:`imitate.privileged.both_views`). Drift needs no such rollouts: it records the
    true state itself (:func:`imitate.drift_space.collect_states`)."""

    def __init__(self, attribute: str = "state") -> None:
        self.attribute = attribute

    def collect(
        self,
        policy: Policy,
        env_id: EnvLike,
        n_episodes: int,
        seed: int,
        num_envs: int = 16,
        seeding: Seeding = "per-episode",
        source: str = "policy",
        progress: bool = False,
        max_steps: int | None = None,
        desc: str = "collect",
    ) -> Dataset:
        driver, spec = both_views(policy, env_id, self.attribute)
        data = collect(
            driver, spec, n_episodes, seed, num_envs, seeding, source, progress, max_steps, desc
        )
        return teacher_view(data)


def state_drift(
    expert: Policy,
    clone: Policy,
    env_id: EnvLike,
    episodes: int = 20,
    seed: int = EVAL_SEED,
    attribute: str = "state",
    threshold: float = 1.0,
    reference_seed: int = 0,
) -> dict[str, float]:
    """The drift of a clone that sees observations, measured on the env's ``attribute``
    (e.g. pixel CartPole's true state), in units of the expert's per-dimension state std:
    the paired-rollout summary (:func:`imitate.drift.paired_rollouts`, expert and clone
    from the same seeds, the state recorded as they run: the measure of ``imitate drift``,
    :mod:`imitate.drift_space`) and the share of the clone's states off the support of
    ``episodes`` expert episodes from ``reference_seed`` (:func:`imitate.drift.off_support`,
    calibrated on the paired expert episodes: 1 % of those lie beyond by construction)."""
    rollouts = LocalRollouts()
    expert_data, states = collect_states(rollouts, expert, env_id, episodes, seed, attribute)
    space = drift_space(expert_data, env_id, states=states, attribute=attribute)
    paired = paired_rollouts(
        expert, clone, env_id, episodes, seed, threshold, expert_data, rollouts, space, states
    )
    distance = np.nan_to_num(np.nanmean(paired.distance, axis=1), nan=0.0)
    _, reference = collect_states(rollouts, expert, env_id, episodes, reference_seed, attribute)
    assert reference is not None  # an attribute is recorded

    def rows(padded: np.ndarray) -> np.ndarray:
        flat = padded.reshape(-1, padded.shape[-1])
        return flat[~np.isnan(flat).any(axis=1)]

    support = off_support(reference, rows(paired.expert_obs), rows(paired.clone_obs))
    return {
        **paired.summary(),
        "mean_state_distance": float(distance.mean()),
        "off_support_share": float(support.mask.mean()),
    }
