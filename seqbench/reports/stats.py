"""The item-level tests of a report (given the trained models) and Holm's correction.

Each function is a thin call into scipy.stats with the edge cases a sweep produces
(identical values, no discordant items) answered explicitly rather than as a warning and a
NaN deep inside scipy. The intervals and the tests behind a report's verdicts, which also
count training randomness, are in `resampling`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

LEVEL = 0.95
#: Resamples of the paired permutation test; up to 13 items (2**items <= this) it is exact.
PERMUTATIONS = 9999
#: Resamples evaluated at once: bounds memory to BATCH x items values (scipy default: all).
BATCH = 500


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar test: the discordant counts against Binomial(n, 1/2).

    `only_a` items are right for A and wrong for B, `only_b` the reverse; with no discordant
    item the cells cannot be told apart (p = 1).
    """
    from scipy import stats

    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def permutation_p(a: np.ndarray, b: np.ndarray, permutations: int = PERMUTATIONS) -> float:
    """Two-sided paired permutation test of sum(a - b) over items (random sign flips).

    Exact when 2**items <= `permutations`; otherwise a fixed generator keeps the report
    reproducible. Summing (not averaging per weight) keeps each item's share of the
    weighted metric, since both cells carry the same weights.
    """
    from scipy import stats

    def total_difference(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        return np.sum(x - y, axis=axis)

    if np.array_equal(a, b):
        return 1.0
    result = stats.permutation_test((a, b), total_difference, permutation_type="samples",
                                    vectorized=True, n_resamples=permutations, batch=BATCH,
                                    rng=np.random.default_rng(0))
    return float(result.pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order; NaN stays NaN.

    Hand-written because scipy.stats has no Holm (`false_discovery_control` does only
    Benjamini-Hochberg/Yekutieli), and statsmodels is a large dependency for five lines.
    The i-th smallest of m p-values is multiplied by m - i + 1, then made monotone.
    """
    order = sorted((p, index) for index, p in enumerate(pvalues) if not math.isnan(p))
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, index) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[index] = running
    return adjusted
