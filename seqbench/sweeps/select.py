"""Stage 2, selection: the best few configurations and the defaults, re-run on fresh seeds.

The best trial of a search is partly the luckiest: its value is biased upwards by the same
noise that picked it. Its mean over seeds it never saw is not. So the top `--top` completed
trials and the task's defaults are each re-run with the same fresh seeds (`rerun_jobs`, one
job per candidate and seed, so a one-cell stage still keeps every worker busy), and `choose`
reads those runs back through the run cache and applies the one-standard-error rule.
Every re-run mean, the standard error, the rule and the choice go into the study record.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqbench.console import console
from seqbench.sweeps import cache, record, seeds, validation
from seqbench.sweeps.plan import SweepPlan
from seqbench.sweeps.prepared import PreparedData
from seqbench.sweeps.studies import open_study
from seqbench.sweeps.workers import Job


def ranked(study: Any) -> list[Any]:
    """The study's completed trials, best first (by the study's direction)."""
    from optuna.trial import TrialState

    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    sign = 1 if study.direction.name == "MINIMIZE" else -1
    return sorted(completed, key=lambda t: sign * t.value)


def candidates(study: Any, top: int, rerun_seeds: int) -> list[Any]:
    """The completed trials that selection re-runs: the best `top` and the defaults.

    Empty when there is nothing to choose between (fewer than two candidates, or no
    re-run seeds): the best trial is then taken as it is. Given counts, not a plan, so
    that `seqbench status` counts from a study's record with the same rule.
    """
    completed = ranked(study)
    top_trials = completed[:top]
    default = next((t for t in completed if record.is_defaults(t)), None)
    chosen = top_trials + ([default] if default is not None and default not in top_trials else [])
    return chosen if len(chosen) > 1 and rerun_seeds else []


def selection_line(plan: SweepPlan) -> str:
    """What selection is about to do, counted from the studies: "the top 3" is not said
    where a study has only two configurations to choose between."""
    counts = [len(candidates(open_study(plan, cell, repeat), plan.top, plan.rerun_count()))
              for repeat in range(plan.repeats) for cell in plan.cells]
    if not any(counts):
        why = ("--rerun-seeds 0" if not plan.rerun_count()
               else "fewer than two completed configurations")
        return f"nothing to re-run ({why}); each cell's best trial is taken as it is"
    low, high = min(counts), max(counts)
    shown = f"{high}" if low == high else f"{low} to {high}"
    return (f"{shown} configurations per cell (the best completed trials, up to --top "
            f"{plan.top}, and the defaults), {plan.rerun_count()} fresh seeds each")


def rerun_folder(plan: SweepPlan, cell: str, repeat: int, trial: int, index: int) -> Path:
    return plan.folder("selection", cell, repeat) / f"trial-{trial:04d}-rerun{index}"


def rerun_jobs(plan: SweepPlan) -> list[Job]:
    """Every selection re-run of every study as its own job (candidate x fresh seed), each
    under a lock of its own, so that among many workers one trains it."""
    jobs = []
    for repeat in range(plan.repeats):
        for cell in plan.cells:
            study = open_study(plan, cell, repeat)
            for trial in candidates(study, plan.top, plan.rerun_count()):
                for i in range(plan.rerun_count()):
                    name = (f"{cell}{f'/repeat-{repeat}' if repeat else ''}"
                            f"/trial{trial.number}-rerun{i}")
                    jobs.append(Job(name, rerun, (plan, cell, repeat, trial.number, i),
                                    lock=(plan.storage, f"{study.study_name}: {name}")))
    return jobs


def rerun(plan: SweepPlan, cell: str, repeat: int, trial: int, index: int,
          data: PreparedData | None = None) -> list[float] | None:
    """One candidate trained on re-run seed `index`; its validation value per fold, or None
    when that seed diverged (a missing seed, not a failed sweep). The values are recorded in
    the study, and a recorded re-run is read back: a worker on another machine, whose run
    folders are not here, trained it already."""
    from seqbench.model import DivergedError

    study = open_study(plan, cell, repeat)
    recorded = record.read(study.user_attrs).reruns
    if (trial, index) in recorded:
        return recorded[trial, index]
    try:
        values, _ = validation.values(
            plan, rerun_requests(plan, cell, repeat, trial, index, study),
            data or PreparedData(plan.data_dir))
    except DivergedError as exc:
        console.print(f"  {cell} trial {trial} re-run {index}: diverged ({exc})")
        values = None
    record.write_rerun(study, trial, index, values)
    return values


def rerun_requests(plan: SweepPlan, cell: str, repeat: int, trial: int, index: int,
                   study: Any = None) -> list[cache.Request]:
    """The runs of re-run `index` of a candidate: one per fold, at the re-run's seeds."""
    study = study or open_study(plan, cell, repeat)
    return validation.fold_requests(
        plan, cell, record.trial_settings(study.get_trials(deepcopy=False)[trial]),
        rerun_folder(plan, cell, repeat, trial, index), record.read(study.user_attrs).seeding,
        (seeds.RERUN, repeat, index), {"study": study.study_name, "trial": trial,
                                       "stage": "selection"})


