"""What a suite costs on the machine its per-epoch times were measured on.

The measurements live beside the suite files, in `epoch-seconds.toml`: the seconds one
training epoch (training and validation) takes at each task's default configuration, per
(task, dataset, cell), the seconds a run spends outside its epochs (`setup`: preparing the
data, testing, the baselines; it dominates on the smallest sets), each with how it was
obtained, and the machine they were taken on.
`benchmarks/suite_epoch_seconds.py` measures them again and rewrites the file, so the
estimate rebuilds on another machine.

A sweep of one cell on one dataset makes

    runs = repeats x (trials x folds + candidates x rerun seeds x folds + final seeds)

runs of at most `epochs` epochs (plus `setup` each), where folds are what the task declares
for the dataset and the selection re-runs its candidates (the top 3 configurations and the
defaults) with the sweep's default re-run seeds: enough for 5 paired values, at least 2
(`seqbench.sweeps.plan`); `max_time` caps every run. Repeated searches that choose the same
configuration share their finals, so the finals' count is a bound too. That is an upper
bound: early stopping and pruning stop most runs well before their last epoch. How much before is measured too: the file's
`[[calibration]]` entries are sweeps this machine finished (their budgets and wall-clock
time), and each task's factor, the time its finished sweeps took over the bound for their
budgets (the median over them), scales the bound. A task with no finished sweep keeps the
bound (factor 1): how early its runs stop depends on its own patience and minimum epochs
(language modelling's Zaremba schedule never stops early), so another task's factor would
be a guess.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqbench.errors import SeqbenchError
from seqbench.benchsuite.spec import SuiteDataset, read_toml

#: The file of measurements in a folder of suites.
MEASUREMENTS = "epoch-seconds.toml"
#: Configurations the selection re-runs per cell: the sweep's top 3 and the defaults.
CANDIDATES = 3 + 1
CALIBRATION_KEYS = {"task", "dataset", "trials", "seeds", "rerun_seeds", "epochs", "jobs",
                    "wall_minutes", "cells", "source"}


@dataclass(frozen=True)
class Calibration:
    """A finished sweep: its budget, cells and wall-clock time with `jobs` workers."""

    task: str
    dataset: str
    trials: int
    seeds: int
    #: Fresh seeds per selection candidate that sweep used (2 before the default followed
    #: the folds).
    rerun_seeds: int
    epochs: int
    jobs: int
    wall_minutes: float
    cells: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Measurements:
    """Seconds per epoch by (task, dataset) and cell, the machine, and calibrations."""

    machine: str
    seconds: Mapping[tuple[str, str], Mapping[str, float]]
    how: Mapping[tuple[str, str], str]
    calibrations: tuple[Calibration, ...] = ()
    #: Seconds per run outside its epochs, by (task, dataset) (absent: not measured, 0).
    setup: Mapping[tuple[str, str], float] = field(default_factory=dict)


def read_measurements(path: Path) -> Measurements:
    """`epoch-seconds.toml`: `[machine] description`, `[TASK.DATASET] CELL = seconds` with
    a `how` string and optionally `setup` seconds, and `[[calibration]]` entries. Bad
    content is one line."""
    raw = read_toml(path)
    machine = raw.pop("machine", {}).get("description")
    if not isinstance(machine, str):
        raise SeqbenchError(f"'{path}': [machine] needs a description.")
    calibrations = []
    for index, entry in enumerate(raw.pop("calibration", [])):
        if not isinstance(entry, dict) or set(entry) != CALIBRATION_KEYS:
            raise SeqbenchError(f"'{path}' calibration[{index}] needs exactly the keys "
                                f"{', '.join(sorted(CALIBRATION_KEYS))}.")
        calibrations.append(Calibration(**{**entry, "cells": tuple(entry["cells"])}))
    seconds: dict[tuple[str, str], dict[str, float]] = {}
    how: dict[tuple[str, str], str] = {}
    setup: dict[tuple[str, str], float] = {}
    for task, datasets in raw.items():
        for dataset, cells in (datasets.items() if isinstance(datasets, dict) else ()):
            where = f"'{path}' [{task}.{dataset}]"
            if not isinstance(cells, dict) or not isinstance(cells.get("how"), str):
                raise SeqbenchError(f"{where} needs a 'how' string beside the seconds.")
            how[task, dataset] = cells["how"]
            values = {cell: value for cell, value in cells.items() if cell != "how"}
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                       for v in values.values()):
                raise SeqbenchError(f"{where}: seconds must be numbers above 0.")
            if "setup" in values:
                setup[task, dataset] = float(values.pop("setup"))
            seconds[task, dataset] = {cell: float(v) for cell, v in values.items()}
    return Measurements(machine, seconds, how, tuple(calibrations), setup)


def rerun_seeds(folds: int) -> int:
    """The sweep's default fresh seeds per selection candidate on `folds` folds."""
    from seqbench.sweeps.plan import FEWEST_RERUN_SEEDS
    from seqbench.sweeps.record import MIN_PAIRS

    return max(FEWEST_RERUN_SEEDS, math.ceil(MIN_PAIRS / folds))


