"""`seqbench suite`: list the shipped benchmark suites, show one, check that its datasets
load, run it and see where a run stands (each command one API function: `suites`,
`suite_plan`, `suite_check`, `suite`, `suite_status`). Kept apart from `cli` so that each
command module is read in one sitting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from seqbench.cli_options import STORAGE_ENV, ThreadsOption, interruptible
from seqbench.errors import SeqbenchError

suite_app = typer.Typer(help="Benchmark suites: datasets with their budgets and reasons, "
                        "as data (TOML).", no_args_is_help=True)


@suite_app.command("list")
def suite_list() -> None:
    """The suites that ship: their size, tasks, cells and estimated cost on this machine."""
    from seqbench import api
    from seqbench.benchsuite import show

    show.suites_table(api.suites())


@suite_app.command("show")
def suite_show(suite: Annotated[str, typer.Argument(help="A shipped suite's name or a "
                                                    "suite file (.toml).")]) -> None:
    """Every dataset of a suite: its budget, what is reduced, its cost and why it is in."""
    from seqbench import api
    from seqbench.benchsuite import show

    show.suite_table(api.suite_plan(suite))


@suite_app.command("check")
def suite_check(
    suite: Annotated[str, typer.Argument(help="A shipped suite's name or a suite file (.toml).")],
    datasets: Annotated[Optional[str], typer.Option(help="Only these, as TASK/DATASET,... (default: all).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Canonical data files.")] = None,
) -> None:
    """Load every dataset of a suite as its runs will (filling the cache they reuse), and
    say which do not load here, before the hours of training start."""
    from seqbench import api
    from seqbench.benchsuite import show

    results = api.suite_check(suite, tuple(filter(None, (name.strip() for name in (datasets or "").split(",")))), data_dir,
                              progress=show.check_line)
    show.check_table(suite, results)
    failed = [result.dataset.name for result in results if result.error]
    if failed:
        raise SeqbenchError(f"{len(failed)} of {len(results)} datasets of suite '{suite}' do "
                            f"not load: {', '.join(failed)} (reasons above).")


@suite_app.command("status")
def suite_status(
    suite: Annotated[str, typer.Argument(help="A shipped suite's name or a suite file (.toml).")],
    study: Annotated[Optional[str], typer.Option(help="Study name prefix the suite ran under (default: the suite's name).")] = None,
    storage: Annotated[Optional[str], typer.Option(envvar=STORAGE_ENV, show_envvar=True, help="The storage its workers share (default: OUTPUT_DIR/sweeps.journal).")] = None,
    output_dir: Annotated[Path, typer.Option(help="The --output-dir the workers were given (for the default journal).")] = Path("sweeps"),
) -> None:
    """Where a suite run stands, from the storage its workers share (on any machine, while
    they run): each dataset done, being swept and by whom, or not begun, with its search
    trials and final runs so far. Reads only."""
    from seqbench import api
    from seqbench.benchsuite import show

    show.status_table(suite, api.suite_status(suite, study=study, storage=storage,
                                              output_dir=output_dir))


@suite_app.command("run")
def suite_run(
    suite: Annotated[str, typer.Argument(help="A shipped suite's name or a suite file (.toml).")],
    jobs: Annotated[int, typer.Option(help="Parallel trial processes of each dataset's sweep on this machine.")] = 1,
    storage: Annotated[Optional[str], typer.Option(envvar=STORAGE_ENV, show_envvar=True, help="Optuna storage every worker of the suite shares: a journal file (default: OUTPUT_DIR/sweeps.journal; workers on this machine) or an RDB URL (postgresql://...; workers on many machines).")] = None,
    study: Annotated[Optional[str], typer.Option(help="Study name prefix (default: the suite's name); studies are STUDY/TASK/DATASET/CELL.")] = None,
    output_dir: Annotated[Path, typer.Option(help="Trial and final run records (and the default journal).")] = Path("sweeps"),
    report_dir: Annotated[Optional[Path], typer.Option(help="Where the report goes (default: OUTPUT_DIR/reports/STUDY).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    data_dir: Annotated[Optional[Path], typer.Option(help="Canonical data files.")] = None,
    poll_seconds: Annotated[float, typer.Option(help="How often a worker with nothing left to take looks again while others finish.", min=0.1)] = 10.0,
    threads: ThreadsOption = None,
    datasets: Annotated[Optional[str], typer.Option(help="Only these, as TASK/DATASET,...: a part of the suite first (the report covers every dataset done).")] = None,
) -> None:
    """Sweep every dataset of a suite in one storage, then report across datasets.

    Resumable: run it again after a stop and it goes on. Start it in several terminals or
    on several machines sharing one storage and each worker takes the next free dataset."""
    from seqbench import api

    with interruptible("finished datasets and completed trials are kept in the storage; run "
                       "the same command again to go on.", overrule=True):
        folder = api.suite(suite, jobs=jobs, study=study, storage=storage,
                           output_dir=output_dir, report_dir=report_dir, data_dir=data_dir,
                           device=device, poll_seconds=poll_seconds, threads=threads,
                           datasets=datasets)
    typer.echo(f"Report across the suite's datasets: {folder / 'index.html'}")
