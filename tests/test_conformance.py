"""The conformance kit: seqbench's own plugins pass it; broken plugins fail it, clearly.

Tasks are checked when they supply `Task.check_case()` (a tiny in-memory instance with
known metrics), so every registered task that adds the hook is covered automatically.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqbench import Task, registry
from seqbench.testing import (
    CheckFailed,
    cell_checks,
    check_cell,
    check_step_equation,
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


#: Shares of valid/test examples that repeat an earlier split in the real default data:
#: PTB repeats 40 of its 7,810 valid and test windows of 8 x 20 tokens (newswire
#: boilerplate); music21's Bach chorales hold one test harmonisation twice, once in train.
KNOWN_OVERLAP = {"lm": 0.01, "music": 0.02}
#: Parsing the chorales takes about 30 s, the asr checks prepare fsdd-connected (MFCCs of
#: 3,000 recordings) once per task option, about 3.5 minutes, and translation trains its
#: BPE tokenizers on Multi30k (35 s; tests/test_translation_task.py keeps a small real
#: run in the default set): slow tests.
SLOW_REAL_DATA = {"music", "asr", "translation"}


@parametrize_task_checks(*tasks_with_a_check_case(), real_data=False)
def test_tasks_with_a_check_case_conform(check):
    check()


@pytest.mark.parametrize("task", sorted(set(tasks_with_a_check_case()) - SLOW_REAL_DATA))
def test_tasks_conform_on_their_real_default_data_and_choices(task):
    results = check_task(task, max_overlap=KNOWN_OVERLAP.get(task, 0.0))
    assert {r.check: r.outcome for r in results}["check_default_dataset"] in ("passed",
                                                                              "skipped")


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(SLOW_REAL_DATA))
def test_slow_tasks_conform_on_their_real_default_data(task):
    check_task(task, max_overlap=KNOWN_OVERLAP.get(task, 0.0))


def test_every_built_in_task_supplies_a_check_case():
    assert {"music", "lm", "speech", "forecasting", "translation", "asr"} <= set(
        tasks_with_a_check_case())


# ---- broken cells (the full planted-bug suite is tests/test_planted_bugs.py) ----

def half_width(input_size, hidden_size, num_layers, dropout):
    return nn.GRU(input_size, hidden_size // 2, num_layers=num_layers, dropout=dropout,
                  batch_first=True)


def forgets_state(input_size, hidden_size, num_layers, dropout):
    gru = nn.GRU(input_size, hidden_size, num_layers=num_layers, dropout=dropout,
                 batch_first=True)
    return ForgetsState(gru)


class ForgetsState(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x, state=None):
        return self.inner(x)


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


def test_skipping_a_check_is_explicit_and_reported():
    results = check_cell(forgets_state, skip={"check_state_carry": "stateless by design"})
    outcomes = {r.check: (r.outcome, r.message) for r in results}
    assert outcomes["check_state_carry"] == ("skipped", "stateless by design")
    assert outcomes["check_learns"] == ("skipped", "optional: pass learn=True to run it")
    with pytest.raises(ValueError, match="unknown check"):
        check_cell("gru", skip={"check_nonsense": ""})


def returns_none(input_size, hidden_size, num_layers, dropout):
    return None


class StateNone(nn.Module):
    """Returns outputs of the right shape but no state at all."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x, state=None):
        return self.inner(x)[0], None


def state_none(input_size, hidden_size, num_layers, dropout):
    return StateNone(nn.GRU(input_size, hidden_size, num_layers=num_layers, batch_first=True))


def test_a_build_that_returns_no_module_is_one_root_cause_naming_what_came():
    with pytest.raises(CheckFailed) as failure:
        check_cell(returns_none)
    header, *causes = str(failure.value).splitlines()
    assert len(causes) == 1, causes  # one cause, not each check's own AttributeError
    assert causes[0].endswith("expected build(input_size, hidden_size, num_layers, dropout, "
                              "**params) to return a torch.nn.Module, got NoneType")
    assert "check_output_shape" in causes[0] and "check_dtype_follows_input" in causes[0]


def test_a_state_of_none_is_named_by_the_dtype_check():
    (check,) = [c for c in cell_checks(state_none) if c.name == "check_dtype_follows_input"]
    with pytest.raises(CheckFailed, match=r"^check_dtype_follows_input: expected a float64 "
                                          r"state from a float64 module and input, got None, "
                                          r"not a tensor or tuple of tensors$"):
        check()


def test_skip_given_as_a_list_of_names_is_refused_saying_it_needs_reasons():
    with pytest.raises(TypeError, match=r"skip must map each check's name to the reason for "
                                        r"skipping it, e\.g\. skip=\{.*\}; got a list"):
        check_cell("gru", skip=["check_gradients"])


# ---- check_step_equation on broken steps and equations ----

class Elman(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.inp = nn.Linear(input_size, hidden_size)

    def initial_state(self, batch_size, device, dtype):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def forward(self, x_t, h):
        h = torch.tanh(self.inp(x_t) + h)
        return h, h


class NarrowElman(Elman):
    def forward(self, x_t, h):
        h, _ = super().forward(x_t, h)
        return h[:, :-1], h


class BareElman(Elman):
    def forward(self, x_t, h):
        return super().forward(x_t, h)[0]


class NoInitialElman(Elman):
    def initial_state(self, batch_size, device, dtype):
        return None


def elman(step, x_t, h):
    h = torch.tanh(x_t @ step.inp.weight.T + step.inp.bias + h)
    return h, h


def bare_elman(step, x_t, h):
    return elman(step, x_t, h)[0]


def elman_first_two_rows(step, x_t, h):
    """Right for a batch of 2 (what the protocol validation runs), wrong beyond it."""
    h, _ = elman(step, x_t, h)
    return h, h[:2]


def test_check_step_equation_passes_a_step_that_computes_its_equation():
    check_step_equation(Elman, elman)


def test_check_step_equation_names_both_shapes_of_a_step_of_the_wrong_width():
    with pytest.raises(CheckFailed, match=r"step module NarrowElman breaks the step protocol: "
                                          r".* returned h_t \(2, 5\) and state \(2, 6\), "
                                          r"expected h_t \(2, 6\) and state \(2, 6\)"):
        check_step_equation(NarrowElman, elman)


def test_check_step_equation_compares_shapes_before_values():
    with pytest.raises(CheckFailed, match=r"expected state of the reference equation's shapes "
                                          r"at every step, got \(3, 6\) from the step and "
                                          r"\(2, 6\) from the equation at step 0$"):
        check_step_equation(Elman, elman_first_two_rows)


@pytest.mark.parametrize(("make_step", "equation", "culprit"), [
    (BareElman, elman, "step module BareElman"),
    (Elman, bare_elman, r"the reference equation bare_elman\(step, x_t, state\)"),
], ids=["step", "equation"])
def test_check_step_equation_names_the_side_that_returned_no_pair(make_step, equation, culprit):
    with pytest.raises(CheckFailed, match=culprit + r" breaks the step protocol: forward "
                                                    r"returned \(2, 6\), not a pair "
                                                    r"\(h_t, state\)"):
        check_step_equation(make_step, equation)


def test_check_step_equation_names_an_initial_state_of_none():
    with pytest.raises(CheckFailed, match=r"step module NoInitialElman breaks the step "
                                          r"protocol: initial_state\(batch_size=2, \.\.\.\) "
                                          r"returned NoneType"):
        check_step_equation(NoInitialElman, elman)
