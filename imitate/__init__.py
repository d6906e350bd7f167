"""imitate: imitation learning and policy distillation.

Experts generate state-action datasets; behavioural cloning and DAgger
learners minimise cross-entropy against them; rollout tools measure how far
clones drift from their experts.
"""

from __future__ import annotations

__version__ = "0.1.0"

from imitate.signals import quiet_while_the_command_starts

quiet_while_the_command_starts()  # `imitate ...` only; see imitate.signals

from imitate.bc import BCConfig, BCHistory, train_bc
from imitate.collect import Backend, EvalResult, collect, evaluate
from imitate.dagger import BetaSchedule, DAggerConfig, dagger
from imitate.data import Dataset, DatasetMeta, concatenate, load_dataset
from imitate.distill import DistillConfig, distill
from imitate.errors import (
    BackendError,
    CheckpointError,
    DatasetError,
    EnvError,
    ImitateError,
    UnsupportedSpaceError,
)
from imitate.policy import (
    MLPPolicy,
    NumpyMLPPolicy,
    Policy,
    PolicyConfig,
    SoftPolicy,
    load_policy,
    save_policy,
)

__all__ = [
    "BCConfig",
    "BCHistory",
    "Backend",
    "BackendError",
    "BetaSchedule",
    "CheckpointError",
    "DAggerConfig",
    "Dataset",
    "DatasetError",
    "DatasetMeta",
    "DistillConfig",
    "EnvError",
    "EvalResult",
    "ImitateError",
    "MLPPolicy",
    "NumpyMLPPolicy",
    "Policy",
    "PolicyConfig",
    "SoftPolicy",
    "UnsupportedSpaceError",
    "__version__",
    "collect",
    "concatenate",
    "dagger",
    "distill",
    "evaluate",
    "load_dataset",
    "load_policy",
    "save_policy",
    "train_bc",
]
