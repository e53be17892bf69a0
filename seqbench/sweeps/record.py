"""The study record: what a sweep stores on each Optuna study, as one versioned schema.

A sweep keeps everything it decides in its Optuna storage, beside the trials: the protocol it
ran under, its seeds, the selection and the final runs. Reports, `publish` and a resumed
sweep read that back, so its keys are a data format. This module is the only place that
knows them: `read` turns a study's user attributes into a `StudyRecord`, and the `write_*`
functions are the only writers. docs/architecture.md documents the schema.

Version 2 (this seqbench) adds, to what version 1 recorded, `version`, `repeat` (the
search's repetition, `seqbench sweep --repeats`), `seeding` (the sweep's SeedSequence,
`seqbench.sweeps.seeds`), the selection rule's minimum of paired values and the finals'
thread count. Studies written before (the ones published in results/) carry no `version`
and are version 1; `read` migrates them in memory, filling each missing field with what
those sweeps actually did (`_migrate_v1`), and never rewrites them, so a published journal
reads, and rebuilds its tables, byte for byte as before.

The keys stay flat user attributes, one per final run (`final_seed<N>`), because workers in
other processes and on other machines write finals at the same time, and Optuna sets one
attribute atomically but would lose one of two writers of a shared dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqbench.errors import SeqbenchError
from seqbench.sweeps import seeds

VERSION = 2
#: Fewest paired re-run values (seeds x folds) for the one-standard-error rule: with two,
#: as sweeps of version 1 used on single-split datasets, its standard error has one degree
#: of freedom and the rule decides on noise.
MIN_PAIRS = 5
FINAL_PREFIX = "final_seed"
RERUN_PREFIX = "rerun_"
REPEAT_PREFIX = "repeat-"

# Trial user attributes (the schema's per-trial part).
#: The `--set` settings the trial trained with (its Optuna params are the searched part).
SETTINGS = "settings"
DEFAULTS = "defaults"
REASON = "reason"
RUN_DIR = "run_dir"
#: Reason recorded on a trial another worker made unnecessary (not counted as a failure).
SURPLUS = "surplus: the budget was reached by another worker"


@dataclass(frozen=True)
class Protocol:
    """How a study's trials were searched and selected; a resumed sweep and a sibling cell
    added later must match it (`seqbench.sweeps.studies`)."""

    folds: int
    top: int
    rerun_seeds: int
    startup_trials: int | None
    #: The pruner compares each trial's best value so far (`seqbench.sweeps.pruning`).
    pruning_sees_best_so_far: bool
    #: Fewest paired re-run values the one-standard-error rule needs (see `MIN_PAIRS`).
    min_pairs: int
    #: Intra-op threads every final run of the study uses (None: not fixed, version 1).
    threads: int | None


@dataclass(frozen=True)
class Selection:
    """The selection step's outcome: each re-run candidate's mean validation value, the
    standard error of the paired difference the rule compared, the chosen trial, and which
    rule chose it (in words, for reports)."""

    chosen: int
    means: Mapping[int, float] = field(default_factory=dict)
    standard_error: float | None = None
    rule: str | None = None


@dataclass(frozen=True)
class Final:
    """One final run: its seed, its run folder as recorded, the trial it re-trained, and
    the metrics its run record ended with."""

    seed: int
    run_dir: str
    trial: int | None
    metrics: Mapping[str, Any]
    #: The spec it trained (`RunSpec.to_dict()`), so that a worker on another machine, which
    #: cannot see the run folder, knows it is done (None: recorded before seqbench kept it).
    spec: Mapping[str, Any] | None = None
    #: The machine that trained it (None: recorded before seqbench kept it).
    host: str | None = None


@dataclass(frozen=True)
class StudyRecord:
    """Everything a sweep recorded on one study (one cell, one repeat of its search)."""

    version: int
    task: str
    dataset: str
    cell: str
    repeat: int
    primary_metric: str
    direction: str
    selection_metric: str
    selection_direction: str
    #: The `seqbench sweep` command that reproduces (or resumes) the study.
    command: str
    #: The `SweepPlan` it ran under, as plain data ({} where not recorded).
    plan: Mapping[str, Any]
    plugins: Mapping[str, Any]
    protocol: Protocol | None
    seeding: seeds.SeedTree | None
    #: Seeds by stage, for reports ("final" always, where the study names them).
    seeds: Mapping[str, list[int]]
    selection: Selection | None
    refit_epochs: int | None
    #: The final runs the reports count, in seed order.
    finals: tuple[Final, ...]
    #: Each selection re-run's validation values per fold, by (trial, re-run index); None
    #: where that seed diverged. Recorded by the worker that trained it, so that the choice,
    #: made wherever, reads them without the run folders.
    reruns: Mapping[tuple[int, int], list[float] | None] = field(default_factory=dict)

    @property
    def final_seeds(self) -> list[int]:
        """The final seeds the sweep planned (those recorded, for a study that lists none)."""
        return list(self.seeds.get("final", [final.seed for final in self.finals]))

    @property
    def output_dir(self) -> str | None:
        return self.plan.get("output_dir")


def is_study_record(attrs: Mapping[str, Any]) -> bool:
    """Whether a study's attributes describe a sweep's study (a study another tool made in
    the same storage, or one not yet described, is not one)."""
    return "task" in attrs


def read(attrs: Mapping[str, Any]) -> StudyRecord:
    """The record in a study's user attributes (`study.user_attrs`, or a study summary's)."""
    version = attrs.get("version", 1)
    if version > VERSION:
        raise SeqbenchError(f"study record version {version} was written by a newer "
                            f"seqbench (this one reads up to {VERSION}); upgrade seqbench.")
    if version == 1:
        attrs = _migrate_v1(attrs)
    listed = attrs.get("seeds", {})
    finals = tuple(sorted(_finals(attrs, listed.get("final")), key=lambda final: final.seed))
    protocol = attrs.get("protocol")
    return StudyRecord(
        version=version, task=attrs["task"], dataset=attrs["dataset"], cell=attrs["cell"],
        repeat=attrs.get("repeat", 0), primary_metric=attrs["primary_metric"],
        direction=attrs["direction"], selection_metric=attrs["selection_metric"],
        selection_direction=attrs["selection_direction"], command=attrs.get("command", ""),
        plan=attrs.get("plan", {}), plugins=attrs.get("plugins", {}),
        protocol=Protocol(**protocol) if protocol is not None else None,
        seeding=seeds.from_record(attrs["seeding"]) if "seeding" in attrs else None,
        seeds=listed, selection=_selection(attrs), refit_epochs=attrs.get("refit_epochs"),
        finals=finals, reruns=_reruns(attrs))


def _migrate_v1(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Version 1 as version 2: the values those sweeps used where they recorded none.

    Version 1 selected on the task's primary metric unless it said otherwise, pruned on each
    epoch's own value unless it recorded `pruning_sees_best_so_far`, applied the
    one-standard-error rule from two paired values on, ran no repeats, fixed no thread
    count, and drew its seeds by offsets from the plan's seed.
    """
    migrated = dict(attrs)
    migrated.setdefault("selection_metric", attrs["primary_metric"])
    migrated.setdefault("selection_direction", attrs["direction"])
    recorded, plan = attrs.get("protocol"), attrs.get("plan", {})
    if recorded is not None:  # version 1's own defaults where a study recorded less
        migrated["protocol"] = {"folds": 1, "top": plan.get("top", 3),
                                "rerun_seeds": plan.get("rerun_seeds", 2),
                                "startup_trials": None, "pruning_sees_best_so_far": False,
                                **recorded, "min_pairs": 2, "threads": None}
    if "seed" in attrs.get("plan", {}):
        migrated["seeding"] = {"scheme": seeds.OFFSETS, "entropy": attrs["plan"]["seed"]}
    return migrated


