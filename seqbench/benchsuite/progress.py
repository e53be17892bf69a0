"""Where a suite stands, read from its storage without changing anything there.

A suite runs for days, across sittings and machines, and the workers' own lines scroll
past on whichever machine printed them. `seqbench suite status` answers "how far is it?"
from the one thing every worker shares, the storage: each dataset's claim (done, being
swept and by whom, begun and left, or not begun) and, per cell, the search trials and
final runs recorded against the budget, counted as `seqbench status` counts a sweep's
(`seqbench.sweeps.progress`). It only reads: a worker releases a dead worker's
claim when it next looks for work, so until then that claim still shows as being swept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seqbench.benchsuite.spec import Suite, SuiteDataset


@dataclass(frozen=True)
class CellProgress:
    """One cell's studies on one dataset: search trials finished (completed or pruned, over
    every repeat) and final runs recorded."""

    cell: str
    trials: int
    finals: int


@dataclass(frozen=True)
class DatasetProgress:
    dataset: SuiteDataset
    #: "done", "being swept by HOST:PID", "begun, no worker on it" or "not begun".
    state: str
    cells: tuple[CellProgress, ...]
    #: The whole dataset's estimated core-hours for the required cells (`seqbench suite
    #: list`'s estimate; None where its epoch times are not measured).
    hours: float | None = None

    @property
    def hours_left(self) -> float | None:
        """The estimate scaled by the share of trials and finals still to run (0 once
        done): rough, since the selection's re-runs are not counted, but it says which
        datasets the remaining time goes to."""
        if self.state == "done":
            return 0.0
        if self.hours is None:
            return None
        (trials, planned_trials), (finals, planned_finals) = self.trials, self.finals
        return self.hours * (1 - (trials + finals) / max(1, planned_trials + planned_finals))

    @property
    def trials(self) -> tuple[int, int]:
        """Search trials finished over every cell, and the budget's."""
        planned = self.dataset.trials * self.dataset.repeats * len(self.cells)
        return sum(c.trials for c in self.cells), planned

    @property
    def finals(self) -> tuple[int, int]:
        """Final runs recorded over every cell and repeat, and the budget's."""
        planned = self.dataset.seeds * self.dataset.repeats * len(self.cells)
        return sum(c.finals for c in self.cells), planned


def claim_state(trials: list[Any]) -> str:
    """A dataset's state from its claims study's trials, in words, naming the worker that
    holds it."""
    from optuna.trial import TrialState

    from seqbench.benchsuite.claims import State, classify
    from seqbench.sweeps.storage import WORKER_ATTR

    found = classify(trials)
    if found is State.DONE:
        return "done"
    if found is State.HELD:
        holder = next(t for t in trials if t.state is TrialState.RUNNING)
        return f"being swept by {holder.user_attrs.get(WORKER_ATTR, 'a worker')}"
    return "begun, no worker on it" if trials else "not begun"


def progress(suite: Suite, study: str, url: str) -> list[DatasetProgress]:
    """Every dataset of `suite` as the storage at `url` has it, for the cells the suite
    study was begun with (see the module docstring)."""
    import optuna

    from seqbench.benchsuite import priced
    from seqbench.benchsuite.claims import claims_name
    from seqbench.benchsuite.record import recorded_cells
    from seqbench.sweeps import record
    from seqbench.sweeps.progress import study_progress
    from seqbench.sweeps.storage import open_existing

    storage = open_existing(url, f"no storage at '{url}': suite '{suite.name}' has not run "
                            "there (give the --storage or --output-dir its workers were given).")
    names = set(optuna.get_all_study_names(storage))
    cells = recorded_cells(storage, study, names) or \
        suite.cells + suite.installed_optional_cells()

    def studies(name: str) -> list[Any]:
        return [optuna.load_study(study_name=name, storage=storage)] if name in names else []

    costs = {cost.dataset.name: cost.hours for cost in priced(suite).costs}
    found = []
    for item in suite.datasets:
        per_cell = []
        for cell in cells:
            mine = [s for repeat in range(item.repeats) for s in studies(
                record.study_name(study, item.task, item.dataset, cell, repeat))]
            counted = [study_progress(s) for s in mine if record.is_study_record(s.user_attrs)]
            per_cell.append(CellProgress(cell, sum(p.trials for p in counted),
                                         sum(p.finals for p in counted)))
        claims = studies(claims_name(study, item.task, item.dataset))
        state = claim_state(claims[0].get_trials(deepcopy=False) if claims else [])
        found.append(DatasetProgress(item, state, tuple(per_cell), costs.get(item.name)))
    return found
