"""Terminal output: one rich console, progress for long steps, summary tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import track

console = Console(stderr=True)
T = TypeVar("T")


def note(message: str) -> None:
    """One `note:` line on stderr for something the user should know that is no error. Never
    wrapped at the terminal's width and never read as markup, so a path in it stays whole
    (and one holding '[' stays as written), and a test or a script can find it."""
    from rich.text import Text

    console.print(Text.assemble(("note:", "yellow"), " ", message), soft_wrap=True,
                  highlight=False)


def progress(description: str, items: Iterable[T], total: int | None = None) -> Iterable[T]:
    """Show a progress bar while iterating (used by tasks when they build caches). It goes
    when done, so a file refused on the way is one error line, not a bar and the line."""
    return track(items, description=description, total=total, console=console, transient=True)


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    return str(value)


def training_progress(monitor: str, mode: str = "min") -> Any:
    """The progress display of one training: Lightning's RichProgressBar, as
    `TrainingProgress` adjusts it; `mode`: min or max, the direction of `monitor`."""
    from lightning.pytorch.callbacks import RichProgressBar

    # Built on first use so that importing this module never imports Lightning.
    return type("TrainingProgress", (TrainingProgress, RichProgressBar), {})(
        monitor, mode, console_kwargs={"stderr": True})


class TrainingProgress:
    """What RichProgressBar shows, with epochs numbered from 1 (as in history.csv), a second
    line for the whole run with an ETA (an upper bound, since early stopping may end it
    sooner), and no bars for validation and test passes, which are short and would only
    flicker. The train loss and the selection metric show beside the epoch's bar.

    A run that ends before its last epoch says why: early stopping (the run line is closed
    at what was trained, not left frozen at "640/4000 ... ETA 0:03:44"), or divergence. When
    the console is not a terminal (output to a file or a CI log), there is no bar, which
    would print nothing until it stops, but one plain line per epoch, as history.csv has it.
    """

    def __init__(self, monitor: str, mode: str = "min", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.monitor = monitor
        self.sign = 1.0 if mode == "min" else -1.0
        self._run_task: Any = None
        self._lines: EpochLines | None = None
        #: Training batches finished in this epoch (the bars count batches, not items).
        self._batches_done = 0

    def configure_columns(self, trainer: Any) -> list:
        from rich.progress import TextColumn

        columns = super().configure_columns(trainer)  # type: ignore[misc]
        return [*columns[:3], TextColumn("batches"), *columns[3:]]

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not console.is_terminal:
            self.disable()  # type: ignore[attr-defined]
            self._lines = EpochLines(trainer.max_epochs, self.monitor, self.sign,
                                     getattr(pl_module, "epoch_listeners", None))
        super().on_train_start(trainer, pl_module)  # type: ignore[misc]
        self._run_task = None
        if self.progress is not None:
            batches = self.total_train_batches
            self._run_task = self.progress.add_task(
                "run", total=batches * trainer.max_epochs,
                completed=batches * trainer.current_epoch)

    @property
    def total_train_batches(self) -> int | float:
        """Batches, not loader items: an item holds several (`seqbench.loaders.Items`)."""
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)  # type: ignore[attr-defined]
        batches = getattr(dataset, "num_batches", None)
        return super().total_train_batches if batches is None else batches  # type: ignore[misc]

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._batches_done = 0
        super().on_train_epoch_start(trainer, pl_module)  # type: ignore[misc]
        if self.progress is not None and self.train_progress_bar_id is not None:
            self.progress.update(self.train_progress_bar_id, description=(
                f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"))

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, item: Any,
                           index: int) -> None:
        self._batches_done += len(item)
        super().on_train_batch_end(trainer, pl_module, outputs, item,  # type: ignore[misc]
                                   self._batches_done - 1)
        if self.progress is not None and self._run_task is not None:
            self.progress.advance(self._run_task, len(item))

    def on_validation_batch_start(self, *args: Any, **kwargs: Any) -> None:
        """No validation bar."""

    def on_test_batch_start(self, *args: Any, **kwargs: Any) -> None:
        """No test bar."""

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        epochs = trainer.current_epoch
        if trainer.should_stop and epochs < trainer.max_epochs:
            reason = next((c.stop_reason for c in trainer.callbacks
                           if getattr(c, "stop_reason", None)), "stopped by a callback")
            progress = getattr(self, "progress", None)
            if progress is not None and self._run_task is not None:
                done = next(t.completed for t in progress.tasks if t.id == self._run_task)
                progress.update(self._run_task, total=done, description=(
                    f"run (stopped early, epoch {epochs}/{trainer.max_epochs})"))
            self._stop()
            console.print(f"stopped early after epoch {epochs} of {trainer.max_epochs}: "
                          f"{reason}.", soft_wrap=True, highlight=False)
        self._stop()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        progress = getattr(self, "progress", None)
        if (progress is not None and self._run_task is not None
                and type(exception).__name__ == "DivergedError"):
            progress.update(self._run_task, description="run (diverged)")
        self._stop()

    def _stop(self) -> None:
        if hasattr(self, "_stop_progress"):  # RichProgressBar's, when mixed in
            self._stop_progress()
        if self._lines is not None:
            self._lines.close()
            self._lines = None


class EpochLines:
    """One plain line per finished epoch ("epoch 3/20  1.2 s  train_loss 0.51  val_nll 0.46
    (best so far)"), printed from the model's epoch rows: the same numbers history.csv
    records."""

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
