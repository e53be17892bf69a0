"""Two sources of chance in one number: training seeds and test items together.

A cell's mean test value moves when it is trained again with new seeds (initialisation,
data order) and when it is tested on another sample of test items. The paired item-level
tests (McNemar, paired permutation) hold the trained models fixed and see only the second;
a t-test over seed means sees only the first. Here both count.

The material is one matrix per cell: seeds x test items, each row averaging to that seed's
test metric (`SeedItems`). Items whose metric is a ratio (NLL summed over frames / frames)
are linearised around the cell's ratio (Cochran 1977, 6.8) so that a long item weighs what
it weighs in the metric, not more. Items that share data (forecasting windows that slide
one step: windows closer than lookback + horizon share observations) are summed in blocks
of consecutive items that long, and the blocks are the units of test sampling
(non-overlapping block bootstrap, Carlstein 1986).

**The variance** of a cell's mean is the crossed random-effects decomposition (seeds x
items; Searle, Casella & McCulloch 1992, ch. 4): with S seeds and K items,

    Var(mean) = s²_seed-means / S  +  max(0, s²_item-means − MS_residual / S) / K

The first term is the t-test's over seeds; the second is the test-sampling variance, from
the spread of the items' seed-averaged values, less the seed x item interaction it already
counts (an item that some seeds get right and others wrong moves the seed means, which the
first term has). For a pair of cells scored on the same items the item term uses the items'
differences, so what both cells find hard cancels. Intervals and tests use Student's t with
Satterthwaite's degrees of freedom (a Welch test whose variance has a test-sampling term).

**Why this test and not another** (measured with `benchmarks/aa_test.py`, an A/A
comparison: runs of the LSTM defaults on Japanese Vowels split 1,000 times at random into
two groups of 5, identical cells by construction; results/benchmarks.md): this test called
them different in 2.9% of splits of 20 runs (95% Clopper-Pearson interval 2.0-4.1%) and 3.1%
of splits of 40 runs (2.1-4.4%); the item-level McNemar test, in 6.8% and 10.3%. It is a
little conservative, as Welch's test over seed means alone is (3.1%, 3.4%): the
interaction correction is cut at zero. A percentile bootstrap of 5 seed means would
under-cover (its variance is biased by (n-1)/n and its quantiles are normal where t(4)
applies). A seed-level permutation of cell labels is exact under the A/A null (3.6%, 3.1%
in the same splits) but granular: with 5 seeds per cell its smallest p-value is 1/126,
which after Holm over 8 comparisons (a reference against eight variants) can never reach
0.05, and with 3 seeds per cell it is 0.1. So the verdicts use this Welch-Satterthwaite
test, which reaches any p-value and holds its level.

**The probability that A beats B when both are trained afresh** (Bouthillier et al. 2021):
the share of (seed of A, seed of B) pairs in which A's test value is better (ties count
half: the Mann-Whitney statistic, which rliable's `probability_of_improvement` computes),
with a percentile interval from a nested bootstrap that resamples the test items (blocks),
shared by both cells, and then each cell's seeds. It is written here because neither
`scipy.stats.bootstrap` nor rliable's stratified bootstrap resamples items within seeds.
With 5 seeds per cell the interval is wide (in the A/A splits above it left out 1/2 in 0.0%
and 0.2% of them): read it as a description, and the test's p-value as the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from seqbench.reports.stats import LEVEL

#: Resamples of the nested bootstrap behind the probability of improvement.
RESAMPLES = 2000


@dataclass(frozen=True)
class SeedItems:
    """One cell's final test values: seeds x blocks of test items, each row's mean being that
    seed's test metric. One column means the test sample cannot be resampled (one item, or
    runs without per-item scores): then only the seeds count."""

    values: np.ndarray

    @property
    def seeds(self) -> int:
        return self.values.shape[0]

    @property
    def blocks(self) -> int:
        return self.values.shape[1]

    @property
    def seed_means(self) -> np.ndarray:
        return self.values.mean(axis=1)

    @property
    def block_means(self) -> np.ndarray:
        """Each block's value averaged over the seeds."""
        return self.values.mean(axis=0)


def from_seed_values(values: list[float]) -> SeedItems:
    """Seeds' test values alone (no item scores): only training randomness can count."""
    return SeedItems(np.asarray(values, dtype=float).reshape(-1, 1))


def from_items(values: np.ndarray, weights: np.ndarray, span: int = 1) -> SeedItems:
    """Seeds x items scores whose metric is sum(values) / sum(weights) per seed (the contract
    of `TaskData.item_scores`), linearised and summed into blocks of `span` consecutive items.

    Linearising around the cell's ratio R (z = (v − R·w) / mean(w) + R) keeps every seed's
    mean equal to its metric and takes the items' lengths out of the test-sampling variance.
    """
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    items = values.shape[1]
    ratio = values.sum() / (values.shape[0] * weights.sum())
    linear = (values - ratio * weights) / weights.mean() + ratio
    span = max(1, min(int(span), items))
    blocks = math.ceil(items / span)
    padded = np.zeros((values.shape[0], blocks * span))
    padded[:, :items] = linear
    # Each block's sum, scaled so that the mean over blocks is the mean over items.
    return SeedItems(padded.reshape(values.shape[0], blocks, span).sum(axis=2) * blocks / items)


def interaction(x: SeedItems) -> float:
    """The seed x block residual mean square of a two-way layout (0 when either has one)."""
    if x.seeds < 2 or x.blocks < 2:
        return 0.0
    residual = (x.values - x.seed_means[:, None] - x.block_means[None, :]
                + x.values.mean())
    return float((residual ** 2).sum() / ((x.seeds - 1) * (x.blocks - 1)))


