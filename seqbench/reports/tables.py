"""The comparison table: one row per cell, in Markdown, CSV and LaTeX.

Each row gives the mean final test value with its 95% interval over fresh training runs and
test samples (`resampling`) and the cells it beats by a difference that survives the
Holm-corrected pairwise tests (`compare.py`); a cell in bold has no cell significantly
better than it. A second table lists every pair: the difference and its interval, the
probability that a fresh run of one cell beats one of the other, the raw and corrected
p-values, and the item-level test given these trained models; the text names the sources of
chance counted and the tests.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from seqbench.contracts import FAMILIES
from seqbench.reports import repeats
from seqbench.reports.collect import CellSummary
from seqbench.reports.compare import ALPHA, Comparison, Pairwise
from seqbench.reports.stats import LEVEL

#: What a table's interval is, in words (Markdown, the page and LaTeX say the same).
INTERVAL = (f"{LEVEL:.0%} interval over fresh training runs and test samples (Student's t "
            "with Satterthwaite's degrees of freedom)")


def by_family(cell: CellSummary) -> tuple[int, str, str]:
    """Sort key: the cells of one family together, families in `FAMILIES` order (unknown
    last), names in order within a family."""
    order = FAMILIES.index(cell.family) if cell.family in FAMILIES else len(FAMILIES)
    return order, cell.family, cell.cell


def rows(cells: list[CellSummary], pairwise: Pairwise) -> list[dict[str, Any]]:
    """Table rows as plain data (numbers unrounded; formatting is the writers' job), grouped
    by family. Where the table mixes families (LSTM beside a Transformer), each row also
    says its cell's family, which the writers show beside the name; a table of one family
    reads as before."""
    mixed = len({cell.family for cell in cells}) > 1
    result = []
    for cell in sorted(cells, key=by_family):
        values = cell.test_values
        mean = statistics.fmean(values) if values else math.nan
        half = pairwise.half_width(cell.cell)
        val_search, val_reruns = cell.selected_val()
        result.append({
            "cell": cell.cell,
            **({"family": cell.family or "unknown"} if mixed else {}),
            "test_mean": mean,
            "ci_low": mean - half,
            "ci_high": mean + half,
            "test_std": statistics.stdev(values) if len(values) > 1 else math.nan,
            "seeds": len(values),
            "val_search": val_search,
            "val_reruns": val_reruns,
            "parameters": cell.mean_of("parameters"),
            "seconds_per_epoch": cell.mean_of("seconds_per_epoch"),
            **{f"trials_{k}": v for k, v in cell.trial_counts.items()},
            "top": bool(values) and not pairwise.beaten(cell.cell),
            "better_than": "; ".join(f"{other} ({p:.3g})"
                                     for other, p in pairwise.better_than(cell.cell)),
            "defaults": cell.defaults_kept(),
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


def baseline_rows(cells: list[CellSummary]) -> list[dict[str, Any]]:
    """The baselines as CSV rows: a name and a test value, the cells' other columns empty."""
    return [{"cell": f"{name} (baseline)", "test_mean": value}
            for name, value in baseline_values(cells).items()]


def label(row: dict[str, Any]) -> str:
    """A row's cell name, with its family where the table mixes families."""
    return f"{row['cell']} ({row['family']})" if "family" in row else row["cell"]


def _fmt(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}g}"


