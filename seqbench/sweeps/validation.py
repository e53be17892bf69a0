"""A configuration's validation value: one run per selection fold, through the run cache.

The search and the selection judge a configuration the same way: trained on each of the
selection folds (`--folds`, else what the task declares; 1 is the dataset's own split), the
best validation value of each fold, and their mean. Each fold is an ordinary run record
(`seqbench run --spec FOLD/config.json` replays it) with its own seed from the sweep's
SeedSequence (`seqbench.sweeps.seeds`), recorded in its config.json.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqbench import registry
from seqbench.sweeps import cache
from seqbench.sweeps.plan import SweepPlan
from seqbench.sweeps.prepared import PreparedData
from seqbench.sweeps.seeds import SeedTree


def fold_requests(plan: SweepPlan, cell: str, settings: Mapping[str, Any], folder: Path,
                  seeding: SeedTree, spawn: tuple[int, ...],
                  origin: Mapping[str, Any]) -> list[cache.Request]:
    """The runs that validate `settings`: one per fold, fold k seeded at `(*spawn, k)`."""
    folds = plan.selection_folds()
    requests = []
    for fold in range(folds):
        fold_settings = {**settings, "folds": folds, "fold": fold} if folds > 1 else settings
        requests.append(cache.Request(
            spec=plan.spec(cell, fold_settings, seeding.draw(*spawn, fold)),
            run_dir=folder / f"fold-{fold}" if folds > 1 else folder,
            max_seconds=plan.max_seconds,
            origin={**origin, "seed_origin": seeding.origin(*spawn, fold)}))
    return requests


def monitor(plan: SweepPlan) -> str:
    """The validation metric selection watches, as the run records name it."""
    return f"val_{registry.get_task(plan.task).selection(plan.dataset)[0]}"


def values(plan: SweepPlan, requests: list[cache.Request], data: PreparedData,
           pruning: Any = None) -> tuple[list[float] | None, dict[str, Any]]:
    """(best validation value per fold, fold 0's metrics), or (None, ...) when fold 0 was
    pruned or a fold never validated.

    Pruning watches fold 0 only, whose curves are comparable across trials; a pruned fold 0
    ends the evaluation.
    """
    found, first = [], {}
    for fold, request in enumerate(requests):
        metrics = cache.train(request, data, logger=plan.logger,
                              pruning=pruning if fold == 0 else None)
        first = first or metrics
        if pruning is not None and pruning.pruned_at is not None:
            return None, first
        found.append(metrics[f"best_{monitor(plan)}"])
    if any(value is None for value in found):
        return None, first
    return found, first
