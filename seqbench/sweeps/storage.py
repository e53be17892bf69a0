"""Where studies live: a journal file by default, any RDB URL for many machines.

The journal file (Optuna's append-only log with file locks) is safe for several processes on
one machine and needs no server. An RDB URL (`postgresql://...`, `sqlite:///...`) lets
workers on many machines share a study; there a heartbeat marks the trials of a worker that
died as failed, so they are re-run. The journal has no heartbeat, so a worker that dies is
recognised by its host and process id when the sweep is started again on that host.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

from seqbench.errors import SeqbenchError

JOURNAL_NAME = "sweeps.journal"
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120
#: Trial user attribute naming the process that runs it: "host:pid".
WORKER_ATTR = "worker"


def storage_url(storage: str | None, output_dir: Path) -> str:
    """The storage as a string: an RDB URL, or a journal file path (default in output_dir)."""
    if storage:
        return storage
    return str(output_dir / JOURNAL_NAME)


def open_storage(url: str) -> Any:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if "://" in url:
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        return _open_rdb(url)
    path = Path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return JournalStorage(JournalFileBackend(str(path)))


def _open_rdb(url: str, attempts: int = 5) -> Any:
    """Connect, retrying briefly: workers starting together race to create the schema."""
    from optuna.storages import RDBStorage

    attempt = 0
    while True:
        try:
            return RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS,
                              grace_period=GRACE_SECONDS)
        except ImportError:
            raise SeqbenchError(
                f"storage '{url}' needs a database driver (for PostgreSQL: pip install "
                "'seqbench[postgres]')."
            ) from None
        except Exception as exc:  # sqlalchemy reports problems with many exception types
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            attempt += 1
            if "duplicate key" not in reason or attempt >= attempts:
                raise SeqbenchError(f"cannot open storage '{url}': {reason}") from None
            time.sleep(0.5 * attempt)


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_local_trials(study: Any) -> int:
    """Mark RUNNING trials whose worker process on this host is gone as FAIL; count them.

    A failed trial does not count against the budget, so its configuration's slot is
    sampled again; completed and pruned trials are never touched.
    """
    from optuna.trial import TrialState

    host = socket.gethostname()
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner_host, _, pid = trial.user_attrs.get(WORKER_ATTR, "").rpartition(":")
        if owner_host == host and pid.isdigit() and not _alive(int(pid)):
            study.tell(trial.number, state=TrialState.FAIL)
            failed += 1
    return failed