def sweep_seconds(seconds: Mapping[str, float], cells: tuple[str, ...], trials: int,
                  seeds: int, epochs: int, folds: int, max_time: float | None = None,
                  setup: float = 0.0, repeats: int = 1,
                  reruns: int | None = None) -> tuple[float, float] | None:
    """Core-seconds of a sweep's epochs if no run stopped early, and of its runs' setup
    (None: a cell's epoch time is not measured). `reruns`: seeds per selection candidate
    (default: the sweep's for `folds`)."""
    if any(cell not in seconds for cell in cells):
        return None
    reruns = rerun_seeds(folds) if reruns is None else reruns
    runs = repeats * ((trials + CANDIDATES * reruns) * folds + seeds)
    per_run = {cell: epochs * seconds[cell] for cell in cells}
    if max_time is not None:
        per_run = {cell: min(value, max_time) for cell, value in per_run.items()}
    return runs * sum(per_run.values()), runs * setup * len(cells)


def folds_of(task: str, dataset: str) -> int:
    """Validation folds the task declares for the dataset (1: its own split)."""
    from seqbench import registry

    return registry.get_task(task).selection_folds.get(dataset, 1)


def factors(measurements: Measurements) -> dict[str, float]:
    """Per task: the share of the epoch bound that finished sweeps took (their wall time x
    jobs, less their runs' setup), the median over the task's calibrations (tasks without
    one are absent: factor 1)."""
    ratios: dict[str, list[float]] = {}
    for c in measurements.calibrations:
        key = (c.task, c.dataset)
        parts = sweep_seconds(measurements.seconds.get(key, {}), c.cells, c.trials, c.seeds,
                              c.epochs, folds_of(*key), setup=measurements.setup.get(key, 0.0),
                              reruns=c.rerun_seeds)
        if parts:
            epochs, setup = parts
            ratios.setdefault(c.task, []).append((c.wall_minutes * 60 * c.jobs - setup) / epochs)
    return {task: statistics.median(values) for task, values in ratios.items()}


@dataclass(frozen=True)
class DatasetCost:
    """One dataset's estimate: the bound and the calibrated estimate, in core-hours
    (None where a cell's epoch time is not measured), and the factor that scaled the
    bound's epochs."""

    dataset: SuiteDataset
    bound_hours: float | None
    hours: float | None
    factor: float
    how: str


def estimate(datasets: tuple[SuiteDataset, ...], cells: tuple[str, ...],
             measurements: Measurements) -> list[DatasetCost]:
    """The cost of comparing `cells` on each dataset with its budget."""
    scale = factors(measurements)
    costs = []
    for item in datasets:
        key = (item.task, item.dataset)
        parts = sweep_seconds(measurements.seconds.get(key, {}), cells, item.trials,
                              item.seeds, item.epochs, folds_of(*key), item.max_time,
                              measurements.setup.get(key, 0.0), item.repeats)
        factor = scale.get(item.task, 1.0)
        bound = None if parts is None else sum(parts) / 3600
        hours = None if parts is None else (factor * parts[0] + parts[1]) / 3600
        costs.append(DatasetCost(item, bound, hours, factor,
                                 measurements.how.get(key, "not measured")))
    return costs


def summary(costs: list[DatasetCost]) -> dict[str, Any]:
    """Totals: core-hours estimated and bound over the measured datasets, and which
    datasets are not measured."""
    measured = [c for c in costs if c.hours is not None]
    return {"hours": sum(c.hours for c in measured),
            "bound_hours": sum(c.bound_hours for c in measured),
            "unmeasured": [c.dataset.name for c in costs if c.hours is None]}


def format_measurements(measurements: Measurements, header: str) -> str:
    """`epoch-seconds.toml`'s text for `measurements` (what `read_measurements` reads back),
    after `header` comment lines."""
    lines = [*(f"# {line}".rstrip() for line in header.splitlines()), "",
             "[machine]", f"description = {_quoted(measurements.machine)}", ""]
    for (task, dataset), cells in sorted(measurements.seconds.items()):
        lines.append(f"[{task}.{_key(dataset)}]")
        lines += [f"{_key(cell)} = {seconds:.4g}" for cell, seconds in sorted(cells.items())]
        if (task, dataset) in measurements.setup:
            lines.append(f"setup = {measurements.setup[task, dataset]:.4g}")
        lines += [f"how = {_quoted(measurements.how[task, dataset])}", ""]
    for c in measurements.calibrations:
        lines += ["[[calibration]]", f"task = {_quoted(c.task)}",
                  f"dataset = {_quoted(c.dataset)}", f"trials = {c.trials}",
                  f"seeds = {c.seeds}", f"rerun_seeds = {c.rerun_seeds}",
                  f"epochs = {c.epochs}", f"jobs = {c.jobs}",
                  f"wall_minutes = {c.wall_minutes:g}",
                  f"cells = [{', '.join(_quoted(cell) for cell in c.cells)}]",
                  f"source = {_quoted(c.source)}", ""]
    return "\n".join(lines)


def _quoted(text: str) -> str:
    """A TOML basic string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _key(name: str) -> str:
    """A TOML key: bare where it may be, quoted otherwise."""
    bare = name and all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in name)
    return name if bare else _quoted(name)
