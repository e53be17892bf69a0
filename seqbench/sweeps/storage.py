"""Where studies live: a journal file by default, any RDB URL for many machines.

The journal file (Optuna's append-only log with file locks) is safe for several processes on
one machine and needs no server. An RDB URL (`postgresql://...`, `sqlite:///...`) lets
workers on many machines share a study; there a heartbeat marks the trials of a worker that
died as failed, so they are re-run. The journal has no heartbeat, so a worker that dies is
recognised by its host and process id when the sweep is started again on that host.

Two things here protect what users publish and what they have already computed:

* Credentials. A storage URL is stored and shown only redacted: the password of the user
  info and libpq's `password`, `sslpassword` and `passfile` query parameters become ***
  (`postgresql://user:***@host/db?sslpassword=***`), because studies' attributes and report
  tables end up in committed `results/` folders. A URL that does not parse (a port that is
  not a number, an '@' in the password not written %40) is one line with those parts
  hidden, and a driver's error message has them hidden too. A URL given with its password travels to the workers this
  process starts in the environment, never in their arguments; a redacted URL given back
  to seqbench (e.g. a report's "regenerate" command) takes its password from
  `$SEQBENCH_STORAGE_URL` (which `--storage` also defaults to) when the rest matches, else
  from the driver's own sources (`PGPASSWORD`, `~/.pgpass`, a service file).
* The journal. Optuna appends whole lines under a file lock, so a record without its
  newline can only be the torn tail of a writer that died (power cut, full disk). Appending
  after it would glue the next record onto it and make every later read fail, so a sweep
  cuts the torn tail off (under the same lock) and says so once; a line that is complete but
  not a record means the file is corrupt, and the error names that line.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

from seqbench.console import console
from seqbench.errors import Interrupted, SeqbenchError

JOURNAL_NAME = "sweeps.journal"
#: The documented way to give seqbench a storage URL that holds a password.
STORAGE_ENV = "SEQBENCH_STORAGE_URL"
#: Where a password given on the command line travels to this process's workers (kept
#: apart from STORAGE_ENV, which `--storage` defaults to).
SECRET_ENV = "SEQBENCH_STORAGE_SECRET_URL"
HIDDEN = "***"
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120
#: Trial user attribute naming the process that runs it: "host:pid".
WORKER_ATTR = "worker"


def storage_url(storage: str | None, output_dir: Path) -> str:
    """The storage as a string: an RDB URL, or a journal file path (default in output_dir).

    A URL that carries a password is put in `$SEQBENCH_STORAGE_URL` for this process and
    the workers it starts, and returned redacted: only the redacted form is ever stored or
    shown.
    """
    if not storage:
        return str(output_dir / JOURNAL_NAME)
    if "://" not in storage:
        return storage
    shown = redact(storage)
    if shown != storage:
        os.environ[SECRET_ENV] = storage
    return shown


#: Query parameters that carry a credential (libpq's names, which SQLAlchemy passes on).
SECRET_PARAMETERS = ("password", "sslpassword", "passfile")


def redact(url: str) -> str:
    """`url` with every credential replaced by *** (the password in the user info and the
    SECRET_PARAMETERS in the query); a file path is returned unchanged."""
    if "://" not in url:
        return url
    parsed = parse_url(url)
    hidden = {key: HIDDEN for key in parsed.query if key in SECRET_PARAMETERS}
    shown = parsed.update_query_dict(hidden) if hidden else parsed
    return shown.render_as_string(hide_password=True).replace(_QUOTED_HIDDEN, HIDDEN)


_QUOTED_HIDDEN = "%2A%2A%2A"  # HIDDEN as SQLAlchemy quotes it in a query string


def parse_url(url: str) -> Any:
    """SQLAlchemy's URL of `url`, or one line (with the credentials hidden) saying why it is
    not one. An '@' inside the password must be written %40: written as it is, SQLAlchemy
    and libpq take what follows it for the host, and would print it in their errors."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    authority = url.partition("://")[2].partition("?")[0]
    if authority.count("@") > 1:
        raise SeqbenchError(f"storage '{scrub(url)}' has more than one '@' before the host; "
                            "write an '@' in the user name or password as %40.")
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        detail = " (its port is not a number)" if isinstance(exc, ValueError) else ""
        raise SeqbenchError(f"storage '{scrub(url)}' is not a valid database URL{detail}; "
                            "write dialect://user@host:port/database.") from None


def scrub(text: str) -> str:
    """Hide the credentials in a URL that could not be parsed: the password (everything
    between the user name and the last '@' before the query) and SECRET_PARAMETERS."""
    import re

    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    before_query, question, query = rest.partition("?")
    user, at, host = before_query.rpartition("@")
    if at and ":" in user:
        before_query = f"{user.split(':', 1)[0]}:{HIDDEN}@{host}"
    names = "|".join(SECRET_PARAMETERS)
    query = re.sub(rf"(^|&)({names})=[^&]*", rf"\1\2={HIDDEN}", query)
    return f"{scheme}://{before_query}{question}{query}"


