"""Read a sweep back from its storage: one summary per cell, grouped by (task, dataset).

Reports are a pure function of the storage and the run records it points to; nothing here
trains, and nothing in the sweep formats tables. Studies are read through their record
(`seqbench.sweeps.record`), the one reader of what a sweep stored, which also migrates the
studies written by older versions (those published in results/).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqbench.errors import SeqbenchError
from seqbench.reports.items import number_in
from seqbench.runs import is_diverged
from seqbench.sweeps import record
from seqbench.sweeps.record import StudyRecord
from seqbench.sweeps.storage import open_existing


#: What a `CellSummary` reads straight from its study record.
RECORD_FIELDS = ("task", "dataset", "primary_metric", "direction", "selection_metric",
                 "selection_direction", "command", "seeds", "plugins")


@dataclass
class CellSummary:
    """What a report says about one cell: its search and its final runs."""

    cell: str
    study: Any
    #: Everything the sweep recorded on the study.
    record: StudyRecord
    #: Final run records in seed order, each with its "seed": those that were tested.
    finals: list[dict[str, Any]] = field(default_factory=list)
    #: Finals whose training diverged (no test metrics), each with its "seed" and "error".
    diverged: list[dict[str, Any]] = field(default_factory=list)
    trial_counts: dict[str, int] = field(default_factory=dict)
    #: The cell's other searches (`seqbench sweep --repeats`): repeat 1, 2, ..., each a
    #: summary of its own, with its own trials, selection and finals.
    repeats: list[CellSummary] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        """The record's own facts, read as the summary's: task, dataset, primary_metric,
        direction, selection_metric, selection_direction, command, seeds ({"final": [...]},
        and "search" and "rerun" in version 1 records) and plugins (name, distribution and
        version of the cell's and the task's code)."""
        if name in RECORD_FIELDS:
            return getattr(self.record, name)
        raise AttributeError(f"'CellSummary' object has no attribute '{name}'")

    @property
    def family(self) -> str:
        """The cell's family as its study recorded it (`Cell.family`); for a study from
        before families were recorded, the installed cell's, else "" (unknown)."""
        recorded = self.plugins.get("cell", {}).get("family")
        if recorded:
            return recorded
        from seqbench import registry

        entry = registry.plugins("cell").get(self.cell)
        return entry.plugin.family if entry is not None and entry.plugin is not None else ""

    @property
    def test_values(self) -> list[float]:
        key = f"test_{self.primary_metric}"
        return [f["metrics"][key] for f in self.finals if key in f["metrics"]]

    def selected_val(self) -> tuple[float, float]:
        """Validation value of the configuration the finals re-train: its search value and
        its mean over the selection re-run seeds (NaN where it was not re-run).

        The two side by side show the winner's curse: the search value of the best of many
        trials is optimistic, the re-runs' mean is not. Studies from before the selection
        step have no selection; their finals re-trained the best trial.
        """
        selection = self.record.selection
        if selection is None:
            try:
                return self.study.best_value, math.nan
            except ValueError:  # no completed trial
                return math.nan, math.nan
        rerun = selection.means.get(selection.chosen, math.nan)
        return self.study.get_trials(deepcopy=False)[selection.chosen].value, rerun

    def defaults_kept(self) -> bool:
        """Whether the finals re-train the task's default configuration (the selection's
        one-standard-error rule found no tuned configuration clearly better)."""
        selection = self.record.selection
        return selection is not None and record.is_defaults(
            self.study.get_trials(deepcopy=False)[selection.chosen])

    def mean_of(self, key: str) -> float:
        values = [f["metrics"][key] for f in self.finals if key in f["metrics"]]
        return sum(values) / len(values) if values else math.nan

    def trial_values(self) -> list[float]:
        """One selection value per trial that spent budget: a completed trial's value, and a
        pruned trial's best reported value (the most it showed before it was stopped).

        A search validated on k folds reports only fold 0 to the pruner, so there a pruned
        trial has one fold's best epoch, a noisier and more optimistic number than a
        completed trial's mean over folds (one Japanese Vowels fold of about 50 recordings
        reaches NLL 0.0): taken at face value it let stopped trials pass for the best of the
        search. It has no value on the completed trials' scale, and selection never picks
        it, so there it counts as the worst completed value: it spends budget, never wins.

        Failed trials and pruned ones that never reported (diverged in their first epoch)
        have no value and are left out.
        """
        from optuna.trial import TrialState

        better = min if self.selection_direction == "minimize" else max
        worse = max if better is min else min
        one_fold = self.pruned_on_one_fold()
        completed = [t.value for t in self.study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
        values = list(completed)
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)):
            reported = [v for v in trial.intermediate_values.values() if math.isfinite(v)]
            if not reported:
                continue
            if one_fold:
                values.extend([worse(completed)] if completed else [])
            else:
                values.append(better(reported))
        return [v for v in values if math.isfinite(v)]

    def pruned_on_one_fold(self) -> bool:
        """Whether the search validated on folds, so its pruned trials saw fold 0 only."""
        return self.record.protocol is not None and self.record.protocol.folds > 1

    def validation_curves(self) -> list[list[float]]:
        """The primary validation metric per epoch of every final run whose record is here."""
        curves = []
        column = f"val_{self.primary_metric}"
        for final in self.finals:
            path = Path(final["run_dir"]) / "history.csv"
            if path.is_file():
                with open(path, newline="") as handle:
                    rows = list(csv.DictReader(handle))
                curves.append([number_in(path, column, row[column]) for row in rows
                               if row.get(column)])
        return curves


