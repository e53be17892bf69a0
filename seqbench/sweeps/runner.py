"""Run a sweep: the search per cell (in `jobs` worker processes), then the final runs.

Resumability comes from the storage, not from this process: the budget is "this many
completed or pruned trials per study", so re-running the same command only adds what is
missing, and a final run is skipped when its run record says it completed. Trials run
through `Study.optimize` one at a time so that RDB heartbeats cover them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from seqbench import registry, runs
from seqbench.config import build_spec
from seqbench.console import console
from seqbench.errors import SeqbenchError
from seqbench.sweeps import space as search_space
from seqbench.sweeps.storage import WORKER_ATTR, fail_dead_local_trials, open_storage, this_worker

PRUNERS = ("median", "hyperband", "none")
#: Reason recorded on a trial another worker made unnecessary (not counted as a failure).
SURPLUS = "surplus: the budget was reached by another worker"
#: A sweep whose trials keep failing (not diverging: failing) has a configuration problem.
MAX_FAILURES_IN_A_ROW = 3


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep worker needs, as plain data (it crosses process boundaries)."""

    task: str
    dataset: str
    cells: tuple[str, ...]
    trials: int
    seeds: int
    storage: str
    study: str = "seqbench"
    settings: Mapping[str, Any] = field(default_factory=dict)
    max_seconds: float | None = None
    jobs: int = 1
    pruner: str = "median"
    param_budget: int | None = None
    seed: int = 0
    device: str = "auto"
    output_dir: str = "sweeps"
    data_dir: str | None = None

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
        if self.param_budget is not None:
            parts.append(f"--param-budget {self.param_budget}")
        parts += [f"--pruner {self.pruner}", f"--jobs {self.jobs}", f"--seed {self.seed}",
                  f"--study {self.study}", f"--storage {self.storage}",
                  f"--output-dir {self.output_dir}"]
        parts += [f"--set {key}={value}" for key, value in settings.items()]
        return " ".join(parts)

    def study_name(self, cell: str) -> str:
        return f"{self.study}/{self.task}/{self.dataset}/{cell}"

    def folder(self, kind: str, cell: str) -> Path:
        return Path(self.output_dir) / kind / self.study / f"{self.task}-{self.dataset}" / cell


