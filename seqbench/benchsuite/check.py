"""`seqbench suite check`: load every dataset of a suite the way its runs will, before the
hours of training start.

A suite run takes many hours over dozens of datasets, on several machines; a dataset whose
file is missing, whose optional package is not installed or whose download fails would
otherwise surface only when a worker reaches it, hours in. Checking loads each dataset
through its task's own `prepare` (as `seqbench data` does, filling the preprocessed-data
cache a run then reuses), keeps going past a failure, and says per dataset how many items
each split has, the shortest sequence (the suite's bar for classification series is 20
steps) and how long loading took, so one command answers "will this suite run here?".
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from seqbench.benchsuite.spec import Suite, SuiteDataset
from seqbench.errors import SeqbenchError


@dataclass(frozen=True)
class DatasetCheck:
    """One dataset loaded (`error` None) or not (`error`: the one-line reason)."""

    dataset: SuiteDataset
    seconds: float
    items: dict[str, int] | None = None
    #: The shortest sequence over all splits (None: the task reports no lengths).
    shortest: int | None = None
    error: str | None = None


def load_one(item: SuiteDataset, data_dir: str | os.PathLike[str] | None) -> DatasetCheck:
    """Load one dataset as a run would; a user-facing failure becomes its `error`."""
    from seqbench.datacheck import check

    start = time.perf_counter()
    try:
        found = check(item.task, item.dataset, {}, data_dir)
    except SeqbenchError as exc:
        return DatasetCheck(item, time.perf_counter() - start, error=str(exc))
    lengths = [n for values in found.facts.get("lengths", {}).values() for n in values]
    return DatasetCheck(item, time.perf_counter() - start, dict(found.data.split_sizes()),
                        min(lengths) if lengths else None)


def check_suite(suite: Suite, data_dir: str | os.PathLike[str] | None = None,
                only: Iterable[str] = (),
                shown: Callable[[DatasetCheck], None] = lambda _: None) -> list[DatasetCheck]:
    """Every dataset of `suite` (or those named in `only`, as TASK/DATASET), loaded in
    order; `shown` is called with each result as it comes (a long check shows progress)."""
    results = []
    for item in suite.only(only).datasets:
        results.append(load_one(item, data_dir))
        shown(results[-1])
    return results
