"""Runs that survive being stopped: resume points, and Ctrl-C that leaves one behind.

A resume point is Lightning's own checkpoint (`Trainer.save_checkpoint`: weights, optimizer,
LR schedule, loop counters and every callback's state, early stopping's included), written
to `RUN_DIR/resume.ckpt` at the end of an epoch, plus what Lightning does not keep and a
run's result depends on: the random number generators and the training data order (the
pass counter of `SplitBatches`). `trainer.fit(ckpt_path=...)` restores it, and the resumed
run then takes exactly the steps the uninterrupted one would have taken.

Cadence: a checkpoint costs about as much as serialising the model and optimizer, which on
small models is several percent of a sub-second epoch. So after each write its cost is
measured and the next one waits until training has run `1 / BUDGET` times as long: the
writes cost at most `BUDGET` of training time, and long epochs (the ones worth resuming) get
a resume point every epoch. The last epoch writes none; the run record is complete instead.
A killed run therefore continues from its last resume point, not always its last epoch.

Ctrl-C during training asks the run to stop at the next chunk of batches; the run folder
keeps its last resume point, and the message says how to continue. A second Ctrl-C
interrupts at once, as usual.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint

from seqbench.loaders import SplitBatches
from seqbench.runs import RESUME_POINT, HistoryWriter

#: Largest share of training time that writing resume points may take.
BUDGET = 0.02
#: What the first write is assumed to cost before one has been measured: so the first resume
#: point waits for a second of training, and runs shorter than that (nothing worth resuming)
#: pay nothing, while a tiny model's real ~5 ms write would be a tenth of its epoch.
ASSUMED_FIRST_COST = 0.02


class StopTraining(Exception):
    """Raised inside `Trainer.fit` (and the test pass) on Ctrl-C and turned into
    `seqbench.errors.Interrupted` outside it (saying how to resume): Lightning answers a
    KeyboardInterrupt raised inside fit with `sys.exit(1)` and leaves SIGINT ignored, which
    in a notebook would leave the next Ctrl-C without effect."""


class StopRequest:
    """Set by the SIGINT handler, read by `ResumePoint` between chunks of batches."""

    def __init__(self) -> None:
        self.requested = False


@contextmanager
def first_ctrl_c_stops_gracefully(request: StopRequest) -> Iterator[None]:
    """While training, the first SIGINT only sets `request`; the previous handler is back
    for a second one. Outside the main thread signals cannot be handled: nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        request.requested = True
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def ctrl_c_raises_stop() -> Iterator[None]:
    """While testing, SIGINT raises `StopTraining` instead of KeyboardInterrupt, which
    Lightning would turn into `sys.exit(1)` (exit code 1, no word on what was kept)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, previous)
        raise StopTraining

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _rng_state() -> dict[str, Any]:
    """Every generator a training step may draw from, as tensors and plain lists (which
    Lightning's checkpoint loading accepts). Hand-written because Lightning's own helpers for
    this are private."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "python": list(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def keep_history(writer: HistoryWriter, epochs: int) -> None:
    """Cut `history.csv` back to the first `epochs` rows (the rows a resume point covers;
    a killed run may have logged more) and let `writer` append after them."""
    if not writer.path.is_file():
        return
    with open(writer.path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    with open(writer.path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows[: epochs + 1])
    writer.columns = rows[0]


class ResumePoint(Checkpoint):
    """Writes the resume point at epoch ends (at the cadence above) and restores what
    Lightning does not: RNG, data order, history and the training time so far."""

    def __init__(self, path: Path | None, batches: SplitBatches, history: HistoryWriter,
                 request: StopRequest) -> None:
        """`path=None` writes nothing (sweep trials are re-run, not resumed) but still
        times the run and honours Ctrl-C."""
        self.path = path
        self.batches = batches
        self.history = history
        self.request = request
        self.cost = ASSUMED_FIRST_COST
        #: Seconds spent writing resume points in this process (the benchmark reports it).
        self.spent = 0.0
        self.last_write = 0.0
        self.started = 0.0
        #: Training seconds before this process (from the resume point).
        self.earlier_seconds = 0.0
        #: Epochs the resume point on disk covers (None: there is none yet).
        self.saved_epochs: int | None = None
        self.restored: dict[str, Any] | None = None

    def seconds(self) -> float:
        """Training time of the whole run so far, across interruptions."""
        return self.earlier_seconds + time.perf_counter() - self.started

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.started = self.last_write = time.perf_counter()
        if self.restored is not None:
            _set_rng_state(self.restored["rng"])
            self.batches.passes = self.restored["passes"]
            keep_history(self.history, self.restored["epochs"])
            self.earlier_seconds = self.restored["seconds"]
            self.saved_epochs = self.restored["epochs"]

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        if self.request.requested:
            raise StopTraining()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        last = trainer.should_stop or trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        now = time.perf_counter()
        if self.path is None or last or (now - self.last_write) * BUDGET < self.cost:
            return
        self.saved_epochs = trainer.current_epoch + 1
        tmp = self.path.with_suffix(".partial")
        trainer.save_checkpoint(tmp)
        os.replace(tmp, self.path)
        self.last_write = time.perf_counter()
        self.cost = self.last_write - now
        self.spent += self.cost

    def state_dict(self) -> dict[str, Any]:
        return {"rng": _rng_state(), "passes": self.batches.passes, "epochs": self.saved_epochs,
                "seconds": self.seconds()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.restored = state_dict
