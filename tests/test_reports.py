"""Reports from fake sweeps: intervals, paired tests, Holm, budget curves (no training).

Each fake sweep is a journal storage with the user attributes a sweep records and final run
folders written here, so every number in the report can be checked by hand.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import shutil
import statistics
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial
from scipy import stats as scipy_stats

from seqbench.cli import main
from seqbench.errors import SeqbenchError
from seqbench.reports import resampling, stats, write_reports
from seqbench.reports.budget import expected_best
from seqbench.reports.collect import collect
from seqbench.reports.compare import mcnemar
from seqbench.reports.items import ItemScores
from seqbench.sweeps.storage import open_storage

SEEDS = {"search": [0], "rerun": [1, 2], "final": [10, 11]}


def fake_sweep(tmp_path: Path, finals: dict[str, dict[int, list[float]]], *, kind: str,
               weights: list[float], primary: str, direction: str,
               items_file: bool = True, seeds: dict | None = None,
               trials: dict[str, list[float]] | None = None,
               extra_attrs: dict[str, dict] | None = None) -> str:
    """A journal storage with one study per cell; `finals[cell][seed]` are per-item values
    and the run's test metric is sum(values) / sum(weights), as a task computes it."""
    path = tmp_path / "studies.journal"
    storage = open_storage(str(path))
    for cell, per_seed in finals.items():
        study = optuna.create_study(study_name=f"seqbench/fake/small/{cell}", storage=storage,
                                    direction="minimize")
        for value in (trials or {}).get(cell, [1.0]):
            study.add_trial(create_trial(state=TrialState.COMPLETE, value=value,
                                         intermediate_values={1: value + 1, 2: value}))
        study.add_trial(create_trial(state=TrialState.PRUNED,
                                     intermediate_values={1: 0.9, 2: 0.6, 3: 0.7}))
        study.add_trial(create_trial(state=TrialState.FAIL))
        attrs = {"task": "fake", "dataset": "small", "cell": cell, "primary_metric": primary,
                 "direction": direction, "selection_metric": "nll",
                 "selection_direction": "minimize", "command": "seqbench sweep --task fake",
                 **({"seeds": seeds} if seeds else {}), **(extra_attrs or {}).get(cell, {})}
        for seed, values in per_seed.items():
            run_dir = tmp_path / "finals" / cell / f"seed{seed}"
            run_dir.mkdir(parents=True)
            metrics = {"status": "completed", f"test_{primary}": sum(values) / sum(weights),
                       "parameters": 1000, "seconds_per_epoch": 0.5,
                       "baselines": {"majority": {f"test_{primary}": 0.25}}}
            if items_file:
                metrics["test_items"] = {"file": "test_items.csv", "metric": f"test_{primary}",
                                         "kind": kind}
                with open(run_dir / "test_items.csv", "w", newline="") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(["item", "value", "weight"])
                    writer.writerows([f"item{i}", v, w]
                                     for i, (v, w) in enumerate(zip(values, weights)))
            (run_dir / "metrics.json").write_text(json.dumps(metrics))
            (run_dir / "history.csv").write_text(f"epoch,val_{primary}\n1,0.5\n2,0.4\n")
            attrs[f"final_seed{seed}"] = {"run_dir": str(run_dir), "trial": 0,
                                          "metrics": metrics}
        for key, value in attrs.items():
            study.set_user_attr(key, value)
    return str(path)


def wrong_on(wrong: int, items: int = 20) -> list[float]:
    """Accuracy items: the first `wrong` items wrong, the rest right."""
    return [0.0] * wrong + [1.0] * (items - wrong)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_mcnemar_is_the_exact_binomial_test_on_discordant_items():
    # 7 items right only for A, 1 only for B: p = 2 * P(X <= 1 | n=8, 1/2) = 2 * 9 / 256.
    assert stats.mcnemar_p(7, 1) == pytest.approx(18 / 256)
    assert stats.mcnemar_p(0, 0) == 1.0


