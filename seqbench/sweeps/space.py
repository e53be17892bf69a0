"""The search space, derived from the hyperparameters the core and the plugins declare.

No plugin writes Optuna code: a `Param` with `tune=True` and a range (or choices) is
searched, log-uniformly when it says `log=True`. Settings the user fixes on the command line
leave the space, so every cell is searched over exactly the same remaining dimensions
(plus the extras it declares itself). A parameter whose range depends on a categorical one
(`search_by`, e.g. the learning rate on the optimizer) gets one Optuna dimension per
category (`lr[adam]`, `lr[rmsprop]`), so TPE models each range separately instead of
mixing learning rates that only make sense for different optimizers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from seqbench import registry
from seqbench.core_params import core_params_for
from seqbench.params import Param


def tunable(task: str, cell: str, dataset: str | None = None) -> dict[str, Param]:
    """Searchable parameters keyed by their `--set` name (`lr`, `cell.x`, `task.y`).

    Conditional parameters come after the parameters they depend on.
    """
    task_plugin, cell_plugin = registry.get_task(task), registry.get_cell(cell)
    groups = {"": core_params_for(task_plugin, dataset), "cell.": cell_plugin.params,
              "task.": task_plugin.params}
    space = {}
    for prefix, params in groups.items():
        for param in params:
            low, high = param.search_range
            searchable = param.choices is not None or param.type is bool or (
                param.type in (int, float) and low is not None and high is not None)
            if param.tune and searchable:
                space[prefix + param.name] = param
    return dict(sorted(space.items(), key=lambda item: item[1].search_by is not None))


def dimension(key: str, param: Param, values: Mapping[str, Any]) -> str:
    """The Optuna name of `key` given the values decided so far (`lr[adam]` when conditional)."""
    if param.search_by is None:
        return key
    return f"{key}[{values[param.search_by[0]]}]"


def suggest(trial: Any, space: Mapping[str, Param], base: Mapping[str, Any]) -> dict[str, Any]:
    """Draw one value per parameter from an Optuna trial.

    `base` holds the values of everything outside the space (the resolved spec's settings),
    which decides the range of a conditional parameter whose condition the user fixed.
    """
    values: dict[str, Any] = {}
    for key, param in space.items():
        name = dimension(key, param, {**base, **values})
        if param.choices is not None or param.type is bool:
            values[key] = trial.suggest_categorical(name, list(param.search_choices))
            continue
        low, high = param.range_given({**base, **values}.get(param.search_by[0])) \
            if param.search_by else param.search_range
        suggest_number = trial.suggest_int if param.type is int else trial.suggest_float
        values[key] = suggest_number(name, param.type(low), param.type(high), log=param.log)
    return values


def default_point(space: Mapping[str, Param], base: Mapping[str, Any]) -> dict[str, Any]:
    """The task's default configuration as Optuna parameters, to enqueue as the first trial.

    Tuning starts where an untuned run would end, so a tuned cell can never be worse on
    validation than its defaults.
    """
    return {dimension(key, param, base): base[key] for key, param in space.items()}


def without_fixed(space: Mapping[str, Param], fixed: Mapping[str, Any]) -> dict[str, Param]:
    """Drop what the user fixed (matching bare or prefixed names)."""
    bare = {key.rpartition(".")[2] for key in fixed}
    return {k: p for k, p in space.items() if k not in fixed and k.rpartition(".")[2] not in bare}