def connect_url(url: str) -> str:
    """The URL to connect with: redacted credentials come from $SEQBENCH_STORAGE_URL or the
    URL this process was given (when the rest matches), else are dropped so that the
    driver's own sources (PGPASSWORD, ~/.pgpass, a service file) supply them."""
    parsed = parse_url(url)
    hidden = [key for key in SECRET_PARAMETERS if parsed.query.get(key) == HIDDEN]
    if parsed.password != HIDDEN and not hidden:
        return url
    for name in (SECRET_ENV, STORAGE_ENV):
        secret = os.environ.get(name, "")
        if "://" in secret and redact(secret) == redact(url):
            return secret
    bare = parsed.difference_update_query(hidden)
    if parsed.password == HIDDEN:
        bare = bare._replace(password=None)  # namedtuple API
    return bare.render_as_string(hide_password=False)


def hide_secrets(text: str, url: str) -> str:
    """`text` (a driver's error message) with the credentials of `url` replaced by ***."""
    parsed = parse_url(url)
    secrets = [parsed.password, *(parsed.query.get(key) for key in SECRET_PARAMETERS)]
    for secret in secrets:
        for value in (secret if isinstance(secret, tuple) else (secret,)):
            if value and value != HIDDEN:
                text = text.replace(str(value), HIDDEN)
    return text


def open_existing(url: str, missing: str) -> Any:
    """Open a storage to read it, or say `missing` (a `SeqbenchError`) where the journal
    file is not there: opening would create an empty one, and a mistyped path would read
    as a sweep with no studies."""
    if "://" not in url and not Path(url).is_file():
        raise SeqbenchError(missing)
    return open_storage(url)


def open_storage(url: str, *, repair: bool = False) -> Any:
    """Open a storage; `repair=True` (sweeps, which append) cuts a journal's torn tail."""
    import optuna

    if "://" in url:
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        quiet_optuna()
        return _open_rdb(url)
    return open_journal(Path(url), repair=repair)


class _NoUserTraceback(logging.Filter):
    """Optuna's "trial failed" record without the tracebacks a user cannot act on.

    Ctrl-C: dropped, since the CLI says in one line what was kept and the trial is simply
    re-run when the sweep resumes. A `SeqbenchError` (a configuration the task refuses):
    Optuna's own line, which already holds the error's message, without the traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, SeqbenchError):
            record.exc_info, record.exc_text = None, None
        return not isinstance(error, (KeyboardInterrupt, Interrupted))


def quiet_optuna() -> None:
    """Optuna at warning level, without tracebacks for interrupted or refused trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for handler in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, _NoUserTraceback) for f in handler.filters):
            handler.addFilter(_NoUserTraceback())


