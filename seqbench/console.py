"""Terminal output: one rich console, progress for long steps, summary tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import track

console = Console(stderr=True)
T = TypeVar("T")


def progress(description: str, items: Iterable[T], total: int | None = None) -> Iterable[T]:
    """Show a progress bar while iterating (used by tasks when they build caches)."""
    return track(items, description=description, total=total, console=console, transient=False)


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    return str(value)


def training_progress(monitor: str, mode: str = "min") -> Any:
    """The progress bar of one training (see `TrainingProgress`); `mode`: min or max, the
    direction of `monitor`."""
    from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar

    # Built on first use so that importing this module never imports Lightning; it must be
    # a ProgressBar, or the Trainer adds a bar of its own.
    return type("TrainingProgress", (TrainingProgress, ProgressBar), {})(monitor, mode)


class TrainingProgress:
    """The run's progress in batches (not Lightning's chunks of batches), 1-based epochs.

    Lightning's bars count its own steps, which here are chunks of several batches
    (`seqbench.loaders`), number epochs from 0, and add bars for every validation and test
    pass. This bar shows what a user can check against history.csv: "epoch 3/20", the
    batches of that epoch, the selection metric of the last validation, and a second line
    for the whole run with an ETA (an upper bound, since early stopping may end it sooner).
    Validation and test passes show nothing.

    A run that ends before its last epoch says why: early stopping (the run line is closed
    at what was trained, not left frozen at "640/4000 ... ETA 0:03:44"), or divergence. When
    the console is not a terminal (output to a file or a CI log), there is no bar, which
    would print nothing until it stops, but one plain line per epoch, as history.csv has it.
    """

    def __init__(self, monitor: str, mode: str = "min") -> None:
        super().__init__()
        self.monitor = monitor
        self.sign = 1.0 if mode == "min" else -1.0
        self._enabled = True
        self._bar: Any = None
        self._epoch_task: Any = None
        self._run_task: Any = None
        self._lines: Any = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        if not self._enabled:
            return
        if not console.is_terminal:
            self._lines = EpochLines(trainer.max_epochs, self.monitor, self.sign,
                                     getattr(pl_module, "epoch_listeners", None))
            return
        self.batches = batches_per_epoch(trainer)
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                             MofNCompleteColumn(), TextColumn("batches"),
                             TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                             TextColumn("{task.fields[note]}"), console=console)
        self._bar.start()
        self._epoch_task = self._bar.add_task("epoch", total=self.batches, note="")
        self._run_task = self._bar.add_task("run", total=self.batches * trainer.max_epochs,
                                            note="")

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self._bar is not None:
            self._bar.reset(self._epoch_task, total=self.batches,
                            description=f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self._bar is not None:
            done = len(batch) if isinstance(batch, list) else 1
            self._bar.advance(self._epoch_task, done)
            self._bar.advance(self._run_task, done)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        value = pl_module.last_metrics.get("val", {}).get(self.monitor)
        if self._bar is not None and value is not None:
            note = f"{self.monitor} {format_value(value)}"
            self._bar.update(self._epoch_task, note=note)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        epochs = trainer.current_epoch
        if trainer.should_stop and epochs < trainer.max_epochs:
            reason = next((c.stop_reason for c in trainer.callbacks
                           if getattr(c, "stop_reason", None)), "stopped by a callback")
            if self._bar is not None:  # close the run line at what was trained
                done = next(t.completed for t in self._bar.tasks if t.id == self._run_task)
                self._bar.update(self._run_task, total=done,
                                 description=f"run (stopped early, epoch {epochs}/"
                                 f"{trainer.max_epochs})")
            self._stop()
            console.print(f"stopped early after epoch {epochs} of {trainer.max_epochs}: "
                          f"{reason}.", soft_wrap=True, highlight=False)
        self._stop()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self._bar is not None and type(exception).__name__ == "DivergedError":
            self._bar.update(self._run_task, description="run (diverged)")
        self._stop()

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self._lines is not None:
            self._lines.close()
            self._lines = None


class EpochLines:
    """One plain line per finished epoch ("epoch 3/20  1.2 s  train_loss 0.51  val_nll 0.46
    (best)"), printed from the model's epoch rows: the same numbers history.csv records."""

    def __init__(self, max_epochs: int, monitor: str, sign: float, listeners: list | None
                 ) -> None:
        """`sign`: 1 where a lower `monitor` is better, -1 where a higher one is."""
        self.max_epochs, self.monitor, self.sign = max_epochs, monitor, sign
        self.listeners = listeners
        self.best: float | None = None
        if listeners is not None:
            listeners.append(self)

    def __call__(self, row: Mapping[str, Any]) -> None:
        value = row.get(self.monitor)
        best = value is not None and (self.best is None or
                                      self.sign * value < self.sign * self.best)
        if best:
            self.best = value
        parts = [f"epoch {row['epoch']}/{self.max_epochs}", f"{row['seconds']:.1f} s",
                 *(f"{key} {format_value(v)}" for key, v in row.items()
                   if key not in ("epoch", "seconds", "lr")),
                 *(["(best so far)"] if best else [])]
        console.print("  ".join(parts), highlight=False, soft_wrap=True)  # one line per epoch

    def close(self) -> None:
        if self.listeners is not None and self in self.listeners:
            self.listeners.remove(self)


def batches_per_epoch(trainer: Any) -> int:
    """Batches (not chunks) in one pass over the training split."""
    loader = trainer.train_dataloader
    count = getattr(loader, "num_batches", None)
    return int(count) if count is not None else int(trainer.num_training_batches)
