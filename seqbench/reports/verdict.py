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


#: A baseline whose name starts so is an oracle (`TaskData.baselines`): given what no cell is.
ORACLE = "oracle"


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


def _leaders(values: dict[str, float], key) -> list[str]:
    """The names sharing the best value (`key` maps a value to "bigger is better")."""
    top = max(key(v) for v in values.values())
    return sorted(name for name, v in values.items() if key(v) == top)


def for_dataset(cells: list[CellSummary], pairwise: Pairwise,
                baselines: dict[str, float]) -> Verdict:
    """The page's headline from its own table: the baselines, the means, the pairwise tests."""
    first = cells[0]
    sign = -1.0 if first.direction == "minimize" else 1.0
    metric = f"test {first.primary_metric}"
    means = {c.cell: statistics.fmean(c.test_values) for c in cells if c.test_values}
    if not means:
        return Verdict("No cell has final runs yet: nothing to conclude.", None, None)
    leaders = _leaders(means, lambda v: sign * v)
    sentences, baseline = [], None
    usable = {name: v for name, v in baselines.items() if not name.startswith(ORACLE)}
    if usable:
        name = _leaders(usable, lambda v: sign * v)[0]
        if sign * usable[name] > sign * means[leaders[0]]:
            baseline = name
            sentences.append(_baseline_sentence(name, usable[name], means, leaders, pairwise,
                                                metric, sign))
    sentences.append(_cells_sentence(means, leaders, pairwise, metric, baseline is not None))
    sentences += [_oracle_sentence(name, value, means, leaders, metric)
                  for name, value in sorted(baselines.items()) if name.startswith(ORACLE)]
    winner = leaders[0] if len(means) > 1 and len(pairwise.better_than(leaders[0])) == \
        len(means) - 1 else None
    return Verdict(" ".join(sentences), winner, baseline)


def _baseline_sentence(name: str, value: float, means: dict[str, float], leaders: list[str],
                       pairwise: Pairwise, metric: str, sign: float) -> str:
    """A baseline better than every cell's mean: by how much, and whether beyond chance (the
    cells' 95% intervals over fresh runs and test samples)."""
    halves = {c: pairwise.half_width(c) for c in means}
    inside = [c for c in sorted(means)
              if math.isnan(halves[c]) or sign * value <= sign * means[c] + halves[c]]
    text = (f"The {name} baseline beats every cell: {metric} {_fmt(value)} "
            f"({'lower' if sign < 0 else 'higher'} is better) against "
            f"{_fmt(means[leaders[0]])} for the best cell, {_names(leaders)}")
    if inside:
        return text + (f", though it lies inside the 95% interval of {_names(inside)}, so no "
                       "cell does better than the baseline here.")
    return text + (", beyond every cell's 95% interval, so try the baseline before a "
                   "recurrent cell on this data.")


def _oracle_sentence(name: str, value: float, means: dict[str, float], leaders: list[str],
                     metric: str) -> str:
    """An oracle reference, given what the cells are not: where the best cell stands against
    it, never a recommendation to use it instead."""
    return (f"The {name} reference, which is given what no cell is, reaches {metric} "
            f"{_fmt(value)} against the best cell's {_fmt(means[leaders[0]])}: a level to "
            "approach, not an alternative.")


