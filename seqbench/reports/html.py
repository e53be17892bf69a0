"""The report as one self-contained web page per (task, dataset) folder: `index.html`.

Markdown, CSV and LaTeX serve papers and scripts; the page serves a person who wants the
whole comparison at a glance. It shows what the other writers already computed (the table
rows, the pairwise tests, the figures in the folder) and adds what only a page has room
for: the hyperparameters each cell ended with, every trial, the environment and the
commands that regenerate it. Nothing is fetched when it opens: the figures are inlined as
base64 PNGs and the page's only script (click a figure to enlarge it) is inline too, so it
works from a file, an archive or an air-gapped machine.
"""

from __future__ import annotations

import base64
import json
import math
from html import escape
from pathlib import Path
from typing import Any

from seqbench.reports import tables
from seqbench.reports.collect import CellSummary
from seqbench.reports.compare import Pairwise
from seqbench.reports.stats import LEVEL
from seqbench.sweeps import record

PAGE = "index.html"

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2rem; font-size: 1.2rem; }
.note { color: #555; max-width: 60rem; }
.verdict { font-size: 1.05rem; max-width: 60rem; border-left: 4px solid #2563eb;
           padding: .4rem .8rem; background: #f5f8ff; }
table { border-collapse: collapse; margin: .6rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: .3rem .6rem; text-align: right; }
th { background: #f3f4f6; } td:first-child, th:first-child { text-align: left; }
tr.top td:first-child { font-weight: 700; } tr.baseline td { color: #666; font-style: italic; }
td:has(code) { text-align: left; } code { font-size: .85rem; }
figure { display: inline-block; margin: .5rem 1rem .5rem 0; vertical-align: top; }
figure img { max-width: 34rem; cursor: zoom-in; border: 1px solid #eee; }
figure img.large { max-width: 100%; cursor: zoom-out; }
figcaption { color: #555; font-size: .9rem; }
pre { background: #f6f8fa; padding: .7rem; overflow-x: auto; }
details { margin: .4rem 0; } summary { cursor: pointer; }
"""

#: The page's one script: click a figure to see it at full width, click again to shrink it.
SCRIPT = """
document.querySelectorAll("figure img").forEach(function (img) {
  img.addEventListener("click", function () { img.classList.toggle("large"); });
});
"""

#: Captions of the figures the report writes; any other PNG in the folder shows by name.
CAPTIONS = {
    "test_metric.png": "Final test values: one dot per seed, the mean and its interval.",
    "validation_curves.png": "Validation metric per epoch of every final run.",
    "budget_curves.png": "Expected best validation value against the number of trials.",
    "optimization_history.png": "Every completed trial's validation value, best so far.",
    "importance.png": "Hyperparameter importance (fANOVA) per cell, from the completed trials "
                      "its title counts.",
}


def document(title: str, body: list[str], script: str = SCRIPT) -> str:
    """A complete HTML5 page with the shared style; `body` is a list of HTML fragments."""
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        *body,
        f"<script>{script}</script>" if script else "",
        "</body></html>",
        "",
    ])


def number(value: Any, digits: int = 4) -> str:
    """Numbers as the Markdown table prints them, so the page and table.md agree."""
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return escape(str(value))


def table(headers: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    """An HTML table from already-escaped cell fragments (one class per row, optional)."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join(
        f'<tr class="{css}">' + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
        for row, css in zip(rows, classes or [""] * len(rows)))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image(path: Path, caption: str) -> str:
    """A PNG inlined as base64, so the page needs no file beside it."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def comparison(cells: list[CellSummary], rows: list[dict[str, Any]], top_means: str) -> str:
    """The comparison table from `tables.rows` (plus the baselines), as the Markdown shows it."""
    first = cells[0]
    headers = ["cell", f"test {escape(first.primary_metric)}: mean", f"{LEVEL:.0%} CI",
               "seeds", f"val {escape(first.selection_metric)}: search / re-runs", "parameters",
               "s/epoch", "trials done/pruned/failed", "better than (Holm p)"]
    body, classes = [], []
    for r in rows:
        interval = tables.span(r["ci_low"], r["ci_high"])
        body.append([
            escape(tables.label(r)) + (" (defaults)" if r["defaults"] else "")
            + (" ★" if r["top"] else ""), number(r["test_mean"]), interval,
            str(r["seeds"]), f"{number(r['val_search'])} / {number(r['val_reruns'])}",
            "n/a" if math.isnan(r["parameters"]) else f"{round(r['parameters']):,}",
            number(r["seconds_per_epoch"], 3),
            f"{r['trials_complete']}/{r['trials_pruned']}/{r['trials_fail']}",
            escape(r["better_than"] or "–"),
        ])
        classes.append("top" if r["top"] else "")
    for name, value in tables.baseline_values(cells).items():
        body.append([f"{escape(name)} (baseline)", number(value)] + [""] * 7)
        classes.append("baseline")
    arrow = "lower is better" if first.direction == "minimize" else "higher is better"
    return table(headers, body, classes) + (
        f'<p class="note">test {escape(first.primary_metric)}: {arrow}. Mean over the final '
        f"seeds with its {escape(tables.INTERVAL)}. val: the selected "
        "configuration's validation value in the search and its mean over the selection "
        "re-run seeds; (defaults): no tuned configuration beat the defaults by more than "
        f"one standard error there, so the defaults were kept. ★: {escape(top_means)}. "
        "\"better than\" lists the cells this one beats by a difference that survives the "
        "Holm-corrected pairwise tests.</p>")


def pairwise_section(pairwise: Pairwise) -> list[str]:
    if not pairwise.comparisons:
        return ["<p>Only one cell has final runs: nothing to compare.</p>"]
    body = [[escape(text) for text in tables.pair_cells(pairwise, c)]
            for c in pairwise.comparisons]
    return [f'<p class="note">{escape(tables.tests_text(pairwise))}</p>',
            table([escape(h) for h in tables.PAIR_HEADERS], body)]


def chosen_trial(cell: CellSummary) -> Any | None:
    """The trial whose configuration the final runs re-trained (None before any final)."""
    numbers = {final["trial"] for final in cell.finals if "trial" in final}
    return cell.study.trials[numbers.pop()] if len(numbers) == 1 else None


def hyperparameters(cells: list[CellSummary]) -> str:
    """One row per cell: the settings of the trial its final runs re-trained."""
    chosen = {}
    for cell in cells:
        trial = chosen_trial(cell)
        if trial is not None:
            chosen[cell.cell] = (trial.number, record.trial_settings(trial))
    if not chosen:
        return "<p>No cell has final runs yet.</p>"
    names = sorted({name for _, settings in chosen.values() for name in settings})
    body = [[escape(cell), str(number_)] + [number(settings.get(name, "")) for name in names]
            for cell, (number_, settings) in chosen.items()]
    return table(["cell", "trial", *map(escape, names)], body)


def trials(cell: CellSummary) -> str:
    """Every trial of the cell's search, in a collapsed section so the page stays short."""
    rows = [[str(t.number), t.state.name.lower(), number(t.value) if t.value is not None
             else "", f"<code>{escape(json.dumps(t.params))}</code>"]
            for t in cell.study.get_trials(deepcopy=False)]
    return (f"<details><summary>{escape(cell.cell)}: {len(rows)} trials</summary>"
            + table(["trial", "state", f"val {escape(cell.selection_metric)}", "parameters"],
                    rows) + "</details>")


def environment(cells: list[CellSummary]) -> str:
    """The versions the final runs recorded (config.json), or why they are not shown."""
    for cell in cells:
        for final in cell.finals:
            config = Path(final.get("run_dir", "")) / "config.json"
            if config.is_file():
                recorded = json.loads(config.read_text()).get("environment", {})
                if recorded:
                    return table(["package", "version"],
                                 [[escape(k), escape(str(v))] for k, v in recorded.items()])
    return ("<p>The final runs' records (config.json, written by the sweep under its "
            "--output-dir) are not beside this storage, so their environment is not shown; "
            "the study records the commands below.</p>")


def figures(folder: Path) -> list[str]:
    known = [folder / name for name in CAPTIONS if (folder / name).is_file()]
    others = sorted(p for p in folder.glob("*.png") if p.name not in CAPTIONS)
    return [image(path, CAPTIONS.get(path.name, path.stem.replace("_", " ")))
            for path in known + others]


def write_page(folder: Path, cells: list[CellSummary], rows: list[dict[str, Any]],
               pairwise: Pairwise, commands: list[str], headline: str = "",
               overview: bool = False) -> Path:
    """Write `folder/index.html` from the rows and figures the other writers produced, opening
    with the `headline` (`verdict.for_dataset`); `overview`: link to the page over every
    comparison in the parent folder."""
    first = cells[0]
    extra = [line for line in (tables.seeds_line(cells), tables.diverged_line(cells),
                               tables.provenance(cells)) if line]
    body = [
        f"<h1>{escape(first.task)} / {escape(first.dataset)}</h1>",
        *([f'<p class="verdict">{escape(headline)}</p>'] if headline else []),
        f'<p class="note">{len(cells)} cells compared by seqbench with the same search budget, '
        "seeds and early-stopping rule."
        + (f' <a href="../{PAGE}">All comparisons</a>' if overview else "") + "</p>",
        "<h2>Comparison</h2>", comparison(cells, rows, pairwise.top_means()),
        "<h2>Pairwise comparisons</h2>", *pairwise_section(pairwise),
        "<h2>Figures</h2>", *figures(folder),
        "<h2>Hyperparameters each cell ended with</h2>", hyperparameters(cells),
        "<h2>Trials</h2>", *[trials(cell) for cell in cells],
        "<h2>Environment</h2>", environment(cells),
        *[f'<p class="note">{escape(line)}</p>' for line in extra],
        "<h2>Regenerate</h2>", f"<pre>{escape(chr(10).join(commands))}</pre>",
    ]
    path = Path(folder) / PAGE
    path.write_text(document(f"seqbench: {first.task} / {first.dataset}", body))
    return path
