"""Terminal output: one rich console, progress for long steps, summary tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import track
from rich.table import Table

console = Console(stderr=True)
T = TypeVar("T")


def progress(description: str, items: Iterable[T], total: int | None = None) -> Iterable[T]:
    """Show a progress bar while iterating (used by tasks when they build caches)."""
    return track(items, description=description, total=total, console=console, transient=False)


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
