"""SIGTERM means what Ctrl-C means: stop, keep what was done, say how to go on.

A batch scheduler ends a job with SIGTERM (and SIGKILL a little later), a user with Ctrl-C
(SIGINT). Python turns only SIGINT into `KeyboardInterrupt`; SIGTERM killed seqbench on the
spot, with exit code 143, no word on what was kept, and a sweep's worker processes (which
SIGTERM to the parent does not reach) training on as orphans. So the command line and each
worker process treat SIGTERM as Ctrl-C (`sigterm_is_ctrl_c`), and a training run's graceful
stop listens to both (`on_stop`). This module imports nothing heavy, so the CLI and the
worker processes can use it before torch is loaded.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_is_ctrl_c() -> Iterator[None]:
    """Inside the block SIGTERM raises KeyboardInterrupt, as SIGINT does (main thread only;
    elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def on_stop(handler: Callable[[int, dict[int, Any]], None]) -> Iterator[None]:
    """Inside the block, SIGINT and SIGTERM call `handler(signum, previous)`, where
    `previous` holds the handlers from before, which come back after the block. Outside the
    main thread signals cannot be handled: nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda signum, frame: handler(signum, previous))
    try:
        yield
    finally:
        restore(previous)


def restore(handlers: dict[int, Any]) -> None:
    for signum, action in handlers.items():
        signal.signal(signum, action)
