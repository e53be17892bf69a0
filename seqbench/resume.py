"""Runs that survive being stopped: resume points, and Ctrl-C that leaves one behind.

A resume point is Lightning's own checkpoint (`Trainer.save_checkpoint`: weights, optimizer,
LR schedule, loop counters and every callback's state, the best epoch and early stopping's
included), written to `RUN_DIR/resume.ckpt` at the end of an epoch, plus what Lightning does
not keep and a run's result depends on: every process's random number generators. The
data order needs nothing: it is a function of the seed and the epoch (`seqbench.loaders`).
`trainer.fit(ckpt_path=...)` restores it, and the resumed run then takes exactly the steps
the uninterrupted one would have taken. It holds only tensors, numbers, strings and
containers of them, so it loads with `weights_only=True`.

Cadence: a checkpoint costs about as much as serialising the model and optimizer, which on
small models is several percent of a sub-second epoch. So after each write its cost is
measured and the next one waits until training has run `1 / BUDGET` times as long: the
writes cost at most `BUDGET` of training time, and long epochs (the ones worth resuming) get
a resume point every epoch. The last epoch writes none; the run record is complete instead.
A killed run therefore continues from its last resume point, not always its last epoch.
With several processes the first decides and writes; all of them take part.

Ctrl-C (or SIGTERM, a scheduler's stop) during training asks the run to stop after the
loader item it is on (up to 8 batches, `seqbench.loaders`; all processes together); the run
folder keeps its last resume point, and the message says how to continue. A second Ctrl-C
interrupts at once, as usual.

A resume point carries `LOOP` under `LOOP_KEY`: the training loop that wrote it. One written
by another loop (before `LOOP` existed, training took one automatic-optimisation step per
loader item, and its loop counters and LR schedule mean something else) is refused, so such a
run starts again rather than continuing with a schedule one epoch off.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint

from seqbench import runs, stopping
from seqbench.errors import SeqbenchError
from seqbench.loaders import world
from seqbench.run_state import run_status, start_again, stopped_run
from seqbench.runs import RESUME_POINT, HistoryWriter

if TYPE_CHECKING:
    from seqbench.config import RunSpec

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
    """Set by the Ctrl-C and SIGTERM handler, read by `ResumePoint` between loader items."""

    def __init__(self) -> None:
        self.requested = False


@contextmanager
def first_ctrl_c_stops_gracefully(request: StopRequest) -> Iterator[None]:
    """While training, the first Ctrl-C or SIGTERM only sets `request`. A second Ctrl-C gets
    the handler from before (it interrupts at once); a second SIGTERM is ignored, since a
    scheduler's SIGTERM to a whole process group reaches a sweep's worker twice (directly,
    and forwarded by its parent), and the stop it asks for is already under way."""
    def stop(signum: int, previous: dict[int, Any]) -> None:
        request.requested = True
        signal.signal(signal.SIGINT, previous[signal.SIGINT])
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    with stopping.on_stop(stop):
        yield


@contextmanager
def ctrl_c_raises_stop() -> Iterator[None]:
    """While testing, Ctrl-C and SIGTERM raise `StopTraining` instead of KeyboardInterrupt,
    which Lightning would turn into `sys.exit(1)` (exit code 1, no word on what was kept)."""
    def stop(signum: int, previous: dict[int, Any]) -> None:
        stopping.restore(previous)
        raise StopTraining

    with stopping.on_stop(stop):
        yield


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
    Lightning does not: every process's RNG, the history and the training time so far."""

    def __init__(self, path: Path | None, history: HistoryWriter | None,
                 request: StopRequest) -> None:
        """`path=None` writes nothing (sweep trials are re-run, not resumed) but still
        times the run and honours Ctrl-C. Only the first process needs `path` and
        `history`; the others learn from it whether resume points are written."""
        self.path = path
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

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.path = trainer.strategy.broadcast(self.path)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.started = self.last_write = time.perf_counter()
        if self.restored is not None:
            generators = self.restored["rng"]
            _set_rng_state(generators[world()[0] % len(generators)])
            if self.history is not None:
                keep_history(self.history, self.restored["epochs"])
            self.earlier_seconds = self.restored["seconds"]
            self.saved_epochs = self.restored["epochs"]

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        requested = self.request.requested
        if trainer.world_size > 1:  # every process stops at the same batch, or none does
            requested = trainer.strategy.reduce_boolean_decision(requested, all=False)
        if requested:
            raise StopTraining()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        last = trainer.should_stop or trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        now = time.perf_counter()
        due = self.path is not None and not last and (now - self.last_write) * BUDGET >= self.cost
        if trainer.world_size > 1:
            due = trainer.strategy.broadcast(due)
        if not due:
            return
        self.saved_epochs = trainer.current_epoch + 1
        tmp = self.path.with_suffix(".partial")
        try:
            trainer.save_checkpoint(tmp)  # written by the first process only
            if trainer.is_global_zero:
                os.replace(tmp, self.path)
        except OSError:  # a full disk: the last complete resume point is kept, and no part
            tmp.unlink(missing_ok=True)
            raise
        self.last_write = time.perf_counter()
        self.cost = self.last_write - now
        self.spent += self.cost

    def on_save_checkpoint(self, trainer: Any, pl_module: Any,
                           checkpoint: dict[str, Any]) -> None:
        checkpoint[LOOP_KEY] = LOOP

    def state_dict(self) -> dict[str, Any]:
        """Called on every process as the resume point is made: each one's generators."""
        generators = [_rng_state()]
        if world()[1] > 1:
            import torch.distributed as dist

            generators = [None] * world()[1]
            dist.all_gather_object(generators, _rng_state())
        return {"rng": generators, "epochs": self.saved_epochs, "seconds": self.seconds()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.restored = state_dict


#: What `Trainer.save_checkpoint` writes beside the weights and `fit(ckpt_path=)` reads back.
TRAINING_STATE = {"pytorch-lightning_version", "loops", "optimizer_states"}
#: The training loop a resume point continues (see the module's docstring).
LOOP_KEY, LOOP = "seqbench_loop", "manual steps, 8 batches per item"


def resumable(run_dir: Path | None) -> Path:
    """The checked resume point of a stopped run (`run_state.stopped_run`, then the file
    itself), or a one-line error saying why there is none."""
    point = stopped_run(run_dir)
    check_resume_point(point, start_again(Path(point).parent))
    return point


def check_resume_point(point: Path, remedy: str) -> None:
    """Checked as best.ckpt is: Lightning would fail deep inside `fit` with a traceback on a
    damaged or foreign file."""
    checkpoint = runs.load_checkpoint(point, remedy)
    if not TRAINING_STATE <= checkpoint.keys():
        raise SeqbenchError(f"'{point}' is not a resume point (no training state); {remedy}")
    if checkpoint.get(LOOP_KEY) != LOOP:
        raise SeqbenchError(f"'{point}' was written by an older seqbench, whose training loop "
                            f"this one does not continue; {remedy}")


def load_weights(model: Any, checkpoint: Path, remedy: str) -> None:
    """Load `checkpoint`'s weights into `model`, or say in one line that they are not this
    model's (config.json edited, or files mixed between runs), before Lightning fails on
    them with a traceback."""
    try:
        model.load_state_dict(runs.load_checkpoint(checkpoint, remedy)["state_dict"])
    except RuntimeError as exc:  # shapes or names that config.json's model does not have
        raise SeqbenchError(f"'{checkpoint}' does not fit the model in {runs.CONFIG} "
                            f"({str(exc).strip().splitlines()[-1].strip()}).") from None


def can_resume(run_dir: Path, spec: RunSpec) -> bool:
    """Whether `run_dir` holds a stopped run of exactly `spec` with a usable resume point: a
    sweep's final run, killed or interrupted, continues such a folder instead of starting
    over (and starts over where the resume point is damaged)."""
    if not ((run_dir / RESUME_POINT).is_file() and (run_dir / runs.CONFIG).is_file()
            and run_status(run_dir) in (None, "interrupted") and runs.read_spec(run_dir) == spec):
        return False
    try:
        check_resume_point(run_dir / RESUME_POINT, "the sweep trains this final again")
    except SeqbenchError:
        return False
    return True
