"""Every pair of cells compared on the same test items, Holm-corrected.

Every cell is tested on the same items, so a paired test sees differences that seed means
hide. Which test depends on the items: accuracy-like 0/1 items get the exact McNemar test,
losses and errors a paired permutation test. Runs without per-item scores leave only the
final seeds' test values, compared by Welch's t-test. All pairs are one family: a
difference counts only if it survives Holm's correction, so no cell is singled out after
the fact as "the best" to test the others against. A reference named before the results
(`against`: Greff et al. 2017 test every LSTM variant against the vanilla LSTM) makes the
family that cell against each other one instead, which is smaller and so more powerful.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from seqbench.errors import SeqbenchError
from seqbench.reports import stats
from seqbench.reports.collect import CellSummary
from seqbench.reports.items import ItemScores, read_items

ALPHA = 0.05
#: Tests a pair of cells by name: (p-value, what it counted).
PairTest = Callable[[str, str], tuple[float, str]]


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    #: Mean final test value of a minus that of b.
    difference: float
    p: float
    p_holm: float
    #: What the test counted, where that says more than p (McNemar's discordant items).
    detail: str = ""

    @property
    def survives(self) -> bool:
        return self.p_holm < ALPHA


@dataclass(frozen=True)
class Pairwise:
    #: The test's name and the sentence that says why it was the right one here.
    test: str
    why: str
    direction: str
    comparisons: list[Comparison]
    #: The reference cell every other cell was compared with (None: every pair).
    against: str | None = None

    def top_means(self) -> str:
        """What the bold (or starred) cells of a table have in common, in words."""
        if self.against is not None:
            return f"not significantly worse than {self.against}"
        return "no other cell is significantly better"

    def family(self) -> str:
        """The comparisons Holm's correction runs over, in words."""
        count = len(self.comparisons)
        if self.against is not None:
            return f"{count} comparison{'s' if count > 1 else ''}, each cell against {self.against}"
        return f"{count} pair{'s' if count > 1 else ''}"

    def winner(self, c: Comparison) -> str | None:
        """The cell of the pair with the better mean (None on a tie)."""
        sign = -1 if self.direction == "minimize" else 1
        if c.difference == 0:
            return None
        return c.a if sign * c.difference > 0 else c.b

    def better_than(self, cell: str) -> list[tuple[str, float]]:
        """(other cell, Holm p) for each surviving difference in `cell`'s favour."""
        found = [(c.b if c.a == cell else c.a, c.p_holm) for c in self.comparisons
                 if c.survives and self.winner(c) == cell]
        return sorted(found, key=lambda pair: pair[1])

    def beaten(self, cell: str) -> bool:
        """Whether some other cell is significantly better than `cell`."""
        return any(c.survives and cell in (c.a, c.b) and self.winner(c) not in (cell, None)
                   for c in self.comparisons)


def item_scores(cells: list[CellSummary]) -> tuple[dict[str, dict[int, ItemScores]], str]:
    """Every cell's item scores by seed, or ({}, why a paired test cannot run)."""
    scores = {}
    for cell in cells:
        per_seed = {final["seed"]: read_items(final) for final in cell.finals}
        missing = sorted(seed for seed, items in per_seed.items() if items is None)
        if missing:
            return {}, (f"{cell.cell}'s final runs (seeds {', '.join(map(str, missing))}) have "
                        "no per-item test scores (test_items.csv)")
        scores[cell.cell] = per_seed
    every = [items for per_seed in scores.values() for items in per_seed.values()]
    if not every:
        return {}, "no cell has final runs"
    first = every[0]
    if any((s.items, s.kind, s.metric) != (first.items, first.kind, first.metric)
           or not np.array_equal(s.weights, first.weights) for s in every):
        return {}, "the final runs' item files differ in their test items, weights or metric"
    if len(first.items) < 2:
        return {}, (f"the test split has {len(first.items)} item (one forecast window), which "
                    "no paired test can use")
    return scores, ""


