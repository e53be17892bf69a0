"""A sweep's studies: checked against what the storage already holds, then opened.

One Optuna study per cell and repeat (`STUDY/TASK/DATASET/CELL`, `.../repeat-R` after the
first) holds the search's trials and, in its record (`seqbench.sweeps.record`), everything
the later stages decide. Before anything is written, `check` refuses a sweep whose options
differ from what its studies, or its sibling cells' studies, were made under: resuming under
other options would mix two protocols in one table under one recorded command. Then `open`
creates each study once, records it, and enqueues the task's defaults as the first trial
(before any worker starts, so parallel workers never enqueue them twice).

A cell added later (a staged `--cells rnn` after `--cells lstm,gru`, or beside published
studies copied into a fresh journal) inherits from its siblings what they were tuned and
seeded under (`inherited`), so the comparison stays like for like even across versions.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from seqbench import registry
from seqbench.errors import SeqbenchError
from seqbench.sweeps import record, seeds
from seqbench.sweeps.plan import SweepPlan
from seqbench.sweeps.storage import open_storage

#: What a study's trials and finals were made under, beside its settings and folds: resuming
#: it under other values would mix two protocols in one study and report the mixture under
#: the recorded command. (`--trials` and `--repeats` may grow and `--refit` toggle:
#: `changes_the_result`; `--jobs`, `--device`, folders and logger change how it runs, not
#: what it measures.)
PROTOCOL = ("max_seconds", "param_budget", "pruner", "top", "seed", "seeds")


def check(plan: SweepPlan) -> None:
    """Before anything is written: every study under this sweep's `--study`, task and dataset
    (the cells' own, and siblings a report will compare them with) must have been made under
    `plan`'s protocol. Read from the summaries, since opening a study appends to a journal.
    The one place a torn journal is cut (`repair`)."""
    for name, attrs in sibling_records(plan, open_storage(plan.storage, repair=True)):
        differ = protocol_differences(plan, record.parse_name(name)[0], attrs)
        if differ:
            raise SeqbenchError(
                f"study '{name}' was run with other options: {'; '.join(differ)}. Run this "
                f"sweep with its options (its command: {attrs.get('command')}; in Python the "
                "same names as keywords), or give it a new --study.")
    seeding = inherited(plan, open_storage(plan.storage))["seeding"]
    if plan.repeats > 1 and seeding["scheme"] == seeds.OFFSETS:
        raise SeqbenchError(f"the studies of '{plan.study}' predate --repeats (their seeds "
                            "are offsets of --seed); repeat the search under a new --study.")


def sibling_records(plan: SweepPlan, storage: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """(name, user attributes) of every recorded study of this sweep's task and dataset."""
    import optuna

    prefix = plan.study_name("").rstrip("/") + "/"
    return [(summary.study_name, summary.user_attrs)
            for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)
            if summary.study_name.startswith(prefix)
            and record.is_study_record(summary.user_attrs)]


def protocol_differences(plan: SweepPlan, cell: str, attrs: Mapping[str, Any]) -> list[str]:
    """How `plan` differs from the protocol a cell's study recorded (older studies record
    less, and what they lack is not compared)."""
    recorded = record.read(attrs)
    now = plan.as_dict()
    differ = [f"{key}={recorded.plan[key]!r} (now {now[key]!r})" for key in PROTOCOL
              if key in recorded.plan and recorded.plan[key] != now[key]]
    if recorded.protocol is not None:  # as used: the resolved counts, not the options
        for key, value in (("folds", plan.selection_folds()),
                           ("rerun_seeds", plan.rerun_count())):
            if getattr(recorded.protocol, key) != value:
                differ.append(f"{key}={getattr(recorded.protocol, key)} (now {value})")
    if "settings" in recorded.plan and not same_settings(plan, cell, recorded.plan["settings"]):
        differ.append(f"settings {dict(recorded.plan['settings'])} (now {dict(plan.settings)})")
    return differ


def same_settings(plan: SweepPlan, cell: str, recorded: Mapping[str, Any]) -> bool:
    """Whether recorded `--set` values mean what `plan`'s do for `cell`, compared as resolved
    values: `lr=1e-3` is `lr=0.001`, and the Python API's `True` is the command line's `true`."""
    if dict(recorded) == dict(plan.settings):
        return True
    try:
        return plan.spec(cell, recorded).settings() == plan.spec(cell).settings()
    except SeqbenchError:  # no longer valid (an uninstalled cell's option): they differ
        return False


