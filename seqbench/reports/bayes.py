"""Across datasets, a Bayesian answer per pair of cells: practically better, equivalent, or
practically worse, and how probable each is.

baycomp's hierarchical model (Corani et al. 2017, in Benavoli et al. 2017, "Time for a
change", JMLR 18) takes each dataset's per-seed differences, lets every dataset have its own
mean difference drawn from a common Student-t distribution, and gives the posterior
probability that the mean difference on a new dataset lies below, inside or above a region
of practical equivalence (ROPE). Unlike Friedman's test over ranks it uses the seeds'
spread on each dataset, and unlike a p-value it can say "equivalent".

Metrics differ between datasets (NLL, accuracy, MASE), so each difference is taken relative
to the pair's mean on that dataset and signed so that positive means the first cell is
better; the ROPE is ±1% of the metric. Seeds are paired in seed order (the finals of every
cell use the same seed numbers) and truncated to the fewest any dataset has, because the
model takes one matrix. baycomp's model treats the scores of a dataset as correlated
cross-validation folds with correlation 1/(number of scores); final seeds are independent,
so this widens each dataset's uncertainty somewhat: the probabilities are conservative.

The model is sampled by Stan (baycomp and pystan: the `bayes` extra), seeded so that a
report rebuilds the same numbers; baycomp does not pass a seed to Stan, so `stan.build` is
given one here.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from unittest import mock

import numpy as np

from seqbench.reports.collect import CellSummary

#: Half-width of the region of practical equivalence, relative to the metric's value.
ROPE = 0.01
#: A pair is decided where one of the three outcomes has at least this posterior probability.
DECIDED = 0.95
#: Posterior draws per chain (after baycomp's 1,000 warm-up steps): 4 x 1,000 draws put a
#: probability within about ±0.02; each pair samples in about 5-10 s on one core.
SAMPLES, CHAINS, SEED = 1000, 4, 0
#: Two datasets cannot show how much datasets differ, which the model must estimate.
MIN_DATASETS = 3
INSTALL = "pip install 'seqbench[bayes]'"


@dataclass(frozen=True)
class PairVerdict:
    a: str
    b: str
    #: Posterior probabilities: a practically better, within the ROPE, b practically better.
    a_better: float
    equivalent: float
    b_better: float

    def decision(self) -> str:
        """In words, where one outcome reaches `DECIDED`; "" where none does."""
        if self.a_better >= DECIDED:
            return f"{self.a} is better than {self.b}"
        if self.b_better >= DECIDED:
            return f"{self.b} is better than {self.a}"
        if self.equivalent >= DECIDED:
            return f"{self.a} and {self.b} are practically equivalent"
        return ""


def relative_differences(grouped: dict[tuple[str, str], list[CellSummary]],
                         datasets: list[tuple[str, str]], a: str, b: str) -> np.ndarray:
    """(datasets x seeds) differences a − b relative to the pair's mean, positive where a is
    better, seeds paired in order and cut to the fewest any dataset has."""
    rows = []
    for key in datasets:
        cells = {c.cell: c for c in grouped[key]}
        sign = -1.0 if cells[a].direction == "minimize" else 1.0
        rows.append((np.asarray(cells[a].test_values), np.asarray(cells[b].test_values), sign))
    seeds = min(min(len(x), len(y)) for x, y, _ in rows)
    return np.array([sign * (x[:seeds] - y[:seeds]) / abs(np.mean([*x, *y]))
                     for x, y, sign in rows])


@contextlib.contextmanager
def quiet_scratch() -> Iterator[None]:
    """Run inside a scratch folder with Stan's console output captured: baycomp pickles its
    last sample into the working directory, and Stan prints its progress."""
    previous = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch, \
            contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        os.chdir(scratch)
        try:
            yield
        finally:
            os.chdir(previous)


def posterior(differences: np.ndarray) -> tuple[float, float, float]:
    """(P(first practically better), P(equivalent), P(second practically better))."""
    import baycomp
    import stan

    seeded = functools.partial(stan.build, random_seed=SEED)
    with quiet_scratch(), mock.patch.object(stan, "build", seeded):
        second, equivalent, first = baycomp.HierarchicalTest.probs(
            np.zeros_like(differences), differences, ROPE, runs=1, nsamples=SAMPLES,
            chains=CHAINS)
    return float(first), float(equivalent), float(second)


def unavailable(datasets: int) -> str:
    """Why the comparison cannot run on `datasets` datasets here ("" when it can)."""
    if datasets < MIN_DATASETS:
        return (f"{datasets} datasets cannot show how much datasets differ, which the model "
                f"estimates; it needs at least {MIN_DATASETS}")
    try:
        import baycomp  # noqa: F401
        import stan  # noqa: F401
    except ImportError as exc:
        return f"it needs baycomp and pystan ({INSTALL}; here: {exc})"
    return ""


def compare(grouped: dict[tuple[str, str], list[CellSummary]], datasets: list[tuple[str, str]],
            cells: list[str]) -> list[PairVerdict]:
    """Every pair of `cells` (each with final runs on every one of `datasets`)."""
    return [PairVerdict(a, b, *posterior(relative_differences(grouped, datasets, a, b)))
            for a, b in combinations(cells, 2)]
