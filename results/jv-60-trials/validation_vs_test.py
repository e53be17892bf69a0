"""Does cross-validation on Japanese Vowels rank configurations the way the test set does?

The 60-trial extension chose an LSTM configuration better than the defaults on every
validation statistic that then tested 2.3 points below them. One configuration is an
anecdote; this script measures the agreement over every completed trial of the sweep. Each
trial's settings are trained once more on the task's standard split with seed 1000 (a final
seed, so no search or selection seed) and tested once, and scipy.stats.spearmanr compares
the trial's cross-validated NLL (what the search ranked by) with that test accuracy and
test NLL. It trains, so it is an analysis beside the report, not part of it (reports never
train); its output, validation_vs_test.csv, is the record.

Run from the repository root, one torch job at a time (about 5 minutes on 2 cores):

    python results/jv-60-trials/validation_vs_test.py
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from optuna.trial import TrialState
from scipy import stats

import seqbench as sb
from seqbench.reports.collect import CellSummary, collect

HERE = Path(__file__).resolve().parent
CELLS = ("lstm", "gru", "rnn")
SEED = 1000


def trial_runs(summary: CellSummary, runs_dir: Path) -> list[dict]:
    cell, rows = summary.cell, []
    for trial in summary.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        metrics = sb.run("speech", cell, "japanese-vowels", SEED, output_dir=runs_dir,
                         progress=False, **trial.user_attrs["settings"]).metrics
        rows.append({"cell": cell, "trial": trial.number,
                     "defaults": bool(trial.user_attrs.get("defaults")),
                     "cv_nll": trial.value, "test_accuracy": metrics["test_accuracy"],
                     "test_nll": metrics["test_nll"]})
        print(cell, trial.number, f"cv {trial.value:.4f}",
              f"test {metrics['test_accuracy']:.4f}", flush=True)
    return rows


def main() -> None:
    (summaries,) = collect(str(HERE / "studies.journal"), "jv").values()
    by_cell = {summary.cell: summary for summary in summaries}
    with tempfile.TemporaryDirectory() as runs_dir:
        rows = [row for cell in CELLS for row in trial_runs(by_cell[cell], Path(runs_dir))]
    with open(HERE / "validation_vs_test.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for cell in CELLS:
        mine = [row for row in rows if row["cell"] == cell]
        cv = [row["cv_nll"] for row in mine]
        accuracy = stats.spearmanr(cv, [row["test_accuracy"] for row in mine])
        nll = stats.spearmanr(cv, [row["test_nll"] for row in mine])
        print(f"{cell}: {len(mine)} trials; Spearman of cross-validated NLL with test "
              f"accuracy {accuracy.statistic:.2f} (p {accuracy.pvalue:.2g}), with test NLL "
              f"{nll.statistic:.2f} (p {nll.pvalue:.2g})")


if __name__ == "__main__":
    main()
