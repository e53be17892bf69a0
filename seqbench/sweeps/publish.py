"""Copy a finished sweep into a results folder that rebuilds from committed files alone.

benchopt's rule: a benchmark is data, and its results rebuild from what is committed. A
sweep's journal holds its studies and points at run records under the sweep's output
folder, beside checkpoints and resume points nobody should commit. `publish` copies the
studies of one sweep (by study prefix) into a results journal, replacing earlier copies of
the same studies, and the final runs' small files (config, history, metrics, per-item test
scores) to the same place relative to that journal, which is where reports look for a
moved run record (`seqbench.reports.collect.relocated`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from seqbench.errors import SeqbenchError
from seqbench.sweeps.storage import open_storage

#: What a final run's record needs for tables, plots and paired tests (no checkpoints).
SMALL_FILES = ("config.json", "history.csv", "metrics.json", "test_items.csv")
RESULTS_JOURNAL = "studies.journal"


def publish(storage: str, study: str, destination: Path) -> list[str]:
    """Copy the studies named `study` (a prefix, or several joined by commas) from `storage`
    into `destination/studies.journal`, and their final runs' small files under
    `destination`; return the study names copied."""
    import optuna

    if "://" not in storage and not Path(storage).is_file():
        raise SeqbenchError(f"no sweep storage at '{storage}' (pass the sweep's --storage).")
    source = open_storage(storage)
    prefixes = study.split(",")
    names = [name for name in optuna.get_all_study_names(source)
             if name.split("/")[0] in prefixes]
    if not names:
        raise SeqbenchError(f"no '{study}' studies in '{storage}'.")
    destination.mkdir(parents=True, exist_ok=True)
    target = open_storage(str(destination / RESULTS_JOURNAL))
    existing = set(optuna.get_all_study_names(target))
    for name in names:
        if name in existing:
            optuna.delete_study(study_name=name, storage=target)
        optuna.copy_study(from_study_name=name, from_storage=source, to_storage=target)
        attrs = optuna.load_study(study_name=name, storage=source).user_attrs
        output_dir = Path(attrs.get("plan", {}).get("output_dir", "."))
        for key, record in attrs.items():
            if key.startswith("final_seed"):
                copy_record(Path(record["run_dir"]), output_dir, destination)
    return names


def copy_record(run_dir: Path, output_dir: Path, destination: Path) -> None:
    """The small files of one run record, at its place relative to the sweep's folder."""
    try:
        inside = run_dir.relative_to(output_dir)
    except ValueError:
        raise SeqbenchError(f"final run '{run_dir}' is outside the sweep's folder "
                            f"'{output_dir}'; publish cannot place it.") from None
    if not run_dir.is_dir():
        raise SeqbenchError(f"final run '{run_dir}' is missing; publish from the machine and "
                            "folder the sweep ran in.")
    target = destination / inside
    target.mkdir(parents=True, exist_ok=True)
    for name in SMALL_FILES:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, target / name)
