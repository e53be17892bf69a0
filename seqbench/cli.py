"""The `seqbench` command line: a thin shell over the Python API (`seqbench.api`).

Every command parses its options, calls one API function of the same name with parameters
of the same names (a test walks the app and checks it), and prints what came back; the
logic lives in the API, so a notebook and the command line cannot drift apart. Torch and
Lightning are imported inside the API calls that need them, so `seqbench --help` and
`seqbench list` answer instantly. `main` is the one funnel for everything a user can
cause: a `SeqbenchError`, a bad option, or an OS error about a path they gave (a file where
a folder belongs, no permission, a full disk) become one `error:` line and exit code 2;
Ctrl-C becomes one line saying what was kept, and exit code 130. Anything else is a bug and
shows a traceback.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from seqbench.cli_help import TaskOptionsHelp, complete_cell_list, complete_cells
from seqbench.cli_help import complete_datasets, complete_tasks
from seqbench import stopping
from seqbench.cli_options import STORAGE_ENV, ThreadsOption, interruptible
from seqbench.cli_new import new_app
from seqbench.cli_suite import suite_app
from seqbench.errors import STDOUT, Interrupted, SeqbenchError, WriteFailed, one_line, writing
from seqbench.params import MAX_SEED

try:  # typer >= 0.2x vendors click; older releases raise click's own exceptions
    from typer.exceptions import TyperException as UsageProblem
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import ClickException as UsageProblem

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
    return _TYPER_LABEL(option, ctx)


_TYPER_LABEL = typer.core.TyperOption.display_type_rich


def _configure_help() -> None:
    """Show metavars in help's type column (typer has no setting for it, so its renderer is
    replaced): done where the command line starts, not when this module is imported."""
    typer.core.TyperOption.display_type_rich = _type_label


def _show_version(value: bool) -> None:
    if value:
        from seqbench import PLUGIN_API, __version__

        typer.echo(f"seqbench {__version__} (plugin API {PLUGIN_API})")
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


#: Help is rich markup, where `[tensorboard]` is a style tag: rich's escape `\[` keeps it.
LoggerOption = Annotated[
    Optional[str],
    typer.Option("--logger", help="Also send per-epoch metrics, hyperparameters and final test "
                 "metrics to csv, tensorboard or mlflow (pip install 'seqbench\\[tensorboard]' / "
                 "'seqbench\\[mlflow]'); MLflow: $MLFLOW_TRACKING_URI, else the file store "
                 "./mlruns."),
]

SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", metavar="KEY=VALUE", help="Any hyperparameter (repeatable); "
                 "prefix with cell. or task. to disambiguate."),
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
    cell: Annotated[Optional[str], typer.Option(autocompletion=complete_cells, help="Cell plugin name (see `seqbench list`).")] = None,
    task: Annotated[Optional[str], typer.Option(autocompletion=complete_tasks, help="Task plugin name (see `seqbench list`).")] = None,
    dataset: Annotated[Optional[str], typer.Option(autocompletion=complete_datasets, help="Dataset of the task (default: the task's).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Maximum epochs.")] = None,
    hidden_size: Annotated[Optional[int], typer.Option(help="Units per layer.")] = None,
    layers: Annotated[Optional[int], typer.Option(help="Stacked layers.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Sequences per batch.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for initialisation and data order (default: 0, or the --spec's).", min=0, max=MAX_SEED, show_default=False)] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu or cuda (default: auto, or the --spec's).", show_default=False)] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Canonical data files (default: $SEQBENCH_DATA_DIR, else ~/.cache/seqbench).")] = None,
    output_dir: Annotated[Path, typer.Option(help="Where run folders are written.")] = Path("runs"),
    settings: SetOption = None,
    spec: Annotated[Optional[Path], typer.Option(help="Re-run a run folder (or its config.json); other options override it.")] = None,
    threads: ThreadsOption = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    logger: LoggerOption = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue this stopped run folder from its last resume point (with its own spec).")] = None,
    devices: Annotated[Optional[int], typer.Option(help="Devices one run trains on with DDP (CPU processes or GPUs; default 1).")] = None,
    num_nodes: Annotated[Optional[int], typer.Option(help="Machines one run spans, each with --devices (default 1).")] = None,
    strategy: Annotated[Optional[str], typer.Option(help="auto (DDP with several devices) or ddp.")] = None,
    precision: Annotated[Optional[str], typer.Option(help="32 (default), bf16-mixed or 16-mixed (GPU).")] = None,
) -> None:
    """Train one cell on one task and write a run record."""
    from seqbench import api, show

    given = shortcuts(settings, epochs=epochs, hidden_size=hidden_size, layers=layers, lr=lr,
                      batch_size=batch_size, devices=devices, num_nodes=num_nodes,
                      strategy=strategy, precision=precision)
    if resume is not None:
        if task or cell or spec or given or dataset or seed is not None or threads or device:
            raise SeqbenchError("--resume continues the run's own spec (its seed and threads "
                                "included); give no other run options with it.")
    elif spec is None and not (task and cell):
        raise SeqbenchError("both --task and --cell are required (or --spec).")
    with interruptible("the run had not started; nothing was written."):
        finished = api.run(task, cell, dataset, seed, spec=spec, device=device,
                           data_dir=data_dir, output_dir=output_dir, progress=not quiet,
                           resume=resume, logger=logger, threads=threads, **given)
    show.run_result(finished.metrics, finished.dir)


def shortcuts(pairs: list[str] | None, **options: object) -> dict[str, object]:
    """`--set KEY=VALUE` pairs and the options that are shortcuts for settings, as the
    API's keyword settings."""
    given: dict[str, object] = parse_settings(pairs)
    given.update({key: value for key, value in options.items() if value is not None})
    return given