def label_variants(summaries: list[CellSummary]) -> list[CellSummary]:
    """The summaries, where several sweeps tuned one cell on one dataset each named by the
    `--set` settings that tell them apart: "lstm" and "lstm[bidirectional=true]" are two
    models, compared on the same test items like any two cells. Two sweeps of one cell with
    the same settings are two tunings of one model, which one table cannot hold."""
    by_cell: dict[tuple[str, str, str], list[CellSummary]] = defaultdict(list)
    for summary in summaries:
        by_cell[(summary.task, summary.dataset, summary.record.cell)].append(summary)
    for (task, dataset, cell), same in by_cell.items():
        if len(same) == 1:
            continue
        settings = [dict(summary.record.plan.get("settings", {})) for summary in same]
        differing = sorted({key for given in settings for key in given
                            if len({repr(other.get(key)) for other in settings}) > 1})
        for index, given in enumerate(settings):
            twin = next((other for other, its in zip(same[:index], settings[:index])
                         if all(its.get(key) == given.get(key) for key in differing)), None)
            if twin is not None:
                raise SeqbenchError(
                    f"studies '{twin.study.study_name}' and '{same[index].study.study_name}' "
                    f"both tune cell '{cell}' on {task}/{dataset} with the same settings; one "
                    "table cannot hold two tunings of a model: report each --study on its own.")
            shown = [f"{key}={_setting(given[key])}" for key in differing if key in given]
            same[index].cell = f"{cell}[{', '.join(shown)}]" if shown else cell
    return summaries


def _setting(value: Any) -> str:
    """A setting as `--set` spells it (booleans lower case)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def count_trials(study: Any) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for trial in study.get_trials(deepcopy=False):
        if not record.is_surplus(trial):
            counts[trial.state.name.lower()] += 1
    return {"complete": counts["complete"], "pruned": counts["pruned"], "fail": counts["fail"]}


def final_runs(found: StudyRecord, storage_url: str) -> list[dict[str, Any]]:
    """The study's finals in seed order, each with its seed and the folder its record is
    read from."""
    return [{"run_dir": record.relocated(final.run_dir, found.output_dir, storage_url),
             "trial": final.trial, "metrics": dict(final.metrics), "seed": final.seed}
            for final in found.finals]


def collect(storage_url: str, study_prefix: str = "seqbench", task: str | None = None,
            dataset: str | None = None) -> dict[tuple[str, str], list[CellSummary]]:
    """Cell summaries of every matching study, keyed by (task, dataset)."""
    import optuna

    storage = open_existing(storage_url, f"no sweep storage at '{storage_url}' (run "
                            "`seqbench sweep` first or pass --storage).")
    grouped: dict[tuple[str, str], list[CellSummary]] = defaultdict(list)
    firsts: list[CellSummary] = []
    repeats: list[CellSummary] = []
    names = record.studies_named(study_prefix, optuna.get_all_study_names(storage),
                                 storage_url)
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        if not record.is_study_record(study.user_attrs):
            continue
        found = record.read(study.user_attrs)
        if (task and found.task != task) or (dataset and found.dataset != dataset):
            continue
        finals = final_runs(found, storage_url)
        summary = CellSummary(cell=found.cell, study=study, record=found,
                              finals=[f for f in finals if not is_diverged(f["metrics"])],
                              diverged=[f for f in finals if is_diverged(f["metrics"])],
                              trial_counts=count_trials(study))
        (repeats if found.repeat else firsts).append(summary)
    for summary in label_variants(firsts):
        grouped[(summary.task, summary.dataset)].append(summary)
    for summary in sorted(repeats, key=lambda s: s.record.repeat):
        prefix = summary.study.study_name.split("/")[0]
        first = next((c for c in grouped.get((summary.task, summary.dataset), [])
                      if c.record.cell == summary.record.cell
                      and c.study.study_name.split("/")[0] == prefix), None)
        if first is not None:  # a repeat is reported beside its first search, never alone
            summary.cell = first.cell
            first.repeats.append(summary)
    if not grouped:
        what = " ".join(filter(None, [task, dataset])) or "any task"
        raise SeqbenchError(f"no '{study_prefix}' studies for {what} in '{storage_url}'.")
    return dict(grouped)