def test_mcnemar_pools_seed_matched_pairs_only():
    def scores(*per_seed: tuple[int, list[float]]) -> dict[int, ItemScores]:
        return {seed: ItemScores("test_accuracy", "binary", tuple(map(str, range(4))),
                                 np.array(values), np.ones(4)) for seed, values in per_seed}

    a = scores((1, [1, 1, 1, 0]), (2, [1, 1, 0, 0]), (3, [0, 0, 0, 0]))
    b = scores((1, [0, 1, 0, 1]), (2, [0, 0, 0, 0]))  # seed 3 of a has no partner
    # seed 1: right only for a = items 0, 2; only for b = item 3. seed 2: a only = items 0, 1.
    p, detail = mcnemar(a, b)
    assert detail == "4/1" and p == pytest.approx(stats.mcnemar_p(4, 1))
    assert stats.mcnemar_p(4, 1) == pytest.approx(2 * 6 / 32)


@pytest.mark.parametrize(("differences", "expected"), [
    ([1.0, 2.0, 3.0], 2 / 8),          # only +1+2+3 reaches 6 on each side: 2 of 8 flips
    ([1.0, 2.0, 3.0, -1.0], 6 / 16),   # sums >= 5: (+,+,+,±1), (-1,+2,+3,+1): 3 of 16
])
def test_the_permutation_test_matches_a_hand_enumeration(differences, expected):
    b = np.array([5.0, 1.0, 2.0, 7.0][: len(differences)])
    assert stats.permutation_p(b + np.array(differences), b) == pytest.approx(expected)
    assert stats.permutation_p(b, b) == 1.0


def test_holm_matches_a_hand_worked_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max(0.04, 0.06) = 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = stats.holm([0.01, math.nan, 0.04])  # an untested pair is not in the family
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1])
    assert adjusted[2] == pytest.approx(0.04)
    assert stats.holm([0.6, 0.7]) == [1.0, 1.0]


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_expected_best_equals_the_average_over_all_subsets(direction):
    values = [0.7, 0.3, 0.9, 0.3, 0.5, 1.2, 0.8]
    best = min if direction == "minimize" else max
    brute = [statistics.fmean(best(subset) for subset in itertools.combinations(values, n))
             for n in range(1, len(values) + 1)]
    assert expected_best(values, direction) == pytest.approx(brute, rel=1e-12)


def two_level(per_seed: dict[int, list[float]]) -> resampling.SeedItems:
    """A cell's item values (unit weights) as the report resamples them."""
    return resampling.from_items(np.array([per_seed[s] for s in sorted(per_seed)]),
                                 np.ones(len(next(iter(per_seed.values())))))


