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
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from imitate.bc import BCConfig, train_bc
from imitate.collect import EvalResult, collect, env_spaces, evaluate
from imitate.configs import DistillConfig as DistillConfig  # re-exported
from imitate.configs import LossConfig, OptimConfig
from imitate.constants import EVAL_SEED
from imitate.dagger import DAggerConfig, PartialRoundWarning, dagger
from imitate.environments import EnvLike, env_record
from imitate.errors import ImitateError
from imitate.policy import MLPPolicy, SoftPolicy
from imitate.runs import config_to_json
from imitate.spaces import head_for_space


def resolve_temperature(teacher: Any, temperature: float | None) -> float:
    """The configured T, or the default for the teacher's kind of outputs."""
    if temperature is not None:
        return temperature
    return 0.01 if getattr(teacher, "output_kind", "logits") == "q_values" else 2.0


def distill(
    teacher: SoftPolicy,
    env_id: EnvLike,
    config: DistillConfig = DistillConfig(),
    progress: bool = False,
) -> tuple[MLPPolicy, dict[str, Any]]:
    """Train a student of ``config.student`` size to act like ``teacher`` on ``env_id``."""
    if not isinstance(teacher, SoftPolicy):
        raise ImitateError("distillation needs a teacher with logits (a SoftPolicy)")
    temperature = resolve_temperature(teacher, config.temperature)
    obs_space, action_space = env_spaces(env_id)
    head = head_for_space(action_space)
    probe = np.asarray(obs_space.sample(), dtype=np.float32)[None]
    soft_ok = teacher.logits(probe).shape[1] == head.n_outputs and head.discrete
    bc = BCConfig(
        policy=config.student,
        seed=config.seed,
        optim=OptimConfig(max_steps=config.max_steps),
        loss=LossConfig(soft_weight=config.alpha if soft_ok else 0.0, temperature=temperature),
    )
    history: dict[str, Any] = {"temperature": temperature, "soft_targets": soft_ok}
    if config.mode == "offline":
        demos = collect(teacher, env_id, config.episodes, config.seed, source="teacher")
        if soft_ok:
            demos = replace(demos, teacher_logits=teacher.logits(demos.obs).astype(np.float32))
        student, bc_history = train_bc(demos, bc, progress=progress)
        history.update(
            teacher_labels=len(demos),
            training=bc_history.summary(),
            training_records=[record.to_dict() for record in bc_history.records],
        )
    else:
        dagger_config = DAggerConfig(
            rounds=config.rounds,
            steps_per_round=config.steps_per_round,
            eval_episodes=0,
            bc=bc.with_setting("max_steps", max(1, config.max_steps // config.rounds)),
            seed=config.seed,
            soft_labels=soft_ok,
            whole_episodes=False,  # steps_per_round states on the student's own rollouts
        )
        with warnings.catch_warnings():  # distillation labels states, not episodes
            warnings.simplefilter("ignore", PartialRoundWarning)
            student, dagger_history = dagger(
                env_id, teacher, dagger_config, progress=progress, desc="distill"
            )
        history.update(teacher_labels=dagger_history.expert_labels, rounds=dagger_history.records)
    teacher_info = getattr(teacher, "provenance", None)
    teacher_info = teacher_info if isinstance(teacher_info, dict) else {}
    student.provenance = {  # into its checkpoint (PolicyMeta), as `imitate distill` records
        **env_record(env_id),
        "expert": str(teacher_info.get("spec", "teacher")),
        "expert_info": teacher_info,
        "distill": config_to_json(config),
    }
    return student, history


def agreement(teacher: Any, student: Any, obs: np.ndarray) -> float:
    """Share of states where the student's action equals the teacher's (Box: within 5 %)."""
    ours, theirs = np.asarray(student.act(obs)), np.asarray(teacher.act(obs))
    if np.issubdtype(theirs.dtype, np.floating):
        return float(np.mean(np.abs(ours - theirs).reshape(len(obs), -1).max(axis=1) < 0.05))
    return float((ours == theirs).reshape(len(obs), -1).all(axis=1).mean())


def distillation_report(
    teacher: Any,
    student: MLPPolicy,
    env_id: EnvLike,
    episodes: int = 50,
    seed: int = EVAL_SEED,
    teacher_eval: EvalResult | None = None,
) -> dict[str, Any]:
    """Returns, return retained, parameters, bytes and agreement on both state distributions.

    ``teacher_eval``: the teacher's evaluation on the same seeds, when already measured."""
    if teacher_eval is None:
        teacher_eval = evaluate(teacher, env_id, episodes, seed)
    student_eval = evaluate(student, env_id, episodes, seed)
    teacher_states = collect(teacher, env_id, 5, seed + 777).obs
    student_states = collect(student, env_id, 5, seed + 777).obs
    teacher_params = int(getattr(teacher, "n_actor_parameters", lambda: 0)())
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
        "student_bytes_float32": 4 * (student_params + 2 * student.obs_dim),
        "compression": teacher_params / student_params if student_params else float("nan"),
        "agreement_on_teacher_states": agreement(teacher, student, teacher_states),
        "agreement_on_student_states": agreement(teacher, student, student_states),
    }
