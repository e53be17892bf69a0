"""Run a suite: one sweep per dataset, all in one storage, then the cross-dataset report.

Each dataset is an ordinary sweep (`seqbench.sweep`, the public API, which `sb.suite` hands
in, so the sweep's own protocol, resumption and `jobs` processes apply unchanged) under one
study name, so its cell studies are `STUDY/TASK/DATASET/CELL` side by side in one storage and `seqbench
report` ranks the cells across all of them. Which worker sweeps which dataset is decided
by claims in that storage (`claims.py`): start the same command in several terminals or on
several machines sharing a PostgreSQL storage and each takes the next dataset nobody
holds. A worker that is killed loses nothing but its running trial; running the command
again (or any other worker, once the dead one's claim is released) goes on where it
stopped. A worker with nothing left to take waits for the others, so every worker ends
with the whole report.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from seqbench.benchsuite import Suite, SuiteDataset
from seqbench.benchsuite import claims as suite_claims
from seqbench.console import console


def run_suite(suite: Suite, cells: tuple[str, ...], study: str, url: str,
              sweep: Callable[[SuiteDataset], None], poll_seconds: float = 10.0) -> None:
    """Sweep (with `sweep`, the API's, given by `sb.suite`) every dataset of `suite` nobody
    else holds in the storage at `url`, and wait for the rest."""
    from seqbench.sweeps.storage import open_storage

    storage = open_storage(url, repair=True)
    console.print(f"suite [bold]{suite.name}[/]: {len(suite.datasets)} datasets, cells "
                  f"{', '.join(cells)}; studies {study}/TASK/DATASET/CELL in {url}")
    work_through(suite, study, storage, sweep, poll_seconds)


def work_through(suite: Suite, study: str, storage: object,
                 sweep: Callable[[SuiteDataset], None], poll_seconds: float) -> None:
    """Claim and sweep free datasets until every one is done (waiting while others hold
    the last ones)."""
    waiting_shown = False
    while True:
        claims = {item.name: suite_claims.open_claims(storage, study, item.task, item.dataset)
                  for item in suite.datasets}
        states = {name: suite_claims.state(c, storage) for name, c in claims.items()}
        free = [item for item in suite.datasets if states[item.name] is suite_claims.State.FREE]
        if not free and all(s is suite_claims.State.DONE for s in states.values()):
            console.print(f"suite {suite.name}: all {len(states)} datasets done")
            return
        taken = next(((item, trial) for item in free
                      if (trial := suite_claims.claim(claims[item.name], storage)) is not None),
                     None)
        if taken is None:
            if not waiting_shown:
                held = [n for n, s in states.items() if s is suite_claims.State.HELD]
                console.print(f"suite {suite.name}: waiting for other workers on "
                              f"{', '.join(held)}")
                waiting_shown = True
            time.sleep(poll_seconds)
            continue
        waiting_shown = False
        item, trial = taken
        show_progress(suite, states, item)
        with suite_claims.heartbeat(storage, trial):
            try:
                sweep(item)
            except BaseException:
                suite_claims.give_up(claims[item.name], trial)
                raise
        suite_claims.finish(claims[item.name], trial)


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
