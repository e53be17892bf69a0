"""`seqbench suite list`, `show`, `check` and `status`: the suites and their datasets as
tables."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from seqbench.benchsuite import Priced
from seqbench.benchsuite.check import DatasetCheck
from seqbench.benchsuite.progress import DatasetProgress


def hours(value: float | None) -> str:
    return "not measured" if value is None else f"{value:,.1f}"


def cost_line(listing: Priced, jobs: int = 2) -> str:
    """"N core-hours (about M h with --jobs 2)", and what it leaves out."""
    if listing.machine is None:
        return "no measurements beside the suite"
    total = listing.hours or 0.0
    missing = f"; without {', '.join(listing.unmeasured)}" if listing.unmeasured else ""
    return f"{total:,.0f} core-hours (about {total / jobs:,.0f} h with --jobs {jobs}){missing}"


def suites_table(listings: dict[str, Priced]) -> None:
    """`seqbench suite list`: one row per shipped suite: size, tasks, cells, estimated cost."""
    table = Table(title="seqbench suites", title_justify="left")
    for column in ("suite", "datasets", "tasks", "cells (+ optional, where installed)",
                   "estimated cost"):
        table.add_column(column, overflow="fold")
    machines = set()
    for name, listing in listings.items():
        suite = listing.suite
        tasks = Counter(d.task for d in suite.datasets)
        optional = f" (+ {', '.join(suite.optional_cells)})" if suite.optional_cells else ""
        table.add_row(name, str(len(suite.datasets)),
                      ", ".join(f"{task} {count}" for task, count in sorted(tasks.items())),
                      ", ".join(suite.cells) + optional, cost_line(listing))
        machines.add(listing.machine)
    console = Console()
    console.print(table)
    for machine in sorted(m for m in machines if m):
        console.print(f"Costs: the required cells, from epoch times measured on {machine}, "
                      "scaled by how early finished sweeps stopped (seqbench/benchsuite/cost.py).")
    console.print("Datasets, budgets and reasons: seqbench suite show NAME")


def suite_table(listing: Priced) -> None:
    """`seqbench suite show`: every dataset of one suite: budget, what is reduced, estimated
    cost and reason."""
    suite = listing.suite
    table = Table(title=f"suite {suite.name}: {suite.summary}", title_justify="left")
    for column in ("task/dataset", "trials", "epochs", "seeds", "repeats", "reduced",
                   "core-hours", "of the bound"):
        table.add_column(column, overflow="fold", no_wrap=column == "task/dataset")
    costs = {c.dataset.name: c for c in listing.costs}
    for item in suite.datasets:
        cost = costs.get(item.name)
        table.add_row(item.name, str(item.trials), str(item.epochs), str(item.seeds),
                      str(item.repeats), ", ".join(item.reductions()) or "no",
                      hours(cost.hours if cost else None),
                      f"{cost.factor:.2f}" if cost else "")
    console = Console()
    console.print(table)
    for item in suite.datasets:
        console.print(f"[bold]{item.name}[/]: {item.reason}", highlight=False)
    console.print(f"cells: {', '.join(suite.cells)}; optional (where installed): "
                  f"{', '.join(suite.optional_cells) or 'none'}; installed here: "
                  f"{', '.join(suite.installed_optional_cells()) or 'none'}")
    console.print(f"estimated cost, the required cells only: {cost_line(listing)}"
                  + (f", measured on {listing.machine}" if listing.machine else ""))
    console.print("'of the bound': the share of the bound (every run to its last epoch) that "
                  "finished sweeps of the task took; 1.00 where none has finished yet.")
    console.print(f"file: {suite.path}")


def check_line(result: DatasetCheck) -> None:
    """`seqbench suite check`'s progress: one line per dataset as it loads."""
    state = f"[red]failed[/]: {result.error}" if result.error else "loaded"
    Console().print(f"{result.dataset.name}: {state} ({result.seconds:.1f} s)", highlight=False)


def check_table(name: str, results: list[DatasetCheck]) -> None:
    """`seqbench suite check`'s summary: per dataset its splits, shortest sequence, seconds."""
    table = Table(title=f"suite {name}: datasets as a run loads them", title_justify="left")
    for column in ("task/dataset", "items per split", "shortest sequence", "seconds",
                   "loads"):
        table.add_column(column, overflow="fold", no_wrap=column == "task/dataset")
    for result in results:
        items = ", ".join(f"{split} {count:,}" for split, count in (result.items or {}).items())
        table.add_row(result.dataset.name, items or "-",
                      "-" if result.shortest is None else str(result.shortest),
                      f"{result.seconds:.1f}", "no: " + result.error if result.error else "yes")
    Console().print(table)


def status_table(name: str, rows: list[DatasetProgress]) -> None:
    """`seqbench suite status`: per dataset its state, search trials and final runs so far."""
    table = Table(title=f"suite {name}: where it stands", title_justify="left")
    for column in ("task/dataset", "state", "search trials", "final runs", "core-hours left"):
        table.add_column(column, overflow="fold", no_wrap=column == "task/dataset")
    for row in rows:
        table.add_row(row.dataset.name, row.state, "{} of {}".format(*row.trials),
                      "{} of {}".format(*row.finals), hours(row.hours_left))
    console = Console()
    console.print(table)
    done = sum(row.state == "done" for row in rows)
    swept = sum(row.state.startswith("being swept") for row in rows)
    cells = ", ".join(c.cell for c in rows[0].cells) if rows else ""
    left = sum(row.hours_left or 0.0 for row in rows)
    console.print(f"{done} of {len(rows)} datasets done, {swept} being swept; cells {cells}; "
                  f"about {left:,.0f} core-hours left by the estimate (the required cells; "
                  "each dataset's estimate scaled by its trials and finals still to run). "
                  "Trials count completed and pruned ones over every cell and repeat; a "
                  "dead worker's claim shows until a live worker next looks for work.")