def changes_the_result(recorded: Mapping[str, Any], plan: SweepPlan) -> bool:
    """Whether resuming a study under `plan` changes what its recorded command produces:
    `--refit` toggled, or the search extended to a larger `--trials` budget or more
    `--repeats` (the earlier trials are kept, so the extended study is what the new
    command rebuilds). A smaller budget adds no trial, so the recorded command stays."""
    return (recorded.get("refit", False) != plan.refit
            or recorded.get("trials", plan.trials) < plan.trials
            or recorded.get("repeats", 1) < plan.repeats)


def inherited(plan: SweepPlan, storage: Any) -> dict[str, Any]:
    """What a new study of this sweep is tuned and seeded under: as its siblings were.

    Siblings made before a rule existed lack its key and followed the old rule (version 1
    records, migrated by `seqbench.sweeps.record`): pruning on each epoch's own value, the
    one-standard-error rule from two pairs, seeds by offsets. A sweep with no siblings uses
    today's rules; siblings that disagree (journals merged by hand) are refused.
    """
    rules = {}
    for _, attrs in sibling_records(plan, storage):
        recorded = record.read(attrs)
        if recorded.protocol is None or recorded.seeding is None:
            continue
        rule = (recorded.protocol.pruning_sees_best_so_far, recorded.protocol.min_pairs,
                recorded.seeding.scheme)
        rules[rule] = recorded
    if len(rules) > 1:
        raise SeqbenchError(f"the cells of sweep '{plan.study}' in {plan.storage} disagree on "
                            "what pruning compares, how selection decides or how seeds are "
                            "drawn; start a new --study")
    if not rules:
        return {"pruning_sees_best_so_far": True, "min_pairs": record.MIN_PAIRS,
                "seeding": seeds.SeedTree(plan.seed).recorded()}
    (pruning, min_pairs, scheme), = rules
    return {"pruning_sees_best_so_far": pruning, "min_pairs": min_pairs,
            "seeding": {"scheme": scheme, "entropy": plan.seed}}


def open_study(plan: SweepPlan, cell: str, repeat: int = 0) -> Any:
    """The cell's study for `repeat`, with a sampler seeded by how far the study got (so a
    resumed search draws what the uninterrupted one would have)."""
    import optuna

    from seqbench.sweeps.pruning import make_pruner

    study = optuna.create_study(
        study_name=plan.study_name(cell, repeat), storage=open_storage(plan.storage),
        direction=registry.get_task(plan.task).selection(plan.dataset)[1],
        load_if_exists=True, pruner=make_pruner(plan))
    seeding = record.read(study.user_attrs).seeding if record.is_study_record(
        study.user_attrs) else None
    progress = len(study.get_trials(deepcopy=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.sampler = optuna.samplers.TPESampler(
            seed=None if seeding is None else seeding.draw(seeds.SAMPLER, repeat, progress),
            n_startup_trials=plan.startup_trials(), multivariate=True, group=True,
            constant_liar=plan.jobs > 1)
    return study


def create(plan: SweepPlan, cell: str, repeat: int = 0) -> Any:
    """Open the study, recording it first if it is new (or its plan, where the new options
    change its result); enqueue the task's defaults as its first trial."""
    task = registry.get_task(plan.task)
    study = open_study(plan, cell, repeat)
    if not record.is_study_record(study.user_attrs):
        rules = inherited(plan, open_storage(plan.storage))
        record.describe(study, record.StudyRecord(
            version=record.VERSION, task=plan.task, dataset=plan.dataset, cell=cell,
            repeat=repeat, primary_metric=task.primary(plan.dataset), direction=task.direction,
            selection_metric=task.selection(plan.dataset)[0],
            selection_direction=task.selection(plan.dataset)[1], command=plan.command(),
            plan=plan.as_dict(), plugins=registry.provenance(cell, plan.task),
            protocol=record.Protocol(
                folds=plan.selection_folds(), top=plan.top, rerun_seeds=plan.rerun_count(),
                startup_trials=plan.startup_trials(),
                pruning_sees_best_so_far=rules["pruning_sees_best_so_far"],
                min_pairs=rules["min_pairs"], threads=plan.threads),
            seeding=seeds.from_record(rules["seeding"]),
            seeds={"final": seeds.from_record(rules["seeding"]).finals(plan.seeds)},
            selection=None, refit_epochs=None, finals=()))
    elif changes_the_result(study.user_attrs.get("plan", {}), plan):
        # Resumed with or without --refit, or with a larger budget: the finals change, so
        # must the recorded command that reports print to regenerate them.
        record.write_plan(study, plan.as_dict(), plan.command())
    if not study.get_trials(deepcopy=False):
        from seqbench.sweeps import space

        point = space.default_point(plan.cell_space(cell), plan.spec(cell).settings())
        study.enqueue_trial(point, user_attrs={record.DEFAULTS: True})
    return open_study(plan, cell, repeat)
