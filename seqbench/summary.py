"""The table `seqbench run` ends with: what a person asks of a finished run, in words.

metrics.json is a record for programs (nested baselines, the item file's description,
bookkeeping); printing it as it is makes the reader parse a dict. The summary instead puts
each test metric beside the same metric of every baseline (the task's, on the same test
items), says which baseline beats the run on the primary metric, and states the cost: epochs
out of the maximum and why training stopped, parameters, seconds.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from seqbench.config import RunSpec
from seqbench.console import format_value


def stopped_because(metrics: dict[str, Any], spec: RunSpec) -> str:
    """'20 of 20' or '8 of 50: stopped early, no better val_nll for 5 epochs after epoch 3'."""
    epochs, most = metrics.get("epochs"), spec.hparams["epochs"]
    if epochs is None or epochs >= most:
        return f"{epochs} of {most}"
    return (f"{epochs} of {most}: stopped early, no better {metrics.get('selection_metric')} "
            f"for {spec.hparams['patience']} epochs after epoch {metrics.get('best_epoch')}")


def table(metrics: dict[str, Any], spec: RunSpec) -> Table:
    """Test metrics (primary first) against the baselines, then selection and cost."""
    primary = metrics["primary_metric"]
    baselines = metrics.get("baselines", {})
    result = Table(title=f"{metrics['task']}/{metrics['dataset']} · {metrics['cell']} "
                   f"(seed {metrics['seed']})", title_justify="left")
    result.add_column("")
    result.add_column("this run", justify="right")
    for name in baselines:
        result.add_column(f"{name} baseline", justify="right")
    arrow = "lower is better" if metrics.get("direction") == "minimize" else "higher is better"
    tests = sorted((k for k in metrics if k.startswith("test_") and k != "test_items"),
                   key=lambda k: (k != primary, k))
    for key in tests:
        label = key.replace("_", " ", 1) + (f" ({arrow})" if key == primary else "")
        result.add_row(label, format_value(metrics[key]),
                       *(format_value(b[key]) if key in b else "" for b in baselines.values()))
    selection = metrics.get("selection_metric", "")
    blanks = [""] * len(baselines)
    rows = [
        (f"best {selection.replace('_', ' ', 1)}",
         f"{format_value(metrics.get(f'best_{selection}'))} (epoch {metrics.get('best_epoch')})"),
        ("epochs", stopped_because(metrics, spec)),
        ("parameters", f"{metrics['parameters']:,}" if "parameters" in metrics else "n/a"),
        ("training time", f"{metrics.get('train_seconds', 0):.1f} s"
         + (f", of which {metrics['compile_seconds']:.1f} s compiling the cell's step"
            if metrics.get("compile_seconds") else "")),
    ]
    for label, value in rows:
        result.add_row(label, value, *blanks)
    return result


def baseline_note(metrics: dict[str, Any]) -> str:
    """One sentence naming the baselines that beat the run on its primary metric ("" if none)."""
    primary, sign = metrics["primary_metric"], (-1 if metrics.get("direction") == "minimize"
                                                else 1)
    value = metrics.get(primary)
    better = [name for name, b in metrics.get("baselines", {}).items()
              if value is not None and primary in b and sign * b[primary] > sign * value]
    if not better:
        return ""
    return (f"The {' and '.join(better)} baseline{'s' if len(better) > 1 else ''} "
            f"beat{'' if len(better) > 1 else 's'} this run on {primary.replace('_', ' ', 1)}.")