def _finals(attrs: Mapping[str, Any], planned: list[int] | None) -> list[Final]:
    """The recorded finals; where the study names its final seeds, only those (a record
    left by an older protocol is not a final)."""
    found = []
    for key, value in attrs.items():
        if key.startswith(FINAL_PREFIX):
            seed = int(key.removeprefix(FINAL_PREFIX))
            if planned is None or seed in planned:
                found.append(Final(seed, value["run_dir"], value.get("trial"),
                                   value.get("metrics", {}), value.get("spec"),
                                   value.get("host")))
    return found


def _reruns(attrs: Mapping[str, Any]) -> dict[tuple[int, int], list[float] | None]:
    found = {}
    for key, values in attrs.items():
        if key.startswith(RERUN_PREFIX):
            trial, _, index = key.removeprefix(RERUN_PREFIX).partition("_")
            found[int(trial), int(index)] = values
    return found


def _selection(attrs: Mapping[str, Any]) -> Selection | None:
    if attrs.get("selected_trial") is None:
        return None
    return Selection(chosen=attrs["selected_trial"],
                     means={int(number): mean for number, mean in
                            attrs.get("selection", {}).items()},
                     standard_error=attrs.get("selection_standard_error"),
                     rule=attrs.get("selection_rule"))


def relocated(run_dir: str, output_dir: str | None, storage_url: str) -> str:
    """Where a final run's record is read from: beside the journal when a sweep folder was
    moved or published there (e.g. into results/, `seqbench publish`), else as recorded.

    The copy beside the journal wins even where the recorded folder still exists: on the
    machine that ran the sweep, that folder may since hold other finals (the same command
    re-run with other options), while the journal's copy is what was published with it.
    """
    if output_dir is None or "://" in storage_url:
        return run_dir
    try:
        inside = Path(run_dir).relative_to(output_dir)
    except ValueError:
        return run_dir
    moved = Path(storage_url).parent / inside
    return str(moved) if moved.is_dir() else run_dir


