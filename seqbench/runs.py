"""Run records: the folder every run leaves behind, and reading it back.

A run folder holds `config.json` (the resolved spec and the command that re-runs it,
written *before* training so a crash never loses what was attempted), `history.csv` (one
row per epoch, appended as training goes), `best.ckpt` (Lightning checkpoint of the best
validation epoch) and, at the end, `metrics.json`. Reports read only these files.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqbench import registry
from seqbench.config import RunSpec
from seqbench.errors import SeqbenchError

CONFIG = "config.json"
METRICS = "metrics.json"
HISTORY = "history.csv"
CHECKPOINT = "best.ckpt"
ITEMS = "test_items.csv"


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Write JSON atomically so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=".partial-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=False)
        handle.write("\n")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any]:
    with open(path) as handle:
        return json.load(handle)


def create_run_dir(output_dir: Path, spec: RunSpec) -> Path:
    """A new, unique folder named after what the run is."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{spec.task}-{spec.dataset}-{spec.cell}-seed{spec.seed}-{stamp}"
    output_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        run_dir = output_dir / (base if attempt == 0 else f"{base}-{attempt}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise SeqbenchError(f"could not create a run folder under {output_dir}")


def environment() -> dict[str, str]:
    """Versions that can change a result, recorded with every run."""
    import lightning
    import torch

    import seqbench

    return {
        "seqbench": seqbench.__version__,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_config(run_dir: Path, spec: RunSpec) -> None:
    write_json(
        run_dir / CONFIG,
        {"spec": spec.to_dict(), "command": spec.command(), "environment": environment(),
         "plugins": registry.provenance(spec.cell, spec.task)},
    )


def read_spec(run_dir: Path) -> RunSpec:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise SeqbenchError(f"'{run_dir}' is not a run folder (no {CONFIG}).")
    return RunSpec.from_dict(read_json(path)["spec"])


def write_items(run_dir: Path, items: list[tuple[Any, Any]], metric: str) -> dict[str, str]:
    """Write the per-item test scores (`item,value,weight`); return their description.

    `kind` is "binary" when every item is a 0/1 outcome of weight 1 (accuracy), which
    reports compare with McNemar's test; anything else is "continuous".
    """
    import torch

    values = torch.cat([v.reshape(-1) for v, _ in items]).double().cpu().tolist()
    weights = torch.cat([w.reshape(-1) for _, w in items]).double().cpu().tolist()
    with open(run_dir / ITEMS, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item", "value", "weight"])
        writer.writerows((i, repr(v), repr(w)) for i, (v, w) in enumerate(zip(values, weights)))
    binary = all(v in (0.0, 1.0) for v in values) and all(w == 1.0 for w in weights)
    return {"file": ITEMS, "metric": metric, "kind": "binary" if binary else "continuous"}


class HistoryWriter:
    """Appends one CSV row per epoch, flushing each so a killed run keeps its curve."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] | None = None

    def __call__(self, row: Mapping[str, Any]) -> None:
        if self.columns is None:
            self.columns = list(row)
            with open(self.path, "w", newline="") as handle:
                csv.writer(handle).writerow(self.columns)
        with open(self.path, "a", newline="") as handle:
            csv.writer(handle).writerow([row.get(c, "") for c in self.columns])