def open_journal(path: Path, *, repair: bool) -> Any:
    """The journal at `path` (created if absent), checked first (see `check_journal`)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    if path.is_symlink() and not path.exists():
        raise SeqbenchError(f"storage '{path}' is a broken link (to '{os.readlink(path)}').")
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file (a device or a pipe)"
        raise SeqbenchError(f"storage '{path}' is {kind}, not a journal file; give a file "
                            "path (e.g. sweeps/sweeps.journal) or a database URL.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise SeqbenchError(f"cannot create journal '{path}': a parent of it is a "
                            "file.") from None
    quiet_optuna()
    lock = JournalFileSymlinkLock(str(path))
    if path.is_file():
        check_journal(path, lock if repair else None)
    return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))


def check_journal(path: Path, lock: Any | None) -> None:
    """Fail on a corrupt journal (naming the line); with `lock`, cut off a torn last record.

    Reads the file as Optuna does (complete lines are JSON records) before Optuna sees it,
    because Optuna's own failure is a bare JSONDecodeError long after the cause.
    """
    if lock is not None:
        lock.acquire()
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        torn = _validate(path, data)
        if torn and lock is not None:
            with open(path, "r+b") as handle:
                handle.truncate(len(data) - torn)
            console.print(f"[yellow]note:[/] journal '{path}' ended in a torn record ({torn} "
                          "bytes, from a write that was interrupted); it was cut off and "
                          "the trials before it are intact.")
    finally:
        if lock is not None:
            lock.release()


def _validate(path: Path, data: bytes) -> int:
    """Check every complete line is a journal record; return the length of a torn tail.

    A tail that does not even start like a record is not torn but foreign (a binary file
    given as --storage), and is never cut.
    """
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    foreign = tail and tail[:1] != b"{"
    replay = _Replay()
    for number, line in enumerate([*lines, tail] if foreign else lines, start=1):
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = None
        problem = "not an Optuna journal record" if not isinstance(record, dict) or \
            "op_code" not in record else replay.apply(record)
        if problem:
            raise SeqbenchError(
                f"journal '{path}' is corrupt at line {number} ({problem}); restore it from a "
                "backup, or move it away to start a new study.")
    return len(tail)


#: The fields Optuna's replay reads from each kind of record (`optuna.storages.journal`'s
#: `JournalOperation` codes: create study, delete study, set a study's user or system
#: attribute, create trial, set a trial's parameter, state, intermediate value, user or
#: system attribute; 10, discarding trials, is written only by Rustuna and skipped).
RECORD_FIELDS: dict[int, tuple[str, ...]] = {
    0: ("study_name", "directions"), 1: ("study_id",), 2: ("study_id", "user_attr"),
    3: ("study_id", "system_attr"), 4: ("study_id", "datetime_start"),
    5: ("trial_id", "param_name", "param_value_internal", "distribution"),
    6: ("trial_id", "state", "values"), 7: ("trial_id", "step", "intermediate_value"),
    8: ("trial_id", "user_attr"), 9: ("trial_id", "system_attr"), 10: (),
}


class _Replay:
    """The ids a journal's records create, replayed as Optuna replays them, to find a record
    Optuna would choke on (a missing field, an unknown operation) or silently drop (one for
    a study or trial that no earlier record creates) and name its line. Records about a
    study deleted earlier are a normal race between workers and pass, as in Optuna."""

    def __init__(self) -> None:
        self.studies: dict[int, str] = {}  # id -> name, of the studies that exist now
        self.study_ids = 0  # ids handed out so far (a deleted study keeps its id)
        self.trial_ids = 0

    def apply(self, record: dict[str, Any]) -> str | None:
        """What is wrong with `record`, or None (after taking the ids it creates)."""
        op = record["op_code"]
        if isinstance(op, bool) or op not in RECORD_FIELDS:
            return f"unknown operation {op!r}"
        missing = [name for name in ("worker_id", *RECORD_FIELDS[op]) if name not in record]
        if missing:
            return f"operation {op} without its '{missing[0]}' field"
        for key in ("study_id", "trial_id"):
            if key in record and (isinstance(record[key], bool) or
                                  not isinstance(record[key], int)):
                return f"{key} {record[key]!r} is not a number"
        for key, created in (("study_id", self.study_ids), ("trial_id", self.trial_ids)):
            if key in record and not 0 <= record[key] < created:
                return f"{key[:5]} {record[key]}, which no earlier line creates"
        if op == 0 and record["study_name"] not in self.studies.values():
            self.studies[self.study_ids] = record["study_name"]
            self.study_ids += 1
        elif op == 1:
            self.studies.pop(record["study_id"], None)
        elif op == 4 and record["study_id"] in self.studies:
            self.trial_ids += 1
        return None


def _open_rdb(url: str, attempts: int = 5) -> Any:
    """Connect, retrying briefly: workers starting together race to create the schema."""
    from optuna.storages import RDBStorage

    shown, real = redact(url), connect_url(url)
    attempt = 0
    while True:
        try:
            return RDBStorage(real, heartbeat_interval=HEARTBEAT_SECONDS,
                              grace_period=GRACE_SECONDS)
        except ImportError:
            raise SeqbenchError(
                f"storage '{shown}' needs a database driver (for PostgreSQL: pip install "
                "'seqbench[postgres]')."
            ) from None
        except Exception as exc:  # sqlalchemy reports problems with many exception types
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            attempt += 1
            if "duplicate key" not in reason or attempt >= attempts:
                reason = hide_secrets(reason.replace(real, shown), real)
                raise SeqbenchError(f"cannot open storage '{shown}': {reason}") from None
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
    sampled again; completed and pruned trials are never touched. This process runs none
    while it calls this (between trials, or waiting for other workers), so a RUNNING trial
    of its own was left by an earlier sweep call in it that failed (a full disk could not
    record the trial's end) and counts as dead too: waiting for it would wait forever.
    """
    from optuna.trial import TrialState

    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if dead_here(trial, own_process_dead=True):
            failed += fail_trial(study, trial.number)
    return failed


def dead_here(trial: Any, own_process_dead: bool = False) -> bool:
    """Whether a RUNNING trial's worker ran on this host and its process is gone (or is
    this process, when `own_process_dead`: see `fail_dead_local_trials`)."""
    owner_host, _, pid = trial.user_attrs.get(WORKER_ATTR, "").rpartition(":")
    if owner_host != socket.gethostname() or not pid.isdigit():
        return False
    return own_process_dead and int(pid) == os.getpid() or not _alive(int(pid))


def fail_trial(study: Any, number: int) -> bool:
    """Mark RUNNING trial `number` FAIL; False if it was finished already. Two workers can
    find the same dead trial at once (several restarted together after a machine went
    down), and the one that marks it second must go on, not stop on Optuna's "cannot tell a
    finished trial"."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    try:
        if study.get_trials(deepcopy=False)[number].state is not TrialState.RUNNING:
            return False
        study.tell(number, state=TrialState.FAIL)
    except (UpdateFinishedTrialError, ValueError):  # finished between the look and the tell
        return False
    return True
