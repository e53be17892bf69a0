"""Reports: tables, confidence intervals, paired tests, budget curves and plots, computed
from a sweep's storage and run records alone."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from seqbench.reports import budget, compare, html, plots, ranking, tables, verdict
from seqbench.reports.collect import CellSummary, collect


def fanova(cells: list[CellSummary]) -> dict[str, dict[str, float]]:
    """fANOVA importance per cell (Hutter et al. 2014, as in Greff et al. 2017).

    Cells with too few completed trials, or whose trials all used the same values, have no
    importances and are left out.
    """
    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    result = {}
    for cell in cells:
        try:
            result[cell.cell] = optuna.importance.get_param_importances(
                cell.study, evaluator=FanovaImportanceEvaluator(seed=0))
        except (ValueError, RuntimeError):
            continue
    return result


def completed_trials(cell: CellSummary) -> int:
    from optuna.trial import TrialState

    return len(cell.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def write_reports(storage: str, output_dir: Path, study: str = "seqbench",
                  task: str | None = None, dataset: str | None = None,
                  against: str | None = None) -> list[Path]:
    """Write one folder per (task, dataset) under `output_dir`; return the folders.

    Without a task or dataset filter, `output_dir/index.html` also ranks the cells across
    every (task, dataset) of the storage. With `against`, every cell is compared with that
    one only (a reference named in advance) instead of every pair with every other."""
    grouped, overview = collect(storage, study, task, dataset), task is None and dataset is None
    if against is not None:  # every folder or none: check before writing any
        for (task_name, dataset_name), cells in grouped.items():
            compare.check_reference(cells, against, f"{task_name}/{dataset_name}")
    written, verdicts = [], {}
    for (task_name, dataset_name), cells in sorted(grouped.items()):
        cells = sorted(cells, key=lambda c: c.cell)
        folder = Path(output_dir) / f"{task_name}-{dataset_name}"
        folder.mkdir(parents=True, exist_ok=True)
        # A sweep run in stages (`--cells lstm,gru`, later `--cells rnn`) has one command
        # per stage; every distinct one is needed to regenerate the table.
        commands = list(dict.fromkeys(c.command for c in cells if c.command)) + [
            report_command(storage, study, against, output_dir, task_name, dataset_name)]
        pairs = compare.pairwise(cells, against)
        table_rows = tables.rows(cells, pairs)
        headline = verdicts[task_name, dataset_name] = verdict.for_dataset(
            cells, pairs, tables.baseline_values(cells))
        (folder / "table.md").write_text(tables.markdown(cells, table_rows, pairs, commands,
                                                         headline.text))
        tables.write_csv(folder / "table.csv", table_rows + tables.baseline_rows(cells),
                         list(table_rows[0]))
        tables.write_csv(folder / "pairwise.csv", tables.pair_rows(pairs), tables.PAIR_FIELDS)
        (folder / "table.tex").write_text(tables.latex(cells, table_rows, pairs))
        curves = budget.curves(cells)
        budget.write_csv(folder / "budget_curves.csv", cells, curves)
        plots.budget_curves(cells, curves, folder / "budget_curves.png")
        plots.metric_distribution(cells, {c.cell: pairs.half_width(c.cell) for c in cells},
                                  folder / "test_metric.png")
        plots.optimization_history(cells, folder / "optimization_history.png")
        plots.validation_curves(cells, folder / "validation_curves.png")
        importances = fanova(cells)
        if importances:
            plots.importance(importances, {c.cell: completed_trials(c) for c in cells},
                             folder / "importance.png")
        (folder / "importance.json").write_text(json.dumps(importances, indent=2) + "\n")
        html.write_page(folder, cells, table_rows, pairs, commands, headline.text, overview)
        written.append(folder)
    if overview:
        ranking.write_page(output_dir, grouped, dict(zip(sorted(grouped), written)), verdicts,
                           report_command(storage, study, against, output_dir))
    return written


def report_command(storage: str, study: str, against: str | None, output_dir: Path,
                   task: str | None = None, dataset: str | None = None) -> str:
    """The `seqbench report` command that regenerates a report, quoted for a shell (a path
    with spaces stays one argument)."""
    parts = ["seqbench", "report", "--storage", str(storage), "--study", study]
    parts += ["--task", task, "--dataset", dataset] if task else []
    parts += ["--against", against] if against else []
    return shlex.join([*parts, "--output-dir", str(output_dir)])
