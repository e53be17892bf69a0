"""Named locks that every worker of a sweep sees: the way a job runs exactly once.

Many workers share one study: the `--jobs` processes of one sweep, and whole `seqbench
sweep` processes started side by side, on one machine or many. Optuna shares the search
among them, but the later stages (the selection's re-runs, the choice, the finals) and a
study's setup are seqbench's own, and two workers doing the same one at once trained in
one run folder and removed it under each other, enqueued the defaults twice, and ran a
final twice. So each of these holds a lock named after it while it works, where every
worker of the storage can see it:

* PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) on its own connection. The
  server drops it when the holder's connection ends, so a worker that dies (or a machine
  that goes) never leaves a job locked.
* A journal or SQLite file: `flock` on a file in a folder beside it (`<storage>.locks`),
  which the kernel releases when the holder dies; every worker of such a storage shares its
  file system.
* Other databases: `flock` in the temporary folder, which keeps the workers of one machine
  apart, not those of many; README says to use PostgreSQL (or a journal on a shared file
  system) for workers on many machines.

A lock is taken without waiting (`held(..., wait=False)` yields False while another worker
holds it), so a worker moves on to the next job instead of queueing behind another's; or
by polling every second (`wait=True`), which Ctrl-C and SIGTERM can interrupt.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from seqbench.console import note
from seqbench.errors import SeqbenchError, writing

#: How often a waiting worker tries again, and how long before it says what it waits for.
POLL_SECONDS = 1.0
QUIET_SECONDS = 10.0


@contextmanager
def held(storage: str, name: str, *, wait: bool) -> Iterator[bool]:
    """Hold the lock `name` of `storage` inside the block: yields True when held, False
    when another worker holds it and `wait` is False."""
    lock = _postgres(storage, name) if _dialect(storage) == "postgresql" else \
        _FileLock(_folder(storage), name)
    started, told = time.monotonic(), False
    while not lock.try_acquire():
        if not wait:
            yield False
            return
        if not told and time.monotonic() - started > QUIET_SECONDS:
            note(f"waiting for another worker's {name} ({lock.holder()})")
            told = True
        time.sleep(POLL_SECONDS)
    try:
        yield True
    finally:
        lock.release()


def _dialect(storage: str) -> str | None:
    """The database kind of a URL ("postgresql", "sqlite", ...), None for a journal file."""
    if "://" not in storage:
        return None
    return storage.split("://", 1)[0].split("+", 1)[0].lower()


def _folder(storage: str) -> Path:
    """Where the lock files of a file-backed storage live: beside the file; for a database
    seqbench cannot lock in, in the temporary folder (one machine)."""
    dialect = _dialect(storage)
    if dialect is None:
        path = Path(storage)
    elif dialect == "sqlite":
        from sqlalchemy.engine import make_url

        path = Path(make_url(storage).database or "memory")
    else:
        digest = hashlib.sha256(storage.encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"seqbench-locks-{digest}"
    return path.with_name(path.name + ".locks")


def _key(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


class _FileLock:
    """`flock` on `<folder>/<hash of the name>.lock`, which also says who holds it."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder, self.name = folder, name
        self.path = folder / f"{_key(name).hex()[:24]}.lock"
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        import fcntl

        with writing(self.folder):
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        os.ftruncate(fd, 0)
        os.write(fd, f"{self.name}\nprocess {os.getpid()} on {socket.gethostname()}\n".encode())
        return True

    def holder(self) -> str:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        return f"held by {lines[1]}" if len(lines) > 1 else f"lock file {self.path}"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


class _PostgresLock:
    """A session advisory lock keyed by the name's hash, on a connection of its own."""

    def __init__(self, engine: Any, name: str) -> None:
        self.engine = engine
        self.key = int.from_bytes(_key(name)[:8], "big") >> 1  # a positive bigint
        self.connection: Any = None

    def try_acquire(self) -> bool:
        from sqlalchemy import text

        connection = _connect(self.engine).execution_options(isolation_level="AUTOCOMMIT")
        if connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                              {"key": self.key}).scalar():
            self.connection = connection
            return True
        connection.close()
        return False

    def holder(self) -> str:
        from sqlalchemy import text

        with _connect(self.engine) as connection:
            pid = connection.execute(text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                "(classid::bigint << 32) | objid::bigint = :key"), {"key": self.key}).scalar()
        return f"held by the server's backend {pid}" if pid else "held by another worker"

    def release(self) -> None:
        if self.connection is not None:
            self.connection.close()  # no pool: the session ends, and its locks with it
            self.connection = None


def _connect(engine: Any) -> Any:
    """A connection, or one line (secrets hidden) when the server cannot be reached."""
    from sqlalchemy.exc import SQLAlchemyError

    from seqbench.sweeps.storage import hide_secrets, redact

    url = engine.url.render_as_string(hide_password=False)
    try:
        return engine.connect()
    except SQLAlchemyError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SeqbenchError(f"cannot lock in storage '{redact(url)}': "
                            f"{hide_secrets(reason, url)}") from None


def _postgres(storage: str, name: str) -> _PostgresLock:
    return _PostgresLock(_engine(storage), name)


@cache
def _engine(storage: str) -> Any:
    """One engine per storage and process, without a pool (a closed connection is gone)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from seqbench.sweeps.storage import connect_url, redact

    try:
        return create_engine(connect_url(storage), poolclass=NullPool)
    except ImportError:
        raise SeqbenchError(f"storage '{redact(storage)}' needs a database driver (for "
                            "PostgreSQL: pip install 'seqbench[postgres]').") from None
