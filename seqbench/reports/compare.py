"""Every pair of cells compared, Holm-corrected, by a test that counts every source of chance.

A verdict should hold for a *fresh training run*, not only for the models that happened to
be trained. So the test behind the significance marks (`resampling`) counts both the final
seeds (training randomness) and the test items (test sampling; blocks of items where they
share data), and each pair also gets the probability that a fresh run of one cell beats a
fresh run of the other (Bouthillier et al. 2021). Runs without per-item scores, or a test
split of one item, leave the seeds alone, and the report says so.

The item-level tests that reports used before stay as a second column, labelled "given
these trained models": McNemar for accuracy-like 0/1 items, a paired permutation test for
losses and errors. They pair the test items of the particular trained models, so training
randomness never enters them: on Japanese Vowels McNemar called the LSTM defaults different
from an identical copy of themselves in 6.8-10.3% of A/A splits at alpha 0.05 here, and in
14.2% on another host (benchmarks/aa_test.py; the new test: 2.9-3.1%).

All pairs are one family: a difference counts only if it survives Holm's correction, so no
cell is singled out after the fact as "the best" to test the others against. A reference
named before the results (`against`: Greff et al. 2017 test every LSTM variant against the
vanilla LSTM) makes the family that cell against each other one instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from seqbench.errors import SeqbenchError
from seqbench.reports import resampling, stats
from seqbench.reports.collect import CellSummary
from seqbench.reports.items import ItemScores, dependent_span, read_items

ALPHA = 0.05
#: Tests a pair of cells by name: (p-value, what it counted).
PairTest = Callable[[str, str], tuple[float, str]]
TEST = "Welch-Satterthwaite t-test over seeds and test items"
UNCOUNTED = ("Not counted: the search (one search per cell; a repeated search would show "
             "its share) and the machine (the same seed gives other numbers on another CPU "
             "or thread count: see the environment).")


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    #: Mean final test value of a minus that of b, and its interval.
    difference: float
    low: float
    high: float
    p: float
    p_holm: float
    #: P(a fresh run of a is better than a fresh run of b) and its interval.
    better: float
    better_low: float
    better_high: float
    #: The item-level test given these trained models (NaN where there is none).
    p_models: float = math.nan
    p_models_holm: float = math.nan
    #: What that test counted, where that says more than p (McNemar's discordant items).
    detail: str = ""

    @property
    def survives(self) -> bool:
        return self.p_holm < ALPHA


@dataclass(frozen=True)
class Pairwise:
    direction: str
    comparisons: list[Comparison]
    #: Each cell's final test values as seeds x test blocks (`resampling.SeedItems`).
    scores: dict[str, resampling.SeedItems] = field(default_factory=dict)
    #: The sources of chance the intervals and tests count, in words.
    sources: str = ""
    #: The item-level test given these trained models, and why it fits ("" when none can run).
    models_test: str = ""
    models_why: str = ""
    #: The reference cell every other cell was compared with (None: every pair).
    against: str | None = None
    test: str = TEST

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

    def half_width(self, cell: str) -> float:
        """Half the width of the cell's interval over fresh seeds and test samples."""
        x = self.scores.get(cell)
        return math.nan if x is None else resampling.cell_variance(x).half_width()

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
    """Every cell's item scores by seed, or ({}, why the test items cannot be resampled)."""
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
        return {}, f"the test split has {len(first.items)} item (one forecast window)"
    return scores, ""


def two_level(cells: list[CellSummary]) -> tuple[dict[str, resampling.SeedItems], str,
                                                  dict[str, dict[int, ItemScores]]]:
    """Each cell's seeds x test blocks, the sentence naming the sources of chance they
    count, and the item scores behind them ({} when only the seeds count)."""
    scores, reason = item_scores(cells)
    seeds = ", ".join(sorted({str(len(c.test_values)) for c in cells}))
    if not scores:
        return ({c.cell: resampling.from_seed_values(c.test_values) for c in cells},
                f"Sources of chance counted: training seeds ({seeds} per cell) only, because "
                f"{reason}, so test sampling cannot be resampled. {UNCOUNTED}", {})
    first = cells[0]
    span, unknown = dependent_span(first.task, first.dataset, first.finals[0])
    items = next(iter(next(iter(scores.values())).values()))
    matrices = {cell: resampling.from_items(np.array([s.values for _, s in sorted(per.items())]),
                                            items.weights, span)
                for cell, per in scores.items()}
    blocks = next(iter(matrices.values())).blocks
    unit = (f"the {len(items.items):,} test items as independent draws"
            + (f"; {unknown}" if unknown else "") if span == 1 else
            f"the {len(items.items):,} test items in {blocks} blocks of {span} consecutive "
            "items, since closer items share data")
    return (matrices, f"Sources of chance counted: training seeds ({seeds} per cell) and test "
            f"sampling ({unit}). {UNCOUNTED}", scores)


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


def given_models(scores: dict[str, dict[int, ItemScores]]) -> tuple[str, str, PairTest]:
    """The item-level test for these item scores, the sentence saying why, and the test."""
    first = next(iter(next(iter(scores.values())).values()))
    seeds = max(len(per_seed) for per_seed in scores.values())
    if first.kind == "binary":
        why = (f"{first.metric} is right or wrong on each of the {len(first.items)} test "
               "items; each seed of one cell is paired with the same seed of the other and "
               f"the discordant items are pooled over up to {seeds} seeds and tested against "
               "a fair coin (scipy.stats.binomtest).")
        return "exact McNemar test", why, lambda a, b: mcnemar(scores[a], scores[b])
    exact = 2 ** len(first.items) <= stats.PERMUTATIONS
    why = (f"per-item {first.metric} values of the {len(first.items)} test items (each "
           f"averaged over the cell's seeds, up to {seeds}) have the sign of each item's "
           "difference flipped (scipy.stats.permutation_test, "
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
    each other one), tested over seeds and test items, with the item-level test beside."""
    scored = {c.cell: c for c in sorted(cells, key=lambda c: c.cell) if c.test_values}
    if against is not None:
        check_reference(cells, against, f"{cells[0].task}/{cells[0].dataset}")
    direction = cells[0].direction
    if not scored:
        return Pairwise(direction=direction, comparisons=[], against=against)
    matrices, sources, scores = two_level(list(scored.values()))
    models_test, models_why, test_models = given_models(scores) if scores else ("", "", None)
    sign = -1.0 if direction == "minimize" else 1.0
    pairs = (combinations(scored, 2) if against is None
             else [(against, other) for other in scored if other != against])
    raw = []
    for a, b in pairs:
        difference = resampling.difference(matrices[a], matrices[b])
        better = resampling.probability_better(matrices[a], matrices[b], sign)
        p_models, detail = test_models(a, b) if test_models else (math.nan, "")
        raw.append((a, b, difference, better, p_models, detail))
    adjusted = stats.holm([d.p for _, _, d, _, _, _ in raw])
    adjusted_models = stats.holm([p for *_, p, _ in raw])
    comparisons = [Comparison(a, b, d.estimate, d.low, d.high, d.p, p_holm, *better,
                              p_models, p_models_holm, detail)
                   for (a, b, d, better, p_models, detail), p_holm, p_models_holm
                   in zip(raw, adjusted, adjusted_models)]
    return Pairwise(direction=direction, comparisons=comparisons, scores=matrices,
                    sources=sources, models_test=models_test, models_why=models_why,
                    against=against)
