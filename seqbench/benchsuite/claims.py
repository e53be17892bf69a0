"""Which worker sweeps which dataset of a suite: claims kept in the sweep's own storage.

Every worker of a suite (processes on one machine with a journal file, or machines sharing
a PostgreSQL storage) walks the same list of datasets and takes the first one nobody holds.
A dataset's claims are the trials of one small Optuna study beside the dataset's cell
studies (`STUDY.suite/TASK/DATASET`, which reports do not read): asking a trial is atomic in
every Optuna storage, so when two workers claim at once the lower trial number wins and
the other gives its claim up. A finished dataset is a COMPLETE claim.

A claim whose worker died is released so that another worker (or the same command run
again) takes the dataset over, and the dataset's sweep resumes from its storage:
- on this host, a claim names its process (`host:pid`, as sweep trials do) and is
  released once that process is gone (a journal has no heartbeat);
- in an RDB storage, the claim's heartbeat (Optuna's, recorded by a thread here every
  30 s) stops, and Optuna's `fail_stale_trials` releases it after the grace period.

Optuna is used rather than a lock file because the storage is the one thing every worker
of a suite shares, on one machine or many.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any

from seqbench.console import console
from seqbench.sweeps.storage import (
    HEARTBEAT_SECONDS,
    WORKER_ATTR,
    fail_dead_local_trials,
    fail_trial,
    this_worker,
)

#: A claim that has not named its worker this long after it started belongs to a worker
#: that died between asking for it and naming itself.
UNNAMED_SECONDS = 60


class State(Enum):
    """A dataset's state for the worker asking."""

    DONE = "done"
    HELD = "held by another worker"
    FREE = "free"


def claims_name(study: str, task: str, dataset: str) -> str:
    """The claims study of one dataset (its first part is not the sweep's study name, so
    reports, which select studies by that name, never read it)."""
    return f"{study}.suite/{task}/{dataset}"


def open_claims(storage: Any, study: str, task: str, dataset: str) -> Any:
    import optuna

    return optuna.create_study(study_name=claims_name(study, task, dataset), storage=storage,
                               load_if_exists=True)


def has_heartbeat(storage: Any) -> bool:
    import optuna

    return isinstance(storage, optuna.storages.RDBStorage)


def release_dead(claims: Any, storage: Any) -> None:
    """Give up the claims of workers that are gone (see the module's docstring)."""
    import optuna
    from optuna.trial import TrialState

    fail_dead_local_trials(claims)
    if has_heartbeat(storage):
        optuna.storages.fail_stale_trials(claims)
    now = datetime.datetime.now()
    for trial in claims.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = trial.datetime_start or now
        if WORKER_ATTR not in trial.user_attrs and (now - started).total_seconds() > \
                UNNAMED_SECONDS:
            fail_trial(claims, trial.number)


def state(claims: Any, storage: Any) -> State:
    """DONE, HELD (by a live worker) or FREE, after releasing dead workers' claims."""
    from optuna.trial import TrialState

    release_dead(claims, storage)
    states = {trial.state for trial in claims.get_trials(deepcopy=False)}
    if TrialState.COMPLETE in states:
        return State.DONE
    return State.HELD if TrialState.RUNNING in states else State.FREE


def claim(claims: Any, storage: Any) -> Any | None:
    """Claim the dataset for this process: its claim trial, or None if another worker holds
    it or has finished it."""
    from optuna.trial import TrialState

    if state(claims, storage) is not State.FREE:
        return None
    trial = claims.ask()
    trial.set_user_attr(WORKER_ATTR, this_worker())
    if has_heartbeat(storage):  # alive from the start, not only once the sweep begins
        storage.record_heartbeat(trial._trial_id)
    running = [t.number for t in claims.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    if trial.number not in running or min(running) != trial.number:  # another claimed first
        fail_trial(claims, trial.number)
        return None
    return trial


def finished(claims: dict[str, Any]) -> str:
    """What identifies a finished suite: each dataset's first finished claim (a suite run
    again under the same study, after more work, gets other ones)."""
    import json

    from optuna.trial import TrialState

    return json.dumps({name: min(t.number for t in study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE,))) for name, study in claims.items()},
        sort_keys=True)


def finish(claims: Any, trial: Any) -> None:
    """The dataset is swept: every worker skips it from now on. If this worker's claim was
    released meanwhile (its heartbeat lapsed), the sweep is still done, so a new finished
    claim says so."""
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    try:
        told = claims.tell(trial, 0.0, skip_if_finished=True).state is TrialState.COMPLETE
    except UpdateFinishedTrialError:  # released between the look and the tell
        told = False
    if not told:
        claims.add_trial(optuna.trial.create_trial(
            value=0.0, user_attrs={WORKER_ATTR: this_worker()}))


def give_up(claims: Any, trial: Any) -> None:
    """This worker stops (an error, Ctrl-C): the dataset is free for the next worker."""
    fail_trial(claims, trial.number)


@contextmanager
def heartbeat(storage: Any, trial: Any) -> Iterator[None]:
    """Keep an RDB claim alive while the block runs (a journal needs none: see above)."""
    if not has_heartbeat(storage):
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            try:
                storage.record_heartbeat(trial._trial_id)
            except Exception as error:  # a database blip must not end the heartbeat
                console.print(f"suite: heartbeat not recorded ({error}); trying again")
            stop.wait(HEARTBEAT_SECONDS)

    thread = threading.Thread(target=beat, name="suite-claim-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
