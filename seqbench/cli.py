"""The `seqbench` command line.

Torch and Lightning are imported inside the commands that need them, so `seqbench --help`
and `seqbench list` answer instantly. Every user error (a `SeqbenchError` or a bad option)
becomes one line on stderr and exit code 2; anything else is a bug and shows a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from seqbench.errors import SeqbenchError

try:  # typer >= 0.2x vendors click; older releases raise click's own exceptions
    from typer.exceptions import TyperException as UsageProblem
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import ClickException as UsageProblem

app = typer.Typer(
    help="Compare recurrent cells (LSTM, GRU, RNN and plugins) fairly across sequence tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def plugins_option(
    disable_plugin: Annotated[Optional[list[str]], typer.Option(
        "--disable-plugin", metavar="NAME",
        help="Do not load this plugin (a plugin or distribution name; repeatable). Same as "
        "$SEQBENCH_DISABLE_PLUGINS=a,b; SEQBENCH_DISABLE_PLUGIN_AUTOLOAD=1 loads only "
        "seqbench's own plugins.")] = None,
) -> None:
    """Options that apply to every command (given before the command name)."""
    if disable_plugin:
        from seqbench.registry import disable

        disable(disable_plugin)


SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="KEY=VALUE for any hyperparameter (repeatable); "
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
    cell: Annotated[Optional[str], typer.Option(help="Cell plugin name (see `seqbench list`).")] = None,
    task: Annotated[Optional[str], typer.Option(help="Task plugin name (see `seqbench list`).")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Dataset of the task (default: the task's).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Maximum epochs.")] = None,
    hidden_size: Annotated[Optional[int], typer.Option(help="Units per layer.")] = None,
    layers: Annotated[Optional[int], typer.Option(help="Stacked layers.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Sequences per batch.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for initialisation and data order.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    data_dir: Annotated[Optional[Path], typer.Option(help="Canonical data files (default: $SEQBENCH_DATA_DIR, else ~/.cache/seqbench).")] = None,
    output_dir: Annotated[Path, typer.Option(help="Where run folders are written.")] = Path("runs"),
    settings: SetOption = None,
    spec: Annotated[Optional[Path], typer.Option(help="Re-run the spec in a run folder's config.json (other options override it).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Train one cell on one task and write a run record."""
    from seqbench.config import build_spec
    from seqbench.runs import read_json

    given = parse_settings(settings)
    base: dict = {}
    if spec is not None:
        if not spec.is_file():
            raise SeqbenchError(f"spec file '{spec}' does not exist.")
        base = read_json(spec)["spec"]
        given = {**base["hparams"], **{f"cell.{k}": v for k, v in base["cell_params"].items()},
                 **{f"task.{k}": v for k, v in base["task_params"].items()}, **given}
    for key, value in (("epochs", epochs), ("hidden_size", hidden_size), ("layers", layers),
                       ("lr", lr), ("batch_size", batch_size)):
        if value is not None:
            given[key] = value
    task = task or base.get("task")
    cell = cell or base.get("cell")
    if not task or not cell:
        raise SeqbenchError("both --task and --cell are required (or --spec).")
    run_spec = build_spec(task, cell, dataset or base.get("dataset"), given,
                          seed=seed if spec is None or seed else base.get("seed", 0), device=device)

    from rich.console import Console

    from seqbench.console import key_value_table
    from seqbench.train import train

    Console().print(f"[bold]seqbench[/] training [bold]{run_spec.cell}[/] on "
                  f"[bold]{run_spec.task}/{run_spec.dataset}[/] (seed {run_spec.seed})")
    result = train(run_spec, output_dir=output_dir, data_dir=data_dir, show_progress=not quiet)
    m = result.metrics
    shown = {k: v for k, v in m.items() if k not in {"status", "split_sizes", "baselines"}}
    for name, values in m.get("baselines", {}).items():
        shown.update({f"{key} ({name} baseline)": value for key, value in values.items()})
    typer.echo("")
    Console().print(key_value_table(f"{m['task']}/{m['dataset']} · {m['cell']}", shown))
    typer.echo(f"Run record: {result.run_dir}")


