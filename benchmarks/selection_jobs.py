"""What one job per re-run buys in selection: a one-cell stage with two workers.

Selection re-runs each cell's top configurations and its defaults on fresh seeds. The old
layout gave each cell one job that trained its re-runs one after another, so a stage that
sweeps a single cell (the free-tuning Nottingham stages) kept one worker busy and left the
others idle through the whole selection. The new layout makes every (candidate, seed) its
own job and lets the parent select from the records. Both layouts select from the same
searched study, with the same threads per worker (cores / jobs) and fresh output folders,
so nothing is read back; the ratio is old time / new time.

    python benchmarks/selection_jobs.py [--task speech] [--dataset japanese-vowels]
                                        [--cell gru] [--trials 6] [--epochs 40]
                                        [--top 3] [--rerun-seeds 2] [--jobs 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import optuna

from seqbench import threads
from seqbench.registry import get_task
from seqbench.sweeps import record, studies
from seqbench.sweeps.plan import SweepPlan
from seqbench.sweeps.runner import check_data
from seqbench.sweeps.search import search
from seqbench.sweeps.select import choose, rerun_jobs
from seqbench.sweeps.storage import open_storage
from seqbench.sweeps.workers import Job, run_jobs


def choose_in_one_worker(plan: SweepPlan, cell: str) -> None:
    """The old layout's job: one worker trains all of a cell's re-runs, then selects."""
    threads.configure(jobs=plan.jobs)
    choose(plan, cell)


def one_job_per_cell(plan: SweepPlan, cell: str) -> None:
    run_jobs([Job(f"{cell}/select", choose_in_one_worker, (plan, cell))], plan.jobs)


def one_job_per_rerun(plan: SweepPlan, cell: str) -> None:
    run_jobs(rerun_jobs(plan), plan.jobs)
    choose(plan, cell)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="speech")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--rerun-seeds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    dataset = args.dataset or get_task(args.task).default_dataset

    with tempfile.TemporaryDirectory() as tmp:
        searched = SweepPlan(
            task=args.task, dataset=dataset, cells=(args.cell,), trials=args.trials, seeds=1,
            storage=str(Path(tmp) / "sweeps.journal"), settings={"epochs": str(args.epochs)},
            top=args.top, rerun_seeds=args.rerun_seeds, jobs=args.jobs,
            output_dir=str(Path(tmp) / "search"))
        studies.check(searched)
        check_data(searched)
        studies.create(searched, args.cell)
        search(replace(searched, jobs=1), args.cell)  # all cores: the search is not timed
        reruns = len(rerun_jobs(searched))
        seconds, chosen = {}, {}
        for layout in (one_job_per_cell, one_job_per_rerun):
            plan = replace(searched, output_dir=str(Path(tmp) / layout.__name__))
            started = time.perf_counter()
            layout(plan, args.cell)
            seconds[layout.__name__] = time.perf_counter() - started
            chosen[layout.__name__] = record.read(optuna.load_study(
                study_name=plan.study_name(args.cell),
                storage=open_storage(plan.storage)).user_attrs).selection.chosen

    print(f"{args.task}/{dataset}, {args.cell}: {reruns} selection re-runs "
          f"(top {args.top} of {args.trials} trials and the defaults, {args.rerun_seeds} fresh "
          f"seeds each, <= {args.epochs} epochs), {args.jobs} workers")
    print(f"{'layout':<20}{'seconds':>9}{'chosen trial':>14}")
    for name, value in seconds.items():
        print(f"{name:<20}{value:>9.1f}{chosen[name]:>14}")
    print(f"one job per re-run is {seconds['one_job_per_cell'] / seconds['one_job_per_rerun']:.2f}x "
          "faster than one job per cell")


if __name__ == "__main__":
    main()
