"""imitate: imitation learning and policy distillation.

Experts generate state-action datasets; behavioural cloning and DAgger
learners minimise cross-entropy against them; rollout tools measure how far
clones drift from their experts.

Names are imported on first use (PEP 562), so ``import imitate`` is cheap and
torch is loaded only by what needs it. ``import imitate`` applies the thread
policy (:func:`set_threads`: ``IMITATE_THREADS``, default 1 intra-op thread).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from imitate.signals import quiet_while_the_command_starts
from imitate.threads import init_threads, set_threads
from imitate.version import __version__

quiet_while_the_command_starts()  # the `imitate` command only; see imitate.signals

_EXPORTS = {
    "BCConfig": "imitate.configs",
    "EarlyStopConfig": "imitate.configs",
    "LossConfig": "imitate.configs",
    "OptimConfig": "imitate.configs",
    "BCHistory": "imitate.bc",
    "train_bc": "imitate.bc",
    "Backend": "imitate.backends",
    "Rollouts": "imitate.backends",
    "EvalResult": "imitate.collect",
    "collect": "imitate.collect",
    "evaluate": "imitate.collect",
    "BetaSchedule": "imitate.configs",
    "DAggerConfig": "imitate.configs",
    "dagger": "imitate.dagger",
    "Dataset": "imitate.data",
    "DatasetMeta": "imitate.data",
    "concatenate": "imitate.data",
    "load_dataset": "imitate.data",
    "DistillConfig": "imitate.configs",
    "distill": "imitate.distill",
    "BackendError": "imitate.errors",
    "CheckpointError": "imitate.errors",
    "DatasetError": "imitate.errors",
    "EnvError": "imitate.errors",
    "ImitateError": "imitate.errors",
    "UnsupportedSpaceError": "imitate.errors",
    "MLPPolicy": "imitate.policy",
    "NumpyMLPPolicy": "imitate.runtime",
    "Policy": "imitate.runtime",
    "PolicyConfig": "imitate.configs",
    "SoftPolicy": "imitate.runtime",
    "load_numpy_policy": "imitate.runtime",
    "load_policy": "imitate.policy",
    "load_policy_with_meta": "imitate.policy",
    "PolicyMeta": "imitate.runtime",
    "save_policy": "imitate.policy",
}
# Functions named like their module: the function wins on the package (as before).
_SHADOWED = frozenset({"collect", "dagger", "distill"})

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
    "EarlyStopConfig",
    "EnvError",
    "EvalResult",
    "ImitateError",
    "LossConfig",
    "MLPPolicy",
    "NumpyMLPPolicy",
    "OptimConfig",
    "Policy",
    "PolicyConfig",
    "PolicyMeta",
    "Rollouts",
    "SoftPolicy",
    "UnsupportedSpaceError",
    "__version__",
    "collect",
    "concatenate",
    "dagger",
    "distill",
    "evaluate",
    "load_dataset",
    "load_numpy_policy",
    "load_policy",
    "load_policy_with_meta",
    "save_policy",
    "set_threads",
    "train_bc",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'imitate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    if name not in _SHADOWED:
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


class _Package(types.ModuleType):
    """Keeps ``imitate.collect`` / ``.dagger`` / ``.distill`` the functions when their
    submodules are imported (the import system sets the submodule on the package)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)

    def __getattribute__(self, name: str) -> Any:
        if name in _SHADOWED:
            return __getattr__(name)
        return super().__getattribute__(name)


sys.modules[__name__].__class__ = _Package

if TYPE_CHECKING:
    from imitate.backends import Backend, Rollouts
    from imitate.bc import BCHistory, train_bc
    from imitate.collect import EvalResult, collect, evaluate
    from imitate.configs import (
        BCConfig,
        BetaSchedule,
        DAggerConfig,
        DistillConfig,
        EarlyStopConfig,
        LossConfig,
        OptimConfig,
        PolicyConfig,
    )
    from imitate.dagger import dagger
    from imitate.data import Dataset, DatasetMeta, concatenate, load_dataset
    from imitate.distill import distill
    from imitate.errors import (
        BackendError,
        CheckpointError,
        DatasetError,
        EnvError,
        ImitateError,
        UnsupportedSpaceError,
    )
    from imitate.policy import MLPPolicy, load_policy, save_policy
    from imitate.runtime import NumpyMLPPolicy, Policy, SoftPolicy, load_numpy_policy

init_threads()
