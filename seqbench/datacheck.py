"""`seqbench data`: load and validate a dataset the way a run would, and say what is in it.

A practitioner pointing seqbench at their own files wants to know, before an hour of
training, that the files were read as they meant: how many pieces or sequences went to
each split, how long they are, how the classes or keys are balanced, what was skipped or
dropped, and where the cache went. The data comes from the task's own `prepare`, with the
same options a run would pass, so what this prints is exactly what training would see.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from seqbench import registry
from seqbench.config import _route, core_params_for
from seqbench.contracts import TaskData
from seqbench.errors import unknown_name
from seqbench.params import resolve


def load(task: str, dataset: str | None, settings: Mapping[str, Any],
         data_dir: str | os.PathLike[str] | None) -> tuple[str, TaskData]:
    """The dataset's name and its data, validated with the task's and the core's options."""
    from seqbench.data import CACHES_USED
    from seqbench.train import prepare_dataset

    plugin = registry.get_task(task)
    dataset = dataset or plugin.default_dataset
    if dataset not in plugin.datasets:
        raise unknown_name(f"dataset for task '{task}'", dataset, plugin.datasets)
    groups = {"core": core_params_for(plugin, dataset), "task": plugin.params}
    routed = _route(settings, groups)
    resolve(groups["core"], routed["core"], "training")  # core settings are checked too
    task_params = resolve(groups["task"], routed["task"], f"task '{task}'")
    CACHES_USED.clear()  # what `show` names is this dataset's cache only
    return dataset, prepare_dataset(task, dataset, task_params, data_dir)


def length_summary(lengths: list[int]) -> str:
    """min / median / mean / max of a split's sequence lengths."""
    if not lengths:
        return "-"
    values = np.asarray(lengths)
    return (f"{values.min()} / {int(np.median(values))} / {values.mean():.1f} / "
            f"{values.max()}")


def summary_rows(data: TaskData) -> tuple[list[list[str]], dict[str, Any]]:
    """One row per split (size, lengths, balance) and the remaining facts."""
    facts = data.describe()
    lengths, balance = facts.get("lengths", {}), facts.get("balance", {})
    rows = []
    for split, size in data.split_sizes().items():
        counts = balance.get(split, {})
        shown = ", ".join(f"{name}: {count}" for name, count in counts.items())
        rows.append([split, str(size), length_summary(lengths.get(split, [])), shown or "-"])
    return rows, facts


def show(task: str, dataset: str, data: TaskData) -> None:
    """Print the split table, the notes, the test baselines and the cache location."""
    from rich.console import Console
    from rich.table import Table

    rows, facts = summary_rows(data)
    table = Table(title=f"{task}/{dataset}", title_justify="left")
    for column in ("split", "items", "length min / median / mean / max", "balance"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    for line in facts.get("notes", []):
        console.print(f"- {line}")
    for name, values in data.baselines().items():  # what a model has to beat, before training
        shown = ", ".join(f"{key} {value:.4g}" for key, value in values.items()
                          if isinstance(value, (int, float)))
        console.print(f"baseline {name} on test: {shown}")
    console.print(f"cache: {facts.get('cache') or caches_used() or 'none (read directly)'}")


def caches_used() -> str:
    """The cache files `seqbench.data.cached` read or wrote while the data loaded."""
    from seqbench.data import CACHES_USED

    return ", ".join(map(str, dict.fromkeys(CACHES_USED)))
