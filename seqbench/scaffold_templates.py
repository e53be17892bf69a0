"""The files `seqbench new cell|task NAME` writes, as `string.Template`s.

Placeholders: `$name` (the plugin name), `$package` (`seqbench_<name>`, the import name),
`$cls` (the name in CamelCase), `$seqbench` (the seqbench version it was made with) and
`$plugin_api` (the plugin contract version it targets).
Each template is a working plugin, not a skeleton: the scaffold test installs both and
runs the conformance kit and `seqbench run` on them, so they cannot rot.
"""

from __future__ import annotations

PYPROJECT = """\
[build-system]
requires = ["setuptools>=69", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "seqbench-$name"
version = "0.1.0"
description = "$description"
readme = "README.md"
requires-python = ">=3.10"
# Not torch: seqbench brings it, and users choose the torch build (CPU or CUDA) themselves.
dependencies = ["seqbench>=$seqbench"]

[project.optional-dependencies]
test = ["pytest>=8"]

# The whole plugin declaration; the entry-point name is the plugin's name.
[project.entry-points."seqbench.${group}s"]
$name = "$package.plugin:$group"

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

README = """\
# seqbench-$name

$description

```bash
pip install -e .                 # then `seqbench list` shows '$name' from seqbench-$name 0.1.0
python -m pytest                 # seqbench's conformance kit and this plugin's own tests
$run
```

Layout: `src/$package/plugin.py` declares the plugin and imports no torch (`seqbench list`
imports every plugin and must stay fast); the code that needs torch lives in
$torch_module and is imported inside the functions that use it. The contracts are in
seqbench's docs/plugins.md.
"""

CELL_PLUGIN = '''\
"""The $name cell's declaration. No torch here: `seqbench list` imports every plugin."""

from seqbench import Cell, Param


def build(input_size, hidden_size, num_layers, dropout, *, leak):
    """`Cell.build`: torch is imported here, when a model is built, not at import time."""
    from seqbench.step import from_step

    from $package.step import ${cls}Step

    return from_step(${cls}Step)(input_size, hidden_size, num_layers, dropout, leak=leak)


cell = Cell(
    name="$name",
    summary="$cls: a leaky Elman cell (template; put your cell's equation in step.py)",
    build=build,
    params=(Param("leak", float, 0.5, "share of the new state written each step",
                  low=0.01, high=1.0),),
    plugin_api="$plugin_api",  # the seqbench plugin contract this cell is written for
)
'''

CELL_STEP = '''\
"""One step of the $name cell: h_t = (1 - leak) h_{t-1} + leak tanh(W x_t + U h_{t-1} + b)."""

import torch
from torch import nn


class ${cls}Step(nn.Module):
    """The step protocol of seqbench.step.from_step: built as
    `${cls}Step(input_size, hidden_size, **params)`, with `initial_state` and `forward`."""

    def __init__(self, input_size, hidden_size, leak):
        super().__init__()
        self.hidden_size, self.leak = hidden_size, leak
        self.inp = nn.Linear(input_size, hidden_size)
        self.rec = nn.Linear(hidden_size, hidden_size, bias=False)

    def initial_state(self, batch_size, device, dtype):
        # Always on the given device and dtype: the kit checks both without a GPU.
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def forward(self, x_t, h):
        h = (1 - self.leak) * h + self.leak * torch.tanh(self.inp(x_t) + self.rec(h))
        return h, h
'''

CELL_TEST = '''\
"""The $name cell passes seqbench's conformance kit, computes its equation and trains."""

import torch

from seqbench.cli import main
from seqbench.testing import check_step_equation, parametrize_cell_checks
from $package.step import ${cls}Step


@parametrize_cell_checks("$name", learn=True)
def test_the_cell_conforms_to_the_seqbench_contract(check):
    check()


def test_the_step_computes_its_equation():
    def equation(step, x_t, h):
        candidate = torch.tanh(x_t @ step.inp.weight.T + step.inp.bias + h @ step.rec.weight.T)
        h = (1 - 0.3) * h + 0.3 * candidate
        return h, h

    check_step_equation(${cls}Step, equation, params={"leak": 0.3})


def test_seqbench_run_trains_the_cell(tmp_path):
    assert main(["run", "--cell", "$name", "--task", "forecasting", "--epochs", "1",
                 "--hidden-size", "8", "--quiet", "--output-dir", str(tmp_path)]) == 0
'''

TASK_PLUGIN = '''\
"""The $name task's declaration. No torch here: `seqbench list` imports every plugin.

The entry point names `$package.plugin:task`, so the instance `task` never hides a
submodule of the package (an `__init__` with `task = ...` would hide `$package.task`).
"""

