"""The `seqbench` command line.

Torch and Lightning are imported inside the commands that need them, so `seqbench --help`
and `seqbench list` answer instantly. `main` is the one funnel for everything a user can
cause: a `SeqbenchError`, a bad option, or an OS error about a path they gave (a file where
a folder belongs, no permission, a full disk) become one `error:` line and exit code 2;
Ctrl-C becomes one line saying what was kept, and exit code 130. Anything else is a bug and
shows a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from seqbench.errors import Interrupted, SeqbenchError, from_os_error
from seqbench.params import MAX_SEED, MAX_SWEEP_SEED

try:  # typer >= 0.2x vendors click; older releases raise click's own exceptions
    from typer.exceptions import TyperException as UsageProblem
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import ClickException as UsageProblem

#: Environment variable that `--storage` defaults to (the way to pass a password); the same
#: as seqbench.sweeps.storage.STORAGE_ENV, named here so that --help imports nothing more.
STORAGE_ENV = "SEQBENCH_STORAGE_URL"

app = typer.Typer(
    help="Compare recurrent cells (LSTM, GRU, RNN and plugins) fairly across sequence tasks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _type_label(option: typer.core.TyperOption, ctx: typer.Context) -> str | None:
    """Help's type column: nothing for flags, the metavar where one is given.

    Typer renders Python annotations there (`<bool>`, `<list[str]>`) and ignores metavars.
    """
    if option.is_flag:
        return None
    if option.metavar:
        return option.metavar
    return _typer_label(option, ctx)


_typer_label = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _type_label


def _show_version(value: bool) -> None:
    if value:
        from seqbench import __version__

        typer.echo(f"seqbench {__version__}")
        raise typer.Exit()


@app.callback()
def plugins_option(
    disable_plugin: Annotated[Optional[list[str]], typer.Option(
        "--disable-plugin", metavar="NAME",
        help="Do not load this plugin (a plugin or distribution name; repeatable). Same as "
        "$SEQBENCH_DISABLE_PLUGINS=a,b; SEQBENCH_DISABLE_PLUGIN_AUTOLOAD=1 loads only "
        "seqbench's own plugins.")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="Show the version and exit.")] = False,
) -> None:
    """Options that apply to every command (given before the command name)."""
    if disable_plugin:
        from seqbench.registry import disable

        disable(disable_plugin)


LoggerOption = Annotated[
    Optional[str],
    typer.Option("--logger", help="Also send per-epoch metrics, hyperparameters and final test "
                 "metrics to csv, tensorboard or mlflow (pip install 'seqbench[tensorboard]' / "
                 "'seqbench[mlflow]'); MLflow: $MLFLOW_TRACKING_URI, else the file store ./mlruns."),
]

SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", metavar="KEY=VALUE", help="Any hyperparameter (repeatable); "
                 "prefix with cell. or task. to disambiguate."),
]
#: More threads than any machine has cores; OpenMP would refuse a larger value with a
#: warning of its own and run on its default instead.
MAX_THREADS = 4096
ThreadsOption = Annotated[
    Optional[int],
    typer.Option(help="Intra-op threads per training process (default: $OMP_NUM_THREADS, "
                 "else the cores this process may use, divided between --jobs).",
                 min=1, max=MAX_THREADS),
]


def parse_settings(pairs: list[str] | None) -> dict[str, str]:
    settings: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SeqbenchError(f"--set expects KEY=VALUE, got '{pair}'.")
        settings[key.strip()] = value.strip()
    return settings


@app.command()
def run(
    cell: Annotated[Optional[str], typer.Option(help="Cell plugin name (see `seqbench list`).")] = None,
    task: Annotated[Optional[str], typer.Option(help="Task plugin name (see `seqbench list`).")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Dataset of the task (default: the task's).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Maximum epochs.")] = None,
    hidden_size: Annotated[Optional[int], typer.Option(help="Units per layer.")] = None,
    layers: Annotated[Optional[int], typer.Option(help="Stacked layers.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Sequences per batch.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for initialisation and data order.", min=0, max=MAX_SEED)] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    data_dir: Annotated[Optional[Path], typer.Option(help="Canonical data files (default: $SEQBENCH_DATA_DIR, else ~/.cache/seqbench).")] = None,
    output_dir: Annotated[Path, typer.Option(help="Where run folders are written.")] = Path("runs"),
    settings: SetOption = None,
    spec: Annotated[Optional[Path], typer.Option(help="Re-run a run folder (or its config.json); other options override it.")] = None,
    threads: ThreadsOption = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    logger: LoggerOption = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue this stopped run folder from its last resume point (with its own spec).")] = None,
) -> None:
    """Train one cell on one task and write a run record."""
    from seqbench import threads as thread_policy

    thread_policy.configure(threads)  # before anything imports torch
    from seqbench.api import run as run_api
    from seqbench.api import spec_for

    if resume is not None:
        if task or cell or spec or settings or dataset:
            raise SeqbenchError("--resume continues the run's own spec; give no other run "
                                "options with it.")
        finished = run_api(resume=resume, data_dir=data_dir, progress=not quiet, logger=logger)
        return _print_result(finished.metrics, finished.dir)
    given = parse_settings(settings)
    for key, value in (("epochs", epochs), ("hidden_size", hidden_size), ("layers", layers),
                       ("lr", lr), ("batch_size", batch_size)):
        if value is not None:
            given[key] = value
    if spec is None and not (task and cell):
        raise SeqbenchError("both --task and --cell are required (or --spec).")
    run_spec = spec_for(task, cell, dataset, seed if spec is None or seed else None, spec=spec,
                        device=device, **given)

    from rich.console import Console

    Console().print(f"[bold]seqbench[/] training [bold]{run_spec.cell}[/] on "
                  f"[bold]{run_spec.task}/{run_spec.dataset}[/] (seed {run_spec.seed})")
    if spec is not None:
        from seqbench.runs import note_machine_change, read_run_config

        note_machine_change(read_run_config(spec))
    with interruptible("the run had not started; nothing was written."):
        finished = run_api(spec=run_spec, output_dir=output_dir, data_dir=data_dir,
                           progress=not quiet, logger=logger)
    _print_result(finished.metrics, finished.dir)


def _print_result(m: dict, run_dir: Path) -> None:
    """The end of `seqbench run` (fresh or resumed): the summary table, files, the folder."""
    from rich.console import Console

    from seqbench import summary
    from seqbench.runs import ITEMS, read_spec

    typer.echo("")
    Console().print(summary.table(m, read_spec(run_dir)))
    note = summary.baseline_note(m)
    if note:
        typer.echo(note)
    for artifact in [*m.get("artifacts", []), *([ITEMS] if "test_items" in m else [])]:
        typer.echo(f"Wrote: {run_dir / artifact}")
    typer.echo(f"Run record: {run_dir}")


class interruptible:
    """Turn Ctrl-C inside the block into `Interrupted(kept)`.

    A run's own `Interrupted` (which names its folder) passes through unless `overrule`:
    inside a sweep, what matters is the storage and the command that resumes the sweep.
    """

    def __init__(self, kept: str, overrule: bool = False) -> None:
        self.kept = kept
        self.overrule = overrule

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, traceback) -> bool:
        if kind is not None and (issubclass(kind, KeyboardInterrupt) or
                                 (self.overrule and issubclass(kind, Interrupted))):
            raise Interrupted(self.kept) from None
        return False


@app.command("list")
def list_plugins() -> None:
    """Show every installed cell and task plugin, its source and any load error."""
    from rich.console import Console
    from rich.table import Table

    from seqbench.registry import discover

    from seqbench.config import CORE_PARAMS

    core = Table(title="core hyperparameters (every run; a task may change the defaults)",
                 title_justify="left")
    core.add_column("name", no_wrap=True)
    core.add_column("default and range", overflow="fold")
    core.add_column("meaning")
    for param in CORE_PARAMS:
        core.add_row(param.name, param.describe().partition("=")[2], param.help)
    table = Table(title="seqbench plugins", title_justify="left")
    for column in ("kind", "name", "family", "summary", "provided by"):
        table.add_column(column)
    table.add_column("options", overflow="fold")  # fold long words, never cut them
    broken = []
    for kind in ("cell", "task"):
        for name, entry in sorted(discover(kind).items()):
            source = f"{entry.distribution} {entry.version}"
            if entry.disabled is not None:
                table.add_row(kind, name, "", f"[yellow]{entry.disabled}[/]", source, "")
                continue
            if entry.error is not None:
                broken.append(entry)
                table.add_row(kind, name, "", "[red]failed to load (see below)[/]", source, "")
                continue
            plugin = entry.plugin
            options = [p.describe() for p in plugin.params]
            if kind == "task":
                options.insert(0, "datasets: " + ", ".join(
                    f"{d}{'*' if d == plugin.default_dataset else ''}" for d in plugin.datasets))
            family = plugin.family if kind == "cell" else ""
            table.add_row(kind, name, family, plugin.summary, source, "\n".join(options))
    Console().print(core)
    Console().print(table)
    for entry in broken:
        # In full and unwrapped: this is what the plugin's author needs to fix it.
        typer.echo(f"\nfailed: {entry.kind} plugin '{entry.name}' ({entry.target}) from "
                   f"{entry.distribution} {entry.version}: {entry.error}")
        if entry.details:
            typer.echo(entry.details.rstrip())
    if broken:
        typer.echo(f"{len(broken)} plugin(s) failed to load; commands that do not select them "
                   "still work.")


@app.command()
def generate(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder.")],
    output: Annotated[Optional[Path], typer.Option(help="Folder for the outputs (default: RUN_DIR/generated).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="How much to generate.")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Sampling temperature.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Sampling seed.", min=0, max=MAX_SEED)] = None,
    num: Annotated[Optional[int], typer.Option(help="Number of outputs.")] = None,
    inputs: Annotated[Optional[list[Path]], typer.Option("--input", help="A file (or folder) for the task to read, e.g. a recording to transcribe; repeat it for more (the same as --set input=A,B).")] = None,
    settings: SetOption = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "cpu",
    data_dir: Annotated[Optional[Path], typer.Option(help="Canonical data files.")] = None,
) -> None:
    """Use a trained run: sample music, text, forecasts or predictions (task-dependent)."""
    from seqbench.api import Run
    from seqbench.runs import check_output_dir, read_spec

    # A Run opened directly, not through `load`: a stopped run's best model can be used too.
    run = Run(dir=Path(run_dir), spec=read_spec(run_dir), metrics={}, data_dir=data_dir,
              device=device)
    check_output_dir(output or Path(run_dir) / "generated", "--output")
    given = parse_settings(settings)
    for key, value in (("steps", steps), ("temperature", temperature), ("seed", seed), ("num", num)):
        if value is not None:
            given[key] = value
    if inputs:
        given["input"] = ",".join(map(str, inputs))
    with interruptible("files written so far are kept; run the command again for the rest."):
        written = run.generate(output, **given)
    for path in written:
        typer.echo(str(path))


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder.")],
    format: Annotated[str, typer.Option("--format", help="torchscript or onnx (onnx: pip install 'seqbench\\[export]').")] = "torchscript",
    output: Annotated[Optional[Path], typer.Option(help="File to write (default: RUN_DIR/model.pt or model.onnx).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Canonical data files (the check runs the model on test inputs).")] = None,
) -> None:
    """Export the trained network (encoder, cell, head) for use without seqbench, checked
    against the run's model on its test inputs."""
    from seqbench.exporter import export as export_run

    done = export_run(run_dir, format, output, data_dir)
    shapes = " and ".join("x".join(map(str, shape)) for shape in done.checked_on)
    typer.echo(f"{done.path}")
    typer.echo(f"checked with {done.checked_with} on test inputs of (batch x length) {shapes}: "
               f"largest difference from the run's model {done.max_difference:.2g}")