def counted(study: Any) -> int:
    """Trials that use up budget: completed, pruned, and ones still running."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=states))


def max_epochs(plan: SweepPlan) -> int:
    """The epoch cap every trial has (from --epochs, else the task's default)."""
    spec = build_spec(plan.task, plan.cells[0], plan.dataset, plan.settings, plan.seed,
                      plan.device)
    return spec.hparams["epochs"]


def make_pruner(plan: SweepPlan) -> Any:
    """The pruner, with a warm-up long enough that slow starters are not cut at epoch 2.

    Early validation values mostly reflect the learning rate, not where a trial will end,
    so the median rule waits for a few complete trials and a quarter of the epochs.
    """
    import optuna

    epochs = max_epochs(plan)
    if plan.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=min(5, max(2, plan.trials // 3)),
                                           n_warmup_steps=max(2, epochs // 4))
    if plan.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, epochs // 16),
                                              max_resource=epochs)
    return optuna.pruners.NopPruner()


def load_study(plan: SweepPlan, cell: str, storage: Any) -> Any:
    """Open (or create) the cell's study with a sampler seeded by how far the study got."""
    import optuna

    task = registry.get_task(plan.task)
    direction = task.selection(plan.dataset)[1]
    name = plan.study_name(cell)
    study = optuna.create_study(study_name=name, storage=storage, direction=direction,
                                load_if_exists=True, pruner=make_pruner(plan))
    progress = len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=plan.seed * 1_000_003 + progress)
    return study


def describe_study(study: Any, plan: SweepPlan, cell: str) -> None:
    """Record what the study is, once, so reports need nothing but the storage."""
    if "task" in study.user_attrs:
        return
    task = registry.get_task(plan.task)
    for key, value in {
        "task": plan.task, "dataset": plan.dataset, "cell": cell,
        "primary_metric": task.primary(plan.dataset), "direction": task.direction,
        "selection_metric": task.selection(plan.dataset)[0],
        "selection_direction": task.selection(plan.dataset)[1],
        "command": plan.command(), "plan": {**asdict(plan), "cells": list(plan.cells)},
        "plugins": registry.provenance(cell, plan.task),
    }.items():
        study.set_user_attr(key, value)


def set_threads(jobs: int) -> None:
    """Split the machine's cores between parallel workers instead of letting them fight."""
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // jobs))


def search(plan: SweepPlan, cell: str, worker: int = 0) -> int:
    """One worker's share of a cell's search; returns how many trials it ran."""
    import optuna

    from seqbench.model import DivergedError
    from seqbench.sweeps.budget import hidden_size_for
    from seqbench.sweeps.pruning import OptunaPruning
    from seqbench.train import prepare_data, train

    if plan.jobs > 1:
        set_threads(plan.jobs)
    storage = open_storage(plan.storage)
    study = load_study(plan, cell, storage)
    describe_study(study, plan, cell)
    fail_dead_local_trials(study)
    base = build_spec(plan.task, cell, plan.dataset, plan.settings, plan.seed, plan.device)
    data = prepare_data(base, plan.data_dir)
    space = search_space.without_fixed(search_space.tunable(plan.task, cell), plan.settings)
    if plan.param_budget:
        space.pop("hidden_size", None)
    monitor = f"val_{registry.get_task(plan.task).selection(plan.dataset)[0]}"

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr(WORKER_ATTR, this_worker())
        try:
            return run_trial(trial)
        except SeqbenchError as exc:
            if "reason" not in trial.user_attrs:
                trial.set_user_attr("reason", str(exc))
            raise

    def run_trial(trial: optuna.Trial) -> float:
        earlier = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number]
        if sum(t.state.name in ("COMPLETE", "PRUNED", "RUNNING") for t in earlier) >= plan.trials:
            trial.set_user_attr("reason", SURPLUS)
            raise SeqbenchError(SURPLUS)
        settings = {**plan.settings, **search_space.suggest(trial, space)}
        spec = build_spec(plan.task, cell, plan.dataset, settings, plan.seed, plan.device)
        if plan.param_budget:
            settings["hidden_size"] = hidden_size_for(spec, data, plan.param_budget)
            spec = build_spec(plan.task, cell, plan.dataset, settings, plan.seed, plan.device)
        trial.set_user_attr("settings", settings)
        pruning = OptunaPruning(trial, monitor)
        run_dir = plan.folder("trials", cell) / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        try:
            result = train(spec, data=data, run_dir=run_dir, show_progress=False,
                           callbacks=[pruning], evaluate_test=False, max_seconds=plan.max_seconds)
        except DivergedError as exc:
            trial.set_user_attr("reason", f"diverged: {exc}")
            console.print(f"  {cell} trial {trial.number}: diverged, pruned")
            raise optuna.TrialPruned(str(exc)) from None
        metrics = result.metrics
        for key in ("parameters", "epochs", "seconds_per_epoch"):
            trial.set_user_attr(key, metrics[key])
        value = metrics[f"best_{monitor}"]
        if pruning.pruned_at is not None:
            console.print(f"  {cell} trial {trial.number}: pruned after epoch {pruning.pruned_at}")
            raise optuna.TrialPruned(f"pruned after epoch {pruning.pruned_at}")
        if value is None:
            raise SeqbenchError("no validation epoch finished (is --max-time too short?)")
        console.print(f"  {cell} trial {trial.number}: {monitor} {value:.4g} "
                      f"({metrics['epochs']} epochs, {metrics['train_seconds']:.1f} s)")
        return value

    ran, failures_in_a_row = 0, 0
    while counted(study) < plan.trials:
        study = load_study(plan, cell, storage)  # reseed the sampler for the next trial
        study.optimize(objective, n_trials=1, catch=(SeqbenchError,))
        ran += 1
        mine = [t for t in study.get_trials(deepcopy=False)
                if t.user_attrs.get(WORKER_ATTR) == this_worker()][-1]
        reason = mine.user_attrs.get("reason", "")
        if reason == SURPLUS:
            break
        failures_in_a_row = failures_in_a_row + 1 if mine.state.name == "FAIL" else 0
        if failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            raise SeqbenchError(f"{cell}: {failures_in_a_row} trials in a row failed; the last "
                                f"because {reason}")
    return ran


def final_run(plan: SweepPlan, cell: str, seed: int) -> dict[str, Any] | None:
    """Re-train the cell's best configuration with `seed` and test it once (skip if done)."""
    from optuna.trial import TrialState

    from seqbench.train import train

    if plan.jobs > 1:
        set_threads(plan.jobs)
    study = load_study(plan, cell, open_storage(plan.storage))
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        console.print(f"[yellow]{cell}: no completed trial, so no final runs[/]")
        return None
    best = study.best_trial
    run_dir = plan.folder("finals", cell) / f"seed{seed}"
    metrics_path = run_dir / runs.METRICS
    if metrics_path.is_file() and runs.read_json(metrics_path).get("status") == "completed" and \
            runs.read_json(run_dir / runs.CONFIG).get("trial") == best.number:
        metrics = runs.read_json(metrics_path)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)  # a killed or outdated final: redo it
        spec = build_spec(plan.task, cell, plan.dataset, best.user_attrs["settings"], seed,
                          plan.device)
        metrics = train(spec, data_dir=plan.data_dir, run_dir=run_dir, show_progress=False,
                        max_seconds=plan.max_seconds).metrics
        config = runs.read_json(run_dir / runs.CONFIG)
        runs.write_json(run_dir / runs.CONFIG, {**config, "trial": best.number,
                                                "study": plan.study_name(cell)})
        console.print(f"  {cell} final seed {seed}: {metrics['primary_metric']} "
                      f"{metrics[metrics['primary_metric']]:.4g}")
    record = {"run_dir": str(run_dir), "trial": best.number, "metrics": metrics}
    study.set_user_attr(f"final_seed{seed}", record)
    return record


