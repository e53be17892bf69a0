"""What a suite study was begun with, kept in its storage so every worker sweeps the same.

A suite runs for days, across sittings and machines, and each worker reads the suite file
and its installed cells on its own. Two workers that disagree would corrupt the comparison
without an error: a worker without the optional cells (`optional_cells`, installed
separately) would mark a dataset done with the three required cells alone, and a dataset
whose budget changed between sittings would be swept under two budgets, or skipped as done
under the old one. So the first worker records the cells and every dataset's budget on a
small study beside the claims (`STUDY.suite`, which reports never read), and each later
worker compares before it claims anything: a difference is one line naming it, and the way
on (the same file and cells, or a new `--study`).

Two workers that start at the very same moment on an empty storage both write the record;
whichever writes last wins, and the other finds the difference at its next check (before
each claim), before it has swept anything under the other budget.
"""

from __future__ import annotations

from typing import Any

from seqbench.benchsuite.spec import Suite
from seqbench.errors import SeqbenchError

#: The user attribute holding the record.
RECORD_ATTR = "suite"


def record_name(study: str) -> str:
    return f"{study}.suite"


def describe(suite: Suite, cells: tuple[str, ...]) -> dict[str, Any]:
    """What must be the same for every worker: the cells and each dataset's budget."""
    return {"cells": list(cells),
            "datasets": {item.name: {"trials": item.trials, "seeds": item.seeds,
                                     "repeats": item.repeats, "epochs": item.epochs,
                                     "max_time": item.max_time}
                         for item in suite.datasets}}


def differences(begun: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The ways `now` differs from what the study was `begun` with, in words."""
    found = []
    missing = [c for c in begun["cells"] if c not in now["cells"]]
    added = [c for c in now["cells"] if c not in begun["cells"]]
    if missing:
        found.append(f"this worker lacks cells {', '.join(missing)} (an optional cell's "
                     f"package not installed here?)")
    if added:
        found.append(f"this worker adds cells {', '.join(added)}")
    old, new = begun["datasets"], now["datasets"]
    found += [f"{name} was dropped from the suite file" for name in old if name not in new]
    found += [f"{name} was added to the suite file" for name in new if name not in old]
    for name in old.keys() & new.keys():
        found += [f"{name} {key} {old[name][key]} -> {new[name][key]}"
                  for key in old[name] if old[name][key] != new[name].get(key)]
    return found


def open_record(storage: Any, study: str) -> Any:
    """The study holding the record (opened once per worker: each opening of a study
    appends to a journal storage)."""
    import optuna

    return optuna.create_study(study_name=record_name(study), storage=storage,
                               load_if_exists=True)


def recorded_cells(storage: Any, study: str, names: set[str]) -> tuple[str, ...] | None:
    """The cells the suite study was begun with (None: no record yet), read without
    creating anything; `names` are the storage's study names."""
    import optuna

    if record_name(study) not in names:
        return None
    begun = optuna.load_study(study_name=record_name(study), storage=storage).user_attrs
    return tuple(begun[RECORD_ATTR]["cells"]) if RECORD_ATTR in begun else None


def check_or_write(holder: Any, study: str, suite: Suite, cells: tuple[str, ...]) -> None:
    """Write the record on a new suite study, or fail in one line where this worker's suite
    or cells differ from it (see the module docstring)."""
    now = describe(suite, cells)
    begun = holder.user_attrs.get(RECORD_ATTR)
    if begun is None:
        holder.set_user_attr(RECORD_ATTR, now)
        return
    found = differences(begun, now)
    if found:
        raise SeqbenchError(
            f"suite study '{study}' was begun with other cells or budgets than this worker "
            f"has: {'; '.join(sorted(found))}. Run it with the same suite file and cells, "
            f"or start a new study (--study NAME)")