def choose_jobs(plan: SweepPlan) -> list[Job]:
    """One choice per study, under its lock (it trains a re-run a dead worker left missing)."""
    return [Job(f"{cell}/choose", choose, (plan, cell, repeat),
                lock=(plan.storage, f"{plan.study_name(cell, repeat)}: choose"))
            for repeat in range(plan.repeats) for cell in plan.cells]


def choose(plan: SweepPlan, cell: str, repeat: int = 0) -> int | None:
    """Read every re-run back (training any a dead worker left missing), apply the rule,
    record the selection; return the chosen trial (None: no completed trial)."""
    study = open_study(plan, cell, repeat)
    completed = ranked(study)
    if not completed:
        console.print(f"[yellow]{cell}: no completed trial, so no final runs[/]")
        return None
    sign = 1 if study.direction.name == "MINIMIZE" else -1
    rerun_of = candidates(study, plan.top, plan.rerun_count())
    if not rerun_of:
        best = completed[0].number
        record.write_selection(study, record.Selection(best, rule="best trial (no re-runs)"))
        return best
    data = PreparedData(plan.data_dir)
    reruns: dict[int, dict[tuple[int, int], float]] = {}
    for trial in rerun_of:
        reruns[trial.number] = {(index, fold): value for index in range(plan.rerun_count())
                                for fold, value in enumerate(
                                    rerun(plan, cell, repeat, trial.number, index, data) or [])}
        values = list(reruns[trial.number].values())
        mean = statistics.fmean(values) if values else math.nan
        console.print(f"  {cell} trial {trial.number}: search {trial.value:.4g}, mean of "
                      f"{plan.rerun_count()} fresh seeds {mean:.4g}")
    default = next((t.number for t in rerun_of if record.is_defaults(t)), None)
    min_pairs = record.read(study.user_attrs).protocol.min_pairs
    chosen, error, rule = one_standard_error(reruns, sign, default, min_pairs)
    record.write_selection(study, record.Selection(
        chosen, {number: statistics.fmean(values.values()) if values else math.inf * sign
                 for number, values in reruns.items()}, error, rule))
    return chosen


def one_standard_error(reruns: Mapping[int, Mapping[Any, float]], sign: int,
                       default: int | None,
                       min_pairs: int = record.MIN_PAIRS) -> tuple[int, float, str]:
    """(chosen trial, standard error of the difference, the rule that chose): the best mean
    of the re-run values wins, unless it beats the default configuration's mean by no more
    than one standard error of that difference.

    `reruns` maps each trial to its re-run values keyed by (seed, fold). Breiman's
    one-standard-error rule (Hastie et al., ESL 2nd ed., section 7.10): a difference
    smaller than the noise of its estimate is no evidence, so the configuration a reader
    would run without tuning is kept. Values with the same key share a seed and a fold,
    so the error is that of the paired differences over the keys both have. With fewer
    than `min_pairs` such pairs the error is itself too noisy to decide on, and the best
    mean wins, with the rule saying so. On Japanese Vowels, a configuration whose
    cross-validated NLL beat the defaults' by less than one error tested worse than them.
    """
    means = {number: statistics.fmean(values.values())
             for number, values in reruns.items() if values}
    if not means:
        return next(iter(reruns)), math.nan, "every re-run diverged: the first candidate"
    best = min(means, key=lambda number: sign * means[number])
    if default not in means or default == best:
        return best, math.nan, "best mean of the re-runs"
    ours, theirs = reruns[best], reruns[default]
    shared = [key for key in ours if key in theirs]
    if len(shared) < max(2, min_pairs):
        return best, math.nan, (f"best mean of the re-runs: {len(shared)} paired values, "
                                f"fewer than the {min_pairs} the one-standard-error rule needs")
    differences = [ours[key] - theirs[key] for key in shared]
    error = statistics.stdev(differences) / math.sqrt(len(differences))
    kept = sign * (means[default] - means[best]) <= error
    return (default if kept else best), error, "one standard error"
