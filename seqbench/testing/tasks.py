"""Conformance checks for task plugins: what a `Task` and its `TaskData` promise the core.

The checks live in modules by what they are about: `task_data` (splits, batches,
shuffles, targets and classes), `task_model` (loss, statistics, metrics, item scores and
files, probed with a random model), `task_prepare` (the real default dataset and every
option, prepared offline), `composing` (how a task that composes cells uses them);
`task_subject` holds what they share. This module lists them
in the order they run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from seqbench.contracts import Task
from seqbench.testing.composing import COMPOSING_CHECKS
from seqbench.testing.kit import Check, with_skips
from seqbench.testing.task_data import (
    check_batches,
    check_declarations,
    check_input_size,
    check_label_sets,
    check_shuffle_follows_seed,
    check_splits_disjoint,
    check_splits_nonempty,
    check_targets_follow_inputs,
)
from seqbench.testing.task_model import (
    check_artifacts,
    check_generate,
    check_item_scores,
    check_learns,
    check_loss_finite,
    check_metric_directions,
    check_metrics_case,
    check_metrics_declared,
    check_padding_ignored,
)
from seqbench.testing.task_prepare import (
    check_choices,
    check_default_dataset,
    check_options_matter,
    check_prepare_repeatable,
    check_rng_untouched,
)
from seqbench.testing.task_subject import TaskDataLike, TaskSubject, task_label

__all__ = ["REAL_DATA_CHECKS", "TASK_CHECKS", "task_checks", "task_label"]

TASK_CHECKS: tuple[Callable[[TaskSubject], None], ...] = (
    check_declarations,
    check_splits_nonempty,
    check_batches,
    check_shuffle_follows_seed,
    check_splits_disjoint,
    check_targets_follow_inputs,
    check_input_size,
    check_loss_finite,
    check_padding_ignored,
    *COMPOSING_CHECKS,
    check_metrics_declared,
    check_metrics_case,
    check_metric_directions,
    check_item_scores,
    check_generate,
    check_artifacts,
    check_default_dataset,
    check_choices,
    check_prepare_repeatable,
    check_rng_untouched,
    check_options_matter,
    check_label_sets,
    check_learns,
)

#: The checks that prepare the task's real datasets (`real_data=False` skips them).
REAL_DATA_CHECKS = (check_default_dataset, check_choices, check_prepare_repeatable,
                    check_rng_untouched, check_options_matter, check_label_sets)


def task_checks(task: str | Task, data: TaskDataLike = None, *,
                dataset: str | None = None, data_dir: str | Path | None = None,
                params: Mapping[str, Any] | None = None,
                skip: Mapping[str, str] | None = None, real_data: bool = True,
                learn: bool = False, max_overlap: float = 0.0) -> list[Check]:
    """The checks for `task`, sharing one lazily prepared subject. `real_data=False` skips
    the checks that prepare real datasets; `learn=True` runs `check_learns`;
    `max_overlap` is the share of valid and test examples allowed to repeat an earlier
    split's content (0: none)."""
    subject = TaskSubject(task, data, dataset, data_dir, params, max_overlap)

    def bind(check: Callable[[TaskSubject], None]) -> Check:
        return Check(check.__name__, lambda: check(subject))

    off = {} if real_data else {check.__name__: "real_data=False" for check in REAL_DATA_CHECKS}
    if not learn:
        off["check_learns"] = "optional: pass learn=True to run it"
    return with_skips([bind(check) for check in TASK_CHECKS], skip, off)
