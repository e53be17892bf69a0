"""Import paths that moved, kept working for a while, each read with a DeprecationWarning.

Plugins and scripts written against an earlier seqbench import from where things were:
`seqbench.data` (now `seqbench.datafiles`, since `sb.data` is the API's `seqbench data`)
and the core hyperparameter table in `seqbench.config` (now `seqbench.core_params`, which
ended an import cycle). The old paths still give the same objects and say where they went.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any


_MISSING = object()


def _moved(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new}; import it from there.", DeprecationWarning,
                  stacklevel=3)


class _Alias(ModuleType):
    """Stands in for a module that was renamed: every name read from it warns once per
    place it is read from and is the renamed module's own object."""

    def __init__(self, old: str, new: str) -> None:
        super().__init__(old)
        self._new = new

    def __getattr__(self, name: str) -> Any:
        # Only the renamed module's own public names: the import system probes dunders
        # (__path__, ...), and pickle looks names up in every module in sys.modules, and
        # neither should be warned at or handed the modules it imports (its `torch`).
        value = getattr(importlib.import_module(self._new), name, _MISSING)
        if name.startswith("_") or value is _MISSING or isinstance(value, ModuleType):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        _moved(f"{self.__name__}.{name}", f"{self._new}.{name}")
        return value


def alias(old: str, new: str) -> None:
    """Make `from OLD import NAME` work (with a warning) without binding OLD as an
    attribute of its package: `seqbench.data` stays the API function."""
    sys.modules.setdefault(old, _Alias(old, new))


def forward(module: str, moved: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that serves names moved to other modules (name -> module)."""

    def __getattr__(name: str) -> Any:
        if name not in moved:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        _moved(f"{module}.{name}", f"{moved[name]}.{name}")
        return getattr(importlib.import_module(moved[name]), name)

    return __getattr__
