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
  released once that process is gone;
- in an RDB storage, the claim's heartbeat (Optuna's, recorded by a thread here every
  30 s) stops, and Optuna's `fail_stale_trials` releases it after the grace period;
- in a journal, the same thread writes the time on the claim (`beat`), and a claim of
  another host whose last beat is older than STALE_SECONDS is released: a journal on a
  network file system is shared by machines whose processes this one cannot look up, and
  a container started again gets a new host name, so its old claims name a host that is
  gone.

Optuna is used rather than a lock file because the storage is the one thing every worker
of a suite shares, on one machine or many.
"""

from __future__ import annotations

import datetime
import threading
import time
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
#: A journal claim of another host without a beat for this long belongs to a worker that
#: is gone (ten missed beats: room for clocks that differ between machines).
STALE_SECONDS = 10 * HEARTBEAT_SECONDS
#: The claim's user attribute holding its last beat (seconds since the epoch).
BEAT_ATTR = "beat"


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
    host = this_worker().rpartition(":")[0]
    for trial in claims.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = trial.datetime_start or now
        worker = trial.user_attrs.get(WORKER_ATTR)
        if worker is None:
            dead = (now - started).total_seconds() > UNNAMED_SECONDS
        else:
            last = trial.user_attrs.get(BEAT_ATTR)
            dead = last is not None and worker.rpartition(":")[0] != host and \
                time.time() - last > STALE_SECONDS
        if dead:
            fail_trial(claims, trial.number)


def state(claims: Any, storage: Any) -> State:
    """DONE, HELD (by a live worker) or FREE, after releasing dead workers' claims."""
    release_dead(claims, storage)
    return classify(claims.get_trials(deepcopy=False))


def classify(trials: list[Any]) -> State:
    """A dataset's state as its claims say, releasing nothing (`suite status` reads it so)."""
    from optuna.trial import TrialState

    states = {trial.state for trial in trials}
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
    beat(storage, trial)  # alive from the start, not only once the sweep begins
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


def beat(storage: Any, trial: Any) -> None:
    """Say that the claim's worker is alive: Optuna's heartbeat in an RDB storage, the time
    on the claim in a journal."""
    if has_heartbeat(storage):
        storage.record_heartbeat(trial._trial_id)
    else:
        trial.set_user_attr(BEAT_ATTR, time.time())


@contextmanager
def heartbeat(storage: Any, trial: Any) -> Iterator[None]:
    """Keep a claim alive while the block runs (see the module's docstring)."""
    stop = threading.Event()

    def beats() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                beat(storage, trial)
            except Exception as error:  # a database blip must not end the heartbeat
                console.print(f"suite: heartbeat not recorded ({error}); trying again")

    thread = threading.Thread(target=beats, name="suite-claim-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
