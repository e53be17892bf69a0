"""`seqbench new cell|task NAME`: write a plugin distribution that already passes the
conformance kit and trains (one API function, `new`). Kept apart from `cli` so that each
command module is read in one sitting.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer

new_app = typer.Typer(help="Start a plugin: an installable distribution that already "
                      "passes the conformance kit and trains.", no_args_is_help=True)
DirOption = Annotated[Optional[Path], typer.Option(
    "--dir", help="Folder to write (default: ./seqbench-NAME); must not exist or be empty. "
    "The distribution is named seqbench-NAME whatever the folder.")]


@new_app.command("cell")
def new_cell(name: Annotated[str, typer.Argument(help="The cell's name.")],
             directory: DirOption = None) -> None:
    """Write seqbench-NAME: a cell plugin made with seqbench.step.from_step, with its tests."""
    _scaffold("cell", name, directory)


@new_app.command("task")
def new_task(name: Annotated[str, typer.Argument(help="The task's name.")],
             directory: DirOption = None) -> None:
    """Write seqbench-NAME: a task plugin with offline data and a check case, with its tests."""
    _scaffold("task", name, directory)


def _scaffold(kind: str, name: str, directory: Path | None) -> None:
    from seqbench import api

    written = api.new(kind, name, directory)
    for path in written:
        typer.echo(str(path))
    folder = shlex.quote(str(written[0].parent))
    typer.echo(f"Next: pip install -e {folder} && python -m pytest {folder}")
