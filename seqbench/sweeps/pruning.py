"""Report each epoch's validation metric to Optuna and stop a trial the pruner gives up on.

Written against `lightning.pytorch` (optuna-integration's callback targets the old
`pytorch_lightning` package name). Stopping is cooperative: the trainer finishes its epoch
and the sweep then marks the trial pruned, so the run record stays consistent.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback

from seqbench.best import past_minimum, validation_value


class OptunaPruning(Callback):
    def __init__(self, trial: Any, monitor: str, min_epochs: int = 0, min_steps: int = 0) -> None:
        self.trial = trial
        self.monitor = monitor
        self.minimum = (min_epochs, min_steps)
        self.pruned_at: int | None = None

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        value = validation_value(pl_module, self.monitor)
        if trainer.sanity_checking or value is None:
            return
        epoch = trainer.current_epoch + 1
        self.trial.report(float(value), step=epoch)
        if past_minimum(trainer, *self.minimum) and self.trial.should_prune():
            self.pruned_at = epoch
            trainer.should_stop = True
