"""Stage 1, the search: TPE over the cell's space, the task's defaults first.

Each search job is one worker's share of one study (a cell, a repeat): it asks Optuna for
trials until the study holds the budget of completed, pruned and running trials, so any
number of workers, here or on other machines, fill one budget together and a resumed sweep
only adds what is missing. A trial prepares the data its own task parameters ask for, is
validated on the selection folds (`seqbench.sweeps.validation`), and is pruned on fold 0.
Trials run through `Study.optimize` one at a time, so that RDB heartbeats cover them.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable
from typing import Any

from seqbench.console import console
from seqbench.errors import SeqbenchError
from seqbench.sweeps import record, seeds, validation
from seqbench.sweeps import space as search_space
from seqbench.sweeps.plan import SweepPlan
from seqbench.sweeps.prepared import PreparedData
from seqbench.sweeps.storage import WORKER_ATTR, fail_dead_local_trials, this_worker
from seqbench.sweeps.studies import open_study

#: A sweep whose trials keep failing (not diverging: failing) has a configuration problem.
MAX_FAILURES_IN_A_ROW = 3
BUDGET_STATES = ("COMPLETE", "PRUNED", "RUNNING")


def counted(study: Any) -> int:
    """Trials that use up budget: completed, pruned, and ones still running."""
    return sum(t.state.name in BUDGET_STATES for t in study.get_trials(deepcopy=False))


def search(plan: SweepPlan, cell: str, repeat: int = 0) -> int:
    """One worker's share of a study's search; returns how many trials it ran."""
    study = open_study(plan, cell, repeat)
    fail_dead_local_trials(study)
    data = PreparedData(plan.data_dir)
    ran, failures_in_a_row = 0, 0
    while counted(study) < plan.trials:
        study = open_study(plan, cell, repeat)  # reseed the sampler for the next trial
        with warnings.catch_warnings():
            # A task default outside its own search range is still trialled as given (that
            # is the point of the first trial); Optuna's warning would only alarm the user.
            warnings.filterwarnings("ignore", message="Fixed parameter .* is out of range")
            optimize_once(study, lambda trial: objective(plan, cell, repeat, trial, data))
        ran += 1
        mine = [t for t in study.get_trials(deepcopy=False)
                if t.user_attrs.get(WORKER_ATTR) == this_worker()][-1]
        if record.is_surplus(mine):
            break
        failures_in_a_row = failures_in_a_row + 1 if mine.state.name == "FAIL" else 0
        if failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            raise SeqbenchError(f"{cell}: {failures_in_a_row} trials in a row failed; the last "
                                f"because {mine.user_attrs.get(record.REASON, '')}")
    return ran


def optimize_once(study: Any, objective: Callable[[Any], float]) -> None:
    """One trial of `objective`. Where the storage cannot record the trial's end (a journal
    on a full disk), optuna asserts "Should not reach" over the OSError that says why; the
    OSError is what the user must see (`errors.writing` names the path and the cause)."""
    try:
        study.optimize(objective, n_trials=1, catch=(SeqbenchError,))
    except AssertionError as exc:
        if isinstance(exc.__context__, OSError):
            raise exc.__context__ from None
        raise


def objective(plan: SweepPlan, cell: str, repeat: int, trial: Any, data: PreparedData) -> float:
    """One trial's validation value; a refused configuration records why before it fails."""
    trial.set_user_attr(WORKER_ATTR, this_worker())
    try:
        return run_trial(plan, cell, repeat, trial, data)
    except SeqbenchError as exc:
        if record.REASON not in trial.user_attrs:
            trial.set_user_attr(record.REASON, str(exc))
        raise


def run_trial(plan: SweepPlan, cell: str, repeat: int, trial: Any, data: PreparedData) -> float:
    import optuna

    from seqbench.model import DivergedError
    from seqbench.sweeps.budget import hidden_size_for
    from seqbench.sweeps.pruning import OptunaPruning

    study = trial.study
    earlier = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number]
    if sum(t.state.name in BUDGET_STATES for t in earlier) >= plan.trials:
        trial.set_user_attr(record.REASON, record.SURPLUS)
        raise SeqbenchError(record.SURPLUS)
    recorded = record.read(study.user_attrs)
    base = plan.spec(cell).settings()
    settings = {**plan.settings, **search_space.suggest(trial, plan.cell_space(cell), base)}
    if plan.param_budget:
        spec = plan.spec(cell, settings)
        settings["hidden_size"] = hidden_size_for(spec, data.get(spec), plan.param_budget)
    trial.set_user_attr(record.SETTINGS, settings)
    hparams = plan.spec(cell, settings).hparams
    pruning = OptunaPruning(trial, validation.monitor(plan), hparams["min_epochs"],
                            hparams["min_steps"],
                            best_so_far=recorded.protocol.pruning_sees_best_so_far,
                            storage=plan.storage)
    folder = plan.folder("trials", cell, repeat) / f"trial-{trial.number:04d}"
    trial.set_user_attr(record.RUN_DIR, str(folder))
    requests = validation.fold_requests(
        plan, cell, settings, folder, recorded.seeding, (seeds.SEARCH, repeat, trial.number),
        {"study": study.study_name, "trial": trial.number, "stage": "search"})
    try:
        values, metrics = validation.values(plan, requests, data, pruning)
    except DivergedError as exc:
        trial.set_user_attr(record.REASON, f"diverged: {exc}")
        console.print(f"  {cell} trial {trial.number}: diverged, pruned")
        raise optuna.TrialPruned(str(exc)) from None
    for key in ("parameters", "epochs", "seconds_per_epoch"):
        trial.set_user_attr(key, metrics[key])
    if pruning.pruned_at is not None:
        console.print(f"  {cell} trial {trial.number}: pruned after epoch {pruning.pruned_at}")
        raise optuna.TrialPruned(f"pruned after epoch {pruning.pruned_at}")
    if values is None:
        raise SeqbenchError("no validation epoch finished (is --max-time too short?)")
    value = statistics.fmean(values)
    console.print(f"  {cell} trial {trial.number}: {validation.monitor(plan)} {value:.4g} "
                  f"({metrics['epochs']} epochs, {metrics['train_seconds']:.1f} s)")
    return value
