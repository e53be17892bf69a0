"""Run a sweep: the search per cell, the selection re-runs, then the final runs.

The protocol (what makes the winner hold up):
1. Search. Every cell's study starts with the task's default configuration, then TPE with
   a random start-up of a third of the budget. A trial prepares the data its own task
   parameters ask for, and is validated on the task's folds where it declares them.
2. Selection. The top `top` configurations are re-run with fresh seeds; the one with the
   best mean validation value wins (one lucky seed no longer decides).
3. Finals. The winner is trained with `seeds` seeds disjoint from the search and selection
   seeds, and tested once each.

Resumability comes from the storage, not from this process: the budget is "this many
completed or pruned trials per study", so re-running the same command only adds what is
missing, and a selection or final run is skipped when its run record says it completed.
Trials run through `Study.optimize` one at a time so that RDB heartbeats cover them.
"""

from __future__ import annotations

import math
import numbers
import re
import shutil
import statistics
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seqbench import registry, runs
from seqbench.config import RunSpec, build_spec
from seqbench.console import console
from seqbench.errors import SeqbenchError
from seqbench.params import MAX_SWEEP_SEED, check_seed, whole_number
from seqbench.sweeps import space as search_space
from seqbench.sweeps.prepared import PreparedData
from seqbench.sweeps.storage import WORKER_ATTR, fail_dead_local_trials, open_storage, this_worker
from seqbench.sweeps.workers import Job, run_jobs

