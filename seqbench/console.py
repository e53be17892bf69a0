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


def training_progress() -> Any:
    """The progress bar of one training: Lightning's RichProgressBar, as `TrainingProgress`
    adjusts it."""
    from lightning.pytorch.callbacks import RichProgressBar

    # Built on first use so that importing this module never imports Lightning.
    return type("TrainingProgress", (TrainingProgress, RichProgressBar), {})(
        console_kwargs={"stderr": True})


class TrainingProgress:
    """What RichProgressBar shows, with epochs numbered from 1 (as in history.csv), a second
    line for the whole run with an ETA (an upper bound, since early stopping may end it
    sooner), and no bars for validation and test passes, which are short and would only
    flicker. The train loss and the selection metric show beside the epoch's bar."""

    def configure_columns(self, trainer: Any) -> list:
        from rich.progress import TextColumn

        columns = super().configure_columns(trainer)  # type: ignore[misc]
        return [*columns[:3], TextColumn("batches"), *columns[3:]]

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        super().on_train_start(trainer, pl_module)  # type: ignore[misc]
        self._run_task = None
        if self.progress is not None:
            batches = self.total_train_batches
            self._run_task = self.progress.add_task(
                "run", total=batches * trainer.max_epochs,
                completed=batches * trainer.current_epoch)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        super().on_train_epoch_start(trainer, pl_module)  # type: ignore[misc]
        if self.progress is not None and self.train_progress_bar_id is not None:
            self.progress.update(self.train_progress_bar_id, description=(
                f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"))

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)  # type: ignore[misc]
        if self.progress is not None and self._run_task is not None:
            self.progress.advance(self._run_task)

    def on_validation_batch_start(self, *args: Any, **kwargs: Any) -> None:
        """No validation bar."""

    def on_test_batch_start(self, *args: Any, **kwargs: Any) -> None:
        """No test bar."""
