"""Which epoch a run keeps and when it stops: Lightning's ModelCheckpoint and EarlyStopping,
set up for a fair comparison.

* `best.ckpt` holds the weights of the epoch with the best selection metric (weights only:
  a small file, written when the metric improves, by the first process only; every process
  agrees on the improvement because the metric is summed over all of them first). A refit
  run trains on its validation items, which then cannot choose an epoch: it keeps the last.
* Early stopping waits `patience` epochs without improvement, but never stops a run before
  the task's `min_epochs` / `min_steps` (`past_minimum`, which pruning uses too): a stop
  due before them is dropped, and the run stops at the first validation past them that is
  still `patience` epochs from the best. Not the Trainer's own minimums, which would keep
  such a request pending and honour it even after the metric improved again.
* Both act when validation ends, before the epoch's resume point is written, so their state
  (kept in Lightning's checkpoint) resumes with the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from seqbench import runs


def validation_value(pl_module: Any, monitor: str) -> float | None:
    """The latest value of `monitor` (e.g. "val_nll"), or None before the first validation."""
    return pl_module.last_metrics.get("val", {}).get(monitor)


def past_minimum(trainer: Any, min_epochs: int, min_steps: int) -> bool:
    """Whether a run has trained long enough that stopping it early is fair.

    On JSB a deep LSTM sits on the per-key marginal plateau for a dozen epochs before it
    learns anything; with one batch per epoch (airline), patience would count updates. Both
    early stopping and pruning wait for the task's declared minimum.
    """
    return trainer.current_epoch + 1 >= min_epochs and trainer.global_step >= min_steps


class EarlyStoppingAfterMinimum(EarlyStopping):
    """Lightning's EarlyStopping, counting epochs without improvement from the start but
    asking to stop only once the run is past its minimum."""

    def __init__(self, monitor: str, mode: str, patience: int, min_epochs: int,
                 min_steps: int) -> None:
        # A non-finite value counts as no improvement, as it always did (the run's
        # divergence check is on the primary metric, `SequenceModel`).
        super().__init__(monitor, patience=patience, mode=mode, check_finite=False,
                         check_on_train_epoch_end=False)
        self.minimum = (min_epochs, min_steps)
        #: Why this callback ended the run, in words (None while it has not): the progress
        #: display says it instead of leaving a bar frozen short of its total.
        self.stop_reason: str | None = None

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        requested = trainer.should_stop
        super().on_validation_end(trainer, pl_module)
        if not past_minimum(trainer, *self.minimum):
            trainer.should_stop = requested
        elif trainer.should_stop and not requested:
            best = trainer.current_epoch + 1 - self.wait_count
            self.stop_reason = (f"no better {self.monitor} for {self.wait_count} epochs after "
                                f"epoch {best}, whose weights are kept")


def selection_callbacks(run_dir: Path | None, monitor: str, mode: str,
                        hparams: Mapping[str, Any]) -> list[Any]:
    """ModelCheckpoint writing `run_dir/best.ckpt` (None: a process that writes nothing gets
    the first process's folder from Lightning), and early stopping unless patience is off
    or the run is a refit."""
    keep_last = hparams["refit"]
    callbacks: list[Any] = [ModelCheckpoint(
        dirpath=run_dir, filename=Path(runs.CHECKPOINT).stem, monitor=None if keep_last
        else monitor, mode=mode, save_top_k=1, save_weights_only=True,
        save_on_train_epoch_end=False, enable_version_counter=False,
        auto_insert_metric_name=False)]
    if hparams["patience"] and not keep_last:
        callbacks.append(EarlyStoppingAfterMinimum(monitor, mode, hparams["patience"],
                                                   hparams["min_epochs"], hparams["min_steps"]))
    return callbacks


def kept_epoch(trainer: Any, model: Any, monitor: str) -> tuple[float | None, int | None]:
    """Load the kept epoch's weights into `model`; return (its `monitor` value, its epoch),
    or (None, None) when no validation finished."""
    checkpoint = next(c for c in trainer.callbacks if isinstance(c, ModelCheckpoint))
    if not checkpoint.best_model_path or not Path(checkpoint.best_model_path).is_file():
        return None, None
    saved = runs.load_checkpoint(Path(checkpoint.best_model_path),
                                 "the run's best epoch was not written completely")
    model.load_state_dict(saved["state_dict"])
    epoch = int(saved["epoch"]) + 1
    score = checkpoint.best_model_score
    if score is None:  # refit: the last epoch's value
        return validation_value(model, monitor), epoch
    return float(score), epoch
