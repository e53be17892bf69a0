"""The one model: the task's encoder, the cell, the task's head, as a LightningModule.

Two choices keep it as fast as a hand-written loop (see benchmarks/throughput.py):

* Lightning sees *chunks* of batches (`loaders.SplitBatches`), and each `training_step`
  performs one ordinary optimisation step per batch in its chunk. This is Keras's
  `steps_per_execution`: the same updates in the same order, with Lightning's per-step
  machinery (hooks, closures, progress refresh) paid once per chunk instead of per batch.
* Optimisation is manual and plain PyTorch (backward, clip, step; the step goes through
  Lightning's optimizer wrapper only so that checkpointing sees the step count), and metrics are
  accumulated as exact sums on the device and read once per epoch, so there is no host
  sync per step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from seqbench.config import RunSpec
from seqbench.contracts import Batch, Cell, Task, TaskData, plain_totals
from seqbench.errors import SeqbenchError


def build_cell(cell: Cell, input_size: int, spec: RunSpec) -> nn.Module:
    """Build the cell module from the spec (dropout only matters between stacked layers)."""
    layers = spec.hparams["layers"]
    dropout = spec.hparams["dropout"] if layers > 1 else 0.0
    return cell.build(input_size, spec.hparams["hidden_size"], layers, dropout, **spec.cell_params)


def detach_state(state: Any) -> Any:
    """Cut the graph at a window boundary while keeping the values (truncated BPTT).

    A state is a tensor or any nesting of tuples (named ones included), lists and dicts of
    tensors, in whatever layout the cell chose (`Cell` promises no more). Hand-written
    because torch's pytree utilities are private API.
    """
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, dict):
        return type(state)((key, detach_state(value)) for key, value in state.items())
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(detach_state(s) for s in state))
    return type(state)(detach_state(s) for s in state)


def carried_state(previous: tuple[int, Any] | None, batch_size: int) -> Any:
    """The state the next window starts from, given `(batch size, state)` of the last one.

    The last window's state, detached, when its batch had the same size; otherwise None (a
    fresh start, as at the stream's last, smaller batch). Deciding on the batch size the
    core saw, rather than on a dimension of the state, is what lets a cell keep its state
    in any layout (say `[B, H, K]` per layer) and still have it carried.
    """
    if previous is None or previous[0] != batch_size:
        return None
    return detach_state(previous[1])


class DivergedError(SeqbenchError):
    """The loss or a validation metric became NaN or infinite."""


class SequenceModel(pl.LightningModule):
    """`encoder -> cell -> head`, trained and evaluated with the task's loss and statistics."""

    def __init__(self, task: Task, data: TaskData, cell: Cell, spec: RunSpec,
                 progress_bar: bool = False) -> None:
        super().__init__()
        #: Metrics reach callbacks through `last_metrics`; `self.log` (about a millisecond
        #: per call) is used only to show the primary metric on a progress bar.
        self.progress_bar = progress_bar
        self.automatic_optimization = False
        self.task = task
        self.data = data
        self.spec = spec
        #: A task that composes cells builds the whole network from a cell factory.
        self.composed = task.composes_cells
        if self.composed:
            self.network = data.network(lambda input_size: build_cell(cell, input_size, spec),
                                        spec.hparams["hidden_size"], spec.task_params)
        else:
            # The cell draws its initial weights before the task's modules, and the modules
            # register in data-flow order: the same seed gives the same weights (and the
            # same parameter order) as runs recorded before `modules()` existed, for every
            # task whose encoder has no parameters.
            recurrent = build_cell(cell, data.input_size, spec)
            encoder, head = data.modules(spec.hparams["hidden_size"], spec.task_params)
            self.encoder, self.cell, self.head = encoder, recurrent, head
        # Mutable containers assigned once: nn.Module.__setattr__ is too slow for per-step use.
        self._run_state: dict[str, Any] = {"state": None}
        self._totals: dict[str, torch.Tensor] = {}
        #: Per-item (value, weight) pairs of the last test, for paired comparisons.
        self.test_items: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._epoch: dict[str, Any] = {}
        self.last_metrics: dict[str, dict[str, float]] = {}
        #: Called with one row (epoch, seconds, train_loss, val_*) at the end of every epoch.
        self.epoch_listeners: list[Callable[[dict[str, Any]], None]] = []

    def forward(self, inputs: torch.Tensor | Batch, state: Any = None) -> tuple[torch.Tensor, Any]:
        """`(predictions, state)` for `inputs` (a composed network takes the whole `Batch`)."""
        if self.composed:
            return self.network(inputs), None
        features, state = self.cell(self.encoder(inputs), state)
        return self.head(features), state

    def _outputs(self, batch: Batch) -> torch.Tensor:
        """Predictions for one batch, carrying (detached) state if the task asks for it."""
        if self.composed:
            return self.network(batch)
        if not self.task.carry_state:
            return self(batch.inputs)[0]
        batch_size = batch.inputs.shape[0]
        outputs, state = self(batch.inputs, carried_state(self._run_state["state"], batch_size))
        self._run_state["state"] = (batch_size, state)
        return outputs

    def _reset(self) -> None:
        self._run_state["state"] = None
        self._totals.clear()

    def transfer_batch_to_device(self, chunk: Sequence[Batch], device, dataloader_idx: int):
        return [batch.to(device) for batch in chunk]

    # ---- training ----
    def on_train_epoch_start(self) -> None:
        self._reset()
        self._epoch.update(started=time.perf_counter(), loss=torch.zeros((), device=self.device),
                           steps=0, timesteps=0)

    def training_step(self, chunk: Sequence[Batch], chunk_idx: int) -> None:
        optimizer = self.optimizers()  # Lightning's wrapper: its step() keeps global_step right
        clip = self.spec.hparams["clip"]
        for batch in chunk:
            loss = self.data.loss(self._outputs(batch), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                nn.utils.clip_grad_norm_(self.parameters(), clip)
            optimizer.step()
            self._epoch["loss"] += loss.detach()
            self._epoch["steps"] += 1
            self._epoch["timesteps"] += (
                batch.inputs.shape[0] * batch.inputs.shape[1] if batch.mask is None
                else batch.mask.sum()
            )

    def on_train_epoch_end(self) -> None:
        mean = float(self._epoch["loss"]) / max(self._epoch["steps"], 1)
        if not math.isfinite(mean):
            raise DivergedError(
                f"training loss became {mean} in epoch {self.current_epoch + 1}; the run "
                "diverged (try a lower lr or a smaller clip)."
            )
        seconds = time.perf_counter() - self._epoch["started"]
        self.last_metrics["train"] = {
            "train_loss": mean,
            # Real (unpadded) time steps per second: tokens/s for language models.
            "train_timesteps_per_second": round(float(self._epoch["timesteps"]) / seconds, 1),
        }
        row = {"epoch": self.current_epoch + 1, "seconds": round(seconds, 4),
               "lr": self.optimizers().param_groups[0]["lr"], "train_loss": mean,
               **self.last_metrics.get("val", {})}
        schedule = self.lr_schedulers()
        if schedule is not None:
            schedule.step()
        for listener in self.epoch_listeners:
            listener(row)

    # ---- evaluation: exact sums over the whole split ----
    def _evaluate(self, chunk: Sequence[Batch], keep_items: bool = False) -> None:
        for batch in chunk:
            outputs = self._outputs(batch)
            for key, value in self.data.statistics(outputs, batch).items():
                value = value.detach()
                self._totals[key] = self._totals[key] + value if key in self._totals else value
            items = self.data.item_scores(outputs, batch) if keep_items else None
            if items is not None:
                self.test_items.append(tuple(part.detach() for part in items))

    def _finish(self, stage: str) -> None:
        totals = plain_totals(self._totals)
        metrics = {f"{stage}_{k}": float(v) for k, v in self.data.metrics(totals).items()}
        self.last_metrics[stage] = metrics
        primary = f"{stage}_{self.task.primary(self.spec.dataset)}"
        value = metrics.get(primary, math.nan)
        if not math.isfinite(value):
            raise DivergedError(
                f"{primary} is {value} after epoch {self.current_epoch + 1}; the run diverged "
                "(try a lower lr or a smaller clip)."
            )
        if self.progress_bar and stage == "val" and primary in metrics:
            self.log(primary, metrics[primary], prog_bar=True)

    def on_validation_epoch_start(self) -> None:
        self._reset()

    def validation_step(self, chunk: Sequence[Batch], chunk_idx: int) -> None:
        self._evaluate(chunk)

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    def on_test_epoch_start(self) -> None:
        self._reset()
        self.test_items.clear()

    def test_step(self, chunk: Sequence[Batch], chunk_idx: int) -> None:
        self._evaluate(chunk, keep_items=True)

    def on_test_epoch_end(self) -> None:
        self._finish("test")

    def configure_optimizers(self) -> Any:
        optimizer = make_optimizer(self.parameters(), self.spec.hparams)
        decay, start = self.spec.hparams["lr_decay"], self.spec.hparams["lr_decay_start"]
        if decay == 1.0:
            return optimizer
        # The factor for epoch k (1-based) is decay ** max(0, k - start); the scheduler is
        # stepped once at the end of every epoch, so after epoch i it sets epoch i + 1's lr.
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda finished: decay ** max(0, finished + 1 - start)
        )
        return {"optimizer": optimizer, "lr_scheduler": schedule}


def make_optimizer(parameters: Any, hparams: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The optimizer named in the hyperparameters."""
    optimizers = {
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "sgd": torch.optim.SGD,
        "rmsprop": torch.optim.RMSprop,
    }
    return optimizers[hparams["optimizer"]](
        parameters, lr=hparams["lr"], weight_decay=hparams["weight_decay"]
    )


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
