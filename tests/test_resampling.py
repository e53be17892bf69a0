"""Two-level statistics (training seeds and test items), checked by hand and by A/A tests.

The A/A tests compare a cell with an identical copy of itself: a verdict may call them
different in at most 5% of repetitions (alpha 0.05), and the item-level test the reports
used before is shown to call them different more often.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from seqbench.reports import resampling
from seqbench.reports.collect import CellSummary
from seqbench.reports.compare import mcnemar, pairwise
from seqbench.reports.items import ItemScores

ROOT = Path(__file__).resolve().parents[1]
AA_RUNS = ROOT / "results" / "aa-test" / "runs"


def additive(seed_effects: list[float], item_effects: list[float]) -> resampling.SeedItems:
    """values[s, i] = seed effect + item effect: no seed x item interaction."""
    return resampling.SeedItems(np.add.outer(seed_effects, item_effects))


def test_seeds_alone_give_students_interval_and_welchs_test():
    a, b = [0.91, 0.95, 0.93, 0.97, 0.9], [0.89, 0.9, 0.92, 0.88]
    x, y = resampling.from_seed_values(a), resampling.from_seed_values(b)
    expected = scipy_stats.ttest_1samp(a, 0.0).confidence_interval(0.95)
    assert resampling.interval(x) == pytest.approx((expected.low, expected.high), rel=1e-12)
    welch = scipy_stats.ttest_ind(a, b, equal_var=False)
    result = resampling.difference(x, y)
    assert result.p == pytest.approx(welch.pvalue, rel=1e-10)
    low, high = welch.confidence_interval(0.95)
    assert (result.low, result.high) == pytest.approx((low, high), rel=1e-10)
    assert all(math.isnan(bound) for bound in resampling.interval(
        resampling.from_seed_values([0.9])))


def test_a_known_two_level_variance_and_its_degrees_of_freedom():
    # seed effects 0, 1, 2 (variance 1), item effects 0, 2, 4, 6 (variance 20/3), additive:
    # Var(mean) = 1/3 + (20/3)/4 = 2; Satterthwaite df = 4 / ((1/3)^2/2 + (5/3)^2/3).
    variance = resampling.cell_variance(additive([0, 1, 2], [0, 2, 4, 6]))
    assert (variance.seeds, variance.items) == pytest.approx((1 / 3, 5 / 3))
    assert variance.df == pytest.approx(4 / ((1 / 3) ** 2 / 2 + (5 / 3) ** 2 / 3))
    half = scipy_stats.t.ppf(0.975, variance.df) * math.sqrt(2)  # around the mean 1 + 3
    assert resampling.interval(additive([0, 1, 2], [0, 2, 4, 6])) == pytest.approx(
        (4 - half, 4 + half))


def test_where_items_dominate_the_interval_is_the_items_t_interval():
    items = [0.2, 0.5, 0.9, 0.4, 0.7, 0.1]
    x = additive([0.0, 0.0, 0.0], items)  # every seed alike: only test sampling is left
    variance = resampling.cell_variance(x)
    assert variance.seeds == 0 and variance.items == pytest.approx(np.var(items, ddof=1) / 6)
    assert variance.df == 5
    expected = scipy_stats.ttest_1samp(items, 0.0).confidence_interval(0.95)
    assert resampling.interval(x) == pytest.approx((expected.low, expected.high))


def test_where_seeds_dominate_the_test_is_welchs_over_seed_means():
    a, b = [0.1, 0.4, 0.2, 0.5], [0.6, 0.9, 0.7, 0.8, 0.75]
    items = [0.0, 0.3, -0.3, 0.1, -0.1]  # the same items, as hard for both cells
    result = resampling.difference(additive(a, items), additive(b, items))
    assert result.p == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    # the items' effects cancel in the difference but not in each cell's own interval
    assert resampling.cell_variance(additive(a, items)).items > 0
    assert resampling.difference_variance(additive(a, items), additive(b, items)).items == \
        pytest.approx(0.0, abs=1e-20)


def test_the_seed_by_item_interaction_is_not_counted_twice():
    # Two seeds that get opposite items right: the seed means agree (0.5, 0.5), and the
    # items' seed-averaged values agree (0.5 each): nothing varies but the interaction.
    x = resampling.SeedItems(np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]]))
    assert resampling.interaction(x) == pytest.approx(2 / 3)  # 8 residuals of ±0.5, df 3
    variance = resampling.cell_variance(x)
    assert (variance.seeds, variance.items) == (0.0, 0.0)
    assert resampling.difference(x, x).p == 1.0


def test_items_are_linearised_around_the_ratio_and_summed_in_blocks():
    values = np.array([[3.0, 1.0, 4.0, 1.0, 5.0], [2.0, 7.0, 1.0, 8.0, 2.0]])
    weights = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    ratio = values.sum(axis=1) / weights.sum()  # each seed's metric: sum(v) / sum(w)
    for span in (1, 2, 5):
        x = resampling.from_items(values, weights, span)
        assert x.blocks == math.ceil(5 / span)
        assert x.seed_means == pytest.approx(ratio)
    # equal weights: items are their plain values
    plain = resampling.from_items(values, np.ones(5))
    assert plain.values == pytest.approx(values)
    # an item whose value is the cell's ratio times its weight adds no spread, however long
    level = values.sum() / (2 * weights.sum())
    flat = resampling.from_items(np.tile(level * weights, (2, 1)), weights)
    assert np.ptp(flat.values) == pytest.approx(0.0, abs=1e-12)


def test_the_probability_of_improvement_is_the_mann_whitney_share():
    a, b = resampling.from_seed_values([3.0, 4.0]), resampling.from_seed_values([1.0, 5.0])
    point, low, high = resampling.probability_better(a, b, 1.0)
    assert point == 0.5 and low <= point <= high  # 3>1, 4>1 of four pairs
    assert resampling.probability_better(a, b, -1.0)[0] == 0.5
    tie = resampling.from_seed_values([1.0, 1.0])
    assert resampling.probability_better(tie, tie, 1.0) == (0.5, 0.5, 0.5)
    x = additive([0.9, 0.92, 0.95], [0.0, 0.01, -0.01])
    y = additive([0.5, 0.52, 0.55], [0.0, 0.01, -0.01])
    assert resampling.probability_better(x, y, 1.0) == (1.0, 1.0, 1.0)
    assert resampling.probability_better(x, y, 1.0) == resampling.probability_better(x, y, 1.0)


def aa_rates(experiments: int, seed_sd: float, rng: np.random.Generator) -> tuple[int, int]:
    """Independent A/A experiments on Japanese-Vowels-like data: 370 items right with
    probability logistic(item ease + seed skill + noise); two cells of 5 seeds from the same
    distribution. Returns how often the two-level test and McNemar call them different."""
    items, seeds = 370, 5
    new = old = 0
    for _ in range(experiments):
        ease = rng.normal(4.0, 1.5, items)
        logits = ease + rng.normal(0, seed_sd, (2 * seeds, 1)) + rng.normal(0, 1.0, (2 * seeds,
                                                                                     items))
        right = (rng.random((2 * seeds, items)) < 1 / (1 + np.exp(-logits))).astype(float)
        a, b = right[:seeds], right[seeds:]
        new += resampling.difference(resampling.from_items(a, np.ones(items)),
                                     resampling.from_items(b, np.ones(items))).p < 0.05
        scores = [{s: ItemScores("accuracy", "binary", (), group[s], np.ones(items))
                   for s in range(seeds)} for group in (a, b)]
        old += mcnemar(*scores)[0] < 0.05
    return new, old


def test_aa_simulated_the_new_test_holds_its_level_and_mcnemar_does_not():
    """400 independent A/A experiments: the two-level test's false-positive rate is not
    significantly above 5% (its Clopper-Pearson interval reaches 5%); McNemar's, which holds
    the trained models fixed, is significantly above it when seeds differ in skill."""
    experiments = 400
    new, old = aa_rates(experiments, seed_sd=0.4, rng=np.random.default_rng(1))
    new_low = scipy_stats.binomtest(new, experiments).proportion_ci(method="exact").low
    old_low = scipy_stats.binomtest(old, experiments).proportion_ci(method="exact").low
    assert new_low <= 0.05, f"{new} of {experiments}"
    assert old_low > 0.05 and old > new, f"McNemar {old}, new {new} of {experiments}"


def committed_run(path: Path) -> dict:
    return {"seed": json.loads((path / "config.json").read_text())["spec"]["seed"],
            "metrics": json.loads((path / "metrics.json").read_text()), "run_dir": str(path)}


def summary(name: str, finals: list[dict]) -> CellSummary:
    from seqbench.sweeps import record

    recorded = record.read({"task": "speech", "dataset": "japanese-vowels", "cell": name,
                            "primary_metric": "accuracy", "direction": "maximize",
                            "selection_metric": "nll", "selection_direction": "minimize"})
    return CellSummary(cell=name, study=None, record=recorded, finals=finals)


def test_aa_on_committed_japanese_vowels_runs_through_the_report():
    """The LSTM defaults trained with 20 seeds (benchmarks/aa_test.py; records committed
    under results/aa-test): the runs split at random into "lstm" and an identical copy
    "lstm-copy" with 5 seeds each and compared as a report compares cells."""
    runs = sorted((committed_run(p.parent) for p in AA_RUNS.glob("*/metrics.json")),
                  key=lambda run: run["seed"])
    assert len(runs) >= 20
    rng = np.random.default_rng(0)
    splits, new, old = 120, 0, 0
    for _ in range(splits):
        order = rng.permutation(len(runs))
        lstm = [runs[i] for i in order[:5]]
        copy = [{**runs[i], "seed": run["seed"]} for i, run in zip(order[5:10], lstm)]
        (comparison,) = pairwise([summary("lstm", lstm), summary("lstm-copy", copy)]).comparisons
        new += comparison.p < 0.05
        old += comparison.p_models < 0.05
    new_low = scipy_stats.binomtest(new, splits).proportion_ci(method="exact").low
    assert new_low <= 0.05 and old > new, f"new {new}, McNemar {old} of {splits}"
