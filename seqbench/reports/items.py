"""Per-item test scores of a final run (`test_items.csv`), the material of paired tests.

A run that scores its test items writes one row per item (`item,value,weight`, the same
items in the same order for every cell and seed) and names the file, the metric and the
kind ("binary": 0/1 correctness; "continuous": summed loss or error) under
`metrics["test_items"]`. Runs of tasks without per-item scores have neither.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqbench.errors import SeqbenchError

KINDS = ("binary", "continuous")


@dataclass(frozen=True)
class ItemScores:
    metric: str
    kind: str
    items: tuple[str, ...]
    values: np.ndarray
    weights: np.ndarray


def number_in(path: Path, column: str, text: str) -> float:
    """A number of a run record's CSV, or one line naming the damaged file."""
    try:
        return float(text)
    except (ValueError, TypeError):  # TypeError: a short row's missing field (None)
        raise SeqbenchError(f"{path}: column '{column}' holds {text!r}, not a number; the run "
                            "record is damaged (publish or run it again).") from None


def read_items(final: dict[str, Any]) -> ItemScores | None:
    """The item scores of one final run record, or None when the run has none."""
    declared = final["metrics"].get("test_items")
    if not declared:
        return None
    path = Path(final["run_dir"]) / declared["file"]
    if not path.is_file():
        return None
    if declared["kind"] not in KINDS:
        raise SeqbenchError(f"{path}: unknown item kind '{declared['kind']}' (expected one of "
                            f"{', '.join(KINDS)}).")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for column in ("item", "value", "weight"):
        if rows and column not in rows[0]:
            raise SeqbenchError(f"{path}: no '{column}' column; the run record is damaged "
                                "(publish or run it again).")
    values = np.array([number_in(path, "value", row["value"]) for row in rows])
    if declared["kind"] == "binary" and not np.isin(values, (0.0, 1.0)).all():
        raise SeqbenchError(f"{path}: binary item values must be 0 or 1.")
    return ItemScores(metric=declared["metric"], kind=declared["kind"],
                      items=tuple(row["item"] for row in rows), values=values,
                      weights=np.array([number_in(path, "weight", row["weight"])
                                        for row in rows]))


def dependent_span(task: str, dataset: str, final: dict[str, Any]) -> tuple[int, str]:
    """How many consecutive test items may share data (`Task.test_item_span`, asked with the
    task parameters the final run recorded), and "" or why the items count as independent
    without the task's word."""
    from seqbench import registry
    from seqbench.runs import CONFIG, read_json

    config = Path(final["run_dir"]) / CONFIG
    params = read_json(config).get("spec", {}).get("task_params", {}) if config.is_file() else {}
    try:
        plugin = registry.get_task(task)
    except SeqbenchError:
        return 1, f"task '{task}' is not installed here to say whether its items share data"
    return plugin.test_item_span(dataset, params), ""