@app.command()
def data(
    task: Annotated[str, typer.Option(help="Task plugin name.")],
    dataset: Annotated[Optional[str], typer.Option(help="Dataset of the task (default: the task's).")] = None,
    settings: SetOption = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Canonical data files.")] = None,
) -> None:
    """Dry run: load and validate a dataset, print split sizes, lengths, balance and cache."""
    from seqbench.datacheck import load, show

    name, loaded = load(task, dataset, parse_settings(settings), data_dir)
    show(task, name, loaded)


@app.command()
def sweep(
    task: Annotated[str, typer.Option(help="Task plugin name.")],
    cells: Annotated[str, typer.Option(help="Comma-separated cell names, e.g. lstm,gru,rnn.")],
    dataset: Annotated[Optional[str], typer.Option(help="Dataset of the task (default: the task's).")] = None,
    trials: Annotated[int, typer.Option(help="Search budget per cell (completed + pruned trials; the first is the task's defaults, a third are random start-up).")] = 30,
    seeds: Annotated[int, typer.Option(help="Final runs per cell with the selected configuration (seeds disjoint from the search).")] = 5,
    top: Annotated[int, typer.Option(help="Configurations re-run with fresh seeds before one is selected.")] = 3,
    rerun_seeds: Annotated[int, typer.Option(help="Fresh seeds per re-run configuration (0 = select the best trial as it is).")] = 2,
    folds: Annotated[Optional[int], typer.Option(help="Validation folds per trial (default: what the task declares for the dataset; 1 = its own split).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Maximum epochs per trial.")] = None,
    max_time: Annotated[Optional[float], typer.Option(help="Time budget per trial in seconds (instead of, or with, --epochs).")] = None,
    storage: Annotated[Optional[str], typer.Option(envvar=STORAGE_ENV, show_envvar=True, help="Optuna storage: an RDB URL (postgresql://...) shared by many machines, or a journal file (default: OUTPUT_DIR/sweeps.journal). Give a password through the environment variable or the driver's own (PGPASSWORD, ~/.pgpass), never on the command line; it is shown and stored redacted.")] = None,
    study: Annotated[str, typer.Option(help="Study name prefix; studies are STUDY/TASK/DATASET/CELL.")] = "seqbench",
    jobs: Annotated[int, typer.Option(help="Parallel trial processes on this machine (CPU threads are divided between them).")] = 1,
    pruner: Annotated[str, typer.Option(help="median, hyperband or none.")] = "median",
    param_budget: Annotated[Optional[int], typer.Option(help="Match parameter counts: each cell's hidden size is chosen to fit this many parameters.")] = None,
    refit: Annotated[bool, typer.Option("--refit", help="Finals train on the training and validation items together, for the median best epoch of the chosen configuration's validation runs (scikit-learn's refit).")] = False,
    settings: SetOption = None,
    seed: Annotated[int, typer.Option(help="Sampler seed and first final-run seed.", min=0, max=MAX_SWEEP_SEED)] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    data_dir: Annotated[Optional[Path], typer.Option(help="Canonical data files.")] = None,
    output_dir: Annotated[Path, typer.Option(help="Trial and final run records (and the default journal).")] = Path("sweeps"),
    threads: ThreadsOption = None,
    logger: LoggerOption = None,
) -> None:
    """Tune every cell with the same budget, then re-train each best config with K seeds."""
    from seqbench import threads as thread_policy

    thread_policy.configure(threads, jobs=max(1, jobs))  # before anything imports torch
    from seqbench.runs import check_output_dir
    from seqbench.sweeps.runner import SweepPlan, run_sweep
    from seqbench.sweeps.storage import storage_url

    fixed = parse_settings(settings)
    if epochs is not None:
        fixed["epochs"] = str(epochs)
    plan = SweepPlan(
        task=task, dataset=dataset or _default_dataset(task), cells=_split_names(cells),
        trials=trials, seeds=seeds, top=top, rerun_seeds=rerun_seeds, folds=folds,
        storage=storage_url(storage, output_dir), study=study,
        settings=fixed, max_seconds=max_time, jobs=jobs, pruner=pruner,
        param_budget=param_budget, seed=seed, device=device, output_dir=str(output_dir),
        data_dir=None if data_dir is None else str(data_dir), logger=logger, refit=refit,
    )
    check_output_dir(output_dir)
    with interruptible(f"completed trials and finals are kept in {plan.storage}; run the "
                       "same command again to go on.", overrule=True):
        run_sweep(plan)
    study_option = "" if study == "seqbench" else f" --study {study}"
    typer.echo(f"Studies in {plan.storage}; tables: seqbench report --storage {plan.storage}"
               f"{study_option} --output-dir reports")


