"""Expected best validation value against the number of trials (Dodge et al. 2019).

A cell that wins with 50 trials may lose with 10; the curve shows whether the ranking
depends on the budget. Each point is the expected best of n trials drawn without
replacement from the N the search ran: the average best over all n-subsets, the unbiased
estimator of Tang et al. (2020). Dodge et al.'s original draws with replacement, counts a
trial twice and so understates the best. The trials of a TPE search are not independent
draws, so a point reads as "the best of n trials picked at random from those this search
produced".
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from seqbench.reports.collect import CellSummary


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def expected_best(values: Sequence[float], direction: str) -> list[float]:
    """E[best of n drawn without replacement from `values`] for n = 1..N.

    With the values sorted from worst to best, v(i) is the best of a random n-subset with
    probability C(i-1, n-1) / C(N, n); the binomials go through log-gamma so that N in the
    hundreds does not overflow.
    """
    ordered = sorted(values, reverse=direction == "minimize")  # worst first
    total = len(ordered)
    curve = []
    for n in range(1, total + 1):
        log_subsets = _log_choose(total, n)
        curve.append(sum(value * math.exp(_log_choose(i - 1, n - 1) - log_subsets)
                         for i, value in enumerate(ordered, start=1) if i >= n))
    return curve


def curves(cells: list[CellSummary]) -> dict[str, list[float]]:
    """Each cell's curve over its own trials (completed, and pruned at their best value)."""
    return {cell.cell: expected_best(cell.trial_values(), cell.selection_direction)
            for cell in cells}


def write_csv(path: Path, cells: list[CellSummary], curves_: dict[str, list[float]]) -> None:
    column = f"expected_best_val_{cells[0].selection_metric}"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cell", "trials", column])
        for cell, curve in curves_.items():
            writer.writerows([cell, n, value] for n, value in enumerate(curve, start=1))
