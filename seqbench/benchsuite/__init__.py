"""Benchmark suites: the datasets a comparison covers, each with its budget and reason.

A suite is a TOML file (`spec.py` reads and checks it); `cost.py` estimates what it costs
from measured epoch times kept beside it. Distributions ship suites the way they ship
plugins, through an entry point, here in the `seqbench.suites` group naming a package whose
folder holds `*.toml` suite files (seqbench's own: the top-level `suites/` folder, installed
as `seqbench_suites`). A name two distributions both ship is taken from the first found.

`suites()` is the API (`sb.suites()`); `seqbench suite list` and `seqbench suite show`
print it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from seqbench.errors import SeqbenchError, unknown_name
from seqbench.benchsuite.cost import MEASUREMENTS, DatasetCost, estimate, read_measurements, summary
from seqbench.benchsuite.spec import Suite, SuiteDataset, parse_suite

GROUP = "seqbench.suites"

__all__ = ["GROUP", "Priced", "Suite", "SuiteDataset", "load_suite", "suite_files", "suites"]


def suite_files() -> dict[str, Path]:
    """Every shipped suite file by suite name (the file's stem)."""
    found: dict[str, Path] = {}
    for entry in entry_points(group=GROUP):
        module = entry.load()
        for folder in map(Path, getattr(module, "__path__", [])):
            for path in sorted(folder.glob("*.toml")):
                if path.name != MEASUREMENTS:
                    found.setdefault(path.stem, path)
    return found


def load_suite(suite: str | os.PathLike[str]) -> Suite:
    """A shipped suite by name, or a suite file by path, read and checked."""
    path = Path(suite)
    if path.suffix == ".toml":
        if not path.is_file():
            raise SeqbenchError(f"suite file '{path}' does not exist.")
        return parse_suite(path)
    shipped = suite_files()
    if str(suite) not in shipped:
        raise unknown_name("suite", suite, shipped)
    return parse_suite(shipped[str(suite)])


@dataclass(frozen=True)
class Priced:
    """A suite with the cost of each of its datasets, estimated from the measurements
    beside it (`machine` says where they were taken; None: there are none)."""

    suite: Suite
    costs: tuple[DatasetCost, ...]
    machine: str | None

    @property
    def hours(self) -> float | None:
        """Estimated core-hours over the measured datasets (None without measurements)."""
        return summary(list(self.costs))["hours"] if self.machine else None

    @property
    def unmeasured(self) -> list[str]:
        return summary(list(self.costs))["unmeasured"]


def priced(suite: Suite) -> Priced:
    """`suite` with its cost estimate for its required cells."""
    measurements_file = suite.path.parent / MEASUREMENTS
    if not measurements_file.is_file():
        return Priced(suite, (), None)
    measurements = read_measurements(measurements_file)
    return Priced(suite, tuple(estimate(suite.datasets, suite.cells, measurements)),
                  measurements.machine)


def suites() -> dict[str, Priced]:
    """The suites that ship, by name, each checked and with its estimated cost."""
    return {name: priced(parse_suite(path)) for name, path in sorted(suite_files().items())}
