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

Many workers may share the studies: the `--jobs` processes, and whole `seqbench sweep`
processes started with the same command here or on other machines. Optuna shares the
search among them; every worker then waits until the search is complete (`searched`), so
all of them select from the same trials, and each later job runs under a lock of its own
(`seqbench.sweeps.locks`), so exactly one worker trains each re-run and each final, and the
others read the result back from the study record.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

from seqbench.console import console, note
from seqbench.errors import SeqbenchError
from seqbench.sweeps import locks, studies
from seqbench.sweeps.finals import final_jobs
from seqbench.sweeps.plan import SweepPlan
from seqbench.sweeps.search import MAX_FAILURES_IN_A_ROW, counted, search
from seqbench.sweeps.select import choose_jobs, rerun_jobs, selection_line
from seqbench.sweeps.storage import WORKER_ATTR, fail_dead_local_trials
from seqbench.sweeps.workers import Job, run_jobs


def run_sweep(plan: SweepPlan, search_only: bool = False) -> None:
    """Check the plan against its storage and data, open its studies, run every stage (or
    only the search: the workers of a cluster fill one budget together, and one process
    then runs selection and finals, so each of those runs exactly once; README, "Scaling
    out")."""
    placement = worker_gpus(plan)  # before anything is recorded: a GPU shortfall is a typo
    studies.check(plan)
    check_data(plan)
    # One worker at a time records a new study and enqueues its defaults (eight workers
    # started together enqueued them three times).
    with locks.held(plan.storage, f"{plan.study_name('')}: setup", wait=True):
        for repeat in range(plan.repeats):
            for cell in plan.cells:
                studies.create(plan, cell, repeat)
    console.print(f"[bold]search[/]: {plan.trials} trials per cell"
                  + (f", {plan.repeats} times" if plan.repeats > 1 else ""))
    while True:
        run_jobs([Job(f"{cell}/{worker + 1}", search, (plan, cell, repeat))
                  for repeat, cell in unfilled(plan) for worker in range(plan.jobs)],
                 plan.jobs, on_death=lambda job: run_again(job, MAX_FAILURES_IN_A_ROW),
                 placement=placement)
        if searched(plan):
            break
    if search_only:
        console.print("search done; selection and finals are left to the same command "
                      "without --search-only")
        return
    console.print(f"[bold]selection[/]: {selection_line(plan)}")
    run_jobs(rerun_jobs(plan), plan.jobs, on_death=run_again, placement=placement)
    run_jobs(choose_jobs(plan), 1)  # reads the re-runs back: nothing left to spread
    console.print(f"[bold]finals[/]: {plan.seeds} seeds per cell")
    run_jobs(final_jobs(plan), plan.jobs, on_death=run_again, placement=placement)


def worker_gpus(plan: SweepPlan) -> Callable[[int], dict[str, str]] | None:
    """Each worker process's GPU (`seqbench.sweeps.gpus`), said once; None with one job (it
    runs in this process, on this process's GPUs) or no GPU in use."""
    from seqbench.sweeps.gpus import VISIBLE, slot_environment

    placement = slot_environment(plan.device, per_trial=plan.gpus_per_trial)
    if plan.jobs == 1 or placement is None:
        return None
    devices = int(plan.settings.get("devices", 1))  # checked when the plan was made
    if devices != plan.gpus_per_trial:
        raise SeqbenchError(f"--set devices={devices} asks for {devices} GPUs per run, but "
                            f"each of the {plan.jobs} workers sees only its own "
                            f"{plan.gpus_per_trial}; use --gpus-per-trial {devices} instead.")
    slots = [placement(slot)[VISIBLE] for slot in range(plan.jobs)]
    console.print(f"workers' GPUs ({VISIBLE}), round-robin: {'; '.join(slots)}")
    return placement


def unfilled(plan: SweepPlan) -> list[tuple[int, str]]:
    """(repeat, cell) of every study whose search budget is not yet taken up."""
    return [(repeat, cell) for repeat in range(plan.repeats) for cell in plan.cells
            if counted(studies.open_study(plan, cell, repeat)) < plan.trials]


def searched(plan: SweepPlan) -> bool:
    """Wait until no other worker runs a trial of this sweep's studies; True when every
    study holds its budget, False when a dead worker's trial was failed (its slot must be
    searched again).

    The later stages read the search's result, so every worker must see the same, complete
    one: a worker whose share ended while others still trained chose among fewer trials.
    A trial whose worker died stops counting: on this host when its process is gone, on
    others when its heartbeat stops (PostgreSQL storages).
    """
    import optuna

    told = False
    while True:
        running = 0
        for repeat in range(plan.repeats):
            for cell in plan.cells:
                study = studies.open_study(plan, cell, repeat)
                fail_dead_local_trials(study)
                if "://" in plan.storage:
                    optuna.storages.fail_stale_trials(study)
                if counted(study) < plan.trials:
                    return False
                running += sum(t.state.name == "RUNNING" and other_worker(t)
                               for t in study.get_trials(deepcopy=False))
        if not running:
            return True
        if not told:
            note(f"waiting for {running} trial(s) that other workers are running")
            told = True
        time.sleep(locks.POLL_SECONDS * 5)


def other_worker(trial: Any) -> bool:
    """Whether a running trial is another worker's, one that can still end it: on another
    host, or a live process here. A trial that names no worker (its process could not even
    record that, on a full disk) is not waited for; as before, it counts as budget."""
    host, _, pid = trial.user_attrs.get(WORKER_ATTR, "").rpartition(":")
    return bool(host) and (host != socket.gethostname() or int(pid or 0) != os.getpid())


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
