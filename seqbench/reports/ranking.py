"""Which cell is best overall? A ranking across every (task, dataset) of a storage.

Metrics differ between tasks (perplexity, accuracy, MASE), so they cannot be averaged; ranks
can. Each dataset ranks its cells by mean final test value (1 = best, ties share the mean
rank), and the cells' average ranks are compared as Demšar (2006) recommends: a Friedman
test over the datasets, then the Nemenyi post-hoc test, drawn as a critical-difference
diagram. Both come from aeon (`aeon.benchmarking.stats.check_friedman` and
`aeon.visualisation.plot_critical_difference`), not from hand-written statistics.

The Friedman test needs a complete block design: the diagram uses only the cells that have
final runs on every dataset, and needs at least three of them and two datasets; the table
still ranks every cell on every dataset where it ran.

Ranks over a handful of datasets have little power, so the page says in words what the
evidence supports: the largest average-rank gap against Nemenyi's critical difference
CD = q_alpha * sqrt(k(k+1) / 6N) (Demšar 2006), how many datasets it would take to detect a
gap of half a rank, and, per pair of cells, baycomp's Bayesian hierarchical comparison with
a region of practical equivalence (`bayes`), which can also say "equivalent".
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np

from seqbench.reports import bayes, budget, html, verdict
from seqbench.reports.collect import CellSummary

ALPHA = 0.05
DIAGRAM = "critical_difference.png"
TABLE = "ranking.csv"
#: Trial counts at which the budget table names the leading cell (plus each search's own).
BUDGETS = (1, 5, 10)
#: The average-rank gap the page says how many datasets would detect.
GAP = 0.5


@dataclass(frozen=True)
class Ranking:
    #: (task, dataset) in the order of the rows.
    datasets: list[tuple[str, str]]
    cells: list[str]
    #: Mean final test value and rank of each cell, per dataset (absent: no final runs).
    means: dict[tuple[str, str], dict[str, float]]
    ranks: dict[tuple[str, str], dict[str, float]]
    #: Cells with final runs on every dataset: the ones the Friedman test may compare.
    complete: list[str]
    #: +1 where a higher test value is better, -1 where lower is.
    signs: dict[tuple[str, str], int]

    def datasets_of(self, cell: str) -> int:
        """On how many datasets the cell has final runs (its average rank is over those)."""
        return sum(cell in self.ranks[key] for key in self.datasets)

    def average_rank(self, cell: str) -> float:
        ranks = [self.ranks[key][cell] for key in self.datasets if cell in self.ranks[key]]
        return statistics.fmean(ranks) if ranks else float("nan")

    def diagram_problem(self) -> str:
        """Why no critical-difference diagram can be drawn ("" when one can)."""
        if len(self.datasets) < 2:
            return "one dataset: ranks across datasets need at least two."
        if len(self.complete) < 3:
            return (f"{len(self.complete)} cell(s) ran on every dataset; the Friedman test "
                    "needs at least three.")
        return ""

    def scores(self) -> np.ndarray:
        """(datasets x complete cells) mean test values, signed so that higher is better."""
        return np.array([[self.means[key][cell] * self.signs[key] for cell in self.complete]
                         for key in self.datasets])


def rank(grouped: dict[tuple[str, str], list[CellSummary]]) -> Ranking:
    """Rank the cells of each dataset by mean final test value, in the task's direction."""
    from scipy.stats import rankdata

    datasets = sorted(grouped)
    means, ranks, signs = {}, {}, {}
    for key in datasets:
        scored = {c.cell: statistics.fmean(c.test_values) for c in grouped[key] if c.test_values}
        signs[key] = -1 if grouped[key][0].direction == "minimize" else 1
        names = sorted(scored)
        means[key] = scored
        ranks[key] = dict(zip(names, rankdata([-signs[key] * scored[n] for n in names])))
    cells = sorted({cell for key in datasets for cell in means[key]})
    complete = [cell for cell in cells if all(cell in means[key] for key in datasets)]
    return Ranking(datasets, cells, means, {k: {c: float(r) for c, r in v.items()}
                                            for k, v in ranks.items()}, complete, signs)