def _cells_sentence(means: dict[str, float], leaders: list[str], pairwise: Pairwise,
                    metric: str, after_baseline: bool) -> str:
    lead = "Among the cells, " if after_baseline else ""
    best = leaders[0]
    if len(means) == 1:
        return f"{lead}only {best} has final runs ({metric} {_fmt(means[best])}): there is " \
               "nothing to compare it with."
    counted = "final seeds and test items" if pairwise.models_test else "final seeds"
    if pairwise.against is not None:
        return _reference_sentence(means, best, pairwise, metric, counted, lead)
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
    holm_text = "" if math.isnan(holm) else (" (Holm p = 1)" if holm >= 1
                                             else f" (Holm p ≥ {holm:.2g})")
    top = (f"{_names(leaders)} share the best mean {metric} ({_fmt(means[best])}), so try "
           "either first" if len(leaders) > 1 else
           f"{best} has the best mean {metric} ({_fmt(means[best])}), so try it first")
    text = (f"{lead}{'no' if after_baseline else 'No'} cell clearly wins: {top}, but the "
            f"Holm-corrected test over {counted} does not separate {best} from "
            f"{_names(tied, 'or')}{holm_text}{odds}.")
    if beaten:
        text += f" {best} is significantly better than {_names(sorted(beaten))}."
    return text


def _reference_sentence(means: dict[str, float], best: str, pairwise: Pairwise, metric: str,
                        counted: str, lead: str) -> str:
    """Greff et al.'s design (`--against`): each cell was tested against the reference only,
    so the verdict says how each one fares against it, not which cell wins."""
    reference = pairwise.against
    others = [c for c in sorted(means) if c != reference]
    better = [c for c in others if reference in dict(pairwise.better_than(c))]
    worse = [c for c in others if c in dict(pairwise.better_than(reference))]
    tied = [c for c in others if c not in better and c not in worse]
    groups = [f"{_names(better)} {'is' if len(better) == 1 else 'are'} significantly better"
              if better else "",
              f"{_names(worse)} {'is' if len(worse) == 1 else 'are'} significantly worse"
              if worse else "",
              f"{_names(tied, 'and')} {'is' if len(tied) == 1 else 'are'} not separated from it"
              if tied else ""]
    return (f"{lead}{'against' if lead else 'Against'} the reference {reference} ({metric} "
            f"{_fmt(means[reference])}), {'; '.join(g for g in groups if g)}, by the "
            f"Holm-corrected test over {counted}; {best} has the best mean "
            f"({_fmt(means[best])}).")


def for_overview(datasets: list[tuple[str, str]], average_ranks: dict[str, float],
                 friedman_p: float | None, verdicts: dict[tuple[str, str], Verdict],
                 alpha: float) -> str:
    """The index's headline: what the ranks across datasets support, then the datasets a
    cell wins outright and those where a baseline beats every cell (with one dataset, that
    dataset's own verdict)."""
    ranked = {cell: r for cell, r in average_ranks.items() if not math.isnan(r)}
    if not ranked:
        return "No cell has final runs yet: nothing to conclude."
    if len(datasets) == 1:
        return verdicts[datasets[0]].text
    leaders = _leaders(ranked, lambda r: -r)
    n = len(datasets)
    rank = (f"{_names(leaders)} {'share' if len(leaders) > 1 else 'has'} the best average "
            f"rank ({ranked[leaders[0]]:.2f}) over {n} datasets")
    if friedman_p is None:
        text = (f"{rank}, too few cells for a test of the ranks, so this is no verdict on "
                "which cell is best in general.")
    elif friedman_p < alpha:
        text = (f"{rank}, and the cells' ranks differ more than chance explains (Friedman "
                f"p = {friedman_p:.3g}).")
    else:
        text = (f"No cell is best in general: {rank}, but the Friedman test finds no "
                f"difference between the cells' ranks (p = {friedman_p:.3g}), so pick by your "
                "kind of data.")
    wins = [f"{task}/{dataset} ({v.winner})" for (task, dataset), v in sorted(verdicts.items())
            if v.winner]
    lost = [f"{task}/{dataset} ({v.baseline})" for (task, dataset), v in sorted(verdicts.items())
            if v.baseline]
    facts = (f"Per dataset, one cell beats every other significantly on {len(wins)} of {n}: "
             f"{', '.join(wins)}" if wins else
             "On no dataset does one cell beat every other significantly")
    if lost:
        facts += f"; a baseline beats every cell on {len(lost)}: {', '.join(lost)}"
    return f"{text} {facts}."
