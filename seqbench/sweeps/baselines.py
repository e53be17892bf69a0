"""Add the baselines a recorded study lacks, computed on each final's own test split.

A run reports its task's baselines on exactly the test items it was scored on
(`TaskData.baselines`), and a report's table lists them from the finals' records. Studies
recorded before a task gained a baseline (forecasting's ETS, Theta and AutoARIMA, issue 46)
lack its row, and re-running a sweep for a number that does not depend on any cell would
spend hours to learn nothing. So this recomputes the baselines from each final's recorded
spec (its config.json), checks that those the record already holds come out the same on
the study's primary metric, the one its table compares (they would not if the data or the
split had changed since: then nothing is written; a secondary metric may have been
redefined, as forecasting's MAPE was for truths near zero), and adds the missing ones to the study's final records and to the run records'
metrics.json, so the journal and the run records keep agreeing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqbench import runs
from seqbench.config import RunSpec
from seqbench.errors import SeqbenchError
from seqbench.sweeps import record
from seqbench.sweeps.prepared import PreparedData
from seqbench.sweeps.storage import open_storage

#: How close a recomputed baseline must come to the recorded one: float32 sums, which the
#: task has since reordered (airline's naive MSE moved by 9e-8 relative). Another split or
#: other data moves them by far more.
AGREEMENT = 1e-6


def add_missing_baselines(storage: str, study: str,
                          data_dir: str | None = None) -> dict[str, list[str]]:
    """For every study under the sweep prefix `study` in `storage`: the baseline names
    added to its finals (studies with nothing to add are left out). Checks every final
    before writing any."""
    import optuna

    source = open_storage(storage)
    prepared = PreparedData(data_dir)
    updates: list[tuple[Any, record.Final, Path, dict[str, Any]]] = []
    added: dict[str, list[str]] = {}
    for summary in optuna.get_all_study_summaries(source, include_best_trial=False):
        if summary.study_name.split("/")[0] != study or not record.is_study_record(
                summary.user_attrs):
            continue
        found = record.read(summary.user_attrs)
        for final in found.finals:
            if runs.is_diverged(final.metrics):  # never tested: nothing to add to
                continue
            run_dir = Path(record.relocated(final.run_dir, found.output_dir, storage))
            spec = RunSpec.from_dict(runs.read_run_config(run_dir / runs.CONFIG)["spec"])
            recomputed = {name: {f"test_{key}": value for key, value in values.items()}
                          for name, values in prepared.get(spec).baselines().items()}
            recorded = dict(final.metrics.get("baselines", {}))
            check_agreement(recorded, recomputed, f"test_{found.primary_metric}", run_dir)
            missing = {name: values for name, values in recomputed.items()
                       if name not in recorded}
            if missing:
                updates.append((summary.study_name, final, run_dir, {**recorded, **missing}))
                added[summary.study_name] = sorted(missing)
    for name, final, run_dir, baselines in updates:
        metrics = {**final.metrics, "baselines": baselines}
        record.write_final(optuna.load_study(study_name=name, storage=source),
                           record.Final(final.seed, final.run_dir, final.trial, metrics,
                                        final.spec, final.host))
        on_disk = runs.read_json(run_dir / runs.METRICS)
        runs.write_json(run_dir / runs.METRICS, {**on_disk, "baselines": baselines})
    return added


def check_agreement(recorded: Mapping[str, Mapping[str, Any]],
                    recomputed: Mapping[str, Mapping[str, Any]], key: str,
                    run_dir: Path) -> None:
    """Every recorded baseline's `key` must come out again: otherwise the test split is not
    the one the cells were scored on, and a new row would compare other items."""
    for name, values in recorded.items():
        value, again = values.get(key), recomputed.get(name, {}).get(key)
        if again is None or value is None or not math.isclose(
                value, again, rel_tol=AGREEMENT, abs_tol=0.0):
            raise SeqbenchError(f"{run_dir}: baseline '{name}' {key} comes out {again} now "
                                f"against {value} recorded; the data or the split changed, "
                                "so nothing was added.")
