"""The comparison table: one row per cell, in Markdown, CSV and LaTeX.

Significance is Welch's unequal-variance t-test of each cell's final test values against the
best cell's (the seeds of different cells are independent, and their variances differ);
with a handful of seeds it is a weak test, and the table says how many seeds it used.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from seqbench.reports.collect import CellSummary

ALPHA = 0.05
SIGNIFICANCE_TEST = "Welch's t-test (two-sided, unequal variances)"


def mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def best_cell(cells: list[CellSummary]) -> CellSummary | None:
    """The cell with the best mean final test value (in the task's direction)."""
    scored = [c for c in cells if c.test_values]
    if not scored:
        return None
    sign = 1 if scored[0].direction == "minimize" else -1
    return min(scored, key=lambda c: sign * statistics.fmean(c.test_values))


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value; NaN when either side has fewer than two values."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return math.nan
    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        return 1.0 if statistics.fmean(a) == statistics.fmean(b) else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def rows(cells: list[CellSummary]) -> list[dict[str, Any]]:
    """Table rows as plain data (numbers unrounded; formatting is the writers' job)."""
    best = best_cell(cells)
    result = []
    for cell in sorted(cells, key=lambda c: c.cell):
        mean, std = mean_std(cell.test_values)
        p = math.nan if best is None or cell is best else welch_p(cell.test_values,
                                                                  best.test_values)
        result.append({
            "cell": cell.cell,
            "test_mean": mean,
            "test_std": std,
            "seeds": len(cell.test_values),
            "best_val": cell.best_val if cell.best_val is not None else math.nan,
            "parameters": cell.mean_of("parameters"),
            "seconds_per_epoch": cell.mean_of("seconds_per_epoch"),
            **{f"trials_{k}": v for k, v in cell.trial_counts.items()},
            "is_best": cell is best,
            "p_vs_best": p,
            "significant": (not math.isnan(p)) and p < ALPHA,
        })
    return result


def baseline_values(cells: list[CellSummary]) -> dict[str, float]:
    """Test primary metric of each task baseline (the same test windows for every cell)."""
    key = f"test_{cells[0].primary_metric}"
    for cell in cells:
        for final in cell.finals:
            baselines = final["metrics"].get("baselines", {})
            if baselines:
                return {name: values[key] for name, values in baselines.items() if key in values}
    return {}


def _fmt(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}g}"


def _count(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{round(value):,}"


def _verdict(row: dict[str, Any]) -> str:
    if row["is_best"]:
        return "best"
    if math.isnan(row["p_vs_best"]):
        return "n/a"
    return f"{row['p_vs_best']:.3f}{' *' if row['significant'] else ''}"


def provenance(cells: list[CellSummary]) -> str:
    """'Code: lstm, gru, task music from seqbench 0.1.0; mingru from seqbench-mingru 0.2.'
    so a table that compares third-party cells says which release of each it measured."""
    sources: dict[str, list[str]] = defaultdict(list)
    for cell in cells:
        for kind in ("cell", "task"):
            plugin = cell.plugins.get(kind)
            if plugin:
                label = plugin["name"] if kind == "cell" else f"task {plugin['name']}"
                names = sources[f"{plugin['distribution']} {plugin['version']}"]
                if label not in names:
                    names.append(label)
    parts = [f"{', '.join(names)} from {source}" for source, names in sources.items()]
    return f"Code: {'; '.join(parts)}." if parts else ""


def markdown(cells: list[CellSummary], rows_: list[dict[str, Any]], commands: list[str]) -> str:
    first = cells[0]
    metric = f"test {first.primary_metric}"
    arrow = "lower is better" if first.direction == "minimize" else "higher is better"
    lines = [
        f"# {first.task} / {first.dataset}",
        "",
        f"| cell | {metric} (mean ± std) | seeds | best val {first.selection_metric} | parameters "
        "| s/epoch | trials done/pruned/failed | p vs best |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows_:
        name = f"**{r['cell']}**" if r["is_best"] else r["cell"]
        lines.append(
            f"| {name} | {_fmt(r['test_mean'])} ± {_fmt(r['test_std'], 2)} | {r['seeds']} "
            f"| {_fmt(r['best_val'])} | {_count(r['parameters'])} "
            f"| {_fmt(r['seconds_per_epoch'], 3)} "
            f"| {r['trials_complete']}/{r['trials_pruned']}/{r['trials_fail']} | {_verdict(r)} |"
        )
    for name, value in baseline_values(cells).items():
        lines.append(f"| *{name} (baseline)* | {_fmt(value)} | | | | | | |")
    lines += [
        "",
        f"{metric}: {arrow}. p vs best: {SIGNIFICANCE_TEST} of the final runs' test values "
        f"against the best cell's; * marks p < {ALPHA}.",
        "",
        *([code, ""] if (code := provenance(cells)) else []),
        "Regenerate:",
        "",
        "```bash",
        *commands,
        "```",
        "",
    ]
    return "\n".join(lines)


def write_csv(path: Path, rows_: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows_[0]))
        writer.writeheader()
        writer.writerows(rows_)


def latex(cells: list[CellSummary], rows_: list[dict[str, Any]]) -> str:
    first = cells[0]
    escape = lambda text: str(text).replace("_", r"\_").replace("%", r"\%")  # noqa: E731
    body = []
    for r in rows_:
        value = f"{_fmt(r['test_mean'])} $\\pm$ {_fmt(r['test_std'], 2)}"
        if r["is_best"]:
            value = f"\\textbf{{{value}}}"
        body.append(f"{escape(r['cell'])} & {value} & {_count(r['parameters'])} & "
                    f"{escape(_verdict(r))} \\\\")
    return "\n".join([
        "\\begin{table}[t]",
        "\\centering",
        "\\begin{tabular}{lrrr}",
        "\\toprule",
        f"Cell & Test {escape(first.primary_metric)} & Parameters & $p$ vs best \\\\",
        "\\midrule",
        *body,
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{escape(first.task)} / {escape(first.dataset)}: mean $\\pm$ std over "
        f"final seeds; {escape(SIGNIFICANCE_TEST)}.}}",
        "\\end{table}",
        "",
    ])