# ---- writing (a sweep's own stages are the only callers) ----


def describe(study: Any, record: StudyRecord) -> None:
    """Write a new study's record (before its first trial)."""
    values = {
        "version": VERSION, "task": record.task, "dataset": record.dataset,
        "cell": record.cell, "repeat": record.repeat, "primary_metric": record.primary_metric,
        "direction": record.direction, "selection_metric": record.selection_metric,
        "selection_direction": record.selection_direction, "command": record.command,
        "plan": dict(record.plan), "plugins": dict(record.plugins),
        "seeding": record.seeding.recorded(), "seeds": dict(record.seeds),
        "protocol": vars(record.protocol).copy(),
    }
    for key, value in values.items():
        study.set_user_attr(key, value)


def write_plan(study: Any, plan: Mapping[str, Any], command: str) -> None:
    """A resumed study whose finals the new options change (`--refit`, a larger budget)
    records the plan and command that now reproduce it."""
    study.set_user_attr("command", command)
    study.set_user_attr("plan", dict(plan))


def write_selection(study: Any, selection: Selection) -> None:
    """Record the selection (nothing is appended when a resumed sweep chose the same)."""
    error = selection.standard_error
    values = {"selection": {str(number): mean for number, mean in selection.means.items()},
              "selection_standard_error": error if error is not None and math.isfinite(error)
              else None,
              "selection_rule": selection.rule, "selected_trial": selection.chosen}
    for key, value in values.items():
        if study.user_attrs.get(key, ...) != value:
            study.set_user_attr(key, value)


def write_refit_epochs(study: Any, epochs: int) -> None:
    study.set_user_attr("refit_epochs", epochs)


def write_final(study: Any, final: Final) -> None:
    value = {"run_dir": final.run_dir, "trial": final.trial, "metrics": dict(final.metrics)}
    if final.spec is not None:
        value.update(spec=dict(final.spec), host=final.host)
    study.set_user_attr(f"{FINAL_PREFIX}{final.seed}", value)


def write_rerun(study: Any, trial: int, index: int, values: list[float] | None) -> None:
    """One selection re-run's values (one key each, as the finals: workers write at once)."""
    study.set_user_attr(f"{RERUN_PREFIX}{trial}_{index}", values)


# ---- names: STUDY/TASK/DATASET/CELL, and /repeat-R for the repeats after the first ----


def study_name(prefix: str, task: str, dataset: str, cell: str, repeat: int = 0) -> str:
    name = f"{prefix}/{task}/{dataset}/{cell}"
    return name if repeat == 0 else f"{name}/{REPEAT_PREFIX}{repeat}"


def studies_named(study_prefix: str, names: list[str], storage_url: str) -> list[str]:
    """The study names under the sweeps `study_prefix` names ("a,b": several), each of which
    must exist: a mistyped one would otherwise be left out of the report without a word."""
    wanted = study_prefix.split(",")
    found = {name.split("/")[0] for name in names}
    missing = [prefix for prefix in wanted if prefix not in found]
    if missing and found:
        raise SeqbenchError(f"no '{missing[0]}' studies in '{storage_url}'; its sweeps are "
                            f"{', '.join(sorted(found))}: pick them with --study NAME "
                            "(several: --study a,b).")
    if missing:
        raise SeqbenchError(f"'{storage_url}' holds no studies yet; run `seqbench sweep` "
                            "with this --storage first.")
    return [name for name in names if name.split("/")[0] in wanted]


def parse_name(name: str) -> tuple[str, int]:
    """(cell, repeat) of a study name, from the part after STUDY/TASK/DATASET/."""
    parts = name.split("/")
    if len(parts) == 5 and parts[4].startswith(REPEAT_PREFIX):
        return parts[3], int(parts[4].removeprefix(REPEAT_PREFIX))
    return parts[-1], 0


# ---- trials ----


def trial_settings(trial: Any) -> dict[str, Any]:
    """The settings a trial trained with (its searched params where none were recorded)."""
    return dict(trial.user_attrs.get(SETTINGS, trial.params))


def is_defaults(trial: Any) -> bool:
    """Whether the trial is the task's default configuration (every search's first)."""
    return bool(trial.user_attrs.get(DEFAULTS))


def is_surplus(trial: Any) -> bool:
    return trial.user_attrs.get(REASON) == SURPLUS
