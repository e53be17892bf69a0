"""The checks of a plugin's declarations: what can be verified without torch or data.

Two users: the registry runs them when it loads a plugin, so a malformed third-party
plugin is reported in one line by `seqbench list` (and by any command that selects it)
instead of failing with a traceback in the middle of a run; and the conformance kit
(`seqbench.testing`) runs the same functions as its `check_params_declared` and
`check_declarations`, so an author sees exactly what the registry will refuse.
Each function returns the problems found, one sentence each; an empty list means fine.
`contract_problems` is apart: not a malformed declaration but a plugin written for another
contract (`seqbench.plugin_api`), which the registry reports as incompatible.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterable
from typing import Any

from seqbench.contracts import FAMILIES
from seqbench.core_params import CORE_PARAMS
from seqbench.errors import SeqbenchError, unknown_name
from seqbench.params import Param
from seqbench.plugin_api import PLUGIN_API, incompatibility

#: `Cell.build`'s own arguments; a declared parameter of the same name would clash.
BUILD_ARGUMENTS = ("input_size", "hidden_size", "num_layers", "dropout")
DIRECTIONS = ("minimize", "maximize")
#: Splits a task may declare drawn from the training data stratified by class.
DRAWN_SPLITS = ("valid", "test")


def valid(param: Param, value: Any) -> bool:
    """Whether `value` is accepted by `param` (its type, bounds and choices)."""
    try:
        param.coerce(value)
    except SeqbenchError:
        return False
    return True


def param_problems(params: Iterable[Param], group: str,
                   reserved: Iterable[str] = ()) -> list[str]:
    """Names that are not identifiers, repeated or reserved; search ranges a sweep cannot use."""
    params = tuple(params)
    if not all(isinstance(p, Param) for p in params):
        return [f"{group} must be seqbench.Param objects, got "
                f"{[type(p).__name__ for p in params if not isinstance(p, Param)]}"]
    names = [p.name for p in params]
    problems = [f"{group}: '{n}' is not a Python identifier" for n in names
                if not n.isidentifier() or keyword.iskeyword(n)]
    problems += [f"{group}: '{n}' is declared twice" for n in sorted(set(names))
                 if names.count(n) > 1]
    problems += [f"{group}: '{n}' clashes with build's own argument of that name"
                 for n in names if n in reserved]
    for p in params:
        if p.default is not None and p.coerce(p.default) != p.default:
            problems.append(f"{group}: {p.name}'s default {p.default!r} is really "
                            f"{p.coerce(p.default)!r}; write that")
        low, high = p.search_range
        if not (p.tune and p.type in (int, float) and low is not None and high is not None):
            continue
        if low > high:
            problems.append(f"{group}: {p.name}'s search range ({low}, {high}) has low > high")
        elif not (valid(p, low) and valid(p, high)):
            problems.append(f"{group}: {p.name}'s search range ({low}, {high}) leaves its valid "
                            f"range [{p.low}, {p.high}]")
        elif p.log and low <= 0:
            problems.append(f"{group}: {p.name}'s log-scale search range ({low}, {high}) "
                            "must be positive")
    return problems


def contract_problems(plugin: Any) -> list[str]:
    """Why a plugin (a `Cell`, a `Task` or a `Task` class) cannot work with this seqbench:
    a method the contract requires that it lacks, or a `plugin_api` it targets that this
    seqbench does not provide."""
    kind = plugin if isinstance(plugin, type) else type(plugin)
    missing = sorted(getattr(kind, "__abstractmethods__", ()))
    problems = [f"{kind.__qualname__} lacks {', '.join(name + '()' for name in missing)}, "
                f"which a Task must implement (plugin API {PLUGIN_API})"] if missing else []
    reason = incompatibility(getattr(plugin, "plugin_api", None))
    return problems + ([reason] if reason else [])


def cell_problems(cell: Any) -> list[str]:
    """What is wrong with a `Cell`'s declaration (name, summary, build, family, params)."""
    problems = [f"Cell.{attribute} must be a non-empty string, got {getattr(cell, attribute)!r}"
                for attribute in ("name", "summary")
                if not (isinstance(getattr(cell, attribute), str) and getattr(cell, attribute))]
    if not callable(cell.build):
        problems.append(f"Cell.build must be callable, got {type(cell.build).__name__}")
    if cell.family not in FAMILIES:
        problems.append(f"Cell.family must be one of {FAMILIES}, got {cell.family!r}")
    return problems + param_problems(cell.params, "Cell.params", BUILD_ARGUMENTS)


def task_problems(task: Any) -> list[str]:
    """What is wrong with a `Task`'s class-level declarations (no data is touched)."""
    problems = []
    for attribute in ("name", "summary", "primary_metric", "default_dataset"):
        value = getattr(task, attribute, None)
        if not (isinstance(value, str) and value):
            problems.append(f"Task.{attribute} must be a non-empty string, got {value!r}")
    datasets = getattr(task, "datasets", None) or {}
    if not datasets:
        problems.append("Task.datasets must name at least one dataset")
    elif getattr(task, "default_dataset", None) not in datasets:
        problems.append(f"Task.default_dataset {getattr(task, 'default_dataset', None)!r} "
                        f"is not one of Task.datasets {list(datasets)}")
    if getattr(task, "direction", None) not in DIRECTIONS:
        problems.append(f"Task.direction must be one of {DIRECTIONS}, got "
                        f"{getattr(task, 'direction', None)!r}")
    unknown = sorted(set(task.primary_metrics) - set(datasets))
    if unknown:
        problems.append(f"Task.primary_metrics names datasets the task does not have: {unknown}")
    if task.select_by is not None and (len(task.select_by) != 2
                                       or task.select_by[1] not in DIRECTIONS):
        problems.append(f"Task.select_by must be (metric, one of {DIRECTIONS}), got "
                        f"{task.select_by!r}")
    drawn = getattr(task, "stratified", ())
    if not (isinstance(drawn, tuple) and set(drawn) <= set(DRAWN_SPLITS)):
        problems.append(f"Task.stratified must be a tuple of splits among {DRAWN_SPLITS}, got "
                        f"{drawn!r}")
    if getattr(task, "composes_cells", False) and task.carry_state:
        problems.append("Task.composes_cells and Task.carry_state cannot both be true: a "
                        "network a task composes carries no state across batches")
    core = {p.name: p for p in CORE_PARAMS}
    keyed = {"dataset_defaults": task.dataset_defaults, "dataset_search": task.dataset_search,
             "selection_folds": task.selection_folds}
    for attribute, mapping in keyed.items():
        unknown = sorted(set(mapping) - set(datasets))
        if unknown:
            problems.append(f"Task.{attribute} names datasets the task does not have: {unknown}")
    overrides = [("Task.defaults", task.defaults, True), ("Task.search", task.search, False)]
    overrides += [(f"Task.dataset_defaults['{d}']", v, True)
                  for d, v in task.dataset_defaults.items()]
    overrides += [(f"Task.dataset_search['{d}']", v, False)
                  for d, v in task.dataset_search.items()]
    for where, mapping, are_values in overrides:
        for key, value in dict(mapping).items():
            if key not in core:
                problems.append(f"{where}: {unknown_name('core hyperparameter', key, core)}")
            elif are_values and not valid(core[key], value):
                problems.append(f"{where}: {key}={value!r} is not a valid value "
                                f"({core[key].describe()})")
    for group in ("params", "generate_params"):
        problems += param_problems(getattr(task, group), f"Task.{group}")
    return problems

