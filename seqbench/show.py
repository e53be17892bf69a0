"""What the command line prints: a run's summary, the plugin list, a dataset's check,
where a sweep stands.

The API returns data (`seqbench.api`); turning it into tables for a terminal is the command
line's part alone, kept here so that `seqbench.cli` stays a list of thin commands.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from seqbench.datacheck import DataCheck
    from seqbench.exporter import Exported
    from seqbench.registry import Listing
    from seqbench.sweeps.progress import StudyProgress


def run_result(m: dict, run_dir: Path) -> None:
    """The end of `seqbench run` (fresh or resumed): the summary table against the baselines
    (`seqbench.summary`), the files written, the folder."""
    from rich.console import Console

    from seqbench import summary
    from seqbench.runs import ITEMS, read_spec
    from seqbench.train import first_process

    if not first_process():  # a run on several devices ends once per device
        return
    typer.echo("")
    Console().print(summary.table(m, read_spec(run_dir)))
    note = summary.baseline_note(m)
    if note:
        typer.echo(note)
    for artifact in [*m.get("artifacts", []), *([ITEMS] if "test_items" in m else [])]:
        typer.echo(f"Wrote: {run_dir / artifact}")
    typer.echo(f"Run record: {run_dir}")


def exported(done: Exported) -> None:
    """`seqbench export`: the file, and what it was checked with and how closely it matched."""
    shapes = " and ".join("x".join(map(str, shape)) for shape in done.checked_on)
    typer.echo(f"{done.path}")
    typer.echo(f"checked with {done.checked_with} on test inputs of (batch x length) {shapes}: "
               f"largest difference from the run's model {done.max_difference:.2g}")


#: Narrower than this (80 columns, say), a six-column plugin table folds dataset names and
#: options mid-word; each plugin is then a block of lines wrapped at spaces instead.
TABLE_WIDTH = 140


def listing(found: Listing) -> None:
    """`seqbench list`: the core hyperparameters, then every plugin, then each load error
    in full."""
    from rich.console import Console
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    console = Console()
    core = Table(title="core hyperparameters (every run; a task may change the defaults)",
                 title_justify="left")
    core.add_column("name", no_wrap=True)
    core.add_column("default and range")
    core.add_column("meaning")
    for param in found.core:
        core.add_row(param.name, Text(param.describe().partition("=")[2]), param.help)
    console.print(core)
    rows = plugin_rows(found)
    if console.width >= TABLE_WIDTH:
        table = Table(title="seqbench plugins", title_justify="left")
        for column in ("kind", "name", "family", "summary", "provided by", "options"):
            table.add_column(column)
        for kind, name, family, summary, source, options in rows:
            table.add_row(kind, name, family, summary, source, Text("\n".join(options)))
        console.print(table)
    else:
        console.print(Text("seqbench plugins", style="italic"))
        for kind, name, family, summary, source, options in rows:
            console.print(Text.assemble(f"{kind} ", (name, "bold"), "  ",
                                        (" · ".join(filter(None, (family, source))), "dim")))
            for line in [Text.from_markup(summary), *map(Text, options)]:
                console.print(Padding(line, (0, 0, 0, 4)))
    broken = [entry for entries in (found.cells, found.tasks) for entry in entries.values()
              if entry.disabled is None and entry.error is not None]
    for entry in broken:
        # In full and unwrapped: this is what the plugin's author needs to fix it.
        typer.echo(f"\nfailed: {entry.kind} plugin '{entry.name}' ({entry.target}) from "
                   f"{entry.distribution} {entry.version}: {entry.error}")
        if entry.details:
            typer.echo(entry.details.rstrip())
    if broken:
        typer.echo(f"{len(broken)} plugin(s) failed to load; commands that do not select them "
                   "still work.")


def plugin_rows(found: Listing) -> list[tuple[str, str, str, str, str, list[str]]]:
    """(kind, name, family, summary with its markup, source, options) of every plugin; a task's
    options start with its datasets, the default starred."""
    rows = []
    for kind, entries in (("cell", found.cells), ("task", found.tasks)):
        for name, entry in sorted(entries.items()):
            source = f"{entry.distribution} {entry.version}"
            if entry.disabled is not None:
                rows.append((kind, name, "", f"[yellow]{entry.disabled}[/]", source, []))
                continue
            if entry.error is not None:
                rows.append((kind, name, "", "[red]failed to load (see below)[/]", source, []))
                continue
            plugin = entry.plugin
            options = [p.describe() for p in plugin.params]
            if kind == "task":
                options.insert(0, "datasets: " + ", ".join(
                    f"{d}{'*' if d == plugin.default_dataset else ''}" for d in plugin.datasets))
            family = plugin.family if kind == "cell" else ""
            rows.append((kind, name, family, plugin.summary.replace("[", "\\["), source,
                         options))
    return rows


def data_check(checked: DataCheck) -> None:
    """`seqbench data`: the split table, the notes, the test baselines and the cache location."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{checked.task}/{checked.dataset}", title_justify="left")
    for column in ("split", "items", "length min / median / mean / max", "balance"):
        table.add_column(column)
    for row in checked.rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    for line in checked.facts.get("notes", []):
        console.print(f"- {line}")
    for name, values in checked.data.baselines().items():  # what a model has to beat
        shown = ", ".join(f"{key} {value:.4g}" for key, value in values.items()
                          if isinstance(value, (int, float)))
        console.print(f"baseline {name} on test: {shown}")
    console.print(f"cache: {checked.facts.get('cache') or 'none (read directly)'}")


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's own flush at exit does not fail again on
    the same full device (with an "Exception ignored" traceback)."""
    try:
        target = sys.stdout.fileno()
    except (OSError, ValueError):  # not a real file (a notebook, pytest's capture)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, target)
    os.close(devnull)


def sweep_status(rows: list[StudyProgress]) -> None:
    """`seqbench status`: one table per sweep (study prefix, task and dataset), a row per
    cell and repeat with its stage, search trials, selection re-runs and finals."""
    from itertools import groupby

    from rich.console import Console
    from rich.table import Table

    console = Console()
    for sweep, studies in groupby(rows, key=lambda row: "/".join(row.study.split("/")[:3])):
        table = Table(title=sweep, title_justify="left")
        for column in ("cell", "stage", "trials", "re-runs", "chosen", "finals", "minutes"):
            table.add_column(column, no_wrap=column != "trials")
        for row in studies:
            busy = [f"{row.running} running"] * bool(row.running) + \
                [f"{row.failed} failed"] * bool(row.failed)
            table.add_row(
                row.cell + (f" (repeat {row.repeat})" if row.repeat else ""), row.stage,
                ", ".join([f"{row.trials}/{row.budget}", *busy]),
                "-" if row.planned_reruns is None else f"{row.reruns}/{row.planned_reruns}",
                "-" if row.chosen is None else f"#{row.chosen}",
                f"{row.finals}/{row.planned_finals}"
                + (f", {row.diverged} diverged" if row.diverged else ""),
                f"{row.search_minutes:.0f} / "
                + ("?" if row.minutes_left is None else
                   f"~{row.minutes_left:.0f}" if row.minutes_left else "0"))
        console.print(table)
    typer.echo("trials: search trials completed or pruned, of the budget; re-runs: selection "
               "re-runs done, of those planned once the search is finished; chosen: the "
               "trial selection took; minutes: search training time so far / an estimate of the "
               "training time left (from the search trials' durations), both summed over "
               "workers. A trial whose worker died on this machine counts as failed; on "
               "another machine it shows as running until its heartbeat stops (PostgreSQL) "
               "or a worker there next looks at it.")