@app.command("list")
def list_plugins() -> None:
    """Show every installed cell and task plugin, its source and any load error."""
    from seqbench import api, show

    show.listing(api.list())


@app.command(cls=TaskOptionsHelp)
def generate(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder.")],
    out_dir: Annotated[Optional[Path], typer.Option("--output", help="Folder for the outputs (default: RUN_DIR/generated).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="How much to generate.")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Sampling temperature.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Sampling seed.", min=0, max=MAX_SEED)] = None,
    num: Annotated[Optional[int], typer.Option(help="Number of outputs.")] = None,
    horizon: Annotated[Optional[int], typer.Option(help="Forecasting: steps to predict past the end of the data, with intervals.", min=1)] = None,
    inputs: Annotated[Optional[list[Path]], typer.Option("--input", help="A file (or folder) for the task to read, e.g. a recording to transcribe; repeat it for more (the same as --set input=A,B).")] = None,
    settings: SetOption = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "cpu",
    data_dir: Annotated[Optional[Path], typer.Option(help="Canonical data files.")] = None,
) -> None:
    """Use a trained run: sample music, text, forecasts or predictions (task-dependent)."""
    from seqbench import api

    given = shortcuts(settings, steps=steps, temperature=temperature, seed=seed, num=num,
                      horizon=horizon,
                      input=",".join(map(str, inputs)) if inputs else None)
    with interruptible("files written so far are kept; run the command again for the rest."), \
            writing(out_dir or Path(run_dir) / "generated"):
        written = api.generate(run_dir, out_dir, device, data_dir, **given)
    for path in written:
        typer.echo(str(path))


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder.")],
    format: Annotated[str, typer.Option("--format", help="torchscript or onnx (onnx: pip install 'seqbench\\[export]').")] = "torchscript",
    out: Annotated[Optional[Path], typer.Option("--output", help="File to write (default: RUN_DIR/model.pt or model.onnx).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Canonical data files (the check runs the model on test inputs).")] = None,
) -> None:
    """Export the trained network (encoder, cell, head) for use without seqbench, checked
    against the run's model on its test inputs."""
    from seqbench import api, show

    show.exported(api.export(run_dir, format, out, data_dir))


@app.command()
def data(
    task: Annotated[str, typer.Option(autocompletion=complete_tasks, help="Task plugin name.")],
    dataset: Annotated[Optional[str], typer.Option(autocompletion=complete_datasets, help="Dataset of the task (default: the task's).")] = None,
    settings: SetOption = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Canonical data files.")] = None,
) -> None:
    """Dry run: load and validate a dataset, print split sizes, lengths, balance and cache."""
    from seqbench import api, show

    show.data_check(api.data(task, dataset, data_dir, **parse_settings(settings)))


