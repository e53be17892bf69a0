"""The planted-bug suite: every realistic plugin mistake is caught by the check named for it.

`tests/planted.py` holds a correct cell and a correct task; each case below plants one bug
and names the check that must report it. A bug counts as caught only if that check is
among the failures and the message says what the contract expected. The correct plugins
pass every check (first two tests), so the failures come from the bugs alone.
"""

from __future__ import annotations

import pytest

from seqbench import Param, registry
from seqbench.errors import SeqbenchError
from seqbench.testing import CheckFailed, check_cell, check_task
from planted import SumTask, planted_cell


def failures(run) -> dict[str, str]:
    """{check name: its cause} of a failing `check_cell` / `check_task` call."""
    with pytest.raises(CheckFailed) as failure:
        run()
    found = {}
    for line in str(failure.value).splitlines()[1:]:
        names, _, detail = line.strip().partition(": ")
        found.update({name: detail for name in names.split(", ")})
    return found


def test_the_unplanted_cell_passes_every_check_including_learning():
    results = {r.check: r.outcome for r in check_cell(planted_cell(), learn=True)}
    assert results.pop("check_cuda") in ("passed", "skipped")  # skipped without a GPU
    assert set(results.values()) == {"passed"}


def test_the_unplanted_task_passes_every_check_including_real_data_and_learning():
    results = {r.check: r.outcome for r in check_task(SumTask(), learn=True)}
    for name in ("check_targets_unseen", "check_parameter_budget"):  # composes no cells
        assert results.pop(name) == "skipped"
    assert set(results.values()) == {"passed"}


CELL_BUGS = [
    ("wrong output width", "check_output_shape", "output shape (3, 5, 16), got (3, 5, 8)"),
    ("returns every layer", "check_output_shape_stacked", "got (3, 5, 48)"),
    ("state is a dict", "check_state_shape", "a state made of tensors"),
    ("forgets state", "check_state_carry", "equal one call on all 9 steps"),
    ("unused parameter", "check_gradients", "non-finite for ['inner.layers.0.unused'"),
    ("mixes the batch", "check_batch_independence", "samples 0-1 to stay the same"),
    ("random output noise", "check_deterministic", "identical outputs from two builds"),
    ("weights outside the state_dict", "check_state_dict_roundtrip", "give the same outputs"),
    ("ignores a declared parameter", "check_params_respected", "scale=1.5 instead of 1.0"),
    ("initial_state ignores dtype", "check_dtype_follows_input",
     "ElmanStep.initial_state(batch_size, device, dtype=torch.float64) to return float64"),
    ("initial_state ignores device", "check_device_follows_input",
     "ElmanStep.initial_state(batch_size, device=meta, dtype) to return tensors on that "
     "device, got ['cpu']"),
    ("no recurrence", "check_learns", "'repeat the previous input' to fall below a quarter"),
]


@pytest.mark.parametrize(("bug", "check", "message"), CELL_BUGS, ids=[b for b, *_ in CELL_BUGS])
def test_each_planted_cell_bug_is_caught_by_its_check(bug, check, message):
    found = failures(lambda: check_cell(planted_cell(bug), learn=check == "check_learns"))
    assert check in found, found
    assert message in found[check]


def test_a_search_range_outside_the_bounds_is_caught_by_check_params_declared():
    wide = (Param("scale", float, 1.0, low=0.5, high=2.0, search=(0.1, 3.0)),)
    found = failures(lambda: check_cell(planted_cell(params=wide)))
    assert "search range (0.1, 3.0) leaves its valid range [0.5, 2.0]" in found[
        "check_params_declared"]