def test_a_binary_report_tests_seeds_and_items_and_shows_mcnemar_given_the_models(tmp_path):
    finals = {"gru": {10: wrong_on(0), 11: wrong_on(1)},
              "lstm": {10: wrong_on(10), 11: wrong_on(8)},
              "rnn": {10: wrong_on(1), 11: wrong_on(2)}}
    storage = fake_sweep(tmp_path, finals, kind="binary", weights=[1.0] * 20,
                         primary="accuracy", direction="maximize", seeds=SEEDS,
                         trials={"gru": [0.5, 0.3, 0.4]},
                         extra_attrs={"gru": {"selected_trial": 2,
                                              "selection": {"1": 0.45, "2": 0.42}}})
    # A final left by an older protocol (seed 0 = the search seed) is not a final any more.
    stale = optuna.load_study(study_name="seqbench/fake/small/lstm",
                              storage=open_storage(storage))
    stale.set_user_attr("final_seed0", {"run_dir": str(tmp_path), "trial": 0,
                                        "metrics": {"test_accuracy": 0.0}})
    (folder,) = write_reports(storage, tmp_path / "report")

    assert {"table.md", "table.csv", "table.tex", "pairwise.csv", "budget_curves.csv",
            "budget_curves.png", "test_metric.png"} <= {p.name for p in folder.iterdir()}
    rows = {row["cell"]: row for row in read_csv(folder / "table.csv")}
    assert rows["lstm"]["seeds"] == "2"  # seeds 10 and 11, not the stale 0
    assert float(rows["majority (baseline)"]["test_mean"]) == 0.25
    # gru's finals re-train trial 2 (0.4 in the search, 0.42 over re-runs), not the best 0.3;
    # rnn's study predates selection: its best trial, and no re-run value.
    assert (rows["gru"]["val_search"], rows["gru"]["val_reruns"]) == ("0.4", "0.42")
    assert (rows["rnn"]["val_search"], rows["rnn"]["val_reruns"]) == ("1.0", "nan")
    cells = {cell: two_level(per_seed) for cell, per_seed in finals.items()}
    low, high = resampling.interval(cells["lstm"])
    assert (float(rows["lstm"]["ci_low"]), float(rows["lstm"]["ci_high"])) == pytest.approx(
        (low, high))
    # wider than the seeds alone say: the test items count too
    seeds_only = scipy_stats.ttest_1samp([0.5, 0.6], 0.0).confidence_interval(0.95)
    assert high - low > 0 and resampling.cell_variance(cells["lstm"]).items > 0
    assert (high - low) != pytest.approx(seeds_only.high - seeds_only.low)

    pairs = {f"{r['a']}-{r['b']}": r for r in read_csv(folder / "pairwise.csv")}
    new = {pair: resampling.difference(cells[pair.split("-")[0]], cells[pair.split("-")[1]]).p
           for pair in pairs}
    holm = dict(zip(new, stats.holm(list(new.values()))))
    for pair, row in pairs.items():
        assert float(row["p"]) == pytest.approx(new[pair])
        assert float(row["p_holm"]) == pytest.approx(holm[pair])
        assert row["survives"] == str(holm[pair] < 0.05)
        assert float(row["p_better_low"]) <= float(row["p_better"]) <= float(row["p_better_high"])
    assert pairs["gru-lstm"]["survives"] == "True" and pairs["gru-rnn"]["survives"] == "False"
    assert float(pairs["gru-lstm"]["p_better"]) == 1.0  # every gru seed beats every lstm seed
    # Given these trained models: McNemar, discordant items pooled over the two seeds:
    # gru-lstm 17/0, gru-rnn 2/0, lstm-rnn 0/15.
    raw = {"gru-lstm": 2 * 0.5 ** 17, "gru-rnn": 2 * 0.5 ** 2, "lstm-rnn": 2 * 0.5 ** 15}
    holm_models = dict(zip(raw, stats.holm(list(raw.values()))))
    for pair, p in raw.items():
        assert float(pairs[pair]["p_models"]) == pytest.approx(p)
        assert float(pairs[pair]["p_models_holm"]) == pytest.approx(holm_models[pair])
        assert pairs[pair]["models_test"] == "exact McNemar test"
    assert pairs["lstm-rnn"]["detail"] == "0/15"
    assert rows["lstm"]["better_than"] == ""
    assert [rows[c]["top"] for c in ("gru", "lstm", "rnn")] == [
        "True", str(not any(pairs[p]["survives"] == "True" for p in ("gru-lstm", "lstm-rnn"))),
        "True"]

    table = (folder / "table.md").read_text()
    assert "| **rnn** | 0.925 |" in table and "| lstm | 0.55 |" in table
    assert "\\textit{majority (baseline)} & 0.25" in (folder / "table.tex").read_text()
    assert "Sources of chance counted: training seeds (2 per cell) and test sampling (the 20 " \
           "test items as independent draws; task 'fake' is not installed here to say whether " \
           "its items share data). Not counted: the search" in table
    assert "Given these trained models: the exact McNemar test, because test_accuracy is " \
           "right or wrong on each of the 20 test items" in table
    assert "| 1.53e-05 (4.58e-05); 17/0 |" in table  # gru − lstm, McNemar (Holm); discordant
    assert "| *majority (baseline)* | 0.25 |" in table
    assert "Seeds: search 0; rerun 1, 2; final 10, 11." in table
    assert "seqbench report --storage" in table and "seqbench sweep --task fake" in table

    curves = [row for row in read_csv(folder / "budget_curves.csv") if row["cell"] == "gru"]
    # completed 0.5, 0.3, 0.4 and a pruned trial at its best 0.6; the failed one has none.
    assert [float(row["expected_best_val_nll"]) for row in curves] == pytest.approx(
        expected_best([0.5, 0.3, 0.4, 0.6], "minimize"))
    assert float(curves[0]["expected_best_val_nll"]) == pytest.approx(0.45)
    assert float(curves[-1]["expected_best_val_nll"]) == pytest.approx(0.3)


