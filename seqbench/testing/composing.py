"""Checks for tasks that compose their model from cells (`Task.composes_cells`).

Such a task hands the core a whole network built from a cell factory (`TaskData.network`),
so the `encoder -> cell -> head` checks cannot see how it uses the cells. These can:

* `check_stacks` (what `check_input_size` runs for such a task): every stack the network
  asks the factory for is read by `forward` with the width it was built for, and the loss
  reaches its weights. A stack built and left unused inflates the count `--param-budget`
  matches and compares nothing;
* `check_targets_unseen`: the output for target position t does not change when the
  targets at t and after change. A decoder fed the very token it must predict (teacher
  forcing shifted the wrong way) reaches a near-perfect training loss and translates
  nothing; only a causal network's outputs pass;
* `check_parameter_budget`: the network builds on PyTorch's meta device, as
  `--param-budget` counts parameters, and grows with `hidden_size`, or the budget's search
  for a width has nothing to search.

Each skips, saying so, for a task that does not compose cells.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from seqbench.testing.kit import CheckSkipped, expect
from seqbench.testing.task_subject import PROBE_CELL, PROBE_HIDDEN, outputs_of

#: Target positions `check_targets_unseen` perturbs (from the first), bounding its cost.
MAX_POSITIONS = 32
#: Widths whose networks `check_parameter_budget` builds and counts.
BUDGET_WIDTHS = (8, 16)


def composes(subject) -> bool:
    return bool(getattr(subject.task, "composes_cells", False))


def _require_composing(subject) -> None:
    if not composes(subject):
        raise CheckSkipped(f"task '{subject.task.name}' does not compose cells")


class RecordedStack(nn.Module):
    """A stack from the factory that refuses inputs of another width than it was built
    for and counts its calls."""

    def __init__(self, stack: nn.Module, width: int, number: int) -> None:
        super().__init__()
        self.stack, self.width, self.number, self.calls = stack, width, number, 0

    def forward(self, x: torch.Tensor, state: Any = None):
        expect(x.shape[-1] == self.width,
               f"stack {self.number} to be fed the width it was built for ({self.width})",
               f"inputs of width {x.shape[-1]}")
        self.calls += 1
        return self.stack(x, state)


def check_stacks(subject) -> None:
    _require_composing(subject)
    built: list[RecordedStack] = []

    def cells(input_size: int) -> nn.Module:
        stack = RecordedStack(PROBE_CELL.build(input_size, PROBE_HIDDEN, 1, 0.0), input_size,
                              len(built))
        built.append(stack)
        return stack

    torch.manual_seed(0)
    network = subject.data.network(cells, PROBE_HIDDEN, subject.params)
    expect(isinstance(network, nn.Module), "network() to return an nn.Module",
           type(network).__name__)
    expect(built, "network() to build its recurrent stacks with the cell factory", "none built")
    batch = subject.first_batch("train")
    subject.data.loss(network.train()(batch), batch).backward()
    for stack in built:
        expect(stack.calls, f"forward() to read stack {stack.number} (of {len(built)} built)",
               "never called")
        reached = any(p.grad is not None and bool(p.grad.abs().sum() > 0)
                      for p in stack.stack.parameters())
        expect(reached, f"the loss to reach the weights of stack {stack.number}",
               "no gradient")


def changed_from(targets: torch.Tensor, start: int) -> torch.Tensor:
    """`targets` with every value at position `start` and after replaced by another value
    the batch holds (integer ids stay valid ids), or shifted by one (real values)."""
    changed = targets.clone()
    tail = changed[:, start:]
    if targets.is_floating_point():
        changed[:, start:] = tail + 1
        return changed
    values = torch.unique(targets)
    expect(len(values) > 1, "a training batch with at least two distinct target values",
           f"only {values.tolist()}")
    changed[:, start:] = values[(torch.searchsorted(values, tail.contiguous()) + 1)
                                % len(values)]
    return changed


def check_targets_unseen(subject) -> None:
    _require_composing(subject)
    model = subject.model().eval()  # no dropout: the same batch gives the same outputs
    batch = subject.first_batch("train")
    targets = batch.targets
    with torch.no_grad():
        outputs = outputs_of(model, batch)
    if not (isinstance(outputs, torch.Tensor) and targets.dim() >= 2
            and outputs.shape[:2] == targets.shape[:2]):
        raise CheckSkipped("the outputs are not one per target position "
                           f"({tuple(getattr(outputs, 'shape', ()))} for targets "
                           f"{tuple(targets.shape)})")
    for start in range(min(targets.shape[1], MAX_POSITIONS)):
        with torch.no_grad():
            perturbed = outputs_of(model, replace(batch, targets=changed_from(targets, start)))
        same = torch.allclose(perturbed[:, : start + 1], outputs[:, : start + 1],
                              rtol=1e-4, atol=1e-5)
        expect(same, f"the outputs at target positions 0..{start} unchanged when the targets "
               f"from position {start} on change (a prediction must not see the target it "
               "predicts, nor later ones)",
               f"outputs at position {start} changed by up to "
               f"{float((perturbed - outputs)[:, start].abs().max()):.3g}")


def check_parameter_budget(subject) -> None:
    from seqbench.model import count_parameters

    _require_composing(subject)
    counts = []
    for width in BUDGET_WIDTHS:
        with torch.device("meta"):
            counts.append(count_parameters(subject.model(hidden_size=width)))
    expect(counts[1] > counts[0], f"more parameters at hidden_size={BUDGET_WIDTHS[1]} than at "
           f"{BUDGET_WIDTHS[0]}, built on the meta device as --param-budget counts them",
           f"{counts[0]} and {counts[1]}")


COMPOSING_CHECKS = (check_targets_unseen, check_parameter_budget)
