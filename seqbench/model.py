"""The one model: the task's encoder, the cell, the task's head, as a LightningModule.

Lightning's manual optimisation, one step per batch: `manual_backward`, the wrapped
optimizer's `step` and `clip_gradients`, so mixed precision (loss scaling, unscaling before
clipping) and DDP's gradient averaging are Lightning's own under every strategy. It is
manual, not automatic, because an item holds several batches (`seqbench.loaders`), which
pays Lightning's per-item cost once per 8 batches; the steps and their numbers are
those of automatic optimisation (forward, zero_grad, backward, clip, step), and with it the
LR schedule is stepped here, at the start of every epoch after the first. Two more things
are seqbench's, because a comparison needs them exact:

* Validation and test metrics come from sums (`TaskData.statistics`) over the whole split,
  added across processes before the task turns them into metrics (a perplexity or an F1
  is not the mean of per-process values), then logged (`sync_dist=True`) for
  ModelCheckpoint, EarlyStopping, the progress bar and `trainer.callback_metrics`.
* The training loss is summed on the device and read once per epoch (one reduction across
  processes), not logged per step, so there is no host sync and no logging cost per batch.

Every epoch's row (epoch, seconds, lr, train loss, validation metrics) goes to the epoch
listeners (history.csv, a tracker), which only the process writing the run record has.
"""

from __future__ import annotations

import math
import time
import warnings
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


def full_precision(outputs: Any) -> Any:
    """Outputs of a mixed-precision forward in float32, so losses and the exact sums behind
    metrics are not computed in 16 bits (other outputs pass through)."""
    if isinstance(outputs, torch.Tensor) and outputs.dtype in (torch.float16, torch.bfloat16):
        return outputs.float()
    return outputs