from seqbench import Param, Task


class ${cls}Task(Task):
    name = "$name"
    summary = "$cls: the sum of a sequence of values (template; replace with your data)"
    datasets = {"generated": "values uniform in [0, 1], one fixed seed per split"}
    default_dataset = "generated"       # must work offline: the kit prepares it
    primary_metric = "mse"              # a key of TaskData.metrics(), reported as test_mse
    direction = "minimize"
    params = (Param("length", int, 20, "steps per sequence", low=1, high=100_000, tune=False),)
    defaults = {"epochs": 5, "hidden_size": 32, "batch_size": 32, "lr": 3e-3}
    plugin_api = "$plugin_api"          # the seqbench plugin contract this task is written for

    def prepare(self, dataset, context, params):
        from $package.data import ${cls}Data, generate

        return ${cls}Data(generate(params["length"]))

    def check_case(self):
        from $package.data import check_case

        return check_case()


task = ${cls}Task()
'''

TASK_DATA = '''\
"""The $name task's data, modules, loss and metrics (imported only when data is prepared)."""

import numpy as np
import torch
from torch import nn

from seqbench import Batch, CheckCase, IndexedData

#: One seed per split: every run and every cell sees exactly the same sequences.
SEEDS = {"train": 1, "valid": 2, "test": 3}
SIZES = {"train": 512, "valid": 128, "test": 128}


def generate(length, sizes=SIZES):
    """{split: values float32[count, length, 1]}; each sequence's target is its sum."""
    return {split: np.random.default_rng([SEEDS[split], length]).random(
        (count, length, 1), dtype=np.float32) for split, count in sizes.items()}


class LastStep(nn.Module):
    """`[B, T, H] -> [B]`: a linear read-out of the last step."""

    def __init__(self, hidden_size):
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)

    def forward(self, features):
        return self.linear(features[:, -1]).squeeze(-1)


class ${cls}Data(IndexedData):
    """Sequences as items: seqbench cuts (and shuffles) the batches and counts them."""

    input_size = 1

    def __init__(self, splits):
        self.splits = {split: torch.from_numpy(values) for split, values in splits.items()}

    def split_sizes(self):
        return {split: len(values) for split, values in self.splits.items()}

    def items(self, split):
        return len(self.splits[split])

    def collate(self, split, rows):
        inputs = self.splits[split][rows]
        return Batch(inputs=inputs, targets=inputs[..., 0].sum(1))

    def modules(self, hidden_size, params):
        # (encoder, head) in one call, so modules that share weights are wired in one place.
        return nn.Identity(), LastStep(hidden_size)

    def loss(self, outputs, batch):
        return nn.functional.mse_loss(outputs, batch.targets)

    def statistics(self, outputs, batch):
        # Sums, not means: the core adds them over a split, so the MSE is exact.
        return {"sse": (outputs - batch.targets).pow(2).sum(),
                "count": torch.tensor(float(len(outputs)))}

    def metrics(self, totals):
        return {"mse": totals["sse"] / totals["count"]}

    def baselines(self):
        """Always answering the mean training target."""
        mean = float(self.splits["train"].sum(1).mean())
        targets = self.splits["test"].sum(1)
        return {"predict the mean": {"mse": float((targets - mean).pow(2).mean())}}


def check_case():
    """Test sums 0.5, 1.5 and 2.0 against the answer 1.0: MSE (0.25 + 0.25 + 1) / 3 = 0.5.
    Batches of 2 then 1, so an average of batch averages ((0.25 + 1) / 2) would differ."""
    test = np.zeros((3, 4, 1), dtype=np.float32)
    test[0, :2, 0], test[1, :3, 0], test[2, :4, 0] = 0.25, 0.5, 0.5
    splits = {**generate(4, {"train": 6, "valid": 3}), "test": test}
    return CheckCase(data=${cls}Data(splits), predict=lambda batch: torch.ones(len(batch.targets)),
                     expected={"mse": 0.5}, batch_size=2)
'''

TASK_TEST = '''\
"""The $name task passes seqbench's conformance kit (check case, real data) and trains."""

from seqbench.cli import main
from seqbench.testing import parametrize_task_checks


@parametrize_task_checks("$name", learn=True)
def test_the_task_conforms_to_the_seqbench_contract(check):
    check()


def test_seqbench_run_trains_on_the_task(tmp_path):
    assert main(["run", "--task", "$name", "--cell", "gru", "--epochs", "1",
                 "--hidden-size", "8", "--quiet", "--output-dir", str(tmp_path)]) == 0
'''