def test_a_step_without_initial_state_is_refused_once_with_the_protocol():
    from torch import nn

    from seqbench import Cell
    from seqbench.step import from_step

    class NoState(nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.linear = nn.Linear(input_size, hidden_size)

        def forward(self, x_t, h):
            return self.linear(x_t), h

    def make(input_size, hidden_size):  # a factory, so from_step cannot look before building
        return NoState(input_size, hidden_size)

    with pytest.raises(CheckFailed) as failure:
        check_cell(Cell("nostate", "no initial_state", from_step(make)))
    causes = str(failure.value).splitlines()[1:]
    assert len(causes) == 1, causes  # one root cause, listed with every check it broke
    assert "check_output_shape, check_output_shape_stacked, check_state_shape" in causes[0]
    assert "NoState breaks the step protocol: it has no initial_state method" in causes[0]
    with pytest.raises(TypeError, match="NoState breaks the step protocol: it does not "
                                        "define initial_state"):
        from_step(NoState)


TASK_BUGS = [
    ("averages batch averages", "check_metrics_case", "expected mse=0.5 on the task's check "
     "case, got mse=0.75"),
    ("valid leaks into test", "check_default_dataset",
     "no example (content hash of a batch row) in two splits on the default dataset "
     "'generated' (check_splits_disjoint), got 5 of the 24 valid and test examples"),
    ("hard-coded input_size", "check_choices", "encoder output [batch, time, input_size] = "
     "(8, 6, 1) on 'generated' with features='value+position' (check_input_size), got "
     "(8, 6, 2)"),
    ("miscounts batches", "check_splits_nonempty", "num_batches('train', 2) == 3"),
    ("ignores the shuffle seed", "check_batches", "the same training batches for the same "
     "shuffle seed"),
    ("float mask", "check_batches", "a bool mask of shape (2, 6)"),
    ("targets of another batch", "check_batches", "targets with the inputs' batch size 2"),
    ("typo in a core default", "check_declarations",
     "unknown core hyperparameter 'epoch'. Did you mean 'epochs'?"),
    ("primary metric not computed", "check_metrics_declared", "metric 'rmse' among metrics()"),
    ("loss per example", "check_loss_finite", "loss() to return a 0-d tensor"),
    ("encoder wider than input_size", "check_input_size", "(2, 6, 1), got (2, 6, 2)"),
    ("promises a file", "check_generate", "sums.txt' (missing)"),
    ("writes outside the run folder", "check_artifacts", "the files of artifacts() inside"),
    ("sigmoid on a regression output", "check_learns", "the training loss on 2 batches to "
     "halve"),
]


@pytest.mark.parametrize(("bug", "check", "message"), TASK_BUGS, ids=[b for b, *_ in TASK_BUGS])
def test_each_planted_task_bug_is_caught_by_its_check(bug, check, message):
    found = failures(lambda: check_task(SumTask(bug), learn=check == "check_learns"))
    assert check in found, found
    assert message in found[check]


def test_a_typo_in_the_defaults_is_reported_once_for_every_check_it_breaks():
    with pytest.raises(CheckFailed) as failure:
        check_task(SumTask("typo in a core default"))
    causes = str(failure.value).splitlines()[1:]
    assert len(causes) == 1 and str(failure.value).count("'epoch'") == 1, causes
    assert causes[0].strip().startswith("check_declarations, check_loss_finite")


def test_a_malformed_plugin_is_refused_in_one_line_when_it_loads(install_plugins):
    install_plugins("bad-plugins", {"seqbench.cells": {"wide": "bad_plugins:cell"},
                                    "seqbench.tasks": {"typo": "bad_plugins:task"}},
                    {"bad_plugins.py": """
                        from seqbench import Cell, Param, Task

                        cell = Cell("wide", "search range too wide", lambda *a, **k: None,
                                    params=(Param("a", float, 1.0, low=0, high=2,
                                                  search=(0.5, 4)),))

                        class Typo(Task):
                            name, summary = "typo", "a typo in its defaults"
                            datasets, default_dataset = {"x": "x"}, "x"
                            primary_metric, direction = "mse", "minimize"
                            defaults = {"lerning_rate": 0.1, "lr": 0.1}

                            def prepare(self, dataset, context, params):
                                raise AssertionError("never reached")

                        task = Typo()
                     """})
    with pytest.raises(SeqbenchError) as cell_error:
        registry.get_cell("wide")
    assert str(cell_error.value) == (
        "cell plugin 'wide' from bad-plugins 1.0 failed to load: malformed declaration: "
        "Cell.params: a's search range (0.5, 4) leaves its valid range [0, 2]")
    with pytest.raises(SeqbenchError, match="malformed declaration: Task.defaults: unknown "
                                            "core hyperparameter 'lerning_rate'"):
        registry.get_task("typo")


def test_real_data_that_is_not_here_is_a_stated_skip_and_nothing_is_downloaded():
    import os

    class Remote(SumTask):
        def prepare(self, dataset, context, params):
            assert os.environ.get("SEQBENCH_OFFLINE") == "1"  # downloads are off
            raise SeqbenchError(f"'corpus.txt' not found in {context.data_dir}")

    before = os.environ.get("SEQBENCH_OFFLINE")
    results = {r.check: (r.outcome, r.message) for r in check_task(Remote())}
    assert os.environ.get("SEQBENCH_OFFLINE") == before  # restored
    outcome, message = results["check_default_dataset"]
    assert outcome == "skipped" and "is not available offline here: 'corpus.txt' not found" \
        in message
    assert results["check_choices"][0] == "skipped"
