"""Early stopping that keeps the best epoch's weights and writes them once, at the end.

Lightning's ModelCheckpoint serialises model, optimizer and loop state at every improvement,
and its EarlyStopping reads metrics through `self.log`'s result collection; on the small
recurrent models of benchmarks/throughput.py they cost about 4 ms per epoch and 1 ms per
logged call (results/benchmarks.md, where the ratio they were removed to reach is). The
model already holds each validation's exact metrics (`SequenceModel.last_metrics`), so this
callback reads them there, clones the best weights in memory (on the model's own device),
stops after `patience` epochs without improvement, and writes `best.ckpt` when fit ends or
is interrupted, so a stopped run keeps its best model. Its state (best score, epoch and
weights) travels in resume points, so a resumed run stops and selects as if never stopped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback


def validation_value(pl_module: Any, monitor: str) -> float | None:
    """The latest value of `monitor` (e.g. "val_nll"), or None before the first validation."""
    return pl_module.last_metrics.get("val", {}).get(monitor)


def past_minimum(trainer: Any, min_epochs: int, min_steps: int) -> bool:
    """Whether a run has trained long enough that stopping it early is fair.

    On JSB a deep LSTM sits on the per-key marginal plateau for a dozen epochs before it
    learns anything; with one batch per epoch (airline), patience would count updates. Both
    early stopping and pruning wait for the task's declared minimum.
    """
    return trainer.current_epoch + 1 >= min_epochs and trainer.global_step >= min_steps


class BestEpoch(Callback):
    def __init__(self, path: Path, monitor: str, mode: str, patience: int = 0,
                 min_epochs: int = 0, min_steps: int = 0, keep_last: bool = False) -> None:
        """`keep_last`: every epoch replaces the kept weights and nothing stops the run early
        (a refit run trains on its validation items, which then cannot choose an epoch)."""
        self.path = path
        self.keep_last = keep_last
        self.monitor = monitor
        self.sign = 1.0 if mode == "min" else -1.0
        self.patience = patience
        self.minimum = (min_epochs, min_steps)
        self.score: float | None = None
        self.epoch: int | None = None
        self.state: dict[str, torch.Tensor] | None = None
        #: Why this callback ended the run, in words (None while it has not).
        self.stop_reason: str | None = None

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        value = validation_value(pl_module, self.monitor)
        if trainer.sanity_checking or value is None or not math.isfinite(value):
            return
        epoch = trainer.current_epoch + 1
        if self.keep_last or self.score is None or self.sign * value < self.sign * self.score:
            self.score, self.epoch = value, epoch
            self.state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        elif self.patience and epoch - self.epoch >= self.patience and \
                past_minimum(trainer, *self.minimum):
            trainer.should_stop = True
            self.stop_reason = (f"no better {self.monitor} for {self.patience} epochs after "
                                f"epoch {self.epoch}, whose weights are kept")

    def state_dict(self) -> dict[str, Any]:
        """Early-stopping state for a resume point: the best score, its epoch and weights."""
        return {"score": self.score, "epoch": self.epoch, "state": self.state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.score, self.epoch, self.state = (state_dict["score"], state_dict["epoch"],
                                              state_dict["state"])

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self.save()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.save()

    def save(self) -> None:
        if self.state is None:
            return
        state = {k: v.cpu() for k, v in self.state.items()}
        tmp = self.path.with_suffix(".partial")
        torch.save({"state_dict": state, "epoch": self.epoch, "monitor": self.monitor,
                    "score": self.score}, tmp)
        tmp.replace(self.path)

    def restore(self, model: torch.nn.Module) -> None:
        """Load the best weights into `model` (no-op if no validation epoch finished)."""
        if self.state is not None:
            model.load_state_dict(self.state)
