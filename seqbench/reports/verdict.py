"""The headline of a report: what it found, in one or two sentences a person reads first.

A table with stars, bold and a grey legend makes its reader decode the result; the verdict
says it in words: a baseline that beats every cell comes first (then no recurrent cell is the
tool to try first), then which cell to try first and how sure that is, from the statistics
the page already shows (the Holm-corrected test over final seeds and test items, and the
probability that a fresh run of one cell beats a fresh run of another, `compare`). The
index's verdict says what the ranks across datasets support (Friedman) and names the
datasets a cell or a baseline wins outright. Nothing here computes a new statistic.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from seqbench.reports.collect import CellSummary
from seqbench.reports.compare import Comparison, Pairwise


@dataclass(frozen=True)
class Verdict:
    """One (task, dataset)'s headline and the facts the index's headline counts."""

    text: str
    #: The cell that beats every other one significantly (None: none does).
    winner: str | None
    #: The baseline that beats every cell's mean (None: none does).
    baseline: str | None


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4g}"


def _names(names: list[str], conjunction: str = "and") -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


def _odds(pairwise: Pairwise, winner: str, others: list[str]) -> str:
    """'; a fresh gru run beats a fresh run of lstm with probability 0.72 [0.36, 1], of rnn
    0.6 [0.2, 1]': P(a fresh run of `winner` beats one of each other cell), where tested."""
    parts = []
    for other in others:
        c = _pair(pairwise, winner, other)
        if c is None or math.isnan(c.better):
            continue
        p, low, high = ((c.better, c.better_low, c.better_high) if c.a == winner
                        else (1 - c.better, 1 - c.better_high, 1 - c.better_low))
        parts.append(f"of {other}{' with probability' if not parts else ''} {p:.2f} "
                     f"[{low:.2g}, {high:.2g}]")
    return f"; a fresh {winner} run beats a fresh run {', '.join(parts)}" if parts else ""


def _pair(pairwise: Pairwise, a: str, b: str) -> Comparison | None:
    return next((c for c in pairwise.comparisons if {c.a, c.b} == {a, b}), None)


def for_dataset(cells: list[CellSummary], pairwise: Pairwise,
                baselines: dict[str, float]) -> Verdict:
    """The page's headline from its own table: the baselines, the means, the pairwise tests."""
    first = cells[0]
    sign = -1.0 if first.direction == "minimize" else 1.0
    metric = f"test {first.primary_metric}"
    means = {c.cell: statistics.fmean(c.test_values) for c in cells if c.test_values}
    if not means:
        return Verdict("No cell has final runs yet: nothing to conclude.", None, None)
    best = max(sorted(means), key=lambda cell: sign * means[cell])
    sentences, baseline = [], None
    if baselines:
        name = max(sorted(baselines), key=lambda b: sign * baselines[b])
        if sign * baselines[name] > sign * means[best]:
            baseline = name
            halves = {c: pairwise.half_width(c) for c in means}
            outside = not any(map(math.isnan, halves.values())) and all(
                sign * baselines[name] > sign * means[c] + halves[c] for c in means)
            sentences.append(
                f"The {name} baseline beats every cell: {metric} {_fmt(baselines[name])} "
                f"against {_fmt(means[best])} for the best cell, {best}"
                + (", outside every cell's 95% interval" if outside else "")
                + f" ({'lower' if sign < 0 else 'higher'} is better), so try the baseline "
                "before a recurrent cell on this data.")
    sentences.append(_cells_sentence(means, best, pairwise, metric, baseline is not None))
    winner = best if len(means) > 1 and len(pairwise.better_than(best)) == len(means) - 1 \
        else None
    return Verdict(" ".join(sentences), winner, baseline)


def _cells_sentence(means: dict[str, float], best: str, pairwise: Pairwise, metric: str,
                    after_baseline: bool) -> str:
    lead = "Among the cells, " if after_baseline else ""
    if len(means) == 1:
        return f"{lead}only {best} has final runs ({metric} {_fmt(means[best])}): there is " \
               "nothing to compare it with."
    counted = "final seeds and test items" if pairwise.models_test else "final seeds"
    others = [c for c in sorted(means) if c != best]
    beaten = {other for other, _ in pairwise.better_than(best)}
    odds = _odds(pairwise, best, others)
    if beaten == set(others):
        worst_p = max(p for _, p in pairwise.better_than(best))
        return (f"{lead}{'try ' if after_baseline else 'Try '}{best} first: it beats "
                f"{_names(others)} on {metric} ({_fmt(means[best])}) by differences that "
                f"survive the Holm-corrected test over {counted} (Holm p ≤ {worst_p:.2g})"
                f"{odds}.")
    tied = [c for c in others if c not in beaten and _pair(pairwise, best, c) is not None]
    holm = min((_pair(pairwise, best, c).p_holm for c in tied), default=math.nan)
    text = (f"{lead}{'no' if after_baseline else 'No'} cell clearly wins: {best} has the best "
            f"mean {metric} ({_fmt(means[best])}), so try it first, but the Holm-corrected "
            f"test over {counted} does not separate it from {_names(tied, 'or')}"
            + (f" (Holm p ≥ {holm:.2g})" if not math.isnan(holm) else "") + f"{odds}.")
    if beaten:
        text += f" It is significantly better than {_names(sorted(beaten))}."
    return text


def for_overview(datasets: list[tuple[str, str]], average_ranks: dict[str, float],
                 friedman_p: float | None, verdicts: dict[tuple[str, str], Verdict],
                 alpha: float) -> str:
    """The index's headline: what the ranks across datasets support, then the datasets a
    cell wins outright and those where a baseline beats every cell."""
    ranked = {cell: r for cell, r in average_ranks.items() if not math.isnan(r)}
    if not ranked:
        return "No cell has final runs yet: nothing to conclude."
    best = min(sorted(ranked), key=ranked.get)
    n = len(datasets)
    where = f"over {n} dataset{'s' if n > 1 else ''}"
    if friedman_p is None:
        text = (f"{best} has the best average rank ({ranked[best]:.2f}) {where}, too few "
                "datasets or cells for a test of the ranks, so this is no verdict on which "
                "cell is best in general.")
    elif friedman_p < alpha:
        text = (f"{best} ranks best on average ({ranked[best]:.2f}) {where}, and the cells' "
                f"ranks differ more than chance explains (Friedman p = {friedman_p:.3g}).")
    else:
        text = (f"No cell is best in general: {best} has the best average rank "
                f"({ranked[best]:.2f}) {where}, but the Friedman test finds no difference "
                f"between the cells' ranks (p = {friedman_p:.3g}), so pick by your kind of "
                "data.")
    wins = [f"{task}/{dataset} ({v.winner})" for (task, dataset), v in sorted(verdicts.items())
            if v.winner]
    lost = [f"{task}/{dataset} ({v.baseline})" for (task, dataset), v in sorted(verdicts.items())
            if v.baseline]
    facts = [f"one cell beats every other significantly on {len(wins)} of {n}"
             + (f": {', '.join(wins)}" if wins else "")]
    if lost:
        facts.append(f"a baseline beats every cell on {len(lost)}: {', '.join(lost)}")
    return text + " Per dataset, " + "; ".join(facts) + "."
