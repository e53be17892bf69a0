"""Run a sweep: check it, open its studies, then one job list per stage.

The protocol (what makes the winner hold up), stage by stage:
1. Search (`seqbench.sweeps.search`): every study starts with the task's default
   configuration, then TPE with a random start-up of a third of the budget.
2. Selection (`seqbench.sweeps.select`): the top `--top` configurations and the defaults are
   re-run on fresh seeds; the one-standard-error rule chooses.
3. Finals (`seqbench.sweeps.finals`): the chosen configuration is trained with `--seeds`
   seeds apart from every search and selection seed, and tested once each.
With `--repeats R` the whole search and selection run R times, each with its own seeds.

Every stage is a list of jobs that `seqbench.sweeps.workers.run_jobs` runs, in this process
when `--jobs` is 1 and in that many worker processes otherwise: one code path either way.
Each job is idempotent (its runs go through the run cache, its results into the study
record), so re-running the same command only does what is missing, and a job that dies is
simply run again.
"""

from __future__ import annotations

from seqbench.console import console
from seqbench.errors import SeqbenchError
from seqbench.sweeps import studies
from seqbench.sweeps.finals import final_jobs
from seqbench.sweeps.plan import SweepPlan
from seqbench.sweeps.search import MAX_FAILURES_IN_A_ROW, search
from seqbench.sweeps.select import choose_jobs, rerun_jobs, selection_line
from seqbench.sweeps.workers import Job, run_jobs


def run_sweep(plan: SweepPlan) -> None:
    """Check the plan against its storage and data, open its studies, run every stage."""
    studies.check(plan)
    check_data(plan)
    for repeat in range(plan.repeats):
        for cell in plan.cells:
            studies.create(plan, cell, repeat)
    console.print(f"[bold]search[/]: {plan.trials} trials per cell"
                  + (f", {plan.repeats} times" if plan.repeats > 1 else ""))
    run_jobs([Job(f"{cell}/{worker + 1}", search, (plan, cell, repeat))
              for repeat in range(plan.repeats) for cell in plan.cells
              for worker in range(plan.jobs)],
             plan.jobs, on_death=lambda job: run_again(job, MAX_FAILURES_IN_A_ROW))
    console.print(f"[bold]selection[/]: {selection_line(plan)}")
    run_jobs(rerun_jobs(plan), plan.jobs, on_death=run_again)
    run_jobs(choose_jobs(plan), 1)  # reads the re-runs back: nothing left to spread
    console.print(f"[bold]finals[/]: {plan.seeds} seeds per cell")
    run_jobs(final_jobs(plan), plan.jobs, on_death=run_again)


def run_again(job: Job, most: int = 1) -> Job:
    """A dead job runs again (a dead search worker's trial is marked failed and sampled
    anew; a selection re-run or a final continues from its run record). Repeated deaths
    mean a systematic cause."""
    if job.deaths > most:
        raise SeqbenchError(f"worker {job.name} died {job.deaths} times; giving up on it "
                            "(is the machine out of memory?).")
    return job


def check_data(plan: SweepPlan) -> None:
    """Prepare the defaults' data and their validation folds once, so that unreadable data,
    folds the data cannot make, a `--param-budget` no model of a cell fits, or a task that
    cannot `--refit` is one error now, not failed trials kept in the study."""
    from seqbench.sweeps.budget import hidden_size_for
    from seqbench.train import prepare_data

    data = prepare_data(plan.spec(plan.cells[0]), plan.data_dir)
    folds = plan.selection_folds()
    if folds > 1:
        for index in range(folds):
            data.fold(index, folds)
    if plan.param_budget:
        for cell in plan.cells:
            hidden_size_for(plan.spec(cell), data, plan.param_budget)
    if plan.refit:
        data.refit()
