"""Copy a finished sweep into a results folder that rebuilds from committed files alone.

benchopt's rule: a benchmark is data, and its results rebuild from what is committed. A
sweep's journal holds its studies and points at run records under the sweep's output
folder, beside checkpoints and resume points nobody should commit. `publish` copies the
studies of one sweep (by study prefix) into a results journal, replacing earlier copies of
the same studies, and the final runs' small files (config, history, metrics, per-item test
scores) to the same place relative to that journal, which is where reports look for a
moved run record (`seqbench.sweeps.record.relocated`). It reads the studies through their
record (`seqbench.sweeps.record`), as reports do, so both count the same finals.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection
from pathlib import Path

from seqbench.errors import SeqbenchError
from seqbench.sweeps import record
from seqbench.sweeps.record import StudyRecord
from seqbench.sweeps.storage import open_existing, open_storage

#: What a final run's record needs for tables, plots and paired tests (no checkpoints).
SMALL_FILES = ("config.json", "history.csv", "metrics.json", "test_items.csv")
RESULTS_JOURNAL = "studies.journal"


def publish(storage: str, study: str, destination: Path,
            cells: Collection[str] | None = None) -> list[str]:
    """Copy the studies named `study` (a prefix, or several joined by commas) from `storage`
    into `destination/studies.journal`, and their final runs' small files under
    `destination`; return the study names copied. `cells` keeps only those cells' studies.

    Every final run is found before anything is written, so a missing one leaves the
    results folder as it was. A study whose finals are not all done is refused rather
    than published as if it were a result: a long sweep that runs its cells in stages
    publishes the finished ones with `cells`.
    """
    import optuna

    target_path = destination / RESULTS_JOURNAL
    if "://" not in storage and Path(storage).is_file() and \
            target_path.resolve() == Path(storage).resolve():
        raise SeqbenchError(f"'{storage}' is already the results journal of '{destination}'; "
                            "publish from the sweep's own storage.")
    source = open_existing(storage, f"no sweep storage at '{storage}' (pass the sweep's "
                           "--storage).")
    prefixes = study.split(",")
    swept = [summary.study_name for summary in
             optuna.get_all_study_summaries(source, include_best_trial=False)
             if summary.study_name.split("/")[0] in prefixes
             and record.is_study_record(summary.user_attrs)]
    names = [name for name in swept if cells is None or record.parse_name(name)[0] in cells]
    if not swept:
        raise SeqbenchError(f"no '{study}' studies in '{storage}'.")
    swept_cells = {record.parse_name(name)[0] for name in swept}
    unknown = [cell for cell in cells or () if cell not in swept_cells]
    if unknown or cells is not None and not cells:
        raise SeqbenchError(f"no '{study}' studies of cell '{unknown[0] if unknown else ''}' "
                            f"in '{storage}'; its cells are {','.join(sorted(swept_cells))}.")
    records = {name: record.read(optuna.load_study(study_name=name, storage=source).user_attrs)
               for name in names}
    unfinished = [f"{name} ({len(found.finals)} of {len(found.final_seeds)} finals)"
                  for name, found in records.items()
                  if len(found.finals) < len(found.final_seeds)]
    if unfinished:
        raise SeqbenchError(f"unfinished: {', '.join(unfinished)}; finish the sweep by "
                            "running its command again, or leave those cells out with --cells.")
    places = {name: final_places(found, name) for name, found in records.items()}
    if any((destination / inside).resolve() == run_dir.resolve()
           for found in places.values() for run_dir, inside in found):
        raise SeqbenchError(f"'{destination}' is the sweep's own folder; publish to another "
                            "one (e.g. results/NAME).")
    destination.mkdir(parents=True, exist_ok=True)
    target = open_storage(str(target_path))
    existing = set(optuna.get_all_study_names(target))
    for name in names:
        if name in existing:
            optuna.delete_study(study_name=name, storage=target)
        optuna.copy_study(from_study_name=name, from_storage=source, to_storage=target)
        for run_dir, inside in places[name]:
            copy_record(run_dir, destination / inside)
    return names


def final_places(found: StudyRecord, name: str) -> list[tuple[Path, Path]]:
    """(run folder, its place relative to the sweep's folder) of each final the reports
    read (`StudyRecord.finals`)."""
    if found.output_dir is None:
        raise SeqbenchError(f"study '{name}' records no sweep folder (plan.output_dir), so "
                            "its final runs cannot be placed; re-run its sweep command.")
    places = []
    for final in found.finals:
        run_dir = Path(final.run_dir)
        try:
            inside = run_dir.relative_to(found.output_dir)
        except ValueError:
            raise SeqbenchError(f"final run '{run_dir}' is outside the sweep's folder "
                                f"'{found.output_dir}'; publish cannot place it.") from None
        if not run_dir.is_dir():
            raise SeqbenchError(f"final run '{run_dir}' is missing; publish from the machine "
                                "and folder the sweep ran in.")
        places.append((run_dir, inside))
    return places


def copy_record(run_dir: Path, target: Path) -> None:
    """The small files of one run record (no checkpoints, no resume points)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in SMALL_FILES:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, target / name)
