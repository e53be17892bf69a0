"""What repeated searches (`seqbench sweep --repeats R`) say: the search's share of the noise.

One search per cell leaves its own luck uncounted: another sampler seed could have chosen
another configuration. With R searches per cell, each with its own selection and finals on
the same final seeds, the spread of a cell's mean final value across repeats is the search's
share, and the spread of final runs within a repeat is that of training seeds and test
sampling together (the pairwise tests count those). The section also says whether the
ranking of the cells by mean was the same in every repeat: a verdict that flips between
repeats is the search's, not the cells'.

Descriptive only, on purpose: with a handful of repeats, a variance-component test would
have almost no degrees of freedom, so the numbers are shown, not tested. A table without
repeats gets no section, so published tables are unchanged.
"""

from __future__ import annotations

import statistics

from seqbench.reports.collect import CellSummary


def searches(cell: CellSummary) -> list[CellSummary]:
    """The cell's searches in repeat order: the first, then its repeats."""
    return [cell, *cell.repeats]


def ranking(cells: list[CellSummary], repeat: int) -> tuple[str, ...] | None:
    """The cells' names, best mean first, in one repeat (None where a cell lacks finals)."""
    means = {}
    for cell in cells:
        runs = searches(cell)
        if repeat >= len(runs) or not runs[repeat].test_values:
            return None
        means[cell.cell] = statistics.fmean(runs[repeat].test_values)
    sign = 1 if cells[0].direction == "minimize" else -1
    return tuple(sorted(means, key=lambda name: sign * means[name]))


def _sd(values: list[float]) -> str:
    return f"{statistics.stdev(values):.4g}" if len(values) > 1 else "–"


def markdown(cells: list[CellSummary]) -> list[str]:
    """The 'Repeated searches' section of table.md; [] when no cell was searched twice."""
    count = max(len(searches(cell)) for cell in cells)
    if count < 2:
        return []
    lines = ["## Repeated searches", "",
             "| cell | " + " | ".join(f"repeat {r}: trial, mean" for r in range(count))
             + " | sd across repeats | sd within a repeat |",
             "|---|" + "---|" * (count + 2)]
    for cell in cells:
        runs = searches(cell)
        means = [statistics.fmean(run.test_values) for run in runs if run.test_values]
        within = [statistics.stdev(run.test_values) for run in runs if len(run.test_values) > 1]
        shown = [f"{run.record.selection.chosen if run.record.selection else '–'}, "
                 f"{statistics.fmean(run.test_values):.4g}" if run.test_values else "–"
                 for run in runs] + ["–"] * (count - len(runs))
        spread = f"{statistics.fmean(within):.4g}" if within else "–"
        lines.append(f"| {cell.cell} | " + " | ".join(shown) + f" | {_sd(means)} | {spread} |")
    orders = {ranking(cells, repeat) for repeat in range(count)}
    if None in orders:
        verdict = "Not every repeat has final runs for every cell, so the ranking is not compared."
    elif len(orders) == 1:
        verdict = (f"The ranking by mean ({' > '.join(next(iter(orders)))}, best first) is the "
                   f"same in all {count} searches.")
    else:
        verdict = (f"The ranking by mean differs between the {count} searches "
                   f"({'; '.join(' > '.join(order) for order in sorted(orders))}): the order "
                   "of these cells depends on the search's luck.")
    return [*lines, "",
            f"Each search chose a trial (its number) and trained it on the same final seeds; "
            f"mean test {cells[0].primary_metric} of its finals. sd across repeats: the "
            "search's share of the noise; sd within a repeat: the training seeds' and the "
            "test sample's, averaged over the repeats. The pairwise tests above use the "
            "first search. " + verdict, ""]
