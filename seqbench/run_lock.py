"""One process at a time writes a run folder.

It holds an exclusive lock on the folder's `.seqbench-lock` while it trains (a second
`--resume` of the same folder would append its epochs to the same history). The kernel drops
the lock when the process ends, however it ends, so a killed run never leaves its folder
locked; the file only says who held it last.
"""

from __future__ import annotations

import functools
import os
import shlex
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from seqbench.errors import SeqbenchError, writing

LOCK = ".seqbench-lock"
F = TypeVar("F", bound=Callable[..., Any])
#: The run folder locks taken inside the current `releases_run_folders` call.
_held: ContextVar[ExitStack | None] = ContextVar("seqbench_run_folder_locks", default=None)


def releases_run_folders(function: F) -> F:
    """Release the run folders `function` locked (`lock_run_folder`) when it returns or
    raises. A decorator, so that a long function such as `train` takes its lock where it
    first knows the folder, without its whole body inside a `with` block."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with ExitStack() as locks:
            token = _held.set(locks)
            try:
                return function(*args, **kwargs)
            finally:
                _held.reset(token)
    return wrapper  # type: ignore[return-value]


def lock_run_folder(run_dir: Path) -> None:
    """Take `run_dir`'s exclusive lock until the enclosing `releases_run_folders` call ends,
    or fail in one line naming the process that holds it and what to do. Until then, a
    write that fails for want of space or permission names the folder (`errors.writing`)."""
    locks = _held.get()
    if locks is None:
        raise RuntimeError("lock_run_folder must be called inside a @releases_run_folders function")
    locks.enter_context(exclusive(Path(run_dir)))
    locks.enter_context(writing(Path(run_dir)))


def check_run_folder_free(run_dir: Path) -> None:
    """Fail as `lock_run_folder` would (in use by another process, or not writable), without
    keeping the lock: `seqbench run --resume` says so before Lightning loads, and before
    judging the folder's files, which another process may be writing. Training then takes
    the lock itself."""
    with writing(Path(run_dir)), exclusive(Path(run_dir), announce=False):
        pass


@contextmanager
def exclusive(run_dir: Path, announce: bool = True) -> Iterator[None]:
    """Hold the lock on `run_dir` (see the module docstring); `announce`: write who holds it
    into the lock file (not for a passing check, whose name would outlive its hold)."""
    try:
        import fcntl
    except ImportError:  # Windows has no flock; there two processes are not kept apart
        yield
        return
    with open(run_dir / LOCK, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            pid = holder.split()[1] if holder.startswith("process ") else None
            stop = f"stop it (kill {pid} on its host)" if pid else "stop it"
            raise SeqbenchError(
                f"run folder '{run_dir}' is in use by {holder}; two processes writing one run "
                f"would mix their epochs. Wait for it to end, or {stop}, then continue it "
                f"with: seqbench run --resume {shlex.quote(str(run_dir))}") from None
        if announce:
            handle.seek(0)
            handle.truncate()
            handle.write(f"process {os.getpid()} on {socket.gethostname()} since "
                         f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            handle.flush()
        yield
