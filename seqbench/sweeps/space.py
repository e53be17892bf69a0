"""The search space, derived from the hyperparameters the core and the plugins declare.

No plugin writes Optuna code: a `Param` with `tune=True` and a range (or choices) is
searched, log-uniformly when it says `log=True`. Settings the user fixes on the command line
leave the space, so every cell is searched over exactly the same remaining dimensions
(plus the extras it declares itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from seqbench import registry
from seqbench.config import core_params_for
from seqbench.params import Param


def tunable(task: str, cell: str) -> dict[str, Param]:
    """Searchable parameters keyed by their `--set` name (`lr`, `cell.x`, `task.y`)."""
    task_plugin, cell_plugin = registry.get_task(task), registry.get_cell(cell)
    groups = {"": core_params_for(task_plugin.defaults), "cell.": cell_plugin.params,
              "task.": task_plugin.params}
    space = {}
    for prefix, params in groups.items():
        for param in params:
            low, high = param.search_range
            searchable = param.choices is not None or param.type is bool or (
                param.type in (int, float) and low is not None and high is not None)
            if param.tune and searchable:
                space[prefix + param.name] = param
    return space


def suggest(trial: Any, space: Mapping[str, Param]) -> dict[str, Any]:
    """Draw one value per parameter from an Optuna trial."""
    values: dict[str, Any] = {}
    for key, param in space.items():
        if param.choices is not None:
            values[key] = trial.suggest_categorical(key, list(param.choices))
        elif param.type is bool:
            values[key] = trial.suggest_categorical(key, [False, True])
        else:
            low, high = param.search_range
            suggest_number = trial.suggest_int if param.type is int else trial.suggest_float
            values[key] = suggest_number(key, param.type(low), param.type(high), log=param.log)
    return values


def without_fixed(space: Mapping[str, Param], fixed: Mapping[str, Any]) -> dict[str, Param]:
    """Drop what the user fixed (matching bare or prefixed names)."""
    bare = {key.rpartition(".")[2] for key in fixed}
    return {k: p for k, p in space.items() if k not in fixed and k.rpartition(".")[2] not in bare}