class SequenceModel(pl.LightningModule):
    """`encoder -> cell -> head`, trained and evaluated with the task's loss and statistics.

    Loaders yield lists of `(batch, counted)` pairs (`seqbench.loaders`): an uncounted
    batch pads a process's share of an evaluation split and adds nothing to its sums.
    """

    def __init__(self, task: Task, data: TaskData, cell: Cell, spec: RunSpec) -> None:
        super().__init__()
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
        self.automatic_optimization = False  # see the module's docstring
        #: The reported metric (a non-finite value means the run diverged) and the one that
        #: selects the epoch (shown on the progress bar), unprefixed.
        self.primary = task.primary(spec.dataset)
        self.selected = task.selection(spec.dataset)[0]
        # Mutable containers assigned once: nn.Module.__setattr__ is too slow for per-step use.
        self._run_state: dict[str, Any] = {"state": None}
        self._totals: dict[str, torch.Tensor] = {}
        #: Per-item (value, weight) pairs of the last test, for paired comparisons.
        self.test_items: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._epoch: dict[str, Any] = {}
        self.last_metrics: dict[str, dict[str, float]] = {}
        #: Called with one row (epoch, seconds, lr, train_loss, val_*) at the end of every epoch.
        self.epoch_listeners: list[Callable[[dict[str, Any]], None]] = []

    def forward(self, inputs: torch.Tensor | Batch, state: Any = None) -> tuple[torch.Tensor, Any]:
        """`(predictions, state)` for `inputs` (a composed network takes the whole `Batch`)."""
        if self.composed:
            return self.network(inputs), None
        features, state = self.cell(self.encoder(inputs), state)
        return self.head(features), state

    def _outputs(self, batch: Batch) -> Any:
        """Predictions for one batch (in float32), carrying (detached) state if the task
        asks for it."""
        if self.composed:
            return full_precision(self.network(batch))
        if not self.task.carry_state:
            return full_precision(self(batch.inputs)[0])
        batch_size = batch.inputs.shape[0]
        outputs, state = self(batch.inputs, carried_state(self._run_state["state"], batch_size))
        self._run_state["state"] = (batch_size, state)
        return full_precision(outputs)

    def _reset(self) -> None:
        self._run_state["state"] = None
        self._totals.clear()

    def transfer_batch_to_device(self, item: list[tuple[Batch, bool]], device: Any,
                                 dataloader_idx: int) -> list[tuple[Batch, bool]]:
        return [(batch.to(device), counted) for batch, counted in item]

    def _summed(self, tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` added up over every process of the run (itself when there is one)."""
        if self._trainer is None or self.trainer.world_size == 1:
            return tensor
        return self.trainer.strategy.reduce(tensor, reduce_op="sum")

    # ---- training ----
    def on_train_epoch_start(self) -> None:
        self._reset()
        zero = torch.zeros((), device=self.device, dtype=torch.float64)
        self._epoch.update(started=time.perf_counter(), loss=zero.clone(), steps=0,
                           timesteps=zero.clone())
        schedule = self.lr_schedulers()
        if schedule is not None and schedule.last_epoch < self.current_epoch:
            # Epoch k's factor, set before it trains: after k - 1 steps the schedule is at
            # epoch k (0-based), however the run got here, a resume point from the end of
            # epoch k - 1 included (it holds the schedule before this step). A process
            # resumed after the first epoch has not stepped its optimizer yet, which torch
            # warns of as if the schedule were skipping a value; it is not.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step",
                                        UserWarning)
                schedule.step()

    def training_step(self, item: list[tuple[Batch, bool]], index: int) -> None:
        optimizer = self.optimizers()
        for batch, _ in item:  # every training batch counts
            loss = self.training_loss(batch)
            optimizer.zero_grad()
            # Lightning runs this whole method under mixed precision's autocast; backward
            # and the step run outside it, as PyTorch recommends and as automatic
            # optimisation runs them.
            with torch.autocast(self.device.type, enabled=False):
                self.manual_backward(loss)
                optimizer.step()  # clips first: `on_before_optimizer_step`

    def training_loss(self, batch: Batch) -> torch.Tensor:
        """One batch's training loss, added to the epoch's sums."""
        loss = self.data.loss(self._outputs(batch), batch)
        epoch = self._epoch
        epoch["loss"] += loss.detach()
        epoch["steps"] += 1
        epoch["timesteps"] += (batch.inputs.shape[0] * batch.inputs.shape[1]
                               if batch.mask is None else batch.mask.sum())
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Clip the gradient norm where Lightning clips under automatic optimisation: after
        mixed precision has unscaled the gradients, before the step."""
        if self.spec.hparams["clip"]:
            self.clip_gradients(optimizer, gradient_clip_val=self.spec.hparams["clip"],
                                gradient_clip_algorithm="norm")

    def on_train_epoch_end(self) -> None:
        epoch = self._epoch
        loss, steps, timesteps = self._summed(torch.stack(
            [epoch["loss"], torch.full_like(epoch["loss"], epoch["steps"]),
             epoch["timesteps"]])).tolist()
        mean = loss / max(steps, 1)
        if not math.isfinite(mean):
            raise DivergedError(
                f"training loss became {mean} in epoch {self.current_epoch + 1}; the run "
                "diverged (try a lower lr or a smaller clip)."
            )
        seconds = time.perf_counter() - epoch["started"]
        self.last_metrics["train"] = {
            "train_loss": mean,
            # Real (unpadded) time steps per second: tokens/s for language models.
            "train_timesteps_per_second": round(timesteps / seconds, 1),
        }
        self.log("train_loss", mean, prog_bar=True, sync_dist=True)
        row = {"epoch": self.current_epoch + 1, "seconds": round(seconds, 4),
               "lr": self.optimizers().param_groups[0]["lr"], "train_loss": mean,
               **self.last_metrics.get("val", {})}
        for listener in self.epoch_listeners:
            listener(row)

    # ---- evaluation: exact sums over the whole split ----
    def _evaluate(self, item: list[tuple[Batch, bool]], keep_items: bool = False) -> None:
        for batch, counted in item:
            outputs = self._outputs(batch)
            for key, value in self.data.statistics(outputs, batch).items():
                value = value.detach() if counted else torch.zeros_like(value)
                self._totals[key] = self._totals[key] + value if key in self._totals else value
            scores = self.data.item_scores(outputs, batch) if keep_items and counted else None
            if scores is not None:
                self.test_items.append(tuple(part.detach() for part in scores))

    def _summed_totals(self) -> dict[str, torch.Tensor]:
        """This split's statistics summed over every process, in one reduction."""
        if self._trainer is None or self.trainer.world_size == 1 or not self._totals:
            return self._totals
        keys = sorted(self._totals)
        # On the model's device: a task may total on the CPU (ASR's CTC, translation's
        # sacrebleu counts), and NCCL reduces CUDA tensors only.
        flat = self._summed(torch.cat([self._totals[k].double().reshape(-1).to(self.device)
                                       for k in keys]))
        sizes = [self._totals[k].numel() for k in keys]
        return {key: part.reshape(self._totals[key].shape)
                for key, part in zip(keys, flat.split(sizes))}

    def _finish(self, stage: str) -> None:
        totals = plain_totals(self._summed_totals())
        metrics = {f"{stage}_{k}": float(v) for k, v in self.data.metrics(totals).items()}
        self.last_metrics[stage] = metrics
        primary = f"{stage}_{self.primary}"
        value = metrics.get(primary, math.nan)
        if not math.isfinite(value):
            raise DivergedError(
                f"{primary} is {value} after epoch {self.current_epoch + 1}; the run diverged "
                "(try a lower lr or a smaller clip)."
            )
        if self._trainer is not None:
            for name, number in metrics.items():
                self.log(name, number, prog_bar=name == f"val_{self.selected}", sync_dist=True)

    def on_validation_epoch_start(self) -> None:
        self._reset()

    def validation_step(self, item: list[tuple[Batch, bool]], index: int) -> None:
        self._evaluate(item)

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    def on_test_epoch_start(self) -> None:
        self._reset()
        self.test_items.clear()

    def test_step(self, item: list[tuple[Batch, bool]], index: int) -> None:
        self._evaluate(item, keep_items=True)

    def on_test_epoch_end(self) -> None:
        self._finish("test")
        if self.trainer.world_size > 1:
            self.test_items = gathered_items(self.test_items)

    def configure_optimizers(self) -> Any:
        optimizer = make_optimizer(self.parameters(), self.spec.hparams)
        decay, start = self.spec.hparams["lr_decay"], self.spec.hparams["lr_decay_start"]
        if decay == 1.0:
            return optimizer
        # The factor for epoch k (1-based) is decay ** max(0, k - start); the scheduler is
        # stepped as every epoch after the first starts, so before epoch i + 1 it sets that
        # epoch's lr.
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda finished: decay ** max(0, finished + 1 - start)
        )
        return {"optimizer": optimizer, "lr_scheduler": schedule}


def gathered_items(items: Sequence[tuple[torch.Tensor, torch.Tensor]]
                   ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every process's per-item test scores in rank order, which (contiguous shares, see
    `seqbench.loaders`) is the split's own order."""
    import torch.distributed as dist

    mine = ((torch.cat([v.reshape(-1) for v, _ in items]).cpu(),
             torch.cat([w.reshape(-1) for _, w in items]).cpu()) if items else None)
    every: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(every, mine)
    return [pair for pair in every if pair is not None]


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