def mcnemar(a: dict[int, ItemScores], b: dict[int, ItemScores]) -> tuple[float, str]:
    """McNemar on seed-matched pairs (seed s of one cell against seed s of the other),
    the discordant counts pooled over the seeds both cells ran."""
    common = sorted(set(a) & set(b))
    if not common:
        return math.nan, "no seed in common"
    only_a = sum(int(np.sum((a[s].values == 1) & (b[s].values == 0))) for s in common)
    only_b = sum(int(np.sum((a[s].values == 0) & (b[s].values == 1))) for s in common)
    return stats.mcnemar_p(only_a, only_b), f"{only_a}/{only_b}"


def permutation(a: dict[int, ItemScores], b: dict[int, ItemScores]) -> tuple[float, str]:
    """Permutation test on each item's value averaged over the cell's seeds."""
    def averaged(scores: dict[int, ItemScores]) -> np.ndarray:
        return np.mean([s.values for s in scores.values()], axis=0)

    return stats.permutation_p(averaged(a), averaged(b)), ""


def choose_test(cells: list[CellSummary]) -> tuple[str, str, PairTest]:
    """The test the final runs allow, the sentence saying why, and the test itself."""
    scores, reason = item_scores(cells)
    if not scores:
        by_name = {c.cell: c for c in cells}
        why = (f"{reason}, so only the final seeds' test values are left: a two-sided "
               "t-test with unequal variances (scipy.stats.ttest_ind). It sees seed means "
               "only, so with few seeds it is weak.")
        return "Welch's t-test", why, lambda a, b: (
            stats.welch_p(by_name[a].test_values, by_name[b].test_values), "")
    first = next(iter(next(iter(scores.values())).values()))
    seeds = max(len(per_seed) for per_seed in scores.values())
    if first.kind == "binary":
        why = (f"{first.metric} is right or wrong on each of the {len(first.items)} test "
               "items, and every cell is scored on the same items; each seed of one cell "
               "is paired with the same seed of the other and the discordant items "
               f"(right for one cell only) are pooled over up to {seeds} seeds and tested "
               "against a fair coin (scipy.stats.binomtest). Pooling counts an item once "
               "per seed as if independent, which makes the test somewhat liberal.")
        return "exact McNemar test", why, lambda a, b: mcnemar(scores[a], scores[b])
    exact = 2 ** len(first.items) <= stats.PERMUTATIONS
    why = (f"every cell is scored on the same {len(first.items)} test items, and "
           f"per-item {first.metric} values (each averaged over the cell's seeds, up to "
           f"{seeds}) need not be normal; the test flips the sign of each item's "
           "difference (scipy.stats.permutation_test, "
           f"{'exact' if exact else f'{stats.PERMUTATIONS} random resamples'}).")
    return "paired permutation test", why, lambda a, b: permutation(scores[a], scores[b])


def check_reference(cells: list[CellSummary], against: str, where: str) -> None:
    """Refuse a reference cell that has no final test values among `cells`."""
    scored = sorted(c.cell for c in cells if c.test_values)
    if against not in scored:
        raise SeqbenchError(f"--against {against}: no final runs of that cell in {where}; "
                            f"cells with final runs there: {', '.join(scored) or 'none'}.")


def pairwise(cells: list[CellSummary], against: str | None = None) -> Pairwise:
    """All pairs of cells that have final test values (or, with `against`, that cell and
    each other one), with the test the data allow."""
    scored = {c.cell: c for c in sorted(cells, key=lambda c: c.cell) if c.test_values}
    if against is not None:
        check_reference(cells, against, f"{cells[0].task}/{cells[0].dataset}")
    test, why, test_pair = choose_test(list(scored.values()))
    pairs = (combinations(scored, 2) if against is None
             else [(against, other) for other in scored if other != against])
    raw = []
    for a, b in pairs:
        p, detail = test_pair(a, b)
        difference = statistics.fmean(scored[a].test_values) - statistics.fmean(
            scored[b].test_values)
        raw.append((a, b, difference, p, detail))
    adjusted = stats.holm([p for _, _, _, p, _ in raw])
    comparisons = [Comparison(a, b, difference, p, p_holm, detail)
                   for (a, b, difference, p, detail), p_holm in zip(raw, adjusted)]
    return Pairwise(test=test, why=why, direction=cells[0].direction, comparisons=comparisons,
                    against=against)