def friedman_p(ranking: Ranking) -> float:
    """Friedman's p-value over the complete cells (aeon, with its correction for ties)."""
    from aeon.benchmarking.stats import check_friedman
    from scipy.stats import rankdata

    return float(check_friedman(rankdata(-ranking.scores(), axis=1)))


def nemenyi_q(cells: int, alpha: float = ALPHA) -> float:
    """Nemenyi's q_alpha: the studentized range quantile for `cells` groups over √2."""
    from scipy.stats import studentized_range

    return float(studentized_range.ppf(1 - alpha, cells, np.inf) / math.sqrt(2))


def critical_difference(cells: int, datasets: int, alpha: float = ALPHA) -> float:
    """The smallest average-rank gap Nemenyi's test calls significant (Demšar 2006)."""
    return nemenyi_q(cells, alpha) * math.sqrt(cells * (cells + 1) / (6 * datasets))


def datasets_to_detect(gap: float, cells: int, alpha: float = ALPHA) -> int:
    """The fewest datasets whose critical difference is at most `gap`."""
    return math.ceil(nemenyi_q(cells, alpha) ** 2 * cells * (cells + 1) / (6 * gap ** 2))


def draw_diagram(ranking: Ranking, path: Path) -> Path:
    """aeon's critical-difference diagram: Friedman, then Nemenyi cliques at ALPHA."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from aeon.visualisation import plot_critical_difference

    fig, _ = plot_critical_difference(ranking.scores(), ranking.complete, lower_better=False,
                                      test="nemenyi", alpha=ALPHA)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_csv(ranking: Ranking, path: Path) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "dataset", "cell", "test_mean", "rank"])
        for task, dataset in ranking.datasets:
            for cell, value in sorted(ranking.means[(task, dataset)].items()):
                writer.writerow([task, dataset, cell, value, ranking.ranks[(task, dataset)][cell]])
        for cell in ranking.cells:
            writer.writerow(["all", "average rank", cell, "", ranking.average_rank(cell)])
    return path


def ranking_table(ranking: Ranking, grouped: dict[tuple[str, str], list[CellSummary]],
                  folders: dict[tuple[str, str], Path], root: Path) -> str:
    """Datasets by cells: each entry the mean test value and (rank); average rank last."""
    rows = []
    for key in ranking.datasets:
        first = grouped[key][0]
        arrow = "↓" if first.direction == "minimize" else "↑"
        link = folders[key].relative_to(root).as_posix()
        label = f'<a href="{escape(link)}/{html.PAGE}">{escape(key[0])} / {escape(key[1])}</a>'
        entries = [f"{html.number(ranking.means[key][cell])} ({ranking.ranks[key][cell]:g})"
                   if cell in ranking.means[key] else "–" for cell in ranking.cells]
        rows.append([label, f"test {escape(first.primary_metric)} {arrow}", *entries])
    rows.append(["<b>average rank</b>", "",
                 *[f"<b>{html.number(ranking.average_rank(cell), 3)}</b>"
                   + ("" if cell in ranking.complete else
                      f" (over {ranking.datasets_of(cell)} of {len(ranking.datasets)} datasets)")
                   for cell in ranking.cells]])
    return html.table(["task / dataset", "metric", *map(escape, ranking.cells)], rows)


def statistics_section(ranking: Ranking, root: Path, p: float | None) -> list[str]:
    """Friedman's verdict (`p`, None where it cannot run) and the diagram."""
    problem = ranking.diagram_problem()
    if problem:
        return [f"<p>No critical-difference diagram: {escape(problem)}</p>"]
    verdict = ("the cells' ranks differ more than chance explains; the diagram joins the cells "
               "whose average ranks are within the Nemenyi critical difference"
               if p < ALPHA else "no significant difference between the cells' ranks, so the "
               "diagram joins them all")
    return [
        f'<p class="note">Friedman test over {len(ranking.datasets)} datasets and '
        f"{len(ranking.complete)} cells ({', '.join(map(escape, ranking.complete))}): "
        f"p = {p:.3g}: {verdict} (α = {ALPHA}; Demšar 2006, computed by aeon).</p>",
        html.image(draw_diagram(ranking, root / DIAGRAM),
                   "Critical-difference diagram: average rank (1 = best); a bar joins cells "
                   "that are not significantly different."),
    ]


