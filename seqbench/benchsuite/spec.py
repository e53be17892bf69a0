"""A suite file: which datasets a benchmark compares the cells on, with what budget, and why.

A suite is data, a TOML file, so that what a published comparison covered is read in one
place and changed without touching code:

    summary = "one line: what the suite is for"
    cells = ["lstm", "gru", "rnn"]          # compared on every dataset
    optional_cells = ["mingru"]             # compared where installed

    [budget]        # every dataset's budget unless the dataset gives its own
    trials = 20     # search trials per cell (completed or pruned)
    seeds = 10      # final runs per cell
    repeats = 1     # optional (default 1): independent searches per cell, `sweep --repeats`
    [full_budget]   # the protocol's full budget: what a smaller budget is "reduced" from
    trials = 30
    seeds = 10

    [[datasets]]
    task = "speech"
    dataset = "japanese-vowels"
    reason = "why this dataset is in the suite"
    epochs = 100    # optional: the task's default epochs otherwise (the full budget's too)
    max_time = 600  # optional: seconds per training run, as `sweep --max-time`

Everything is checked on reading, each problem one line naming the file and the entry:
unknown keys (a typo must not silently drop a budget), tasks, datasets and required cells
that are not installed, counts that are not whole numbers of at least 1, a dataset listed
twice, a reason left out.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from seqbench.errors import SeqbenchError, unknown_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TOP_KEYS = {"summary", "cells", "optional_cells", "budget", "full_budget", "datasets"}
BUDGET_KEYS = {"trials", "seeds"}
#: Budget keys that may be left out, with their value then.
OPTIONAL_BUDGET = {"repeats": 1}
DATASET_KEYS = {"task", "dataset", "reason", "trials", "seeds", "repeats", "epochs",
                "max_time"}


@dataclass(frozen=True)
class SuiteDataset:
    """One dataset of a suite with its whole budget (defaults filled in)."""

    task: str
    dataset: str
    reason: str
    trials: int
    seeds: int
    epochs: int
    max_time: float | None
    #: The budget it would have in full: the full budget's trials, seeds and repeats, the
    #: task's default epochs, no time limit.
    full: Mapping[str, int]
    #: Independent searches per cell (`sweep --repeats`).
    repeats: int = 1

    @property
    def name(self) -> str:
        return f"{self.task}/{self.dataset}"

    def reductions(self) -> list[str]:
        """What is smaller than the full budget, in words ("20 of 30 trials")."""
        reduced = [f"{getattr(self, key)} of {self.full[key]} {key}"
                   for key in ("trials", "repeats", "epochs", "seeds")
                   if getattr(self, key) < self.full[key]]
        return reduced + ([f"{self.max_time:g} s per run"] if self.max_time else [])


@dataclass(frozen=True)
class Suite:
    """A parsed, validated suite file."""

    name: str
    path: Path
    summary: str
    cells: tuple[str, ...]
    optional_cells: tuple[str, ...]
    datasets: tuple[SuiteDataset, ...]

    def only(self, names: Iterable[str]) -> Suite:
        """This suite with only the datasets named (TASK/DATASET; none named: all of it), so
        a part of a suite can be checked or run first; an unknown name is refused."""
        wanted = set(filter(None, names.split(",") if isinstance(names, str) else names))
        known = [item.name for item in self.datasets]
        if wanted - set(known):
            raise unknown_name("dataset", sorted(wanted - set(known))[0], known,
                               owner=f"suite '{self.name}'")
        if not wanted:
            return self
        return replace(self, datasets=tuple(d for d in self.datasets if d.name in wanted))

    def installed_optional_cells(self) -> tuple[str, ...]:
        """The optional cells this installation has (they join the comparison)."""
        from seqbench import registry

        available = registry.plugins("cell")
        return tuple(c for c in self.optional_cells
                     if c in available and available[c].plugin is not None)


def read_toml(path: Path) -> dict[str, Any]:
    """The file's tables, or one line naming the file and what is wrong with it."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SeqbenchError(f"'{path}' is not valid TOML: {exc}.") from None
    except UnicodeDecodeError:
        raise SeqbenchError(f"'{path}' is not UTF-8 text.") from None


