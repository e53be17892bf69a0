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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqbench.config import resolve_settings
from seqbench.contracts import TaskData


@dataclass
class DataCheck:
    """A dataset as a run would see it: one row per split (items, lengths, balance), the
    task's notes and test baselines, the cache it used, and the data itself."""

    task: str
    dataset: str
    data: TaskData
    rows: list[list[str]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


def check(task: str, dataset: str | None, settings: Mapping[str, Any],
          data_dir: str | os.PathLike[str] | None) -> DataCheck:
    """Load the dataset with the task's and the core's options validated as `build_spec`
    validates them (no cell is needed to look at data)."""
    from seqbench.datafiles import CACHES_USED
    from seqbench.train import prepare_dataset

    resolved = resolve_settings(task, dataset, settings)
    CACHES_USED.clear()  # the cache named below is this dataset's only
    data = prepare_dataset(resolved.task.name, resolved.dataset, resolved.task_params, data_dir)
    rows, facts = summary_rows(data)
    if not facts.get("cache") and CACHES_USED:  # the task did not say; `cached` knows
        facts["cache"] = ", ".join(map(str, dict.fromkeys(CACHES_USED)))
    return DataCheck(resolved.task.name, resolved.dataset, data, rows, facts)


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
