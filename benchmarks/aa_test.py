"""A/A test: how often do seqbench's verdicts call a cell different from itself?

Trains `--runs` seeds of the LSTM's default configuration on Japanese Vowels (offline: the
data ships with aeon) into `--out`, reusing every run already finished there, so the
benchmark resumes where it stopped. Then it splits the runs `--splits` times at random into
two groups of `--group`, two "cells" that are identical by construction (same code, same
configuration, independent seeds), and counts how often each test calls them different at
alpha = 0.05:

- the report's test (both sources of chance: seeds and test items, `seqbench.reports.resampling`);
- the item-level McNemar test that reports used before, "given these trained models"
  (discordant items pooled over the seed pairs, `seqbench.reports.compare.mcnemar`);
- for comparison, two seed-level tests: Welch's t over seed means, and an exact permutation
  of the cell labels of the seeds (scipy.stats.permutation_test);
- and how often the probability-of-improvement interval leaves out 1/2.

Each rate is printed with its 95% Clopper-Pearson interval. The splits share their runs,
so the rates are less certain than a binomial interval over splits says; the interval is
printed as the issue asked, and the runs can be made more (`--runs 40`).

Only the run records a report needs are kept (config.json, metrics.json, history.csv,
test_items.csv): checkpoints and the confusion-matrix figures are deleted after each run.

    python benchmarks/aa_test.py [--runs 20] [--splits 1000] [--group 5]
                                 [--out results/aa-test/runs] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ALPHA = 0.05


def train_missing(out: Path, runs: int) -> dict[int, Path]:
    """Train the seeds 0..runs-1 of the LSTM defaults not yet finished under `out` (keeping
    only their records); return every run folder by seed."""
    import seqbench as sb
    from seqbench import runs as records

    done = {}
    for seed in range(runs):
        spec = sb.spec_for("speech", "lstm", "japanese-vowels", seed)
        done[seed] = records.completed_run(out, spec)
        if done[seed] is None:
            started = time.perf_counter()
            run = sb.run(spec=spec, output_dir=out, progress=False)
            records.keep_record_only(run.dir)
            print(f"seed {seed}: test accuracy {run.metrics['test_accuracy']:.4f} "
                  f"({time.perf_counter() - started:.1f} s)", flush=True)
            done[seed] = run.dir
    return done


def clopper_pearson(hits: int, total: int, level: float = 0.95) -> tuple[float, float]:
    from scipy import stats

    interval = stats.binomtest(hits, total).proportion_ci(level, method="exact")
    return interval.low, interval.high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--splits", type=int, default=1000)
    parser.add_argument("--group", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("results/aa-test/runs"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if 2 * args.group > args.runs:
        parser.error(f"two groups of {args.group} need at least {2 * args.group} runs")

    from seqbench import threads

    threads.configure(args.threads)  # before torch loads
    args.out.mkdir(parents=True, exist_ok=True)
    runs = train_missing(args.out, args.runs)

    from scipy import stats

    from seqbench.reports import resampling
    from seqbench.reports.compare import mcnemar
    from seqbench.reports.items import read_items

    items = {seed: read_items({"metrics": json.loads((path / "metrics.json").read_text()),
                               "run_dir": str(path)}) for seed, path in runs.items()}
    seeds = sorted(items)
    accuracy = np.array([items[s].values.mean() for s in seeds])
    print(f"{len(seeds)} runs, test accuracy mean {accuracy.mean():.4f}, sd "
          f"{accuracy.std(ddof=1):.4f}, range {accuracy.min():.4f}-{accuracy.max():.4f}")

    def two_level(group: list[int]) -> resampling.SeedItems:
        return resampling.from_items(np.array([items[s].values for s in group]),
                                     items[group[0]].weights)

    def mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    rng = np.random.default_rng(0)
    calls = {"two-level (the report's test)": 0, "item-level McNemar (before)": 0,
             "seed-level Welch": 0, "seed-level permutation (exact)": 0,
             "P(A>B) interval leaves out 1/2": 0}
    started = time.perf_counter()
    for _ in range(args.splits):
        order = rng.permutation(seeds)
        a, b = list(order[: args.group]), list(order[args.group: 2 * args.group])
        x, y = two_level(a), two_level(b)
        calls["two-level (the report's test)"] += resampling.difference(x, y).p < ALPHA
        # The old test paired seed i of one cell with seed i of the other.
        p_old, _ = mcnemar(dict(enumerate(items[s] for s in a)),
                           dict(enumerate(items[s] for s in b)))
        calls["item-level McNemar (before)"] += p_old < ALPHA
        seeds_x = resampling.from_seed_values(accuracy[np.searchsorted(seeds, a)])
        seeds_y = resampling.from_seed_values(accuracy[np.searchsorted(seeds, b)])
        calls["seed-level Welch"] += resampling.difference(seeds_x, seeds_y).p < ALPHA
        exact = stats.permutation_test((seeds_x.seed_means, seeds_y.seed_means),
                                       mean_difference, vectorized=True,
                                       permutation_type="independent", n_resamples=np.inf)
        calls["seed-level permutation (exact)"] += exact.pvalue < ALPHA
        _, low, high = resampling.probability_better(x, y, 1.0, resamples=500)
        calls["P(A>B) interval leaves out 1/2"] += not low <= 0.5 <= high
    print(f"{args.splits} random splits into two groups of {args.group} "
          f"({time.perf_counter() - started:.0f} s); called different at alpha {ALPHA}:")
    for name, hits in calls.items():
        low, high = clopper_pearson(int(hits), args.splits)
        print(f"  {name:34s} {hits / args.splits:6.1%}  (95% CI {low:.1%}-{high:.1%})")


if __name__ == "__main__":
    main()
