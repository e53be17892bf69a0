"""A correct cell and a correct task, each with switchable planted bugs, for testing the kit.

Each bug is one small, realistic mistake a plugin author makes (the kind found by trying
the kit as a third-party author would); `tests/test_planted_bugs.py` asserts that the
conformance check named for it catches it. The correct versions pass every check, so a
failure can only come from the planted bug.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from seqbench import Batch, Cell, CheckCase, Param, Task, TaskData
from seqbench.step import from_step

# ---- the cell: an Elman step made into a sequence module by from_step ----


class ElmanStep(nn.Module):
    """h_t = tanh(W [x_t, h_{t-1}] + b) * scale, with one planted bug chosen by `bug`."""

    def __init__(self, input_size, hidden_size, scale=1.0, bug=None):
        super().__init__()
        self.hidden_size, self.scale, self.bug = hidden_size, scale, bug
        self.linear = nn.Linear(input_size + hidden_size, hidden_size)
        if bug == "weights outside the state_dict":
            self.gain = torch.from_numpy(np.random.default_rng().random(hidden_size)).float()
        if bug == "unused parameter":
            self.unused = nn.Parameter(torch.zeros(hidden_size))

    def initial_state(self, batch_size, device, dtype):
        if self.bug == "initial_state ignores device":
            return torch.zeros(batch_size, self.hidden_size, dtype=dtype)
        if self.bug == "initial_state ignores dtype":
            return torch.zeros(batch_size, self.hidden_size, device=device)
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def forward(self, x_t, h):
        if self.bug == "no recurrence":
            h = torch.zeros_like(h)
        h_new = torch.tanh(self.linear(torch.cat([x_t, h], -1))) * self.scale
        if self.bug == "mixes the batch":
            h_new = h_new - 0.1 * h_new.mean(0, keepdim=True)
        if self.bug == "weights outside the state_dict":
            h_new = h_new * self.gain
        return h_new, h_new


class Stacked(nn.Module):
    """Wraps a from_step module to plant the bugs that live outside one step."""

    def __init__(self, inner, bug, num_layers):
        super().__init__()
        self.inner, self.bug, self.num_layers = inner, bug, num_layers

    def forward(self, x, state=None):
        if self.bug == "forgets state":
            state = None
        if self.bug == "random output noise":
            x = x + 0.01 * torch.from_numpy(np.random.default_rng().standard_normal(
                x.shape)).float()
        y, state = self.inner(x, state)
        if self.bug == "wrong output width":
            y = y[..., ::2]
        if self.bug == "returns every layer" and self.num_layers > 1:
            y = torch.cat([y] * self.num_layers, dim=-1)
        if self.bug == "state is a dict":
            state = {"layers": state}
        return y, state


def planted_cell(bug=None, params=(Param("scale", float, 1.0, low=0.5, high=2.0),)):
    """The Elman cell with `bug` planted (None: correct)."""
    ignores_scale = bug == "ignores a declared parameter"

    def make_step(input_size, hidden_size, scale=1.0):
        return ElmanStep(input_size, hidden_size, 1.0 if ignores_scale else scale, bug)

    steps = from_step(make_step)

    def build(input_size, hidden_size, num_layers, dropout, **extra):
        return Stacked(steps(input_size, hidden_size, num_layers, dropout, **extra), bug,
                       num_layers)

    return Cell(name="elman", summary="an Elman cell with planted bugs", build=build,
                params=params)


# ---- the task: sum the values of a sequence, read at the last step ----

LENGTH = 6


class SumData(TaskData):
    """Sequences of values (plus, with features='value+position', the step's position);
    the target is the sum of the values."""

    def __init__(self, splits, features="value", bug=None):
        self.bug = bug
        self.splits = {name: torch.as_tensor(x, dtype=torch.float32)
                       for name, x in splits.items()}
        if features == "value+position":
            self.splits = {name: torch.cat([x, torch.linspace(0, 1, x.shape[1]).expand(
                x.shape[0], -1).unsqueeze(-1)], -1) for name, x in self.splits.items()}
        hard_coded = bug == "hard-coded input_size"
        self.input_size = 1 if hard_coded else self.splits["train"].shape[-1]

    def num_batches(self, split, batch_size):
        if self.bug == "miscounts batches":
            return 1
        return -(-len(self.splits[split]) // batch_size)

    def batches(self, split, batch_size, seed=None):
        x = self.splits[split]
        order = torch.arange(len(x))
        if seed is not None:
            generator = None if self.bug == "ignores the shuffle seed" else \
                torch.Generator().manual_seed(seed)
            order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            rows = x[order[start:start + batch_size]]
            targets = rows[..., 0].sum(1)
            if self.bug == "targets of another batch":
                targets = targets[:-1]
            mask = torch.ones(rows.shape[:2]) if self.bug == "float mask" else None
            yield Batch(inputs=rows, targets=targets, mask=mask)

    def modules(self, hidden_size, params):
        wide = self.bug == "encoder wider than input_size"
        encoder = nn.Linear(self.input_size, self.input_size + 1) if wide else nn.Identity()
        return encoder, LastStep(hidden_size, squash=self.bug == "sigmoid on a regression output")

    def loss(self, outputs, batch):
        error = (outputs - batch.targets).pow(2)
        return error if self.bug == "loss per example" else error.mean()

    def statistics(self, outputs, batch):
        count = 1.0 if self.bug == "averages batch averages" else float(len(outputs))
        return {"sse": (outputs - batch.targets).pow(2).sum(), "count": torch.tensor(count)}

    def metrics(self, totals):
        return {"mse": totals["sse"] / totals["count"]}

    def artifacts(self, model, run_dir):
        folder = run_dir.parent if self.bug == "writes outside the run folder" else run_dir
        path = folder / "predictions.txt"
        path.write_text("ok\n")
        return [path]


class LastStep(nn.Module):
    def __init__(self, hidden_size, squash=False):
        super().__init__()
        self.linear, self.squash = nn.Linear(hidden_size, 1), squash

    def forward(self, features):
        out = self.linear(features[:, -1]).squeeze(-1)
        return torch.sigmoid(out) if self.squash else out


def values(count, seed):
    return np.random.default_rng(seed).random((count, LENGTH, 1))


class SumTask(Task):
    name = "sum"
    summary = "sum of a sequence's values, with planted bugs"
    datasets = {"generated": "uniform values, fixed seeds"}
    default_dataset = "generated"
    primary_metric = "mse"
    direction = "minimize"
    params = (Param("features", str, "value", "what each step carries",
                    choices=("value", "value+position"), tune=False),)
    defaults = {"epochs": 2, "hidden_size": 8, "batch_size": 8}

    def __init__(self, bug=None):
        self.bug = bug
        if bug == "typo in a core default":
            self.defaults = {**self.defaults, "epoch": 5}
        if bug == "primary metric not computed":
            self.primary_metric = "rmse"

    def prepare(self, dataset, context, params):
        splits = {"train": values(48, 1), "valid": values(12, 2), "test": values(12, 3)}
        if self.bug == "valid leaks into test":
            splits["test"] = np.concatenate([splits["test"][:7], splits["valid"][:5]])
        return SumData(splits, params["features"], self.bug)

    def generate(self, model, data, out_dir, options):
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "sums.txt"
        if self.bug != "promises a file":
            path.write_text("ok\n")
        return [path]

    def check_case(self):
        """Test sums 0.5, 1.5, 2.0 against the answer 1.0: MSE (0.25 + 0.25 + 1) / 3 = 0.5;
        batches of 2 and 1, so averaging batch averages gives (0.25 + 1) / 2 instead."""
        rows = np.zeros((3, LENGTH, 1))
        rows[0, :2, 0], rows[1, :3, 0], rows[2, :4, 0] = 0.25, 0.5, 0.5
        splits = {"train": values(6, 4), "valid": values(3, 5), "test": rows}
        return CheckCase(data=SumData(splits, bug=self.bug),
                         predict=lambda batch: torch.ones(len(batch.targets)),
                         expected={"mse": 0.5}, batch_size=2)