def test_a_pruned_trial_of_a_k_fold_search_counts_as_the_worst_completed_one(tmp_path):
    """A pruned trial of a k-fold search has only fold 0's best epoch; beside completed
    trials' means over folds it would pass for the best of the search, and selection never
    picks it, so it counts as the worst completed trial. A single-split search, where the
    pruned trial's best epoch is on the same scale, keeps it at that value."""
    finals = {cell: {10: wrong_on(1), 11: wrong_on(2)} for cell in ("gru", "lstm")}
    storage = fake_sweep(tmp_path, finals, kind="binary", weights=[1.0] * 20,
                         primary="accuracy", direction="maximize",
                         trials={"gru": [0.9, 0.7], "lstm": [0.9, 0.7]},
                         extra_attrs={"gru": {"protocol": {"folds": 5}}})
    cells = {cell.cell: cell for cell in collect(storage)[("fake", "small")]}
    assert sorted(cells["gru"].trial_values()) == [0.7, 0.9, 0.9]  # pruned: best 0.6 on fold 0
    assert sorted(cells["lstm"].trial_values()) == [0.6, 0.7, 0.9]
    (folder,) = write_reports(storage, tmp_path / "report")
    assert "for gru, whose search validated on folds and pruned on fold 0 alone, a pruned " \
           "trial has no value on the folds' scale and counts as the worst completed trial" \
           in (folder / "table.md").read_text()


def test_against_a_reference_compares_each_cell_with_it_only(tmp_path):
    """Greff et al.'s design: every variant against the vanilla LSTM, Holm over those only."""
    finals = {"gru": {10: wrong_on(0), 11: wrong_on(0)},
              "lstm": {10: wrong_on(10), 11: wrong_on(8)},
              "rnn": {10: wrong_on(1), 11: wrong_on(2)}}
    storage = fake_sweep(tmp_path, finals, kind="binary", weights=[1.0] * 20,
                         primary="accuracy", direction="maximize", seeds=SEEDS)
    (folder,) = write_reports(storage, tmp_path / "report", against="lstm")

    pairs = {f"{r['a']}-{r['b']}": r for r in read_csv(folder / "pairwise.csv")}
    assert set(pairs) == {"lstm-gru", "lstm-rnn"}  # no gru-rnn: a family of two, not three
    holm = {"lstm-gru": 2 * (2 * 0.5 ** 18), "lstm-rnn": 2 * 0.5 ** 15}  # x2, then x1
    for pair, p in holm.items():
        assert float(pairs[pair]["p_models_holm"]) == pytest.approx(p)
    cells = {cell: two_level(per_seed) for cell, per_seed in finals.items()}
    new = [resampling.difference(cells["lstm"], cells[other]).p for other in ("gru", "rnn")]
    assert [float(pairs[pair]["p_holm"]) for pair in ("lstm-gru", "lstm-rnn")] == \
        pytest.approx(stats.holm(new))
    table = (folder / "table.md").read_text()
    assert "Holm-corrected over 2 comparisons, each cell against lstm, and" in table
    assert "--against lstm --output-dir" in table
    assert "Bold: not significantly worse than lstm." in table
    assert "Against the reference lstm (test accuracy " in table  # the verdict, in words
    assert "gru and rnn are significantly better" in table and "has the best mean" in table
    assert not (tmp_path / "other").exists()  # refused before any folder was written
    with pytest.raises(SeqbenchError, match="--against tcn: no final runs of that cell in "
                                            "fake/small; cells with final runs there: gru, "
                                            "lstm, rnn"):
        write_reports(storage, tmp_path / "other", against="tcn")


def test_a_sweep_run_in_stages_prints_every_stage_command(tmp_path):
    """`--cells lstm,gru`, later `--cells rnn`: regenerating the table takes both commands."""
    finals = {cell: {10: wrong_on(1), 11: wrong_on(2)} for cell in ("gru", "lstm", "rnn")}
    first, later = ("seqbench sweep --task fake --cells lstm,gru",
                    "seqbench sweep --task fake --cells rnn")
    storage = fake_sweep(tmp_path, finals, kind="binary", weights=[1.0] * 20,
                         primary="accuracy", direction="maximize", seeds=SEEDS,
                         extra_attrs={"gru": {"command": first}, "lstm": {"command": first},
                                      "rnn": {"command": later}})
    (folder,) = write_reports(storage, tmp_path / "report")
    commands = (folder / "table.md").read_text().split("```bash\n")[1].split("\n```")[0]
    assert commands.splitlines()[:2] == [first, later]
    assert len(commands.splitlines()) == 3  # and the report command


