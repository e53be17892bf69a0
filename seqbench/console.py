"""Terminal output: one rich console, progress for long steps, summary tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import track
from rich.table import Table

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


def key_value_table(title: str, rows: Mapping[str, Any]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("")
    for key, value in rows.items():
        table.add_row(key, format_value(value))
    return table


def training_progress(monitor: str) -> Any:
    """The progress bar of one training (see `TrainingProgress`)."""
    from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar

    # Built on first use so that importing this module never imports Lightning; it must be
    # a ProgressBar, or the Trainer adds a bar of its own.
    return type("TrainingProgress", (TrainingProgress, ProgressBar), {})(monitor)


class TrainingProgress:
    """The run's progress in batches (not Lightning's chunks of batches), 1-based epochs.

    Lightning's bars count its own steps, which here are chunks of several batches
    (`seqbench.loaders`), number epochs from 0, and add bars for every validation and test
    pass. This bar shows what a user can check against history.csv: "epoch 3/20", the
    batches of that epoch, the selection metric of the last validation, and a second line
    for the whole run with an ETA (an upper bound, since early stopping may end it sooner).
    Validation and test passes show nothing.
    """

    def __init__(self, monitor: str) -> None:
        super().__init__()
        self.monitor = monitor
        self._enabled = True
        self._bar: Any = None
        self._epoch_task: Any = None
        self._run_task: Any = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        if not self._enabled:
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
        self._stop()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def batches_per_epoch(trainer: Any) -> int:
    """Batches (not chunks) in one pass over the training split."""
    loader = trainer.train_dataloader
    count = getattr(loader, "num_batches", None)
    return int(count) if count is not None else int(trainer.num_training_batches)