@dataclass(frozen=True)
class Variance:
    """The variance of a mean (or a difference of means), by source, with its degrees of
    freedom (Satterthwaite) for Student's t."""

    seeds: float
    items: float
    df: float

    @property
    def total(self) -> float:
        return self.seeds + self.items

    def half_width(self, level: float = LEVEL) -> float:
        from scipy import stats

        if math.isnan(self.df):
            return math.nan
        return float(stats.t.ppf((1 + level) / 2, self.df) * math.sqrt(self.total))

    def p_value(self, estimate: float) -> float:
        """Two-sided p-value of `estimate` against 0; NaN without the degrees of freedom."""
        from scipy import stats

        if math.isnan(self.df):
            return math.nan
        if self.total == 0:
            return 1.0 if estimate == 0 else 0.0
        return float(2 * stats.t.sf(abs(estimate) / math.sqrt(self.total), self.df))


def satterthwaite(terms: list[tuple[float, int]]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variance terms (value, df); NaN
    when a term with no degree of freedom would be needed."""
    if any(df < 1 for _, df in terms):
        return math.nan
    total = sum(value for value, _ in terms)
    spread = sum(value ** 2 / df for value, df in terms if value > 0)
    return total ** 2 / spread if spread > 0 else float(sum(df for _, df in terms))


def seed_term(x: SeedItems) -> tuple[float, int]:
    """The seeds' share of the variance of the mean: s² of the seed means / S, df S − 1."""
    if x.seeds < 2:
        return math.nan, 0
    return float(np.var(x.seed_means, ddof=1) / x.seeds), x.seeds - 1


def item_term(block_values: np.ndarray, counted: float) -> tuple[float, int]:
    """Test sampling's share: the spread of the blocks' seed-averaged values (or their
    differences) less the seed x item interaction that the seed term `counted` already."""
    blocks = len(block_values)
    if blocks < 2:
        return 0.0, 1
    spread = float(np.var(block_values, ddof=1))
    return max(0.0, spread - counted) / blocks, blocks - 1


def cell_variance(x: SeedItems) -> Variance:
    seeds, seeds_df = seed_term(x)
    counted = interaction(x) / x.seeds
    items, items_df = item_term(x.block_means, counted)
    return Variance(seeds, items, satterthwaite([(seeds, seeds_df), (items, items_df)]))


def difference_variance(a: SeedItems, b: SeedItems) -> Variance:
    """The variance of mean(a) − mean(b) for two cells trained independently and scored on
    the same test items (blocks)."""
    (seeds_a, df_a), (seeds_b, df_b) = seed_term(a), seed_term(b)
    counted = interaction(a) / a.seeds + interaction(b) / b.seeds
    items, items_df = item_term(a.block_means - b.block_means, counted)
    return Variance(seeds_a + seeds_b, items,
                    satterthwaite([(seeds_a, df_a), (seeds_b, df_b), (items, items_df)]))


def interval(x: SeedItems, level: float = LEVEL) -> tuple[float, float]:
    """The cell's mean test value with its interval over fresh seeds and test samples."""
    mean, half = float(x.seed_means.mean()), cell_variance(x).half_width(level)
    return mean - half, mean + half


@dataclass(frozen=True)
class Difference:
    estimate: float
    low: float
    high: float
    p: float


def difference(a: SeedItems, b: SeedItems, level: float = LEVEL) -> Difference:
    """mean(a) − mean(b), its interval and two-sided p-value (both sources of chance)."""
    estimate = float(a.seed_means.mean() - b.seed_means.mean())
    variance = difference_variance(a, b)
    half = variance.half_width(level)
    return Difference(estimate, estimate - half, estimate + half, variance.p_value(estimate))


def share_better(a: np.ndarray, b: np.ndarray, sign: float) -> np.ndarray:
    """Over the last axis' pairs: the share in which a is better than b (ties count half)."""
    margin = sign * (a[..., :, None] - b[..., None, :])
    return ((margin > 0) + 0.5 * (margin == 0)).mean(axis=(-2, -1))


def probability_better(a: SeedItems, b: SeedItems, sign: float, level: float = LEVEL,
                       resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """P(a fresh run of A beats a fresh run of B) with its nested-bootstrap interval.

    `sign` is +1 where higher test values are better, -1 where lower are. Each resample
    draws the blocks of test items once for both cells (they are scored on the same items),
    recomputes every seed's value on them, then draws each cell's seeds.
    """
    rng = np.random.default_rng(seed)
    point = float(share_better(a.seed_means, b.seed_means, sign))
    if a.seeds < 2 or b.seeds < 2:
        return point, math.nan, math.nan
    blocks = a.blocks
    if blocks > 1:
        weights = rng.multinomial(blocks, np.full(blocks, 1 / blocks), size=resamples) / blocks
        means_a, means_b = weights @ a.values.T, weights @ b.values.T  # resamples x seeds
    else:
        means_a = np.broadcast_to(a.seed_means, (resamples, a.seeds))
        means_b = np.broadcast_to(b.seed_means, (resamples, b.seeds))
    rows = np.arange(resamples)[:, None]
    drawn_a = means_a[rows, rng.integers(0, a.seeds, (resamples, a.seeds))]
    drawn_b = means_b[rows, rng.integers(0, b.seeds, (resamples, b.seeds))]
    low, high = np.quantile(share_better(drawn_a, drawn_b, sign),
                            [(1 - level) / 2, (1 + level) / 2])
    return point, float(low), float(high)
