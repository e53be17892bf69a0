"""Tasks that compose cells (`Task.composes_cells`, `TaskData.network`): the core hands the
task a cell factory, and the task's whole network trains, counts and validates like any
`encoder -> cell -> head` model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import seqbench as sb
from seqbench import registry
from seqbench.config import build_spec
from seqbench.contracts import Batch, Task, TaskData
from seqbench.declarations import task_problems
from seqbench.sweeps.budget import parameter_count

LENGTH = 6


class Bidirectional(nn.Module):
    """Two stacks of the run's cell, one reading the sequence backwards; a linear readout
    per step. The target of step t is the input of step t + 1, which only the backward
    stack has seen: a model that reads one way cannot learn it."""

    def __init__(self, cells, hidden_size):
        super().__init__()
        self.forwards, self.backwards = cells(1), cells(1)
        self.readout = nn.Linear(2 * hidden_size, 1)

    def forward(self, batch):
        ahead, _ = self.forwards(batch.inputs)
        behind, _ = self.backwards(batch.inputs.flip(1))
        return self.readout(torch.cat([ahead, behind.flip(1)], -1)).squeeze(-1)


class NextValueData(TaskData):
    input_size = 1

    def __init__(self, seed_of):
        rng = {split: np.random.default_rng(seed) for split, seed in seed_of.items()}
        self.splits = {split: torch.as_tensor(r.random((size, LENGTH, 1)), dtype=torch.float32)
                       for (split, r), size in zip(rng.items(), (256, 64, 64))}
        self.built = []

    def num_batches(self, split, batch_size):
        return -(-len(self.splits[split]) // batch_size)

    def batches(self, split, batch_size, seed=None):
        x = self.splits[split]
        order = (torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
                 if seed is not None else torch.arange(len(x)))
        for start in range(0, len(x), batch_size):
            rows = x[order[start:start + batch_size]]
            targets = torch.cat([rows[:, 1:, 0], torch.zeros(len(rows), 1)], 1)
            yield Batch(inputs=rows, targets=targets)

    def network(self, cells, hidden_size, params):
        model = Bidirectional(cells, hidden_size)
        self.built.append(model)
        return model

    def loss(self, outputs, batch):
        return (outputs - batch.targets).pow(2).mean()

    def statistics(self, outputs, batch):
        return {"sse": (outputs - batch.targets).pow(2).sum(),
                "count": torch.tensor(float(batch.targets.numel()))}

    def metrics(self, totals):
        return {"mse": totals["sse"] / totals["count"]}


class NextValue(Task):
    name = "next-value"
    summary = "predict each step's successor (needs a backward-reading stack)"
    datasets = {"generated": "uniform values"}
    default_dataset = "generated"
    primary_metric = "mse"
    direction = "minimize"
    composes_cells = True
    defaults = {"epochs": 40, "hidden_size": 16, "batch_size": 32, "lr": 0.01, "patience": 0}

    def prepare(self, dataset, context, params):
        self.data = NextValueData({"train": 1, "valid": 2, "test": 3})
        return self.data


@pytest.fixture
def task():
    plugin = NextValue()
    registry.register(plugin)
    yield plugin
    registry.discover.cache_clear()


def test_a_composed_network_gets_two_independent_stacks_of_the_run_s_cell(task):
    spec = build_spec(task, "gru", settings={"layers": 2})
    data = task.prepare("generated", None, {})
    from seqbench.model import SequenceModel

    model = SequenceModel(task, data, registry.get_cell("gru"), spec)
    network = data.built[-1]
    assert model.network is network
    assert isinstance(network.forwards, nn.GRU) and network.forwards.num_layers == 2
    assert network.forwards is not network.backwards
    assert not torch.equal(network.forwards.weight_hh_l0, network.backwards.weight_hh_l0)


def test_a_composed_network_trains_and_learns_what_only_two_directions_can(task, tmp_path):
    run = sb.run(task=task, cell="gru", output_dir=tmp_path, progress=False)
    # Predicting the mean of uniform values scores 1/12 = 0.083 (and the last step, whose
    # target is 0, is easy); reading backwards too brings the error far below it.
    assert run.metrics["test_mse"] < 0.02
    assert run.metrics["parameters"] == sum(p.numel() for p in run.model.parameters())


def test_the_parameter_budget_counts_the_whole_composed_network(task):
    data = task.prepare("generated", None, {})
    small = parameter_count(build_spec(task, "lstm", settings={"hidden_size": 4}), data)
    # Two LSTM stacks of width 4 reading one feature, and a readout of 2 x 4 + 1.
    per_stack = 4 * (4 * 1 + 4 * 4 + 2 * 4)
    assert small == 2 * per_stack + 2 * 4 + 1


def test_a_task_cannot_compose_cells_and_carry_state():
    class Both(NextValue):
        carry_state = True

    assert any("composes_cells and Task.carry_state" in p for p in task_problems(Both()))