@app.command()
def sweep(
    task: Annotated[str, typer.Option(autocompletion=complete_tasks, help="Task plugin name.")],
    cells: Annotated[str, typer.Option(autocompletion=complete_cell_list, help="Comma-separated cell names, e.g. lstm,gru,rnn.")],
    dataset: Annotated[Optional[str], typer.Option(autocompletion=complete_datasets, help="Dataset of the task (default: the task's).")] = None,
    trials: Annotated[int, typer.Option(help="Search budget per cell (completed + pruned trials; the first is the task's defaults, a third are random start-up).")] = 30,
    seeds: Annotated[int, typer.Option(help="Final runs per cell with the selected configuration (seeds apart from the search's).")] = 10,
    top: Annotated[int, typer.Option(help="Configurations re-run with fresh seeds before one is selected.")] = 3,
    rerun_seeds: Annotated[Optional[int], typer.Option(help="Fresh seeds per re-run configuration (default: enough for 5 paired values, seeds x folds; 0 = select the best trial as it is).")] = None,
    folds: Annotated[Optional[int], typer.Option(help="Validation folds per trial (default: what the task declares for the dataset; 1 = its own split).")] = None,
    repeats: Annotated[int, typer.Option(help="Independent searches per cell, each with its own seeds (reports then tell the search's variance from the training seeds').")] = 1,
    epochs: Annotated[Optional[int], typer.Option(help="Maximum epochs per trial.")] = None,
    max_seconds: Annotated[Optional[float], typer.Option("--max-time", help="Time budget per trial in seconds (instead of, or with, --epochs).")] = None,
    storage: Annotated[Optional[str], typer.Option(envvar=STORAGE_ENV, show_envvar=True, help="Optuna storage: an RDB URL (postgresql://...) shared by many machines, or a journal file (default: OUTPUT_DIR/sweeps.journal). Give a password through the environment variable or the driver's own (PGPASSWORD, ~/.pgpass), never on the command line; it is shown and stored redacted.")] = None,
    study: Annotated[str, typer.Option(help="Study name prefix; studies are STUDY/TASK/DATASET/CELL.")] = "seqbench",
    jobs: Annotated[int, typer.Option(help="Parallel trial processes on this machine (CPU threads are divided between them; with GPUs, each gets its own).")] = 1,
    gpus_per_trial: Annotated[int, typer.Option(help="GPUs each trial trains on with DDP (the visible GPUs are grouped, one group per --jobs worker).")] = 1,
    pruner: Annotated[str, typer.Option(help="median, hyperband or none.")] = "median",
    param_budget: Annotated[Optional[int], typer.Option(help="Match parameter counts: each cell's hidden size is chosen to fit this many parameters.")] = None,
    refit: Annotated[bool, typer.Option("--refit", help="Finals train on the training and validation items together, for the median best epoch of the chosen configuration's validation runs (scikit-learn's refit).")] = False,
    settings: SetOption = None,
    seed: Annotated[int, typer.Option(help="Entropy of the sweep's seeds (numpy SeedSequence): sampler, trials, re-runs and finals.", min=0, max=MAX_SEED)] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    data_dir: Annotated[Optional[Path], typer.Option(help="Canonical data files.")] = None,
    output_dir: Annotated[Path, typer.Option(help="Trial and final run records (and the default journal).")] = Path("sweeps"),
    threads: ThreadsOption = None,
    logger: LoggerOption = None,
    search_only: Annotated[bool, typer.Option("--search-only", help="Stop after the search (cluster workers sharing one study; one process then runs the same command without it for selection and finals).")] = False,
) -> None:
    """Tune every cell with the same budget, then re-train each best config with K seeds."""
    from seqbench import api
    from seqbench.sweeps.storage import JOURNAL_NAME, redact

    given = shortcuts(settings, epochs=epochs)
    shown = redact(storage) if storage else str(output_dir / JOURNAL_NAME)
    with interruptible(f"completed trials and finals are kept in {shown}; run the "
                       "same command again to go on.", overrule=True), writing(output_dir):
        done = api.sweep(task, split_names(cells), trials, seeds, dataset=dataset, top=top,
                         rerun_seeds=rerun_seeds, folds=folds, repeats=repeats, jobs=jobs,
                         gpus_per_trial=gpus_per_trial, pruner=pruner,
                         param_budget=param_budget, max_seconds=max_seconds,
                         seed=seed, device=device, study=study, storage=storage,
                         output_dir=output_dir, data_dir=data_dir, refit=refit, logger=logger,
                         threads=threads, search_only=search_only, **given)
    study_option = [] if study == "seqbench" else ["--study", study]
    typer.echo(f"Studies in {done.storage}; tables: " + shlex.join(
        ["seqbench", "report", "--storage", done.storage, *study_option,
         "--output-dir", "reports"]))