def power_sentence(ranking: Ranking) -> str:
    """What Nemenyi's test can detect with these datasets, and what it would take."""
    k, n = len(ranking.complete), len(ranking.datasets)
    ranks = {cell: ranking.average_rank(cell) for cell in ranking.complete}
    best, worst = min(ranks, key=ranks.get), max(ranks, key=ranks.get)
    cd = critical_difference(k, n)
    return (f"With {n} datasets and {k} cells, Nemenyi's test (α = {ALPHA}) detects only "
            f"average-rank gaps of at least {cd:.2f}; the largest here is "
            f"{ranks[worst] - ranks[best]:.2f} ({escape(best)} {ranks[best]:.2f}, "
            f"{escape(worst)} {ranks[worst]:.2f}), "
            + ("so the ranks separate at least one pair. " if ranks[worst] - ranks[best] >= cd
               else "so the ranks cannot tell these cells apart. ")
            + f"Detecting a gap of {GAP} would take at least {datasets_to_detect(GAP, k)} "
            f"datasets (CD = q_α·√(k(k+1)/6N), q_α = {nemenyi_q(k):.3f}).")


def bayes_section(ranking: Ranking, grouped: dict[tuple[str, str], list[CellSummary]]
                  ) -> tuple[list[str], str]:
    """The Bayesian table per pair, and its verdicts in words (or why there are none)."""
    missing = bayes.unavailable(len(ranking.datasets))
    if missing:
        return [], f"The Bayesian hierarchical comparison was not computed: {missing}."
    try:
        verdicts = bayes.compare(grouped, ranking.datasets, ranking.complete)
    except RuntimeError as exc:  # Stan cannot start inside a running event loop (notebooks)
        return [], f"The Bayesian hierarchical comparison could not run here ({exc})."
    rows = [[f"{escape(v.a)} − {escape(v.b)}", f"{v.a_better:.3f}", f"{v.equivalent:.3f}",
             f"{v.b_better:.3f}", escape(v.decision() or "undecided")] for v in verdicts]
    decided = [v.decision() for v in verdicts if v.decision()]
    rope = f"±{bayes.ROPE:.0%}"
    if not decided:
        words = ("The Bayesian hierarchical comparison decides no pair: for each, the evidence "
                 "says neither which cell is better across datasets nor that the two are "
                 f"equivalent within {rope}.")
    else:
        undecided = len(verdicts) - len(decided)
        words = (f"By the Bayesian hierarchical comparison, {'; '.join(decided)} (posterior "
                 f"probability at least {bayes.DECIDED})"
                 + (f"; the other {undecided} pair(s) stay undecided." if undecided else "."))
    table = html.table(["pair (first − second)", f"P(first better by more than {rope})",
                        f"P(within {rope})", "P(second better)", "decision"], rows)
    return [table], words


def evidence_section(ranking: Ranking, grouped: dict[tuple[str, str], list[CellSummary]]
                     ) -> list[str]:
    """What the evidence across datasets supports, in words (the page's verdict)."""
    if ranking.diagram_problem():
        return []
    table, words = bayes_section(ranking, grouped)
    return [
        "<h2>What the evidence across datasets supports</h2>",
        '<p class="note">Sources of chance: each dataset\'s cells are ranked by their mean '
        "final test values, and the Bayesian comparison uses every final seed's value; the "
        "datasets are the sample. " + power_sentence(ranking) + " " + escape(words)
        + " Per dataset, each page's pairwise tests (seeds and test items) are the "
        "evidence.</p>",
        *table,
        f'<p class="note">Bayesian hierarchical comparison (baycomp; Benavoli et al. 2017): '
        "each dataset's per-seed differences relative to the pair's mean (positive: first "
        f"better), a region of practical equivalence of ±{bayes.ROPE:.0%}; posterior "
        "probability that the mean difference on a new dataset lies above, inside or below "
        f"it. A pair is decided where one reaches {bayes.DECIDED}.</p>",
    ]