PRUNERS = ("median", "hyperband", "none")
#: Final-run seeds start here above the sweep's seed, so they never meet search or
#: selection seeds (which are the sweep's seed and the `rerun_seeds` after it).
FINAL_SEED_OFFSET = 1000
#: A task default outside its own search range is still trialled as given (that is the
#: point of the first trial), and Optuna's warning about it would only alarm the user.
warnings.filterwarnings("ignore", message="Fixed parameter .* is out of range")
#: Reason recorded on a trial another worker made unnecessary (not counted as a failure).
SURPLUS = "surplus: the budget was reached by another worker"
#: Protocol key: the pruner sees each trial's best validation value so far
#: (`seqbench.sweeps.pruning`). Studies started before lack it and keep reporting each
#: epoch's own value, so a resumed sweep prunes all its trials alike.
PRUNING_SEES_BEST_SO_FAR = "pruning_sees_best_so_far"
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
    top: int = 3
    rerun_seeds: int = 2
    folds: int | None = None
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
    #: Tracker every trial, re-run and final also logs to (`seqbench.loggers`).
    logger: str | None = None
    #: Finals train on the training and validation items together (`refit_epochs`).
    refit: bool = False

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
        if self.folds is not None:
            parts.append(f"--folds {self.folds}")
        if self.refit:
            parts.append("--refit")
        parts += [f"--top {self.top}", f"--rerun-seeds {self.rerun_seeds}",
                  f"--pruner {self.pruner}", f"--jobs {self.jobs}", f"--seed {self.seed}",
                  f"--study {self.study}", f"--storage {self.storage}",
                  f"--output-dir {self.output_dir}"]
        parts += [f"--set {key}={value}" for key, value in settings.items()]
        parts += [f"--logger {self.logger}"] if self.logger else []
        return " ".join(parts)

    def study_name(self, cell: str) -> str:
        return f"{self.study}/{self.task}/{self.dataset}/{cell}"

    def folder(self, kind: str, cell: str) -> Path:
        return Path(self.output_dir) / kind / self.study / f"{self.task}-{self.dataset}" / cell

    def seeds_used(self) -> dict[str, list[int]]:
        """Seeds of each phase; finals are disjoint from the others (winner's curse)."""
        return {"search": [self.seed],
                "rerun": list(range(self.seed + 1, self.seed + 1 + self.rerun_seeds)),
                "final": list(range(self.seed + FINAL_SEED_OFFSET,
                                    self.seed + FINAL_SEED_OFFSET + self.seeds))}

    def selection_folds(self) -> int:
        """Folds per validation: `--folds`, else what the task declares for the dataset."""
        if self.folds is not None:
            return self.folds
        return registry.get_task(self.task).selection_folds.get(self.dataset, 1)

    def startup_trials(self) -> int:
        """TPE's random start-up: a third of the budget, at least 3 (Optuna's default of 10
        turned 8-10-trial sweeps into random search)."""
        return max(3, self.trials // 3)


def counted(study: Any) -> int:
    """Trials that use up budget: completed, pruned, and ones still running."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=states))


def make_pruner(plan: SweepPlan) -> Any:
    """The pruner, with a warm-up long enough that slow starters are not cut at epoch 2.

    Early validation values mostly reflect the learning rate, not where a trial will end,
    so the median rule waits for a few complete trials and for the task's declared minimum
    epochs (`min_epochs`; the pruning callback also waits for `min_steps`).
    """
    import optuna

    hparams = base_spec(plan, plan.cells[0]).hparams
    epochs = hparams["epochs"]
    if plan.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=min(5, max(2, plan.trials // 3)),
                                           n_warmup_steps=max(2, hparams["min_epochs"]))
    if plan.pruner == "hyperband":  # the first rung is where pruning may start
        return optuna.pruners.HyperbandPruner(
            min_resource=min(epochs, max(1, hparams["min_epochs"], epochs // 16)),
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.sampler = optuna.samplers.TPESampler(
            seed=plan.seed * 1_000_003 + progress, n_startup_trials=plan.startup_trials(),
            multivariate=True, group=True, constant_liar=plan.jobs > 1)
    return study


def base_spec(plan: SweepPlan, cell: str, settings: Mapping[str, Any] | None = None,
              seed: int | None = None) -> RunSpec:
    """The spec of `settings` (default: the plan's fixed settings) for `cell`."""
    return build_spec(plan.task, cell, plan.dataset, plan.settings if settings is None
                      else settings, plan.seed if seed is None else seed, plan.device)


def cell_space(plan: SweepPlan, cell: str) -> dict[str, Any]:
    """What this sweep searches for `cell`: declared ranges minus what the user fixed."""
    space = search_space.without_fixed(search_space.tunable(plan.task, cell, plan.dataset),
                                       plan.settings)
    if plan.param_budget:
        space.pop("hidden_size", None)
    return space


def open_cell_study(plan: SweepPlan, cell: str) -> Any:
    """Create the cell's study, describe it and enqueue the default configuration first.

    Done once by the process that starts the sweep, before any worker, so parallel
    workers never enqueue the defaults twice.
    """
    storage = open_storage(plan.storage)
    study = load_study(plan, cell, storage)
    if "task" not in study.user_attrs:
        task = registry.get_task(plan.task)
        for key, value in {
            "task": plan.task, "dataset": plan.dataset, "cell": cell,
            "primary_metric": task.primary(plan.dataset), "direction": task.direction,
            "selection_metric": task.selection(plan.dataset)[0],
            "selection_direction": task.selection(plan.dataset)[1],
            "command": plan.command(), "plan": {**asdict(plan), "cells": list(plan.cells)},
            "plugins": registry.provenance(cell, plan.task),
            "seeds": plan.seeds_used(),
            "protocol": {"folds": plan.selection_folds(), "top": plan.top,
                         "rerun_seeds": plan.rerun_seeds,
                         "startup_trials": plan.startup_trials(),
                         PRUNING_SEES_BEST_SO_FAR: siblings_pruning_rule(plan, cell,
                                                                         storage)},
        }.items():
            study.set_user_attr(key, value)
    elif changes_the_result(study.user_attrs.get("plan", {}), plan):
        # Resumed with or without --refit, or with a larger --trials budget: the finals
        # change, so must the recorded command that reports print to regenerate them.
        study.set_user_attr("command", plan.command())
        study.set_user_attr("plan", {**asdict(plan), "cells": list(plan.cells)})
    if not study.get_trials(deepcopy=False):
        point = search_space.default_point(cell_space(plan, cell),
                                           base_spec(plan, cell).settings())
        study.enqueue_trial(point, user_attrs={"defaults": True})
    return study


#: What a study's trials and finals were made under, beside its settings and folds: resuming
#: it under other values would mix two protocols in one study and report the mixture under
#: the recorded command. (`--trials` may grow and `--refit` toggle: `changes_the_result`;
#: `--jobs`, `--device`, folders and logger change how it runs, not what it measures.)
PROTOCOL = ("max_seconds", "param_budget", "pruner", "top", "rerun_seeds", "seed", "seeds")


def refuse_another_protocol(plan: SweepPlan, storage: Any) -> None:
    """Before anything is written: every study under this sweep's `--study`, task and dataset
    (the cells' own, and siblings a report will compare them with) must have been made under
    `plan`'s protocol. Read from the summaries, since opening a study appends to a journal."""
    import optuna

    prefix = plan.study_name("")
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if not summary.study_name.startswith(prefix):
            continue
        differ = protocol_differences(plan, summary.study_name[len(prefix):],
                                      summary.user_attrs)
        if differ:
            raise SeqbenchError(
                f"study '{summary.study_name}' was run with other options: "
                f"{'; '.join(differ)}. Run this sweep with its options (its command: "
                f"{summary.user_attrs.get('command')}; in Python the same names as keywords), "
                "or give it a new --study.")


def protocol_differences(plan: SweepPlan, cell: str, attrs: Mapping[str, Any]) -> list[str]:
    """How `plan` differs from the protocol a cell's study recorded (older studies record
    less, and what they lack is not compared)."""
    recorded, now = attrs.get("plan", {}), asdict(plan)
    differ = [f"{key}={recorded[key]!r} (now {now[key]!r})" for key in PROTOCOL
              if key in recorded and recorded[key] != now[key]]
    folds = attrs.get("protocol", {}).get("folds")  # as used: --folds or the task's own
    if folds is not None and folds != plan.selection_folds():
        differ.append(f"folds={folds} (now {plan.selection_folds()})")
    if "settings" in recorded and not same_settings(plan, cell, recorded["settings"]):
        differ.append(f"settings {dict(recorded['settings'])} (now {dict(plan.settings)})")
    return differ


def same_settings(plan: SweepPlan, cell: str, recorded: Mapping[str, Any]) -> bool:
    """Whether recorded `--set` values mean what `plan`'s do for `cell`, compared as resolved
    values: `lr=1e-3` is `lr=0.001`, and the Python API's `True` is the command line's `true`."""
    if dict(recorded) == dict(plan.settings):
        return True
    try:
        return base_spec(plan, cell, recorded).settings() == base_spec(plan, cell).settings()
    except SeqbenchError:  # no longer valid (an uninstalled cell's option): they differ
        return False


def changes_the_result(recorded: Mapping[str, Any], plan: SweepPlan) -> bool:
    """Whether resuming a study under `plan` changes what its recorded command produces:
    `--refit` toggled, or the search extended to a larger `--trials` budget (the earlier
    trials are kept, so the extended study is what the new budget's command rebuilds). A
    smaller budget adds no trial, so the recorded command stays the one that ran them."""
    return (recorded.get("refit", False) != plan.refit
            or recorded.get("trials", plan.trials) < plan.trials)


def siblings_pruning_rule(plan: SweepPlan, cell: str, storage: Any) -> bool:
    """Whether a new cell study prunes on the best value so far: as its sibling cells did.

    A cell added later to a sweep (a staged `--cells rnn` after `--cells lstm,gru`, or after
    copying the published siblings into a fresh journal) must be tuned under the rule its
    siblings were, or the comparison is not like for like. Sweeps begun before the rule
    existed lack the key and pruned on each epoch's own value; a sweep with no siblings
    uses the current rule.
    """
    import optuna

    siblings = plan.study_name("")  # "study/task/dataset/": every cell's name starts so
    rules = {summary.user_attrs.get("protocol", {}).get(PRUNING_SEES_BEST_SO_FAR, False)
             for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)
             if summary.study_name.startswith(siblings)
             and summary.study_name != plan.study_name(cell) and "task" in summary.user_attrs}
    if len(rules) > 1:
        raise SeqbenchError(f"the cells of sweep '{plan.study}' in {plan.storage} disagree on "
                            f"what pruning compares; start a new --study")
    return rules.pop() if rules else True


def set_threads(jobs: int) -> None:
    """Split the usable cores between parallel workers instead of letting them fight."""
    from seqbench import threads

    threads.configure(jobs=jobs)


def validation_values(plan: SweepPlan, cell: str, settings: Mapping[str, Any], seed: int,
                      folder: Path, data: PreparedData, pruning: Any = None,
                      reuse: bool = False) -> tuple[list[float] | None, dict[str, Any]]:
    """Train `settings` on the selection folds; (best validation value per fold, fold-0
    metrics), or (None, ...) when a fold was pruned or never validated.

    Each fold is an ordinary run record (`seqbench run --spec FOLD/config.json` replays
    it). Pruning watches fold 0 only, whose curves are comparable across trials; a pruned
    fold 0 ends the evaluation. With `reuse`, folds whose record completed are read back.
    """
    from seqbench.train import train

    folds = plan.selection_folds()
    monitor = f"val_{registry.get_task(plan.task).selection(plan.dataset)[0]}"
    values, first = [], {}
    for fold in range(folds):
        fold_settings = {**settings, "folds": folds, "fold": fold} if folds > 1 else settings
        spec = base_spec(plan, cell, fold_settings, seed)
        run_dir = folder / f"fold-{fold}" if folds > 1 else folder
        metrics = reusable_metrics(run_dir) if reuse else None
        if metrics is None:
            shutil.rmtree(run_dir, ignore_errors=True)
            metrics = train(spec, data=data.get(spec), run_dir=run_dir, show_progress=False,
                            callbacks=[pruning] if pruning is not None and fold == 0 else [],
                            evaluate_test=False, max_seconds=plan.max_seconds,
                            logger=plan.logger).metrics
        first = first or metrics
        if pruning is not None and pruning.pruned_at is not None:
            return None, first
        values.append(metrics[f"best_{monitor}"])
    if any(value is None for value in values):
        return None, first
    return values, first


def recorded_metrics(run_dir: Path) -> dict[str, Any] | None:
    """The metrics a run folder recorded, whatever its status; None when it has none."""
    path = run_dir / runs.METRICS
    return runs.read_json(path) if path.is_file() else None


def completed_metrics(run_dir: Path) -> dict[str, Any] | None:
    """The metrics of a run folder whose run completed, else None."""
    metrics = recorded_metrics(run_dir)
    return metrics if metrics is not None and metrics.get("status") == "completed" else None


def reusable_metrics(run_dir: Path) -> dict[str, Any] | None:
    """A completed record's metrics; a record of a diverged run raises its `DivergedError`
    again, so a re-run whose seed diverged in a worker counts as missing when the parent
    reads it back instead of being trained a second time. None: train it."""
    from seqbench.model import DivergedError

    metrics = recorded_metrics(run_dir) or {}
    if metrics.get("status") == "diverged":
        raise DivergedError(metrics.get("error", "the run diverged"))
    return metrics if metrics.get("status") == "completed" else None


def search(plan: SweepPlan, cell: str, worker: int = 0) -> int:
    """One worker's share of a cell's search; returns how many trials it ran."""
    import optuna

    from seqbench.model import DivergedError
    from seqbench.sweeps.budget import hidden_size_for
    from seqbench.sweeps.pruning import OptunaPruning

    if plan.jobs > 1:
        set_threads(plan.jobs)
    storage = open_storage(plan.storage)
    study = load_study(plan, cell, storage)
    fail_dead_local_trials(study)
    data = PreparedData(plan.data_dir)
    base = base_spec(plan, cell)
    space = cell_space(plan, cell)
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
        settings = {**plan.settings, **search_space.suggest(trial, space, base.settings())}
        if plan.param_budget:
            spec = base_spec(plan, cell, settings)
            settings["hidden_size"] = hidden_size_for(spec, data.get(spec), plan.param_budget)
        trial.set_user_attr("settings", settings)
        hp = base_spec(plan, cell, settings).hparams
        protocol = study.user_attrs.get("protocol", {})
        pruning = OptunaPruning(trial, monitor, hp["min_epochs"], hp["min_steps"],
                                best_so_far=protocol.get(PRUNING_SEES_BEST_SO_FAR, False))
        run_dir = plan.folder("trials", cell) / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        try:
            values, metrics = validation_values(plan, cell, settings, plan.seed, run_dir,
                                                data, pruning)
        except DivergedError as exc:
            trial.set_user_attr("reason", f"diverged: {exc}")
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
        console.print(f"  {cell} trial {trial.number}: {monitor} {value:.4g} "
                      f"({metrics['epochs']} epochs, {metrics['train_seconds']:.1f} s)")
        return value

    ran, failures_in_a_row = 0, 0
    while counted(study) < plan.trials:
        study = load_study(plan, cell, storage)  # reseed the sampler for the next trial
        optimize_once(study, objective)
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


def rerun_candidates(plan: SweepPlan, study: Any) -> list[Any]:
    """The completed trials that selection re-runs: the best `plan.top` and the defaults.

    Empty when there is nothing to choose between (fewer than two candidates, or no
    re-run seeds): the best trial is then taken as it is.
    """
    from optuna.trial import TrialState

    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    sign = 1 if study.direction.name == "MINIMIZE" else -1
    top = sorted(completed, key=lambda t: sign * t.value)[:plan.top]
    default = next((t for t in completed if t.user_attrs.get("defaults")), None)
    candidates = top + ([default] if default is not None and default not in top else [])
    return candidates if len(candidates) > 1 and plan.rerun_seeds else []


def rerun(plan: SweepPlan, cell: str, trial: Any, seed: int,
          data: PreparedData | None = None) -> list[float] | None:
    """One candidate trained on one fresh seed; its validation value per fold, or None
    when that seed diverged (a missing seed, not a failed sweep). A completed record is
    read back, so a resumed sweep and the parent that selects never train it twice."""
    from seqbench.model import DivergedError

    if data is None:  # a worker of its own
        if plan.jobs > 1:
            set_threads(plan.jobs)
        data = PreparedData(plan.data_dir)
    folder = plan.folder("selection", cell) / f"trial-{trial.number:04d}-seed{seed}"
    try:
        values, _ = validation_values(plan, cell, trial.user_attrs["settings"], seed, folder,
                                      data, reuse=True)
    except DivergedError as exc:
        console.print(f"  {cell} trial {trial.number} seed {seed}: diverged ({exc})")
        return None
    return values


def rerun_jobs(plan: SweepPlan) -> list[Job]:
    """Every selection re-run as its own job (cell x candidate x fresh seed).

    One job per re-run keeps every worker busy even when a stage sweeps a single cell;
    one job per cell left all but one worker idle through the whole selection.
    """
    storage = open_storage(plan.storage)
    return [Job(f"{cell}/trial{trial.number}-seed{seed}", rerun, (plan, cell, trial, seed))
            for cell in plan.cells
            for trial in rerun_candidates(plan, load_study(plan, cell, storage))
            for seed in plan.seeds_used()["rerun"]]


def select(plan: SweepPlan, cell: str) -> int | None:
    """Re-run the cell's top configurations and its defaults with fresh seeds; return the
    chosen trial.

    The best trial of a search is partly the luckiest: its value is biased upwards by the
    same noise that picked it. Its mean over seeds it never saw is not. The default
    configuration is re-run beside the top ones and is kept unless the best of them beats
    it by more than one standard error of their paired differences (`one_standard_error`).
    Re-runs that `rerun_jobs` already trained in workers are read back. Records every
    re-run mean, the standard error and the choice in the study, so reports can show them.
    """
    from optuna.trial import TrialState

    study = load_study(plan, cell, open_storage(plan.storage))
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        console.print(f"[yellow]{cell}: no completed trial, so no final runs[/]")
        return None
    sign = 1 if study.direction.name == "MINIMIZE" else -1
    candidates = rerun_candidates(plan, study)
    if not candidates:
        best = min(completed, key=lambda t: sign * t.value).number
        study.set_user_attr("selected_trial", best)
        return best
    data = PreparedData(plan.data_dir)
    seeds = plan.seeds_used()["rerun"]
    reruns: dict[int, dict[tuple[int, int], float]] = {}
    for trial in candidates:
        reruns[trial.number] = {(seed, fold): value for seed in seeds
                                for fold, value in enumerate(rerun(plan, cell, trial, seed, data)
                                                             or [])}
        values = list(reruns[trial.number].values())
        mean = statistics.fmean(values) if values else math.nan
        console.print(f"  {cell} trial {trial.number}: search {trial.value:.4g}, mean of "
                      f"{len(seeds)} fresh seeds {mean:.4g}")
    default = next((t.number for t in candidates if t.user_attrs.get("defaults")), None)
    chosen, error = one_standard_error(reruns, sign, default)
    study.set_user_attr("selection", {str(number): statistics.fmean(values.values()) if values
                                      else math.inf * sign
                                      for number, values in reruns.items()})
    study.set_user_attr("selection_standard_error", error if math.isfinite(error) else None)
    study.set_user_attr("selected_trial", chosen)
    return chosen


def one_standard_error(reruns: Mapping[int, Mapping[Any, float]], sign: int,
                       default: int | None) -> tuple[int, float]:
    """(chosen trial, standard error of the difference): the best mean of the re-run
    values wins, unless it beats the default configuration's mean by no more than one
    standard error of that difference.

    `reruns` maps each trial to its re-run values keyed by (seed, fold). Breiman's
    one-standard-error rule (Hastie et al., ESL 2nd ed., section 7.10): a difference
    smaller than the noise of its estimate is no evidence, so the configuration a reader
    would run without tuning is kept. Values with the same key share a seed and a fold,
    so the error is that of the paired differences over the keys both have; with fewer
    than two such pairs there is no error to measure and the best mean wins. On Japanese
    Vowels, a configuration whose cross-validated NLL beat the defaults' by less than this
    tested worse than them.
    """
    means = {number: statistics.fmean(values.values())
             for number, values in reruns.items() if values}
    if not means:
        return next(iter(reruns)), math.nan
    best = min(means, key=lambda number: sign * means[number])
    if default not in means or default == best:
        return best, math.nan
    ours, theirs = reruns[best], reruns[default]
    shared = [key for key in ours if key in theirs]
    if len(shared) < 2:
        return best, math.nan
    differences = [ours[key] - theirs[key] for key in shared]
    error = statistics.stdev(differences) / math.sqrt(len(differences))
    return (default if sign * (means[default] - means[best]) <= error else best), error


def refit_epochs(plan: SweepPlan, cell: str, trial: int, recorded: int | None = None) -> int:
    """Epochs for `--refit` finals: the median best epoch of the chosen configuration's
    validation runs (its selection re-runs, fold by fold; else its search trial's; else the
    number recorded when the finals first ran, for a sweep whose run folders were cleaned).

    Refit finals train on every training item, so no validation split is left to stop them;
    these runs already measured when this configuration stops improving. An option, not the
    default: on Japanese Vowels and airline it tested worse than early stopping for two
    cells of three (results/README.md).
    """
    folds = plan.selection_folds()

    def runs_of(folder: Path) -> list[Path]:
        return [folder / f"fold-{k}" for k in range(folds)] if folds > 1 else [folder]

    selection = [run for seed in plan.seeds_used()["rerun"] for run in runs_of(
        plan.folder("selection", cell) / f"trial-{trial:04d}-seed{seed}")]
    for runs_dirs in (selection, runs_of(plan.folder("trials", cell) / f"trial-{trial:04d}")):
        best = [m["best_epoch"] for d in runs_dirs
                if (m := completed_metrics(d)) and m.get("best_epoch")]
        if best:
            return max(1, round(statistics.median(best)))
    if recorded is not None:
        return recorded
    raise SeqbenchError(f"{cell}: trial {trial} has no completed validation runs under "
                        f"{plan.output_dir} to take the refit finals' epochs from.")


def same_spec(run_dir: Path, spec: RunSpec) -> bool:
    """Whether the run record in `run_dir` was trained with exactly `spec` (a record that no
    longer validates, e.g. after a plugin renamed a parameter, is not)."""
    try:
        return runs.read_spec(run_dir) == spec
    except SeqbenchError:
        return False


def final_run(plan: SweepPlan, cell: str, seed: int) -> dict[str, Any] | None:
    """Re-train the cell's selected configuration with `seed` and test it once (skip if done)."""
    from optuna.trial import TrialState

    from seqbench.train import can_resume, train

    if plan.jobs > 1:
        set_threads(plan.jobs)
    study = load_study(plan, cell, open_storage(plan.storage))
    chosen = study.user_attrs.get("selected_trial")
    if chosen is None:
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            return None
        chosen = study.best_trial.number
    settings = study.trials[chosen].user_attrs["settings"]
    if plan.refit:
        epochs = refit_epochs(plan, cell, chosen, study.user_attrs.get("refit_epochs"))
        settings = {**settings, "refit": True, "epochs": epochs}
        if study.user_attrs.get("refit_epochs") != epochs:
            study.set_user_attr("refit_epochs", epochs)  # once per cell, not per seed
    spec = base_spec(plan, cell, settings, seed)
    run_dir = plan.folder("finals", cell) / f"seed{seed}"
    metrics = completed_metrics(run_dir)
    if metrics is not None and not same_spec(run_dir, spec):
        console.print(f"  {cell} final seed {seed}: {run_dir} was trained with another "
                      "configuration (or task defaults, or --refit); training it again")
        metrics = None
    if metrics is None:
        resume = can_resume(run_dir, spec)  # a stopped final continues from its resume point
        if not resume:
            shutil.rmtree(run_dir, ignore_errors=True)  # an outdated or unresumable final
        # The trial is recorded before training, so a final the user resumes by hand
        # (`seqbench run --resume`) is still recognised as this trial's final.
        metrics = train(spec, data_dir=plan.data_dir, run_dir=run_dir, show_progress=False,
                        max_seconds=plan.max_seconds, logger=plan.logger, resume=resume,
                        origin={"trial": chosen, "study": plan.study_name(cell)}).metrics
        console.print(f"  {cell} final seed {seed}: {metrics['primary_metric']} "
                      f"{metrics[metrics['primary_metric']]:.4g}")
    record = {"run_dir": str(run_dir), "trial": chosen, "metrics": metrics}
    study.set_user_attr(f"final_seed{seed}", record)
    return record


def validate_plan(plan: SweepPlan) -> None:
    """Fail on bad names, values or data before any worker starts: a problem found by the
    first trial would cost a failed trial per attempt, in the study for good."""
    from seqbench import loggers

    loggers.check(plan.logger)
    if plan.pruner not in PRUNERS:
        from seqbench.errors import unknown_name

        raise unknown_name("pruner", plan.pruner, PRUNERS)
    check_study_name(plan.study)
    check_seed(plan.seed, "--seed", MAX_SWEEP_SEED)
    whole_number(plan.rerun_seeds, "--rerun-seeds")  # its range is checked below
    for value, what in ((plan.trials, "--trials"), (plan.seeds, "--seeds"), (plan.jobs, "--jobs"),
                        (plan.top, "--top"), (plan.param_budget, "--param-budget"),
                        (plan.folds, "--folds")):
        if value is not None and whole_number(value, what) < 1:
            raise SeqbenchError(f"{what} must be at least 1 (got {value}).")
    seconds = plan.max_seconds
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, numbers.Real)
                                or not seconds > 0):
        raise SeqbenchError(f"--max-time must be a positive number of seconds (got {seconds!r}).")
    if not 0 <= plan.rerun_seeds < FINAL_SEED_OFFSET:
        raise SeqbenchError(f"--rerun-seeds must be between 0 and {FINAL_SEED_OFFSET - 1} "
                            f"(got {plan.rerun_seeds}).")
    if "refit" in plan.settings:
        raise SeqbenchError("refit is a choice for the finals, not a setting of every trial: "
                            "use --refit (refit=True in seqbench.sweep).")
    if not plan.cells:
        raise SeqbenchError("--cells is empty; name at least one cell.")
    for cell in plan.cells:
        spec = base_spec(plan, cell)
        if plan.selection_folds() > 1:
            base_spec(plan, cell, {**plan.settings, "folds": plan.selection_folds()})
        search_space.default_point(cell_space(plan, cell), spec.settings())
    # The one place a torn journal is cut; then the cheap check before preparing any data.
    refuse_another_protocol(plan, open_storage(plan.storage, repair=True))
    check_data(plan)


