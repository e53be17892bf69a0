"""The conformance kit: seqbench's own plugins pass it; broken plugins fail it, clearly.

Tasks are checked when they supply `Task.check_case()` (a tiny in-memory instance with
known metrics), so every registered task that adds the hook is covered automatically.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from seqbench import Param, Task, registry
from seqbench.testing import (
    CheckFailed,
    cell_checks,
    check_cell,
    check_task,
    parametrize_cell_checks,
    parametrize_task_checks,
)

BUILT_IN_CELLS = ("lstm", "gru", "rnn")


def tasks_with_a_check_case() -> list[str]:
    return sorted(name for name, entry in registry.discover("task").items()
                  if entry.plugin is not None
                  and type(entry.plugin).check_case is not Task.check_case)


@parametrize_cell_checks(*BUILT_IN_CELLS)
def test_built_in_cells_conform(check):
    check()


@parametrize_task_checks(*tasks_with_a_check_case())
def test_tasks_with_a_check_case_conform(check):
    check()


def test_every_built_in_task_supplies_a_check_case():
    assert {"music", "lm", "speech", "forecasting"} <= set(tasks_with_a_check_case())


# ---- broken cells: each fails exactly the check that covers its bug ----

def gru(input_size, hidden_size, num_layers, dropout):
    return nn.GRU(input_size, hidden_size, num_layers=num_layers, dropout=dropout,
                  batch_first=True)


def half_width(input_size, hidden_size, num_layers, dropout):
    return gru(input_size, hidden_size // 2, num_layers, dropout)


class Wrapped(nn.Module):
    """A GRU with one deliberate bug, chosen by `bug`."""

    def __init__(self, input_size, hidden_size, num_layers, dropout, bug, scale=1.0):
        super().__init__()
        self.inner = gru(input_size, hidden_size, num_layers, dropout)
        self.bug = bug
        self.unused = nn.Parameter(torch.zeros(3))

    def forward(self, x, state=None):
        if self.bug == "forgets state":
            state = None
        y, state = self.inner(x, state)
        if self.bug == "mixes the batch":
            y = y - y.mean(0, keepdim=True)
        if self.bug != "unused parameter":
            y = y * (1 + self.unused.sum())
        return y, state


def buggy(bug):
    def build(input_size, hidden_size, num_layers, dropout, **extra):
        return Wrapped(input_size, hidden_size, num_layers, dropout, bug, **extra)

    build.__name__ = bug.replace(" ", "_")
    return build


def test_a_cell_with_the_wrong_output_width_fails_naming_the_check_and_both_shapes():
    with pytest.raises(CheckFailed) as failure:
        check_cell(half_width)
    assert "check_output_shape: expected output shape (3, 5, 16), got (3, 5, 8)" in str(
        failure.value)


def test_an_installed_broken_cell_fails_the_kit_by_name(install_plugins):
    install_plugins("narrow-cells", {"seqbench.cells": {"narrow": "narrow_cell:cell"}},
                    {"narrow_cell.py": """
                        from torch import nn
                        from seqbench import Cell

                        def build(input_size, hidden_size, num_layers, dropout):
                            return nn.LSTM(input_size, 8, num_layers=num_layers, batch_first=True)

                        cell = Cell("narrow", "always 8 units", build)
                     """})
    (check,) = [c for c in cell_checks("narrow") if c.name == "check_output_shape"]
    with pytest.raises(CheckFailed, match=r"check_output_shape: expected output shape "
                                          r"\(3, 5, 16\), got \(3, 5, 8\)"):
        check()


@pytest.mark.parametrize(("bug", "failing", "message"), [
    ("forgets state", "check_state_carry", "equal one call on all 9 steps, got a max difference"),
    ("mixes the batch", "check_batch_independence", "samples 0-1 to stay the same"),
    ("unused parameter", "check_gradients", "non-finite for ['unused']"),
])
def test_each_cell_bug_fails_the_check_that_covers_it(bug, failing, message):
    with pytest.raises(CheckFailed) as failure:
        check_cell(buggy(bug))
    lines = str(failure.value).splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [failing]
    assert message in str(failure.value)


def test_a_declared_hyperparameter_the_cell_ignores_fails():
    from seqbench import Cell

    ignored = Cell("ignores", "scale is ignored", buggy("none"),
                   params=(Param("scale", float, 1.0, low=0.5, high=2.0),))
    with pytest.raises(CheckFailed, match="check_params_respected: expected building with "
                                          "scale=1.5 instead of 1.0 to change the module"):
        check_cell(ignored)


def test_skipping_a_check_is_explicit_and_reported():
    results = check_cell(buggy("forgets state"),
                         skip={"check_state_carry": "stateless by design"})
    outcomes = {r.check: (r.outcome, r.message) for r in results}
    assert outcomes["check_state_carry"] == ("skipped", "stateless by design")
    with pytest.raises(ValueError, match="unknown check"):
        check_cell("gru", skip={"check_nonsense": ""})


# ---- broken tasks, built on the music task's check case ----

def music_case():
    return registry.get_task("music").check_case()


class Mutant(type(registry.get_task("music"))):
    """The music task with one bug in its check-case data, chosen by `bug`."""

    name = "mutant"

    def __init__(self, bug):
        self.bug = bug

    def check_case(self):
        case = music_case()
        data = case.data
        if self.bug == "averages batch averages":
            statistics = data.statistics
            data.statistics = lambda outputs, batch: {
                **statistics(outputs, batch), "frames": torch.tensor(1.0)}
        if self.bug == "test copies train":
            data._tensors["test"] = data._tensors["train"][:2]
            data._tensors["train"] = data._tensors["train"] + data._tensors["test"]
        if self.bug == "miscounts batches":
            data.num_batches = lambda split, batch_size: 1
        return case

    def generate(self, model, data, out_dir, options):
        return [out_dir / "promised.mid"] if self.bug == "promises a file" else super().generate(
            model, data, out_dir, options)


@pytest.mark.parametrize(("bug", "failing", "message"), [
    ("averages batch averages", "check_metrics_case",
     f"expected nll={88 * math.log1p(math.exp(-20)) + 40 / 3:.6g} on the task's check case, "
     "got nll="),
    ("test copies train", "check_splits_disjoint", "test batch 0 row 0 is also in train"),
    ("miscounts batches", "check_splits_nonempty", "expected num_batches('train', 2) == 3"),
    ("promises a file", "check_generate", "promised.mid' (missing)"),
])
def test_each_task_bug_fails_the_check_that_covers_it(bug, failing, message):
    with pytest.raises(CheckFailed) as failure:
        check_task(Mutant(bug))
    lines = str(failure.value).splitlines()[1:]
    assert failing in [line.split(":")[0].strip() for line in lines]
    assert message in str(failure.value)