def _refuse_unknown(where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise unknown_name("key", unknown[0], allowed, owner=where)


def _count(where: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SeqbenchError(f"{where}: {key} must be a whole number of at least 1, "
                            f"not {value!r}.")
    return value


def _seconds(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise SeqbenchError(f"{where}: max_time must be a number of seconds above 0, "
                            f"not {value!r}.")
    return float(value)


def _text(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SeqbenchError(f"{where}: {key} must be a non-empty string, not {value!r}.")
    return value.strip()


def _names(where: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SeqbenchError(f"{where}: {key} must be a list of names, not {value!r}.")
    return tuple(value)


def _budget(where: str, table: Any) -> dict[str, int]:
    if not isinstance(table, dict):
        raise SeqbenchError(f"{where} must be a table (trials = N, seeds = N[, repeats = N]).")
    _refuse_unknown(where, table, BUDGET_KEYS | set(OPTIONAL_BUDGET))
    missing = sorted(BUDGET_KEYS - set(table))
    if missing:
        raise SeqbenchError(f"{where} has no {missing[0]}.")
    given = {**OPTIONAL_BUDGET, **table}
    return {key: _count(where, key, given[key]) for key in sorted(given)}


def _dataset(where: str, entry: Any, budget: Mapping[str, int],
             full: Mapping[str, int]) -> SuiteDataset:
    from seqbench import registry

    if not isinstance(entry, dict):
        raise SeqbenchError(f"{where} must be a table ([[datasets]]).")
    _refuse_unknown(where, entry, DATASET_KEYS)
    for key in ("task", "dataset", "reason"):
        if key not in entry:
            raise SeqbenchError(f"{where} has no {key}.")
    task_name = _text(where, "task", entry["task"])
    dataset = _text(where, "dataset", entry["dataset"])
    where = f"{where} ({task_name}/{dataset})"
    try:
        task = registry.get_task(task_name)
    except SeqbenchError as exc:
        raise SeqbenchError(f"{where}: {exc}") from None
    if dataset not in task.datasets:
        problem = unknown_name("dataset", dataset, task.datasets, owner=f"task '{task_name}'")
        raise SeqbenchError(f"{where}: {problem}")
    default_epochs = task.defaults_for(dataset).get("epochs")
    if default_epochs is None and "epochs" not in entry:
        raise SeqbenchError(f"{where}: task '{task_name}' declares no default epochs; give "
                            "epochs.")
    return SuiteDataset(
        task=task_name, dataset=dataset, reason=_text(where, "reason", entry["reason"]),
        trials=_count(where, "trials", entry.get("trials", budget["trials"])),
        seeds=_count(where, "seeds", entry.get("seeds", budget["seeds"])),
        repeats=_count(where, "repeats", entry.get("repeats", budget["repeats"])),
        epochs=_count(where, "epochs", entry.get("epochs", default_epochs)),
        max_time=_seconds(where, entry["max_time"]) if "max_time" in entry else None,
        full={**full, "epochs": default_epochs or entry["epochs"]})


def parse_suite(path: Path) -> Suite:
    """Read and check the suite file at `path` (its name is the file's stem)."""
    from seqbench import registry

    raw = read_toml(path)
    where = f"'{path}'"
    _refuse_unknown(where, raw, TOP_KEYS)
    for key in ("summary", "cells", "budget", "full_budget", "datasets"):
        if key not in raw:
            raise SeqbenchError(f"{where} has no {key}.")
    cells = _names(where, "cells", raw["cells"])
    if not cells:
        raise SeqbenchError(f"{where}: cells is empty; a suite compares at least one cell.")
    for cell in cells:
        try:
            registry.get_cell(cell)
        except SeqbenchError as exc:
            raise SeqbenchError(f"{where}: cells: {exc}") from None
    budget = _budget(f"{where} [budget]", raw["budget"])
    full = _budget(f"{where} [full_budget]", raw["full_budget"])
    entries = raw["datasets"]
    if not isinstance(entries, list) or not entries:
        raise SeqbenchError(f"{where}: datasets must be one or more [[datasets]] tables.")
    datasets = [_dataset(f"{where} datasets[{i}]", entry, budget, full)
                for i, entry in enumerate(entries)]
    seen: set[str] = set()
    for index, item in enumerate(datasets):
        if item.name in seen:
            raise SeqbenchError(f"{where} datasets[{index}]: {item.name} is listed twice.")
        seen.add(item.name)
    return Suite(name=path.stem, path=path, summary=_text(where, "summary", raw["summary"]),
                 cells=cells,
                 optional_cells=_names(where, "optional_cells", raw.get("optional_cells", [])),
                 datasets=tuple(datasets))
