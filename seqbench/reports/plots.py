"""The report's figures, drawn with matplotlib's file backend (no display needed)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from seqbench.reports.collect import CellSummary
from seqbench.reports.stats import LEVEL


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def metric_distribution(cells: list[CellSummary], half_widths: dict[str, float],
                        path: Path) -> Path:
    """Final test values per cell, one dot per seed, with the mean and its 95% interval
    (`half_widths`: over fresh seeds and test samples, as the table gives it)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for index, cell in enumerate(cells):
        values = cell.test_values
        ax.scatter([index] * len(values), values, alpha=0.7)
        if values:
            mean = statistics.fmean(values)
            half = half_widths.get(cell.cell, math.nan)
            ax.hlines(mean, index - 0.25, index + 0.25, color="black")
            if not math.isnan(half):
                ax.errorbar(index + 0.3, mean, yerr=half, color="black", capsize=3)
    ax.set_xticks(range(len(cells)), [c.cell for c in cells])
    ax.set_ylabel(f"test {cells[0].primary_metric}")
    ax.set_title(f"Final runs (dots: seeds; bar: mean, {LEVEL:.0%} CI)")
    return _save(fig, path)


def optimization_history(cells: list[CellSummary], path: Path) -> Path:
    """Each completed trial's validation value and the best so far, per cell."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    better = min if cells[0].selection_direction == "minimize" else max
    for cell in cells:
        done = [t for t in cell.study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        numbers, values = [t.number for t in done], [t.value for t in done]
        line = ax.scatter(numbers, values, s=12, alpha=0.6)
        running = [better(values[: i + 1]) for i in range(len(values))]
        ax.step(numbers, running, where="post", color=line.get_facecolor()[0], label=cell.cell)
    ax.set_xlabel("trial")
    ax.set_ylabel(f"best val {cells[0].selection_metric}")
    ax.legend()
    ax.set_title("Optimisation history")
    return _save(fig, path)


def validation_curves(cells: list[CellSummary], path: Path) -> Path:
    """The validation metric per epoch of every final run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for index, cell in enumerate(cells):
        for run, curve in enumerate(cell.validation_curves()):
            ax.plot(range(1, len(curve) + 1), curve, color=f"C{index}", alpha=0.7,
                    label=cell.cell if run == 0 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"val {cells[0].primary_metric}")
    ax.legend()
    ax.set_title("Final runs: validation curves")
    return _save(fig, path)


def budget_curves(cells: list[CellSummary], curves: dict[str, list[float]], path: Path) -> Path:
    """Expected best validation value against the number of trials, one line per cell."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    from matplotlib.ticker import MaxNLocator

    for cell, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, marker=".", label=cell)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trials")
    better = "lower" if cells[0].selection_direction == "minimize" else "higher"
    ax.set_ylabel(f"expected best val {cells[0].selection_metric} ({better} is better)")
    ax.legend()
    ax.set_title("Expected best validation value vs budget")
    return _save(fig, path)


#: Fewer completed trials per cell than this, and the plot says its importances are a hint
#: only: fANOVA fits a random forest to the trials, and a handful of points spread over
#: seven or more hyperparameters cannot separate one's effect from another's or from the
#: seed's (a judgement, not a theorem: about three trials per hyperparameter).
IMPORTANCE_TRIALS = 20


def importance(importances: dict[str, dict[str, float]], trials: dict[str, int],
               path: Path) -> Path:
    """Hyperparameter importance (fANOVA) per cell, as grouped horizontal bars, titled with
    the number of completed trials it was drawn from (and a caveat where that is few)."""
    plt = _pyplot()
    names = sorted({name for values in importances.values() for name in values})
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(names) * max(len(importances), 1) + 1.5))
    height = 0.8 / max(len(importances), 1)
    for index, (cell, values) in enumerate(importances.items()):
        ax.barh([i + index * height for i in range(len(names))],
                [values.get(n, 0.0) for n in names], height=height, label=cell)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(names))], names)
    ax.set_xlabel("fANOVA importance")
    ax.legend()
    counts = sorted(trials[cell] for cell in importances)
    shown = f"{counts[0]}" if counts[0] == counts[-1] else f"{counts[0]}-{counts[-1]}"
    title = f"Hyperparameter importance from {shown} completed trials per cell"
    if counts[0] < IMPORTANCE_TRIALS:
        title += f"\n(fewer than {IMPORTANCE_TRIALS}: too few to rank them; a hint at most)"
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