@app.command()
def report(
    output_dir: Annotated[Path, typer.Option(help="Where tables and plots are written (one folder per task/dataset).")] = Path("reports"),
    storage: Annotated[str, typer.Option(envvar=STORAGE_ENV, show_envvar=True, help="The sweep's storage (RDB URL or journal file).")] = "sweeps/sweeps.journal",
    task: Annotated[Optional[str], typer.Option(autocompletion=complete_tasks, help="Only this task.")] = None,
    dataset: Annotated[Optional[str], typer.Option(autocompletion=complete_datasets, help="Only this dataset.")] = None,
    study: Annotated[str, typer.Option(help="Study name prefix used by the sweep.")] = "seqbench",
    against: Annotated[Optional[str], typer.Option(help="Compare every cell with this one only (a reference chosen in advance, e.g. lstm-vanilla), instead of every pair.")] = None,
) -> None:
    """Tables (Markdown, CSV, LaTeX), significance tests and plots from a sweep's storage."""
    from seqbench import api

    with interruptible(f"tables already written under {output_dir} are kept; run the "
                       "command again to finish them."), writing(output_dir):
        for folder in api.report(output_dir, storage, task, dataset, study, against):
            typer.echo(str(folder))


@app.command()
def publish(
    study: Annotated[str, typer.Option(help="Study name prefix of the sweep (several: a,b).")],
    to: Annotated[Path, typer.Option(help="Results folder: its studies.journal gets the studies, and the final runs' small files go beside it.")],
    storage: Annotated[str, typer.Option(envvar=STORAGE_ENV, show_envvar=True, help="The sweep's storage (RDB URL or journal file).")] = "sweeps/sweeps.journal",
    cells: Annotated[Optional[str], typer.Option(autocompletion=complete_cell_list, help="Only these cells' studies (a,b); default all, each of which must be finished.")] = None,
) -> None:
    """Copy a sweep's studies and final-run records (no checkpoints) into a results folder,
    so `seqbench report --storage TO/studies.journal` rebuilds from committed files."""
    from seqbench import api
    from seqbench.sweeps.publish import RESULTS_JOURNAL

    with writing(to):
        names = api.publish(study, to, storage, split_names(cells) if cells else None)
    typer.echo(f"{len(names)} studies copied into {to / RESULTS_JOURNAL}; tables: " + shlex.join(
        ["seqbench", "report", "--storage", str(to / RESULTS_JOURNAL), "--study", study,
         "--output-dir", str(to)]))


@app.command()
def status(
    study: Annotated[str, typer.Option(help="Study name prefix of the sweep (several: a,b).")] = "seqbench",
    storage: Annotated[str, typer.Option(envvar=STORAGE_ENV, show_envvar=True, help="The sweep's storage (RDB URL or journal file).")] = "sweeps/sweeps.journal",
) -> None:
    """Where a sweep stands, from its storage (on any machine, while its workers run): per
    cell the search trials, selection re-runs, chosen configuration and finals. Reads only."""
    from seqbench import api, show

    show.sweep_status(api.status(study, storage))


app.add_typer(suite_app, name="suite")

app.add_typer(new_app, name="new")


def split_names(names: str) -> tuple[str, ...]:
    """A comma-separated list of names (`--cells lstm,gru`)."""
    return tuple(name.strip() for name in names.split(",") if name.strip())


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; user errors become one line and exit 2, Ctrl-C (and SIGTERM,
    which is handled as Ctrl-C: `seqbench.stopping`) exit 130.

    Commands wrap the writes to their outputs in `errors.writing(path)`, so an OSError naming
    no file that still gets here came from writing stdout (`> /dev/full`), which is flushed
    inside the funnel. A closed pipe (`seqbench list | head -1`) ends quietly with exit
    code 1, as click and rich end it: a reader that has seen enough.
    """
    _configure_help()
    try:
        with stopping.sigterm_is_ctrl_c(), writing(STDOUT):
            result = app(args=argv, standalone_mode=False, prog_name="seqbench")
            sys.stdout.flush()
    except SeqbenchError as exc:
        if isinstance(exc, WriteFailed) and exc.place == STDOUT:
            from seqbench import show

            show.silence_stdout()
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
    # Without standalone mode click hands back an Exit's code (e.g. 130) as the result.
    return result if isinstance(result, int) else 0


def fail(message: str) -> int:
    print(f"error: {one_line(message)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