def check_data(plan: SweepPlan) -> None:
    """Prepare the defaults' data and their validation folds once, so that unreadable data,
    folds the data cannot make, a `--param-budget` no model of a cell fits, or a task that
    cannot `--refit` is one error now, not failed trials kept in the study."""
    from seqbench.sweeps.budget import hidden_size_for
    from seqbench.train import prepare_data

    data = prepare_data(base_spec(plan, plan.cells[0]), plan.data_dir)
    folds = plan.selection_folds()
    if folds > 1:
        for index in range(folds):
            data.fold(index, folds)
    if plan.param_budget:
        for cell in plan.cells:
            hidden_size_for(base_spec(plan, cell), data, plan.param_budget)
    if plan.refit:
        data.refit()


#: A study name is one path segment of the output folders and one `/`-part of the Optuna
#: study names that `seqbench report --study a,b` splits: no `/`, no `,`, no leading dot.
STUDY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_study_name(study: str) -> None:
    if not isinstance(study, str) or not STUDY_NAME.fullmatch(study):
        raise SeqbenchError(f"--study {study!r} is not a usable name: use letters, digits, "
                            "'_', '-' and '.', not starting with '.' (it names folders).")


def run_sweep(plan: SweepPlan) -> None:
    """Search every cell, select, then run the finals; in `plan.jobs` processes when > 1."""
    validate_plan(plan)
    for cell in plan.cells:
        open_cell_study(plan, cell)
    finals = [(cell, seed) for cell in plan.cells for seed in plan.seeds_used()["final"]]
    if plan.jobs == 1:
        for cell in plan.cells:
            console.print(f"[bold]{cell}[/]: searching ({plan.trials} trials)")
            search(plan, cell)
        for cell in plan.cells:
            console.print(f"[bold]{cell}[/]: re-running the top {plan.top} and the defaults "
                          f"with {plan.rerun_seeds} fresh seeds")
            select(plan, cell)
        for cell, seed in finals:
            final_run(plan, cell, seed)
        return
    searches = [Job(f"{cell}/{worker + 1}", search, (plan, cell, worker))
                for cell in plan.cells for worker in range(plan.jobs)]
    run_jobs(searches, plan.jobs, on_death=lambda job: replace_dead(job, searches=True))
    run_jobs(rerun_jobs(plan), plan.jobs, on_death=lambda job: replace_dead(job, searches=False))
    for cell in plan.cells:
        select(plan, cell)
    run_jobs([Job(f"{cell}/final-seed{seed}", final_run, (plan, cell, seed))
              for cell, seed in finals], plan.jobs,
             on_death=lambda job: replace_dead(job, searches=False))


def replace_dead(job: Job, searches: bool) -> Job | None:
    """A dead search worker is replaced (its trial is marked failed and sampled again);
    a dead selection or final is re-run once. Repeated deaths mean a systematic cause."""
    if job.deaths > (MAX_FAILURES_IN_A_ROW if searches else 1):
        raise SeqbenchError(f"worker {job.name} died {job.deaths} times; giving up on it "
                            "(is the machine out of memory?).")
    return job