def validate_plan(plan: SweepPlan) -> None:
    """Fail on bad names or values before any worker starts."""
    if plan.pruner not in PRUNERS:
        from seqbench.errors import unknown_name

        raise unknown_name("pruner", plan.pruner, PRUNERS)
    for value, what in ((plan.trials, "--trials"), (plan.seeds, "--seeds"), (plan.jobs, "--jobs")):
        if value < 1:
            raise SeqbenchError(f"{what} must be at least 1 (got {value}).")
    if not plan.cells:
        raise SeqbenchError("--cells is empty; name at least one cell.")
    for cell in plan.cells:
        build_spec(plan.task, cell, plan.dataset, plan.settings, plan.seed, plan.device)
    open_storage(plan.storage)


def run_sweep(plan: SweepPlan) -> None:
    """Search every cell, then run the finals; in `plan.jobs` processes when > 1."""
    validate_plan(plan)
    if plan.jobs == 1:
        for cell in plan.cells:
            console.print(f"[bold]{cell}[/]: searching ({plan.trials} trials)")
            search(plan, cell)
        for cell in plan.cells:
            for seed in range(plan.seed, plan.seed + plan.seeds):
                final_run(plan, cell, seed)
        return
    with ProcessPoolExecutor(max_workers=plan.jobs, mp_context=get_context("spawn")) as pool:
        searches = [pool.submit(search, plan, cell, worker)
                    for cell in plan.cells for worker in range(plan.jobs)]
        for future in searches:
            future.result()
        finals = [pool.submit(final_run, plan, cell, seed)
                  for cell in plan.cells for seed in range(plan.seed, plan.seed + plan.seeds)]
        for future in finals:
            future.result()