@app.command("list")
def list_plugins() -> None:
    """Show every installed cell and task plugin, its source and any load error."""
    from rich.console import Console
    from rich.table import Table

    from seqbench.registry import discover

    table = Table(title="seqbench plugins", title_justify="left")
    for column in ("kind", "name", "summary", "provided by", "options"):
        table.add_column(column)
    broken = []
    for kind in ("cell", "task"):
        for name, entry in sorted(discover(kind).items()):
            source = f"{entry.distribution} {entry.version}"
            if entry.disabled is not None:
                table.add_row(kind, name, f"[yellow]{entry.disabled}[/]", source, "")
                continue
            if entry.error is not None:
                broken.append(entry)
                table.add_row(kind, name, "[red]failed to load (see below)[/]", source, "")
                continue
            plugin = entry.plugin
            options = [p.describe() for p in plugin.params]
            if kind == "task":
                options.insert(0, "datasets: " + ", ".join(
                    f"{d}{'*' if d == plugin.default_dataset else ''}" for d in plugin.datasets))
            table.add_row(kind, name, plugin.summary, source, "\n".join(options))
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
    seed: Annotated[Optional[int], typer.Option(help="Sampling seed.")] = None,
    num: Annotated[Optional[int], typer.Option(help="Number of outputs.")] = None,
    settings: SetOption = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "cpu",
    data_dir: Annotated[Optional[Path], typer.Option(help="Canonical data files.")] = None,
) -> None:
    """Use a trained run: sample music, text, forecasts or predictions (task-dependent)."""
    from seqbench import registry
    from seqbench.params import resolve
    from seqbench.runs import read_spec

    spec = read_spec(run_dir)
    task = registry.get_task(spec.task)
    if task.generate is None:
        raise SeqbenchError(f"task '{task.name}' has nothing to generate; its test metrics "
                            f"are in {Path(run_dir) / 'metrics.json'}.")
    given = parse_settings(settings)
    for key, value in (("steps", steps), ("temperature", temperature), ("seed", seed), ("num", num)):
        if value is not None:
            given[key] = value
    options = resolve(task.generate_params, given, f"generate for task '{task.name}'")

    from seqbench.train import load_trained, quiet_lightning

    quiet_lightning()
    _, data, model = load_trained(run_dir, data_dir=data_dir, device=device)
    written = task.generate(model, data, output or Path(run_dir) / "generated", options)
    for path in written:
        typer.echo(str(path))


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
    storage: Annotated[Optional[str], typer.Option(help="Optuna storage: an RDB URL (postgresql://...) shared by many machines, or a journal file (default: OUTPUT_DIR/sweeps.journal).")] = None,
    study: Annotated[str, typer.Option(help="Study name prefix; studies are STUDY/TASK/DATASET/CELL.")] = "seqbench",
    jobs: Annotated[int, typer.Option(help="Parallel trial processes on this machine (CPU threads are divided between them).")] = 1,
    pruner: Annotated[str, typer.Option(help="median, hyperband or none.")] = "median",
    param_budget: Annotated[Optional[int], typer.Option(help="Match parameter counts: each cell's hidden size is chosen to fit this many parameters.")] = None,
    settings: SetOption = None,
    seed: Annotated[int, typer.Option(help="Sampler seed and first final-run seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    data_dir: Annotated[Optional[Path], typer.Option(help="Canonical data files.")] = None,
    output_dir: Annotated[Path, typer.Option(help="Trial and final run records (and the default journal).")] = Path("sweeps"),
) -> None:
    """Tune every cell with the same budget, then re-train each best config with K seeds."""
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
        data_dir=None if data_dir is None else str(data_dir),
    )
    run_sweep(plan)
    typer.echo(f"Studies in {plan.storage}; tables: seqbench report --storage {plan.storage}")


@app.command()
def report(
    output_dir: Annotated[Path, typer.Option(help="Where tables and plots are written (one folder per task/dataset).")],
    storage: Annotated[str, typer.Option(help="The sweep's storage (RDB URL or journal file).")] = "sweeps/sweeps.journal",
    task: Annotated[Optional[str], typer.Option(help="Only this task.")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Only this dataset.")] = None,
    study: Annotated[str, typer.Option(help="Study name prefix used by the sweep.")] = "seqbench",
) -> None:
    """Tables (Markdown, CSV, LaTeX), significance tests and plots from a sweep's storage."""
    from seqbench.reports import write_reports

    for folder in write_reports(storage, output_dir, study=study, task=task, dataset=dataset):
        typer.echo(str(folder))


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
    """Entry point: run the app, turning user errors into one line and exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except SeqbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except UsageProblem as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
