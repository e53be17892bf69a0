"""The one model: the task's encoder, the cell, the task's head, as a LightningModule.

Metrics are accumulated as exact sums on the device and turned into numbers once per epoch,
so there is no host sync per step (that, plus per-step logging, is where a plain
LightningModule loses time against a bare loop).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from seqbench.config import RunSpec
from seqbench.contracts import Batch, Cell, Task, TaskData
from seqbench.errors import SeqbenchError


def build_cell(cell: Cell, input_size: int, spec: RunSpec) -> nn.Module:
    """Build the cell module from the spec (dropout only matters between stacked layers)."""
    layers = spec.hparams["layers"]
    dropout = spec.hparams["dropout"] if layers > 1 else 0.0
    return cell.build(input_size, spec.hparams["hidden_size"], layers, dropout, **spec.cell_params)


def detach_state(state: Any) -> Any:
    """Cut the graph at a window boundary while keeping the values (truncated BPTT)."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)


class DivergedError(SeqbenchError):
    """The loss or a validation metric became NaN or infinite."""


class SequenceModel(pl.LightningModule):
    """`encoder -> cell -> head`, trained and evaluated with the task's loss and statistics."""

    def __init__(self, task: Task, data: TaskData, cell: Cell, spec: RunSpec) -> None:
        super().__init__()
        self.task = task
        self.data = data
        self.spec = spec
        self.encoder = data.encoder(spec.task_params)
        self.cell = build_cell(cell, data.input_size, spec)
        self.head = data.head(spec.hparams["hidden_size"], spec.task_params)
        self._state: Any = None
        self._totals: dict[str, torch.Tensor] = {}
        self.last_metrics: dict[str, dict[str, float]] = {}
        #: Called with one row (epoch, seconds, train_loss, val_*) at the end of every epoch.
        self.epoch_listeners: list[Callable[[dict[str, Any]], None]] = []

    def forward(self, inputs: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        features, state = self.cell(self.encoder(inputs), state)
        return self.head(features), state

    # ---- state carried across consecutive batches (only for tasks that ask for it) ----
    def _run(self, batch: Batch) -> torch.Tensor:
        if not self.task.carry_state:
            return self(batch.inputs)[0]
        state = detach_state(self._state)
        if state is not None and _batch_dim(state) != batch.inputs.shape[0]:
            state = None
        outputs, self._state = self(batch.inputs, state)
        return outputs

    def _reset(self) -> None:
        self._state = None
        self._totals = {}

    def _accumulate(self, stats: Mapping[str, torch.Tensor]) -> None:
        for key, value in stats.items():
            value = value.detach()
            self._totals[key] = self._totals[key] + value if key in self._totals else value

    def _finish(self, stage: str) -> dict[str, float]:
        totals = {k: float(v) for k, v in self._totals.items()}
        metrics = {f"{stage}_{k}": float(v) for k, v in self.data.metrics(totals).items()}
        self.last_metrics[stage] = metrics
        for name, value in metrics.items():
            if not math.isfinite(value) and stage != "train":
                raise DivergedError(
                    f"{stage} metric {name} is {value} at epoch {self.current_epoch}; the run "
                    "diverged (try a lower lr or a smaller clip)."
                )
            self.log(name, value, prog_bar=name == f"val_{self.task.primary_metric}")
        return metrics

    # ---- Lightning hooks ----
    def on_train_epoch_start(self) -> None:
        self._reset()
        self._epoch_started = time.perf_counter()
        self._loss_sum = torch.zeros((), device=self.device)
        self._loss_count = 0

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = self.data.loss(self._run(batch), batch)
        self._loss_sum = self._loss_sum + loss.detach()
        self._loss_count += 1
        return loss

    def on_train_epoch_end(self) -> None:
        mean = float(self._loss_sum) / max(self._loss_count, 1)
        if not math.isfinite(mean):
            raise DivergedError(
                f"training loss became {mean} in epoch {self.current_epoch}; the run diverged "
                "(try a lower lr or a smaller clip)."
            )
        self.last_metrics["train"] = {"train_loss": mean}
        self.log("train_loss", mean)
        row = {"epoch": self.current_epoch + 1,
               "seconds": round(time.perf_counter() - self._epoch_started, 4),
               "train_loss": mean, **self.last_metrics.get("val", {})}
        for listener in self.epoch_listeners:
            listener(row)

    def on_validation_epoch_start(self) -> None:
        self._reset()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._accumulate(self.data.statistics(self._run(batch), batch))

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._finish("val")

    def on_test_epoch_start(self) -> None:
        self._reset()

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._accumulate(self.data.statistics(self._run(batch), batch))

    def on_test_epoch_end(self) -> None:
        self._finish("test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.parameters(), self.spec.hparams)


def _batch_dim(state: Any) -> int:
    """Batch size of a (possibly nested) cell state; states put layers first, batch second."""
    while not isinstance(state, torch.Tensor):
        state = state[0]
    return state.shape[1] if state.dim() >= 3 else state.shape[0]


def make_optimizer(parameters: Any, hparams: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The optimizer named in the hyperparameters."""
    lr, decay = hparams["lr"], hparams["weight_decay"]
    name = hparams["optimizer"]
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=decay)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=decay)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, weight_decay=decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr, weight_decay=decay)
    raise SeqbenchError(f"unknown optimizer '{name}'")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