def test_a_published_sweep_rebuilds_the_same_report_from_small_files_alone(tmp_path):
    from seqbench.sweeps.publish import publish

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    finals = {"gru": {10: wrong_on(0), 11: wrong_on(1)}, "lstm": {10: wrong_on(5), 11: wrong_on(4)}}
    storage = fake_sweep(sweep, finals, kind="binary", weights=[1.0] * 20, primary="accuracy",
                         direction="maximize", seeds=SEEDS, extra_attrs={
                             cell: {"plan": {"output_dir": str(sweep)}} for cell in finals})
    (sweep / "finals" / "gru" / "seed10" / "best.ckpt").write_bytes(b"weights")
    results = tmp_path / "results"
    for _ in range(2):  # publishing again replaces the studies instead of adding copies
        assert publish(storage, "seqbench", results) == ["seqbench/fake/small/gru",
                                                         "seqbench/fake/small/lstm"]
    assert optuna.get_all_study_names(open_storage(str(results / "studies.journal"))) == [
        "seqbench/fake/small/gru", "seqbench/fake/small/lstm"]
    assert sorted(p.name for p in (results / "finals" / "gru" / "seed10").iterdir()) == [
        "history.csv", "metrics.json", "test_items.csv"]  # no checkpoint
    # The published copies are read even while the sweep's own folders still exist (they may
    # since hold other finals, e.g. after the sweep command was re-run with --refit).
    published = collect(str(results / "studies.journal"))[("fake", "small")]
    assert all(f["run_dir"].startswith(str(results)) for c in published for f in c.finals)
    shutil.rmtree(sweep / "finals")  # the sweep's own records are gone: only results/ is left
    (folder,) = write_reports(str(results / "studies.journal"), tmp_path / "report")
    rows = {row["cell"]: row for row in read_csv(folder / "table.csv")}
    assert rows["gru"]["seeds"] == "2" and float(rows["lstm"]["test_mean"]) == 0.775
    with pytest.raises(SeqbenchError, match="no 'other' studies"):
        publish(storage, "other", results)
    assert main(["publish", "--study", "seqbench", "--to", str(results), "--storage",
                 str(tmp_path / "missing.journal")]) == 2
    with pytest.raises(SeqbenchError, match="already the results journal"):
        publish(str(results / "studies.journal"), "seqbench", results)
    with pytest.raises(SeqbenchError, match="seed10' is missing"):  # nothing half-published
        publish(storage, "seqbench", tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()


def test_publish_refuses_an_unfinished_cell_and_publishes_the_finished_ones_alone(tmp_path):
    from seqbench.sweeps.publish import publish

    finals = {"gru": {10: wrong_on(0), 11: wrong_on(1)}, "rnn": {10: wrong_on(2)}}  # rnn: 1 of 2
    storage = fake_sweep(tmp_path, finals, kind="binary", weights=[1.0] * 20, primary="accuracy",
                         direction="maximize", seeds=SEEDS, extra_attrs={
                             cell: {"plan": {"output_dir": str(tmp_path)}} for cell in finals})
    results = tmp_path / "results"
    with pytest.raises(SeqbenchError, match=r"unfinished: seqbench/fake/small/rnn \(1 of 2 "
                                            r"finals\).*--cells"):
        publish(storage, "seqbench", results)
    assert not results.exists()  # nothing half-published
    assert main(["publish", "--study", "seqbench", "--to", str(results), "--storage",
                 storage]) == 2
    assert main(["publish", "--study", "seqbench", "--to", str(results), "--storage", storage,
                 "--cells", "gru"]) == 0
    assert optuna.get_all_study_names(open_storage(str(results / "studies.journal"))) == [
        "seqbench/fake/small/gru"]
    for cells in (["lstm"], ["gru", "lstm"]):  # a mistyped cell is never silently left out
        with pytest.raises(SeqbenchError,
                           match="no 'seqbench' studies of cell 'lstm'.*its cells are gru,rnn"):
            publish(storage, "seqbench", results, cells=cells)


def test_a_continuous_report_uses_the_paired_permutation_test(tmp_path):
    weights = [10.0, 20.0, 30.0]
    finals = {"a": {10: [5.0, 7.0, 9.0], 11: [7.0, 9.0, 11.0]},   # item means 6, 8, 10
              "b": {10: [5.0, 6.0, 7.0], 11: [5.0, 6.0, 7.0]}}   # differences 1, 2, 3
    storage = fake_sweep(tmp_path, finals, kind="continuous", weights=weights,
                         primary="nll", direction="minimize",
                         seeds={**SEEDS, "rerun": []})
    (folder,) = write_reports(storage, tmp_path / "report")
    (pair,) = read_csv(folder / "pairwise.csv")
    assert float(pair["p_models"]) == pytest.approx(0.25)
    assert float(pair["difference"]) == pytest.approx(6 / 60)
    # Linearised around each cell's ratio (0.8 and 0.3: sum over sum of weights), the items
    # of a (5, 7, 9 / 7, 9, 11 over weights 10, 20, 30) and of b are, per seed:
    ratio_a, ratio_b = 48 / 120, 36 / 120
    mean_w = 20.0
    a = (np.array([[5.0, 7.0, 9.0], [7.0, 9.0, 11.0]]) - ratio_a * np.array(weights)) / mean_w \
        + ratio_a
    b = (np.array([[5.0, 6.0, 7.0], [5.0, 6.0, 7.0]]) - ratio_b * np.array(weights)) / mean_w \
        + ratio_b
    expected = resampling.difference(resampling.SeedItems(a), resampling.SeedItems(b))
    assert float(pair["p"]) == pytest.approx(expected.p)
    assert pair["survives"] == str(expected.p < 0.05)
    table = (folder / "table.md").read_text()
    assert "Given these trained models: the paired permutation test, because per-item " \
           "test_nll values of the 3 test items" in table and "exact" in table
    assert "Seeds: search 0; rerun none; final 10, 11." in table


def test_without_item_files_the_report_falls_back_to_welch_and_says_why(tmp_path):
    finals = {"a": {0: [1.0, 2.0], 1: [1.5, 2.0], 2: [1.2, 2.2]},
              "b": {0: [2.0, 3.0], 1: [2.5, 3.5], 2: [2.0, 3.1]}}
    storage = fake_sweep(tmp_path, finals, kind="continuous", weights=[1.0, 1.0],
                         primary="nll", direction="minimize", items_file=False)
    (folder,) = write_reports(storage, tmp_path / "report")
    (pair,) = read_csv(folder / "pairwise.csv")
    a = [sum(v) / 2 for v in finals["a"].values()]
    b = [sum(v) / 2 for v in finals["b"].values()]
    assert float(pair["p"]) == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert pair["p_models"] == "nan" and pair["models_test"] == ""
    table = (folder / "table.md").read_text()
    assert "Sources of chance counted: training seeds (3 per cell) only, because a's final " \
           "runs (seeds 0, 1, 2) have no per-item test scores (test_items.csv)" in table
    assert "Given these trained models" not in table
    assert "Seeds:" not in table  # an older study that recorded none


def test_item_files_that_disagree_fall_back_to_welch(tmp_path):
    finals = {"a": {10: [5.0, 7.0, 9.0], 11: [7.0, 9.0, 11.0]},
              "b": {10: [5.0, 6.0, 7.0], 11: [5.0, 6.0, 8.0]}}
    storage = fake_sweep(tmp_path, finals, kind="continuous", weights=[10.0, 20.0, 30.0],
                         primary="nll", direction="minimize", seeds=SEEDS)
    items = tmp_path / "finals" / "b" / "seed11" / "test_items.csv"
    items.write_text(items.read_text().replace(",30.0", ",31.0"))  # one item, other frames
    (folder,) = write_reports(storage, tmp_path / "report")
    assert "training seeds (2 per cell) only, because the final runs' item files differ in " \
           "their test items, weights or metric" in (folder / "table.md").read_text()


def test_a_single_test_item_falls_back_to_welch(tmp_path):
    """Airline is scored on one 36-month window: no paired test can use one item."""
    finals = {"a": {10: [1.2], 11: [1.4]}, "b": {10: [2.0], 11: [2.3]}}
    storage = fake_sweep(tmp_path, finals, kind="continuous", weights=[36.0],
                         primary="mase", direction="minimize", seeds=SEEDS)
    (folder,) = write_reports(storage, tmp_path / "report")
    (pair,) = read_csv(folder / "pairwise.csv")
    a = [v[0] / 36 for v in finals["a"].values()]
    b = [v[0] / 36 for v in finals["b"].values()]
    assert float(pair["p"]) == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert "only, because the test split has 1 item (one forecast window), so test sampling " \
           "cannot be resampled" in (folder / "table.md").read_text()


def test_sweeps_of_one_cell_with_other_settings_are_two_models_in_one_table(tmp_path):
    """`seqbench sweep --set bidirectional=true` beside a plain sweep of the same cells: one
    report names each by the setting that tells them apart and tests them paired, item by
    item, like any two cells."""
    finals = {"gru": {1000: wrong_on(6)}, "rnn": {1000: wrong_on(9)}}
    storage = fake_sweep(tmp_path, finals, kind="binary", weights=[1.0] * 20,
                         primary="accuracy", direction="maximize")
    source = open_storage(storage)
    optuna.copy_study(from_study_name="seqbench/fake/small/gru", from_storage=source,
                      to_storage=source, to_study_name="bi/fake/small/gru")
    copied = optuna.load_study(study_name="bi/fake/small/gru", storage=source)
    copied.set_user_attr("plan", {"settings": {"bidirectional": True, "threads": 1}})
    plain = optuna.load_study(study_name="seqbench/fake/small/gru", storage=source)
    plain.set_user_attr("plan", {"settings": {"threads": 1}})
    cells = collect(storage, "seqbench,bi")[("fake", "small")]
    assert sorted(cell.cell for cell in cells) == ["gru", "gru[bidirectional=true]", "rnn"]
    (folder,) = write_reports(storage, tmp_path / "report", study="seqbench,bi")
    pairs = {(row["a"], row["b"]) for row in read_csv(folder / "pairwise.csv")}
    assert len(pairs) == 3 and any("gru[bidirectional=true]" in pair for pair in pairs)


def test_an_oracle_reference_is_a_level_to_approach_never_a_recommendation(tmp_path):
    """ASR's classifier on the true digit boundaries is given what no cell is: better than
    every cell, it is still no baseline to "try before a recurrent cell"."""
    from seqbench.reports import compare, verdict

    finals = {"gru": {1000: wrong_on(6)}, "rnn": {1000: wrong_on(9)}}
    storage = fake_sweep(tmp_path, finals, kind="binary", weights=[1.0] * 20,
                         primary="accuracy", direction="maximize")
    cells = sorted(collect(storage)[("fake", "small")], key=lambda c: c.cell)
    pairs = compare.pairwise(cells, None)
    said = verdict.for_dataset(cells, pairs, {"oracle_segments": 0.99, "majority": 0.25})
    assert said.baseline is None and "try the baseline" not in said.text
    assert said.text.endswith("The oracle_segments reference, which is given what no cell is, "
                              "reaches test accuracy 0.99 against the best cell's 0.7: a level "
                              "to approach, not an alternative.")
    plain = verdict.for_dataset(cells, pairs, {"segments": 0.99})
    assert plain.baseline == "segments" and "The segments baseline beats every cell" in plain.text


def test_a_report_refuses_what_it_would_get_wrong_in_silence(tmp_path):
    """A mistyped sweep in `--study a,b` would be left out; two sweeps tuning the same cell
    on one dataset would give one table two rows of that cell, tested as one; a damaged run
    record would end the report in a traceback."""
    finals = {"gru": {1000: [1.0, 0.0]}, "rnn": {1000: [0.0, 1.0]}}
    storage = fake_sweep(tmp_path, finals, kind="binary", weights=[1.0, 1.0],
                         primary="accuracy", direction="maximize")
    source = open_storage(storage)
    optuna.copy_study(from_study_name="seqbench/fake/small/gru", from_storage=source,
                      to_storage=source, to_study_name="again/fake/small/gru")
    with pytest.raises(SeqbenchError, match="no 'seqbnch' studies.*its sweeps are again, "
                                            "seqbench"):
        collect(storage, "seqbench,seqbnch")
    with pytest.raises(SeqbenchError, match="studies 'seqbench/fake/small/gru' and "
                                            "'again/fake/small/gru' both tune cell 'gru' on "
                                            "fake/small with the same settings"):
        collect(storage, "seqbench,again")
    history = tmp_path / "finals" / "gru" / "seed1000" / "history.csv"
    history.write_text("epoch,val_accuracy\n1,0.5\n2,abc\n")
    with pytest.raises(SeqbenchError, match="history.csv: column 'val_accuracy' holds 'abc'"):
        [cell.validation_curves() for cell in collect(storage, "seqbench")[("fake", "small")]]
    history.write_text("epoch,val_accuracy\n1,0.5\n2,0.4\n")
    items = tmp_path / "finals" / "rnn" / "seed1000" / "test_items.csv"
    items.write_text("item,valeur,weight\nitem0,0,1\n")
    with pytest.raises(SeqbenchError, match="test_items.csv: no 'value' column"):
        write_reports(storage, tmp_path / "report", study="seqbench")
