"""A conformance kit for plugin authors, like scikit-learn's `check_estimator`.

Run every check at once::

    from seqbench.testing import check_cell, check_task

    check_cell("mycell")        # a registered name, a seqbench.Cell, or a bare build function
    check_task("mytask")        # a registered name or a Task; data from Task.check_case()
    check_task(task, data=make_tiny_data, dataset="tiny")   # or your own tiny TaskData

Each raises `CheckFailed` (an `AssertionError`) listing every failed check as
"<check>: expected <what the contract says>, got <what happened>", and otherwise returns
the results (passed / skipped with a reason).

Or get one pytest test per check, with the check's name as the test id::

    from seqbench.testing import parametrize_cell_checks

    @parametrize_cell_checks("mycell")
    def test_mycell_conforms(check):
        check()

`cell_checks(...)` and `task_checks(...)` return the `Check` objects themselves (named
callables) for other test runners. `skip={"check_name": "reason"}` opts out of a check
knowingly; `learn=True` adds a short "can it learn" run; `check_task` also prepares the
task's real default dataset offline, with every option value, twice and watching the
global generators (`real_data=False` skips that). `check_step_equation(make_step, equation)` tests a step module against its
equation written out by hand. A root cause that breaks several checks is reported once.
The checks, and what each one promises, are listed in docs/plugins.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from seqbench.contracts import Task
from seqbench.testing.cell_probe import CellLike
from seqbench.testing.cells import cell_checks, cell_label
from seqbench.testing.kit import Check, CheckFailed, CheckSkipped, Result, parametrize, run_all
from seqbench.testing.steps import check_step_equation
from seqbench.testing.task_subject import TaskDataLike
from seqbench.testing.tasks import task_checks, task_label

__all__ = [
    "Check",
    "CheckFailed",
    "CheckSkipped",
    "Result",
    "cell_checks",
    "check_cell",
    "check_step_equation",
    "check_task",
    "parametrize_cell_checks",
    "parametrize_task_checks",
    "task_checks",
]



def check_cell(cell: CellLike, *, skip: Mapping[str, str] | None = None,
               learn: bool = False) -> list[Result]:
    """Run every cell check; raise `CheckFailed` naming each failure, else return the results.

    `learn=True` adds `check_learns`, a short training run (about a second for a GRU).
    """
    return run_all(cell_checks(cell, skip, learn), f"cell '{cell_label(cell)}'")


def check_task(task: str | Task, data: TaskDataLike = None, *, dataset: str | None = None,
               data_dir: str | Path | None = None, params: Mapping[str, Any] | None = None,
               skip: Mapping[str, str] | None = None, real_data: bool = True,
               learn: bool = False, max_overlap: float = 0.0) -> list[Result]:
    """Run every task check; raise `CheckFailed` naming each failure, else return the results.

    The data probed is `data` (a `TaskData` or a function making one) if given, else
    `task.prepare(dataset, ...)` from `data_dir` if a dataset is named, else the task's
    `check_case()` data, else its default dataset. `params` sets task hyperparameters.
    With `real_data` (the default) the default dataset is also prepared, offline, and
    checked: as it is, with every value of every option, twice (repeatable) and for what it
    does to the global generators (skipped, saying why, when the files are not here); `learn=True` adds `check_learns`. `max_overlap` is the share of valid
    and test examples allowed to repeat content of an earlier split, for corpora known to
    repeat themselves (0 by default: any shared example fails).
    """
    checks = task_checks(task, data, dataset=dataset, data_dir=data_dir, params=params,
                         skip=skip, real_data=real_data, learn=learn, max_overlap=max_overlap)
    return run_all(checks, f"task '{task_label(task)}'")


def parametrize_cell_checks(*cells: CellLike, skip: Mapping[str, str] | None = None,
                            learn: bool = False):
    """`pytest.mark.parametrize("check", ...)`: one test per check and cell."""
    return parametrize({cell_label(cell): cell_checks(cell, skip, learn) for cell in cells})


def parametrize_task_checks(*tasks: str | Task, data: TaskDataLike = None,
                            dataset: str | None = None, data_dir: str | Path | None = None,
                            params: Mapping[str, Any] | None = None,
                            skip: Mapping[str, str] | None = None, real_data: bool = True,
                            learn: bool = False, max_overlap: float = 0.0):
    """`pytest.mark.parametrize("check", ...)`: one test per check and task.

    Nothing is loaded until a test runs; each task's data is then prepared once.
    """
    return parametrize({
        task_label(task): task_checks(task, data, dataset=dataset, data_dir=data_dir,
                                      params=params, skip=skip, real_data=real_data,
                                      learn=learn, max_overlap=max_overlap)
        for task in tasks
    })