def _count(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{round(value):,}"


def _interval(row: dict[str, Any]) -> str:
    return span(row["ci_low"], row["ci_high"])


PAIR_FIELDS = ["a", "b", "difference", "ci_low", "ci_high", "p_better", "p_better_low",
               "p_better_high", "p", "p_holm", "survives", "test", "p_models", "p_models_holm",
               "models_test", "detail"]


def pair_rows(pairwise: Pairwise) -> list[dict[str, Any]]:
    return [{"a": c.a, "b": c.b, "difference": c.difference, "ci_low": c.low,
             "ci_high": c.high, "p_better": c.better, "p_better_low": c.better_low,
             "p_better_high": c.better_high, "p": c.p, "p_holm": c.p_holm,
             "survives": c.survives, "test": pairwise.test, "p_models": c.p_models,
             "p_models_holm": c.p_models_holm, "models_test": pairwise.models_test,
             "detail": c.detail}
            for c in pairwise.comparisons]


def span(low: float, high: float) -> str:
    """"[low, high]" as tables print numbers, or "n/a"."""
    return "n/a" if math.isnan(low) else f"[{_fmt(low)}, {_fmt(high)}]"


def pair_cells(pairwise: Pairwise, c: Comparison) -> list[str]:
    """One pair's entries as the Markdown and the page show them (text, unescaped)."""
    models = (f"{_fmt(c.p_models, 3)} ({_fmt(c.p_models_holm, 3)})"
              + (f"; {c.detail}" if c.detail else "")) if pairwise.models_test else "–"
    return [f"{c.a} − {c.b}", f"{_fmt(c.difference)} {span(c.low, c.high)}",
            f"{_fmt(c.better, 2)} {span(c.better_low, c.better_high)}", _fmt(c.p, 3),
            _fmt(c.p_holm, 3), "yes" if c.survives else "no", models]


PAIR_HEADERS = ["pair", f"difference {LEVEL:.0%} CI", "P(first better) on fresh runs", "p",
                "Holm p", "survives", "given these trained models: p (Holm p)"]


def tests_text(pairwise: Pairwise) -> str:
    """Which tests ran and why, in words (Markdown and the page)."""
    text = (f"{pairwise.sources} Test: {pairwise.test} (seqbench.reports.resampling): the "
            "difference of means against the variance of both cells' seed means plus the "
            "test-sampling variance of the items' differences; p-values are Holm-corrected "
            f"over {pairwise.family()}, and a difference survives at corrected p < {ALPHA}. "
            "P(first better) is the share of seed pairs in which the first cell's run is "
            "better (Bouthillier et al. 2021), with a bootstrap interval over seeds and test "
            "items.")
    if pairwise.models_test:
        text += (f" Given these trained models: the {pairwise.models_test}, because "
                 f"{pairwise.models_why} It holds the trained models fixed, so training "
                 "randomness never enters it; it is shown, not used for the verdict.")
    return text


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


def budget_scale(cells: list[CellSummary]) -> str:
    """How the budget curves count pruned trials of a k-fold search (see
    `CellSummary.trial_values`), so a reader knows what the curves show."""
    folded = [cell.cell for cell in cells
              if cell.pruned_on_one_fold() and cell.trial_counts.get("pruned")]
    if not folded:
        return ""
    return (f"; for {', '.join(folded)}, whose search validated on folds and pruned on fold 0 "
            "alone, a pruned trial has no value on the folds' scale and counts as the worst "
            "completed trial: it spends budget but is never selected")


def seeds_line(cells: list[CellSummary]) -> str:
    """'Seeds: search 0; rerun 1, 2; final 3, 4.', so a reader sees the finals are fresh."""
    described: dict[str, list[str]] = defaultdict(list)
    for cell in cells:
        if cell.seeds:
            described["; ".join(f"{kind} {', '.join(map(str, seeds)) or 'none'}"
                                for kind, seeds in cell.seeds.items())].append(cell.cell)
    if len(described) == 1:
        return f"Seeds: {next(iter(described))}."
    return " ".join(f"Seeds of {', '.join(names)}: {text}." for text, names in described.items())


def diverged_line(cells: list[CellSummary]) -> str:
    """Which final seeds diverged, so a row's seed count below the others' is explained
    and the instability is not hidden by the mean of the seeds that trained."""
    parts = [f"{cell.cell} seed {final['seed']} "
             f"({final['metrics'].get('error', 'diverged').rstrip('.')})"
             for cell in cells for final in cell.diverged]
    if not parts:
        return ""
    return ("Diverged finals: " + "; ".join(parts) + ". A cell's row and its tests count its "
            "other seeds; a divergence on a fresh seed is a fact about the configuration's "
            "reliability that the mean leaves out.")


def pairwise_markdown(pairwise: Pairwise) -> list[str]:
    """The pairwise section: which test and why, then every pair."""
    if not pairwise.comparisons:
        return ["## Pairwise comparisons", "", "Only one cell has final runs: nothing to compare.",
                ""]
    lines = [
        "## Pairwise comparisons",
        "",
        tests_text(pairwise),
        "",
        "| " + " | ".join(PAIR_HEADERS) + " |",
        "|" + "---|" * len(PAIR_HEADERS),
    ]
    lines += ["| " + " | ".join(pair_cells(pairwise, c)) + " |" for c in pairwise.comparisons]
    return [*lines, ""]


def markdown(cells: list[CellSummary], rows_: list[dict[str, Any]], pairwise: Pairwise,
             commands: list[str], headline: str = "") -> str:
    """The table, the pairwise tests and the regenerate commands, after the `headline`
    (`verdict.for_dataset`: what the table says, in words)."""
    first = cells[0]
    metric = f"test {first.primary_metric}"
    arrow = "lower is better" if first.direction == "minimize" else "higher is better"
    level = f"{LEVEL:.0%}"
    lines = [
        f"# {first.task} / {first.dataset}",
        "",
        *([f"**Verdict.** {headline}", ""] if headline else []),
        f"| cell | {metric}: mean | {level} CI | seeds "
        f"| val {first.selection_metric}: search / re-runs | parameters | s/epoch "
        "| trials done/pruned/failed | better than (Holm p) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows_:
        name = f"**{label(r)}**" if r["top"] else label(r)
        name += " (defaults)" if r["defaults"] else ""
        lines.append(
            f"| {name} | {_fmt(r['test_mean'])} | {_interval(r)} | {r['seeds']} "
            f"| {_fmt(r['val_search'])} / {_fmt(r['val_reruns'])} | {_count(r['parameters'])} "
            f"| {_fmt(r['seconds_per_epoch'], 3)} "
            f"| {r['trials_complete']}/{r['trials_pruned']}/{r['trials_fail']} "
            f"| {r['better_than'] or '–'} |"
        )
    for name, value in baseline_values(cells).items():
        lines.append(f"| *{name} (baseline)* | {_fmt(value)} | | | | | | | |")
    lines += [
        "",
        f"{metric}: {arrow}. Mean over the final seeds with its {INTERVAL}. val: the "
        "selected configuration's validation value in the search and "
        "its mean over the selection re-run seeds; (defaults): no tuned configuration beat "
        "the defaults by more than one standard error there, so the defaults were kept. "
        f"Bold: {pairwise.top_means()}. \"better than\" lists the cells this one beats by "
        "a difference that survives the Holm-corrected pairwise tests below.",
        "",
        *pairwise_markdown(pairwise),
        *repeats.markdown(cells),
        "Budget: `budget_curves.png` and `budget_curves.csv` give each cell's expected best "
        f"validation {first.selection_metric} against the number of trials (Dodge et al. "
        "2019; unbiased estimator of Tang et al. 2020), over its completed trials and its "
        "pruned trials at their best reported value" + budget_scale(cells) + ".",
        "",
        *([line, ""] if (line := seeds_line(cells)) else []),
        *([line, ""] if (line := diverged_line(cells)) else []),
        *([code, ""] if (code := provenance(cells)) else []),
        "Regenerate:",
        "",
        "```bash",
        *commands,
        "```",
        "",
    ]
    return "\n".join(lines)


def write_csv(path: Path, rows_: list[dict[str, Any]], fieldnames: list[str]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows_)


def latex(cells: list[CellSummary], rows_: list[dict[str, Any]], pairwise: Pairwise) -> str:
    first = cells[0]
    escape = lambda text: str(text).replace("_", r"\_").replace("%", r"\%")  # noqa: E731
    level = escape(f"{LEVEL:.0%}")
    body = []
    for r in rows_:
        value = _fmt(r["test_mean"])
        if r["top"]:
            value = f"\\textbf{{{value}}}"
        body.append(f"{escape(label(r))} & {value} & {_interval(r)} & "
                    f"{_count(r['parameters'])} & {escape(r['better_than'] or '--')} \\\\")
    body += [f"\\textit{{{escape(name)} (baseline)}} & {_fmt(value)} & & & \\\\"
             for name, value in baseline_values(cells).items()]
    return "\n".join([
        "\\begin{table}[t]",
        "\\centering",
        "\\begin{tabular}{lrrrl}",
        "\\toprule",
        f"Cell & Test {escape(first.primary_metric)} & {level} CI & Parameters & "
        "Better than (Holm $p$) \\\\",
        "\\midrule",
        *body,
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{escape(first.task)} / {escape(first.dataset)}: mean over final seeds "
        f"with its {escape(INTERVAL)}; {escape(pairwise.test)}, "
        f"Holm-corrected over {escape(pairwise.family())}, $p < {ALPHA}$; bold: "
        f"{escape(pairwise.top_means())}.}}",
        "\\end{table}",
        "",
    ])
