"""Where a sweep stands, read from its storage without changing anything there.

A sweep runs for hours or days, on one machine or many, and each worker's console shows only
the jobs it took. `seqbench status` answers "how far is it, and what is left?" from the one
thing every worker shares, the storage: per study (one cell, one repeat of its search) the
search trials against the budget, the selection re-runs against those the protocol asks for,
the chosen configuration, and the final runs against the seeds planned. It counts with the
sweep's own rules (`search.counted`, `select.candidates`, `record.read`), so what it
calls done is what a resumed sweep would skip. `seqbench suite status` counts each
dataset's studies through it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqbench.errors import SeqbenchError
from seqbench.sweeps import record


@dataclass(frozen=True)
class StudyProgress:
    """One study of a sweep, as its storage has it."""

    study: str
    cell: str
    repeat: int
    #: Search trials finished (completed or pruned; not the surplus another worker made
    #: unnecessary), and the search budget.
    trials: int
    budget: int
    running: int
    failed: int
    #: Selection re-runs recorded, and those planned (None until the study's search is
    #: finished, as the candidates are the best trials, known only then; and for a study of
    #: record version 1, which recorded its re-runs in their run folders only).
    reruns: int
    planned_reruns: int | None
    #: The configuration selection chose (a trial number), once chosen.
    chosen: int | None
    finals: int
    planned_finals: int
    diverged: int
    #: Time the finished search trials trained, summed over workers (minutes).
    search_minutes: float
    #: Training minutes still to run, summed over workers, by `minutes_left` (None before
    #: any trial has finished).
    minutes_left: float | None = None

    @property
    def stage(self) -> str:
        """"done", "finals", "selection" or "search": the stage a resumed sweep would be in
        for this study."""
        if self.planned_finals and self.finals >= self.planned_finals:
            return "done"
        if self.chosen is not None:
            return "finals"
        if self.planned_reruns is not None:
            return "selection"
        return "search"


def study_progress(study: Any) -> StudyProgress:
    """One sweep study's progress (see the module docstring)."""
    from seqbench.runs import is_diverged
    from seqbench.sweeps.search import counted
    from seqbench.sweeps.select import candidates

    found = record.read(study.user_attrs)
    trials = [t for t in study.get_trials(deepcopy=False) if not record.is_surplus(t)]
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    budget = int(found.plan.get("trials", len(finished)))
    running = sum(t.state.name == "RUNNING" for t in trials)
    planned_finals = len(found.final_seeds) or int(found.plan.get("seeds", 0))
    rerun_of = None  # version 1 kept its re-runs in their run folders, not in the study
    if counted(study) >= budget and not running and found.protocol and found.version > 1:
        rerun_of = candidates(study, found.protocol.top, found.protocol.rerun_seeds)
    took = {t.number: (t.datetime_complete - t.datetime_start).total_seconds() / 60
            for t in finished if t.datetime_start and t.datetime_complete}
    cell, repeat = record.parse_name(study.study_name)
    return StudyProgress(
        study=study.study_name, cell=cell, repeat=repeat, trials=len(finished), budget=budget,
        running=running,
        failed=sum(t.state.name == "FAIL" for t in trials),
        reruns=len(found.reruns),
        planned_reruns=None if rerun_of is None else len(rerun_of) * found.protocol.rerun_seeds,
        chosen=None if found.selection is None else found.selection.chosen,
        finals=len(found.finals), planned_finals=planned_finals,
        diverged=sum(is_diverged(final.metrics) for final in found.finals),
        search_minutes=sum(took.values()),
        minutes_left=minutes_left(found, finished, took, budget - len(finished) - running / 2,
                                  rerun_of))


def minutes_left(found: record.StudyRecord, finished: list[Any], took: dict[int, float],
                 trials_left: float, rerun_of: list[Any] | None) -> float | None:
    """Training minutes a study still needs, summed over workers: a rough estimate, to plan
    a sitting by, from the only durations the storage holds, its search trials'.

    A search trial still to run (a running one counts half) takes the finished trials' mean
    (pruned ones included, as later trials will be pruned alike); a selection re-run takes
    its candidate trial's time, and a final the chosen trial's (a completed trial trained
    to its early stop, as they do). Before the candidates are known, each of `top` and the
    defaults is taken at the completed trials' mean. None before any trial has finished.
    """
    import statistics

    if not took:
        return None
    completed = [took[t.number] for t in finished
                 if t.state.name == "COMPLETE" and t.number in took] or list(took.values())
    typical = statistics.fmean(completed)
    left = max(0.0, trials_left) * statistics.fmean(took.values())
    protocol = found.protocol
    if rerun_of is None:
        reruns = 0 if protocol is None or found.selection else \
            (protocol.top + 1) * protocol.rerun_seeds
        return left + (reruns + len(found.final_seeds) - len(found.finals)) * typical
    for trial in rerun_of if found.selection is None else ():
        done = sum(number == trial.number for number, _ in found.reruns)
        left += (protocol.rerun_seeds - done) * took.get(trial.number, typical)
    if found.selection is not None:
        typical = took.get(found.selection.chosen, typical)
    elif rerun_of:
        typical = statistics.fmean(took.get(t.number, typical) for t in rerun_of)
    return left + (len(found.final_seeds) - len(found.finals)) * typical


def progress(url: str, study: str) -> list[StudyProgress]:
    """Every study of the sweeps named `study` (a prefix, or several joined by commas) in
    the storage at `url`, in name order."""
    import optuna

    if "://" not in url and not Path(url).is_file():
        raise SeqbenchError(f"no sweep storage at '{url}' (give the sweep's --storage, or "
                            "the --output-dir it was given).")
    from seqbench.sweeps.storage import open_storage

    storage = open_storage(url)
    prefixes = study.split(",")
    names = sorted(summary.study_name for summary in
                   optuna.get_all_study_summaries(storage, include_best_trial=False)
                   if summary.study_name.split("/")[0] in prefixes
                   and record.is_study_record(summary.user_attrs))
    if not names:
        raise SeqbenchError(f"no '{study}' sweep studies in '{url}'.")
    return [study_progress(optuna.load_study(study_name=name, storage=storage))
            for name in names]