def budget_leaders(cells: list[CellSummary]) -> dict[int, str]:
    """The cell with the best expected validation value after n trials (Dodge et al. 2019),
    for each n of `BUDGETS` and the most trials every cell ran; ties name both."""
    curves = {cell: curve for cell, curve in budget.curves(cells).items() if curve}
    if not curves:
        return {}
    sign = 1.0 if cells[0].selection_direction == "minimize" else -1.0
    most = min(len(curve) for curve in curves.values())
    leaders = {}
    for n in sorted({*(n for n in BUDGETS if n <= most), most}):
        best = min(sign * curve[n - 1] for curve in curves.values())
        leaders[n] = " = ".join(cell for cell, curve in sorted(curves.items())
                                if sign * curve[n - 1] == best)
    return leaders


def budget_section(grouped: dict[tuple[str, str], list[CellSummary]],
                   folders: dict[tuple[str, str], Path], root: Path) -> list[str]:
    """Does the winner depend on the tuning budget? The leading cell per dataset after 1, 5,
    10 and all trials, linking each dataset's budget curves."""
    rows = []
    for key, cells in sorted(grouped.items()):
        leaders = budget_leaders(cells)
        link = folders[key].relative_to(root).as_posix()
        cells_text = [f"{escape(leaders[n])}" if n in leaders else "–" for n in BUDGETS]
        most = max(leaders, default=0)
        rows.append([f'<a href="{escape(link)}/budget_curves.png">{escape(key[0])} / '
                     f"{escape(key[1])}</a>", *cells_text,
                     f"{escape(leaders[most])} ({most})" if leaders else "–"])
    return [
        "<h2>Does the winner depend on the tuning budget?</h2>",
        '<p class="note">Not a ranking of the test results above: each entry names the cell '
        "whose <i>validation</i> value would be expected best had every search stopped after "
        "n trials (the best of n trials drawn from its search; for n = 1, one random "
        "configuration, untuned). A cell can lead here and rank last on test: tuning, the "
        "selection re-runs and the final seeds come after. Dodge et al. 2019, unbiased "
        "estimator of Tang et al. 2020. Follow a dataset's link for its curves "
        "(budget_curves.png, with budget_curves.csv beside it).</p>",
        html.table(["task / dataset", *(f"best validation after {n} trial{'s' if n > 1 else ''}"
                                         for n in BUDGETS),
                    "best validation after all (fewest any cell ran)"], rows),
    ]


def environment() -> str:
    from seqbench import runs

    return html.table(["package", "version"], [[escape(k), escape(str(v))]
                                               for k, v in runs.environment().items()])


def write_page(root: Path, grouped: dict[tuple[str, str], list[CellSummary]],
               folders: dict[tuple[str, str], Path],
               verdicts: dict[tuple[str, str], verdict.Verdict], command: str) -> Path:
    """Write `root/index.html` (and ranking.csv) over every comparison in the storage,
    opening with what the ranks and the per-dataset `verdicts` support, in words."""
    root = Path(root)
    ranking = rank(grouped)
    write_csv(ranking, root / TABLE)
    p = None if ranking.diagram_problem() else friedman_p(ranking)
    headline = verdict.for_overview(
        ranking.datasets, {cell: ranking.average_rank(cell) for cell in ranking.cells}, p,
        verdicts, ALPHA)
    body = [
        "<h1>seqbench: every comparison</h1>",
        f'<p class="verdict">{escape(headline)}</p>',
        f'<p class="note">{len(ranking.datasets)} (task, dataset) comparisons, '
        f"{len(ranking.cells)} cells. Each entry: the cell's mean final test value and, in "
        "brackets, its rank on that dataset (1 = best, ties share the mean rank). Follow a "
        "dataset's link for its tables, tests, figures and hyperparameters.</p>",
        "<h2>Ranking across datasets</h2>", ranking_table(ranking, grouped, folders, root),
        *statistics_section(ranking, root, p),
        *evidence_section(ranking, grouped),
        *budget_section(grouped, folders, root),
        "<h2>Environment of this report</h2>", environment(),
        "<h2>Regenerate</h2>", f"<pre>{escape(command)}</pre>",
    ]
    path = root / html.PAGE
    path.write_text(html.document("seqbench: every comparison", body))
    return path