@app.command()
def report(
    output_dir: Annotated[Path, typer.Option(help="Where tables and plots are written (one folder per task/dataset).")],
    storage: Annotated[str, typer.Option(envvar=STORAGE_ENV, show_envvar=True, help="The sweep's storage (RDB URL or journal file).")] = "sweeps/sweeps.journal",
    task: Annotated[Optional[str], typer.Option(help="Only this task.")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Only this dataset.")] = None,
    study: Annotated[str, typer.Option(help="Study name prefix used by the sweep.")] = "seqbench",
    against: Annotated[Optional[str], typer.Option(help="Compare every cell with this one only (a reference chosen in advance, e.g. lstm-vanilla), instead of every pair.")] = None,
) -> None:
    """Tables (Markdown, CSV, LaTeX), significance tests and plots from a sweep's storage."""
    from seqbench.reports import write_reports
    from seqbench.runs import check_output_dir
    from seqbench.sweeps.storage import storage_url

    check_output_dir(output_dir)
    storage = storage_url(storage, output_dir)  # from here on, any password is redacted
    with interruptible(f"tables already written under {output_dir} are kept; run the "
                       "command again to finish them."):
        for folder in write_reports(storage, output_dir, study=study, task=task,
                                    dataset=dataset, against=against):
            typer.echo(str(folder))


@app.command()
def publish(
    study: Annotated[str, typer.Option(help="Study name prefix of the sweep (several: a,b).")],
    to: Annotated[Path, typer.Option(help="Results folder: its studies.journal gets the studies, and the final runs' small files go beside it.")],
    storage: Annotated[str, typer.Option(envvar=STORAGE_ENV, show_envvar=True, help="The sweep's storage (RDB URL or journal file).")] = "sweeps/sweeps.journal",
    cells: Annotated[Optional[str], typer.Option(help="Only these cells' studies (a,b); default all, each of which must be finished.")] = None,
) -> None:
    """Copy a sweep's studies and final-run records (no checkpoints) into a results folder,
    so `seqbench report --storage TO/studies.journal` rebuilds from committed files."""
    from seqbench.sweeps.publish import RESULTS_JOURNAL
    from seqbench.sweeps.publish import publish as copy_sweep
    from seqbench.sweeps.storage import storage_url

    storage = storage_url(storage, Path("."))
    names = copy_sweep(storage, study, to, cells=_split_names(cells) if cells else None)
    typer.echo(f"{len(names)} studies copied into {to / RESULTS_JOURNAL}; tables: seqbench "
               f"report --storage {to / RESULTS_JOURNAL} --study {study} --output-dir {to}")


new_app = typer.Typer(help="Start a plugin: an installable distribution that already "
                      "passes the conformance kit and trains.", no_args_is_help=True)
app.add_typer(new_app, name="new")
DirOption = Annotated[Optional[Path], typer.Option(
    "--dir", help="Folder to write (default: ./seqbench-NAME); must not exist or be empty.")]


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
    from seqbench.scaffold import scaffold

    written = scaffold(kind, name, directory)
    for path in written:
        typer.echo(str(path))
    typer.echo(f"Next: pip install -e {written[0].parent} && python -m pytest "
               f"{written[0].parent}")


def _split_names(names: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in names.split(",") if name.strip())


def _default_dataset(task: str) -> str:
    from seqbench import registry

    return registry.get_task(task).default_dataset


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; user errors become one line and exit 2, Ctrl-C exit 130."""
    try:
        result = app(args=argv, standalone_mode=False, prog_name="seqbench")
    except SeqbenchError as exc:
        return fail(str(exc))
    except Interrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        return 130
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted.", file=sys.stderr)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except UsageProblem as exc:
        return fail(exc.format_message())
    except OSError as exc:
        error = from_os_error(exc)
        if error is None:
            raise
        return fail(str(error))
    # Without standalone mode click hands back an Exit's code (e.g. 130) as the result.
    return result if isinstance(result, int) else 0


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
