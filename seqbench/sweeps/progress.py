"""Where a sweep stands, read from its storage without changing anything there.

A sweep runs for hours or days, on one machine or many, and each worker's console shows
only the jobs it took. `seqbench status` answers "how far is it, and what is left?" from
the one thing every worker shares, the storage: per study (one cell, one repeat of its
search) the search trials against the budget, the selection re-runs against those the
protocol asks for, the chosen configuration, and the final runs against the seeds planned.
It counts with the sweep's own rules (`search.counted`, `select.candidates`, `record.read`):
a selection made before the budget was raised, or among other candidates, and finals of a
trial no longer chosen are not counted, since a resumed sweep would redo them. `seqbench
suite status` counts each dataset's studies through it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seqbench.sweeps import record


@dataclass(frozen=True)
class StudyProgress:
    """One study of a sweep, as its storage has it."""

    study: str
    cell: str
    repeat: int
    #: Search trials finished (completed or pruned), and the search budget.
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
    #: Whether the search holds its budget with no trial running (a dead worker's trial
    #: on this host not counted, as the next worker to look fails it).
    searched: bool = False
    #: The search is over and no trial completed (all pruned or failed).
    nothing_completed: bool = False
    #: Training minutes still to run, summed over workers, by `minutes_left` (None before
    #: any trial has finished).
    minutes_left: float | None = None

    @property
    def stage(self) -> str:
        """The stage a resumed sweep would be in for this study: "search", "selection",
        "finals", "done", or "nothing completed" (the search is over and every trial was
        pruned or failed, so there is nothing to select or test)."""
        if not self.searched:
            return "search"
        if self.nothing_completed:
            return "nothing completed"
        if self.chosen is None:
            return "selection"
        return "finals" if self.finals < self.planned_finals else "done"


def study_progress(study: Any) -> StudyProgress:
    """One sweep study's progress (see the module docstring)."""
    from seqbench.runs import is_diverged
    from seqbench.sweeps.search import counted
    from seqbench.sweeps.select import candidates
    from seqbench.sweeps.storage import dead_here

    found = record.read(study.user_attrs)
    trials = [t for t in study.get_trials(deepcopy=False) if not record.is_surplus(t)]
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    budget = int(found.plan.get("trials", len(finished)))
    running = [t for t in trials if t.state.name == "RUNNING"]
    # a dead worker's trial on this host is failed by the next worker to look; so here
    dead = sum(dead_here(t) for t in running)
    searched = counted(study) - dead >= budget and len(running) == dead
    rerun_of = None  # version 1 kept its re-runs in their run folders, not in the study
    if searched and found.protocol and found.version > 1:
        rerun_of = candidates(study, found.protocol.top, found.protocol.rerun_seeds)
    chosen = current_choice(study, found, rerun_of) if searched else None
    finals = [f for f in found.finals if chosen is not None and f.trial in (chosen, None)]
    took = {t.number: (t.datetime_complete - t.datetime_start).total_seconds() / 60
            for t in finished if t.datetime_start and t.datetime_complete}
    cell, repeat = record.parse_name(study.study_name)
    seeds_each = 0 if found.protocol is None else found.protocol.rerun_seeds
    return StudyProgress(
        study=study.study_name, cell=cell, repeat=repeat, trials=len(finished), budget=budget,
        running=len(running) - dead, failed=sum(t.state.name == "FAIL" for t in trials) + dead,
        reruns=sum((t.number, i) in found.reruns for t in rerun_of or ()
                   for i in range(seeds_each)),
        planned_reruns=None if rerun_of is None else len(rerun_of) * seeds_each,
        chosen=chosen, finals=len(finals),
        planned_finals=len(found.final_seeds) or int(found.plan.get("seeds", 0)),
        diverged=sum(is_diverged(final.metrics) for final in finals),
        search_minutes=sum(took.values()), searched=searched,
        nothing_completed=searched and not any(t.state.name == "COMPLETE" for t in finished),
        minutes_left=minutes_left(found, finished, took, budget - len(finished)
                                  - (len(running) - dead) / 2, rerun_of, chosen, len(finals)))


def current_choice(study: Any, found: record.StudyRecord,
                   rerun_of: list[Any] | None) -> int | None:
    """The recorded selection, if a resumed sweep would keep it: made among today's
    candidates (or, with none to re-run, the best trial as it is); None otherwise."""
    from seqbench.sweeps.select import ranked

    if found.selection is None:
        return None
    if rerun_of is None:  # version 1: its selection is all it recorded
        return found.selection.chosen
    if rerun_of:
        same = set(found.selection.means) == {t.number for t in rerun_of}
        return found.selection.chosen if same else None
    best = next(iter(ranked(study)), None)
    return found.selection.chosen if best and best.number == found.selection.chosen else None


def minutes_left(found: record.StudyRecord, finished: list[Any], took: dict[int, float],
                 trials_left: float, rerun_of: list[Any] | None, chosen: int | None,
                 finals_done: int) -> float | None:
    """Training minutes a study still needs, summed over workers: a rough estimate, to plan
    a sitting by, from the only durations the storage holds, its search trials'.

    A search trial still to run (a running one counts half) takes the finished trials'
    mean (pruned ones included, as later trials will be pruned alike); a selection re-run
    takes its candidate trial's time, and a final the chosen trial's over its folds (a
    final trains once; a completed trial trained each fold to its early stop). Before the
    candidates are known, each of `top` and the defaults is taken at the completed trials'
    mean. None before any trial has finished.
    """
    import statistics

    if not took:
        return None
    completed = [took[t.number] for t in finished
                 if t.state.name == "COMPLETE" and t.number in took] or list(took.values())
    typical = statistics.fmean(completed)
    left = max(0.0, trials_left) * statistics.fmean(took.values())
    protocol = found.protocol
    folds = 1 if protocol is None else protocol.folds
    if rerun_of is None and chosen is None:
        reruns = 0 if protocol is None else (protocol.top + 1) * protocol.rerun_seeds
        left += reruns * typical
    for trial in rerun_of if rerun_of and chosen is None else ():
        done = sum((trial.number, i) in found.reruns for i in range(protocol.rerun_seeds))
        left += (protocol.rerun_seeds - done) * took.get(trial.number, typical)
    if chosen is not None:
        typical = took.get(chosen, typical)
    elif rerun_of:
        typical = statistics.fmean(took.get(t.number, typical) for t in rerun_of)
    return left + (len(found.final_seeds) - finals_done) * typical / folds


def progress(url: str, study: str) -> list[StudyProgress]:
    """Every study of the sweeps named `study` (a prefix, or several joined by commas) in
    the storage at `url`, in name order."""
    import optuna

    from seqbench.sweeps.storage import open_existing

    storage = open_existing(url, f"no sweep storage at '{url}' (give the sweep's --storage).")
    names = sorted(record.studies_named(study, [
        summary.study_name for summary in
        optuna.get_all_study_summaries(storage, include_best_trial=False)
        if record.is_study_record(summary.user_attrs)], url),
        key=lambda name: (name.split("/")[:3], record.parse_name(name)))
    return [study_progress(optuna.load_study(study_name=name, storage=storage))
            for name in names]
