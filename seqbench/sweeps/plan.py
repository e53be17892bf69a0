"""A sweep's plan: every option of `seqbench sweep`, validated when it is made.

Like `RunSpec`, a `SweepPlan` that exists is a valid one: names, counts and settings are
checked on construction, so the command line, the Python API and the tests cannot start a
sweep that the first trial would refuse (a refused trial stays in the study as a failure).
What needs the storage or the data (a study recorded under other options, folds the data
cannot make) is checked by `seqbench.sweeps.studies.check` before anything is written.
It is plain data: it crosses process boundaries to the workers and is recorded, as a dict,
in every study (`seqbench.sweeps.record`).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seqbench import registry
from seqbench.config import RunSpec, build_spec
from seqbench.errors import SeqbenchError, unknown_name
from seqbench.params import check_seed, whole_number
from seqbench.sweeps import space as search_space
from seqbench.sweeps.record import MIN_PAIRS, study_name

PRUNERS = ("median", "hyperband", "none")
#: A study name is one path segment of the output folders and one `/`-part of the Optuna
#: study names that `seqbench report --study a,b` splits: no `/`, no `,`, no leading dot.
STUDY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
#: Re-run seeds on a dataset validated on k folds, when `--rerun-seeds` is not given: enough
#: for `MIN_PAIRS` paired values (5 seeds on a single split, 3 on 2 folds), and never fewer
#: than 2 seeds, so that a configuration is never judged on one seed alone.
FEWEST_RERUN_SEEDS = 2


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep worker needs, as plain data (it crosses process boundaries)."""

    task: str
    dataset: str
    cells: tuple[str, ...]
    storage: str
    trials: int = 30
    #: Final runs per cell (and per repeat).
    seeds: int = 10
    top: int = 3
    #: Fresh seeds per selection candidate; None: enough for the one-standard-error rule.
    rerun_seeds: int | None = None
    folds: int | None = None
    study: str = "seqbench"
    settings: Mapping[str, Any] = field(default_factory=dict)
    max_seconds: float | None = None
    jobs: int = 1
    #: GPUs each trial trains on with DDP (`seqbench.sweeps.gpus` gives each worker its own);
    #: more than 1 sets the runs' `devices`.
    gpus_per_trial: int = 1
    pruner: str = "median"
    param_budget: int | None = None
    #: The entropy of the sweep's SeedSequence (`seqbench.sweeps.seeds`).
    seed: int = 0
    device: str = "auto"
    output_dir: str = "sweeps"
    data_dir: str | None = None
    #: Tracker every trial, re-run and final also logs to (`seqbench.loggers`).
    logger: str | None = None
    #: Finals train on the training and validation items together (`refit_epochs`).
    refit: bool = False
    #: Independent searches per cell, each with its own sampler and trial seeds, so that a
    #: report can tell the search's own variance from the training seeds'.
    repeats: int = 1
    #: Intra-op threads of every training process, as `seqbench.threads` decided them.
    threads: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "cells", tuple(self.cells))
        # a plain int, as the study records it (an API caller may pass a numpy integer)
        object.__setattr__(self, "gpus_per_trial",
                           whole_number(self.gpus_per_trial, "--gpus-per-trial"))
        object.__setattr__(self, "settings", self._with_devices(dict(self.settings)))
        self._check_values()
        for cell in self.cells:  # every cell's defaults must be a valid first trial
            defaults = self.spec(cell)
            if defaults.hparams["num_nodes"] != 1:
                raise SeqbenchError("a sweep's runs train on the machine of the worker that "
                                    "takes them, so --set num_nodes must stay 1; to use many "
                                    "machines, start a sweep worker on each (README, "
                                    "\"Scaling out\").")
            if self.selection_folds() > 1:
                self.spec(cell, {**self.settings, "folds": self.selection_folds()})
            search_space.default_point(self.cell_space(cell), defaults.settings())

    def _with_devices(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The settings with `devices` set to `--gpus-per-trial` when it asks for several
        GPUs (the runs' specs, and so the cache keys and the study record, say so)."""
        per_trial = self.gpus_per_trial
        if per_trial < 1:
            raise SeqbenchError(f"--gpus-per-trial must be at least 1 (got {per_trial}).")
        if per_trial == 1:
            return settings
        if self.device == "cpu":
            raise SeqbenchError("--gpus-per-trial gives each trial GPUs, and --device cpu has "
                                "none; for several CPU processes per run use --set devices=N.")
        given = settings.get("devices")
        if given is not None and str(given) != str(per_trial):
            raise SeqbenchError(f"--gpus-per-trial {per_trial} and --set devices={given} "
                                "disagree; give one of them.")
        return {**settings, "devices": str(per_trial)}

    def _check_values(self) -> None:
        from seqbench import loggers

        loggers.check(self.logger)
        if self.pruner not in PRUNERS:
            raise unknown_name("pruner", self.pruner, PRUNERS)
        if not isinstance(self.study, str) or not STUDY_NAME.fullmatch(self.study):
            raise SeqbenchError(f"--study {self.study!r} is not a usable name: use letters, "
                                "digits, '_', '-' and '.', not starting with '.' (it names "
                                "folders).")
        check_seed(self.seed, "--seed")
        if self.rerun_seeds is not None and whole_number(self.rerun_seeds, "--rerun-seeds") < 0:
            raise SeqbenchError(f"--rerun-seeds must be 0 or more (got {self.rerun_seeds}).")
        for value, what in ((self.trials, "--trials"), (self.seeds, "--seeds"),
                            (self.jobs, "--jobs"), (self.top, "--top"),
                            (self.param_budget, "--param-budget"), (self.folds, "--folds"),
                            (self.repeats, "--repeats"), (self.threads, "--threads")):
            if value is not None and whole_number(value, what) < 1:
                raise SeqbenchError(f"{what} must be at least 1 (got {value}).")
        seconds = self.max_seconds
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(
                seconds, numbers.Real) or not seconds > 0):
            raise SeqbenchError(f"--max-time must be a positive number of seconds (got "
                                f"{seconds!r}).")
        if "refit" in self.settings:
            raise SeqbenchError("refit is a choice for the finals, not a setting of every "
                                "trial: use --refit (refit=True in seqbench.sweep).")
        if not self.cells:
            raise SeqbenchError("--cells is empty; name at least one cell.")

    def spec(self, cell: str, settings: Mapping[str, Any] | None = None,
             seed: int = 0) -> RunSpec:
        """The spec of `settings` (default: the plan's fixed settings) for `cell`."""
        return build_spec(self.task, cell, self.dataset,
                          self.settings if settings is None else settings, seed, self.device)

    def cell_space(self, cell: str) -> dict[str, Any]:
        """What this sweep searches for `cell`: declared ranges minus what the user fixed."""
        space = search_space.without_fixed(
            search_space.tunable(self.task, cell, self.dataset), self.settings)
        if self.param_budget:
            space.pop("hidden_size", None)
        return space

    def selection_folds(self) -> int:
        """Folds per validation: `--folds`, else what the task declares for the dataset."""
        if self.folds is not None:
            return self.folds
        return registry.get_task(self.task).selection_folds.get(self.dataset, 1)

    def rerun_count(self) -> int:
        """Fresh seeds per selection candidate: `--rerun-seeds`, else enough for the
        one-standard-error rule's `MIN_PAIRS` paired values (seeds x folds)."""
        if self.rerun_seeds is not None:
            return self.rerun_seeds
        return max(FEWEST_RERUN_SEEDS, math.ceil(MIN_PAIRS / self.selection_folds()))

    def startup_trials(self) -> int:
        """TPE's random start-up: a third of the budget, at least 3 (Optuna's default of 10
        turned 8-10-trial sweeps into random search)."""
        return max(3, self.trials // 3)

    def study_name(self, cell: str, repeat: int = 0) -> str:
        return study_name(self.study, self.task, self.dataset, cell, repeat)

    def folder(self, kind: str, cell: str, repeat: int = 0) -> Path:
        """Where a stage (`trials`, `selection`, `finals`) keeps a cell's run records."""
        folder = Path(self.output_dir) / kind / self.study / f"{self.task}-{self.dataset}" / cell
        return folder / f"repeat-{repeat}" if repeat else folder

    def as_dict(self) -> dict[str, Any]:
        """The plan as recorded in its studies (JSON: lists, not tuples)."""
        return {**asdict(self), "cells": list(self.cells)}

    def command(self) -> str:
        """The `seqbench sweep` command line that reproduces (or resumes) this sweep."""
        settings = dict(self.settings)
        parts = ["seqbench sweep", f"--task {self.task}", f"--dataset {self.dataset}",
                 f"--cells {','.join(self.cells)}", f"--trials {self.trials}",
                 f"--seeds {self.seeds}"]
        if "epochs" in settings:
            parts.append(f"--epochs {settings.pop('epochs')}")
        if self.max_seconds is not None:
            parts.append(f"--max-time {self.max_seconds:g}")
        optional = {"--param-budget": self.param_budget, "--folds": self.folds}
        parts += [f"{option} {value}" for option, value in optional.items() if value is not None]
        parts += ["--refit"] if self.refit else []
        parts += [f"--top {self.top}"]
        parts += [f"--rerun-seeds {self.rerun_seeds}"] if self.rerun_seeds is not None else []
        parts += [f"--repeats {self.repeats}"] if self.repeats > 1 else []
        if self.gpus_per_trial > 1:
            settings.pop("devices")
            parts.append(f"--gpus-per-trial {self.gpus_per_trial}")
        parts += [f"--pruner {self.pruner}", f"--jobs {self.jobs}", f"--seed {self.seed}",
                  f"--study {self.study}", f"--storage {self.storage}",
                  f"--output-dir {self.output_dir}"]
        parts += [f"--set {key}={value}" for key, value in settings.items()]
        parts += [f"--logger {self.logger}"] if self.logger else []
        parts += [f"--threads {self.threads}"] if self.threads else []
        return " ".join(parts)
