"""Deferred imports: a module object that imports the real module on first attribute access.

Hand-written because ``importlib.util.LazyLoader`` has to import a submodule's parent
package to find it (``torch.nn.functional`` would import torch at once), and a
placeholder that resolves on first use is all the library needs: modules that use
torch only inside functions bind ``torch = lazy_module("torch")`` at run time (and the
real module under ``TYPE_CHECKING``), so importing them costs nothing until a tensor
is made. After the first access the real module's namespace is copied in, so later
attribute look-ups are plain dictionary hits.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyModule(types.ModuleType):
    """Stands in for the module ``name`` until one of its attributes is read."""

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)
        return getattr(module, attr)


def lazy_module(name: str) -> Any:
    """A placeholder for ``import name`` that imports on first attribute access."""
    return LazyModule(name)
