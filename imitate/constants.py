"""Numbers that several modules must agree on, in one place (a leaf module: no imports).

Evaluation seeds are kept apart from training seeds: every evaluation episode ``i``
resets with :data:`EVAL_SEED` ``+ i`` (CLI commands, the main job, benchmarks), so two
evaluations of one policy with the same count are the same episodes.
"""

from __future__ import annotations

EVAL_SEED = 10_000
"""First reset seed of every evaluation (episode i: ``EVAL_SEED + i``)."""

EXPERT_EVAL_EPISODES = 50
"""Episodes of the evaluation recorded with a trained zoo expert (``imitate expert train``)."""

CALIBRATION_EPISODES = 10
"""Episodes of the policy's own rollouts whose states are expert-labelled for calibration."""

CALIBRATION_MAX_STEPS = 5000
"""Step cap of those calibration rollouts."""

OWN_STATE_EPISODES = 10
"""Episodes of a student's own rollouts used for int8 ranges and QAT fine-tuning."""

SHIPPED_EXPERT_NAMES = ("heuristic", "zoo")
"""Expert names a checkpoint may record for eval's calibration default: no file paths."""

INT8_GATE_EPISODES = 30
"""Episodes of the Python gate an int8 C export's integer gate is checked along
(``--gate-episodes``)."""

INT8_MIN_PARITY = 0.99
"""Default action agreement an int8 C export's width choice must reach (``--min-parity``);
another value given to a float32 export is refused (it would be ignored)."""
