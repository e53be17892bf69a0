"""Run a suite: one sweep per dataset, all in one storage, then the cross-dataset report.

Each dataset is an ordinary sweep (`seqbench.sweep`, the public API, which `sb.suite` hands
in, so the sweep's own protocol, resumption and `jobs` processes apply unchanged) under one
study name, so its cell studies are `STUDY/TASK/DATASET/CELL` side by side in one storage
and `seqbench report` ranks the cells across all of them. Which worker sweeps which
dataset is decided by claims in that storage (`claims.py`): start the same command in
several terminals or on several machines sharing a PostgreSQL storage and each takes the
next dataset nobody holds. A worker that is killed loses nothing but its running trial;
running the command again (or any other worker, once the dead one's claim is released)
goes on where it stopped. A worker with nothing left to take waits for the others, so
every worker ends with the whole report. Every worker must sweep the same suite with the
same cells (`record.py` checks it before each claim), and a dataset one worker cannot
sweep is left to the others rather than ending the suite.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from seqbench.benchsuite import Suite, SuiteDataset
from seqbench.benchsuite import claims as suite_claims
from seqbench.benchsuite import record as suite_record
from seqbench.console import console
from seqbench.errors import SeqbenchError, WriteFailed

#: The file in a suite's report folder naming the finished suite it was written for.
REPORT_MARKER = ".suite-report"


def run_suite(suite: Suite, cells: tuple[str, ...], study: str, url: str,
              sweep: Callable[[SuiteDataset], None], poll_seconds: float = 10.0,
              only: Iterable[str] = ()) -> str:
    """Sweep (with `sweep`, the API's, given by `sb.suite`) every dataset of `suite` (or of
    those named in `only`: a part run first) nobody else holds in the storage at `url`, and
    wait for the rest; return what identifies the finished datasets (for `report_once`)."""
    from seqbench.sweeps.storage import open_storage

    storage = open_storage(url, repair=True)
    console.print(f"suite [bold]{suite.name}[/]: {len(suite.datasets)} datasets, cells "
                  f"{', '.join(cells)}; studies {study}/TASK/DATASET/CELL in {url}")
    return work_through(suite, cells, study, storage, sweep, poll_seconds, suite.only(only))


def work_through(suite: Suite, cells: tuple[str, ...], study: str, storage: object,
                 sweep: Callable[[SuiteDataset], None], poll_seconds: float,
                 part: Suite | None = None) -> str:
    """Claim and sweep free datasets until every one is done (waiting while others hold
    the last ones). A dataset this worker cannot sweep (a one-line error: its data missing
    here, a study begun with other options) is given back and left to the others, and
    this worker goes on; it ends naming those datasets once nothing else is left to it.
    `part`: only its datasets are taken (the record still describes the whole `suite`)."""
    part = part or suite
    claims = {item.name: suite_claims.open_claims(storage, study, item.task, item.dataset)
              for item in part.datasets}  # opened once: each opening appends to a journal
    holder = suite_record.open_record(storage, study)
    failed: dict[str, str] = {}
    waiting_shown = False
    while True:
        suite_record.check_or_write(holder, study, suite, cells)
        states = {name: suite_claims.state(c, storage) for name, c in claims.items()}
        free = [item for item in part.datasets
                if states[item.name] is suite_claims.State.FREE and item.name not in failed]
        held = [n for n, s in states.items() if s is suite_claims.State.HELD]
        if not free and not held:
            if failed:
                raise SeqbenchError(not_swept_here(part, study, failed))
            which = "" if part is suite else " asked for"
            console.print(f"suite {suite.name}: all {len(states)} datasets{which} done")
            return suite_claims.finished(claims)
        taken = next(((item, trial) for item in free
                      if (trial := suite_claims.claim(claims[item.name], storage)) is not None),
                     None)
        if taken is None:
            if not waiting_shown:
                console.print(f"suite {suite.name}: waiting for other workers on "
                              f"{', '.join(held)}")
                waiting_shown = True
            time.sleep(poll_seconds)
            continue
        waiting_shown = False
        item, trial = taken
        show_progress(part, states, item)
        with suite_claims.heartbeat(storage, trial):
            try:
                sweep(item)
            except BaseException as error:
                suite_claims.give_up(claims[item.name], trial)
                if not isinstance(error, SeqbenchError) or isinstance(error, WriteFailed):
                    raise  # Ctrl-C, a bug, a full disk: this worker stops, not the dataset
                failed[item.name] = str(error)
                console.print(f"suite {suite.name}: {item.name} not swept here ({error}); "
                              f"going on with the others")
                continue
        suite_claims.finish(claims[item.name], trial)


def not_swept_here(suite: Suite, study: str, failed: dict[str, str]) -> str:
    """The one line a worker ends with when datasets it could not sweep are all that is
    left."""
    reasons = "; ".join(f"{name}: {reason}" for name, reason in failed.items())
    return (f"suite {suite.name}: {len(failed)} of {len(suite.datasets)} datasets could not "
            f"be swept here ({reasons}); every other dataset is done and kept. Mend them and "
            f"run the same command again (`seqbench suite status` shows where the suite "
            f"stands, `seqbench report --study {study}` what is done)")


def report_once(url: str, study: str, folder: Path, finished: str,
                write: Callable[[], None]) -> None:
    """Write the suite's report with `write` unless a worker sharing `folder` already wrote
    it for the same finished suite. Workers of one machine share the output folder and
    finish within one poll of each other; writing the same files at once would mix them,
    so they take turns under a lock of the storage, and the later ones find the report
    current (`finished` in its marker file) and leave it."""
    from seqbench.sweeps.locks import held

    marker = folder / REPORT_MARKER
    with held(url, f"{study} suite report", wait=True):
        if marker.is_file() and marker.read_text(encoding="utf-8") == finished:
            console.print(f"suite: the report in {folder} is already written for this "
                          f"finished suite (`seqbench report` writes it again)")
            return
        write()
        marker.write_text(finished, encoding="utf-8")


def show_progress(suite: Suite, states: dict[str, suite_claims.State],
                  item: SuiteDataset) -> None:
    """One line over the whole suite, then the dataset about to be swept and its budget."""
    counts = {s: sum(1 for v in states.values() if v is s) for s in suite_claims.State}
    position = [d.name for d in suite.datasets].index(item.name) + 1
    reduced = ", ".join(item.reductions())
    console.print(
        f"[bold]suite {suite.name}[/]: {counts[suite_claims.State.DONE]} of {len(states)} "
        f"datasets done, {counts[suite_claims.State.HELD]} with other workers; now "
        f"{item.name} ({position} of {len(states)}): {item.trials} trials"
        + (f" x {item.repeats} searches" if item.repeats > 1 else "")
        + f", {item.epochs} epochs, {item.seeds} seeds"
        + (f" (reduced: {reduced})" if reduced else ""))
