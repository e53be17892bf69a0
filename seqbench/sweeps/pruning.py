"""Report each epoch's best validation value so far to Optuna and stop a trial the pruner
gives up on.

Why the best so far and not the epoch's own value: a trial's objective is its best epoch
(early stopping keeps it), and Optuna's median pruner compares a trial's best reported
value with the other trials' values *at the same step*. Raw values of trials that went on
to overfit are worse than what those trials achieved, so raw reporting sets a lenient bar
and keeps hopeless trials alive. Measured with benchmarks/pruning.py (results/benchmarks.md):
Japanese Vowels GRU, 30 trials x 100 epochs, 59% of trial-epochs saved instead of 48%, at
the same best value.

Written against `lightning.pytorch` (optuna-integration's callback targets the old
`pytorch_lightning` package name). Stopping is cooperative: the trainer finishes its epoch
and the sweep then marks the trial pruned, so the run record stays consistent.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from lightning.pytorch.callbacks import Callback

from seqbench.best import past_minimum, validation_value
from seqbench.errors import SeqbenchError

if TYPE_CHECKING:
    from seqbench.sweeps.plan import SweepPlan


def make_pruner(plan: SweepPlan) -> Any:
    """The pruner, with a warm-up long enough that slow starters are not cut at epoch 2.

    Early validation values mostly reflect the learning rate, not where a trial will end,
    so the median rule waits for a few complete trials and for the task's declared minimum
    epochs (`min_epochs`; the pruning callback also waits for `min_steps`).
    """
    import optuna

    hparams = plan.spec(plan.cells[0]).hparams
    epochs = hparams["epochs"]
    if plan.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=min(5, max(2, plan.trials // 3)),
                                           n_warmup_steps=max(2, hparams["min_epochs"]))
    if plan.pruner == "hyperband":  # the first rung is where pruning may start
        return optuna.pruners.HyperbandPruner(
            min_resource=min(epochs, max(1, hparams["min_epochs"], epochs // 16)),
            max_resource=epochs)
    return optuna.pruners.NopPruner()


class OptunaPruning(Callback):
    """Reports to `trial` and stops the run when its pruner says so.

    On a run of several processes only the first reports, and its decision is broadcast, so
    every process stops after the same epoch. Pickled (a sweep's run on several devices is
    trained by a command of its own, `seqbench.sweeps.multidevice`), it carries the trial's
    storage address, study, id and pruner instead of the trial, and reloads it there.
    """

    def __init__(self, trial: Any, monitor: str, min_epochs: int = 0, min_steps: int = 0,
                 best_so_far: bool = True, storage: str | None = None) -> None:
        self.trial = trial
        self.monitor = monitor
        self.minimum = (min_epochs, min_steps)
        #: False: report each epoch's own value, as studies begun before 2026-12-03 did.
        self.report_best = best_so_far
        #: The storage's address, for a process that reloads the trial.
        self.storage = storage
        self.better = min if trial.study.direction.name == "MINIMIZE" else max
        self.pruned_at: int | None = None
        self.best_so_far: float | None = None

    def __getstate__(self) -> dict[str, Any]:
        if self.storage is None:
            raise SeqbenchError("this pruning callback cannot move to another process: it "
                                "was made without its storage's address")
        state = {key: value for key, value in self.__dict__.items()
                 if key not in ("trial", "better")}
        study = self.trial.study
        state["trial"] = (study.study_name, self.trial._trial_id, study.pruner,
                          study.direction.name)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import optuna

        from seqbench.sweeps.storage import open_storage

        study_name, trial_id, pruner, direction = state.pop("trial")
        self.__dict__.update(state)
        study = optuna.load_study(study_name=study_name, storage=open_storage(self.storage),
                                  pruner=pruner)
        self.trial = optuna.trial.Trial(study, trial_id)
        self.better = min if direction == "MINIMIZE" else max

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        value = validation_value(pl_module, self.monitor)
        if trainer.sanity_checking or value is None:
            return
        value = float(value)
        if self.report_best and math.isfinite(value):
            self.best_so_far = value if self.best_so_far is None else self.better(
                self.best_so_far, value)
        epoch = trainer.current_epoch + 1
        prune = False
        if trainer.is_global_zero:
            self.trial.report(value if self.best_so_far is None else self.best_so_far,
                              step=epoch)
            prune = past_minimum(trainer, *self.minimum) and self.trial.should_prune()
        if trainer.world_size > 1:
            prune = trainer.strategy.broadcast(prune, src=0)
        if prune:
            self.pruned_at = epoch
            trainer.should_stop = True
