"""The Python API: every `seqbench` command is one function here, and the command line is a
thin shell over them (it parses, calls one of these, and prints).

`run`, `load`, `generate`, `export`: train a run, open a run folder, use its model, write it
for use without seqbench. `sweep`, `status`, `report`, `publish`: compare cells, see where a
sweep stands, write or publish the tables. `suites`, `suite_plan`, `suite_check`, `suite`,
`suite_status`: the suites that ship, one suite's budgets and cost, whether its datasets load,
running it over any number of workers, where that stands. `data`, `list`, `cells`, `tasks`,
`register`, `new`: look at what is installed and add to it. A run returns a `Run` holding its
metrics, its per-epoch history and the best-epoch model; a sweep returns a `Comparison`
whose table is the report's. A cell or task defined in a notebook is passed as an object
(or `register`ed once) and compared without being packaged. Everything is validated by
`build_spec` and `SweepPlan`, exactly as on the command line. Torch is imported only when
something trains or loads a model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from seqbench import registry, runs
from seqbench.threads import scoped
from seqbench.benchsuite import Priced, load_suite, priced, suites  # noqa: F401 - sb.suites
from seqbench.benchsuite.check import DatasetCheck
from seqbench.benchsuite.progress import DatasetProgress
from seqbench.benchsuite.spec import SuiteDataset
from seqbench.config import RunSpec, build_spec
from seqbench.contracts import Cell, Task
from seqbench.datacheck import DataCheck
from seqbench.errors import SeqbenchError
from seqbench.exporter import Exported
from seqbench.handles import Comparison, Run, as_path, load  # noqa: F401 - seqbench.load
from seqbench.params import whole_number
from seqbench.sweeps.progress import StudyProgress
from seqbench.sweeps.storage import storage_url

PathLike = str | os.PathLike[str]
#: Where `report` and `publish` look for a sweep's storage when none is given.
DEFAULT_STORAGE = "sweeps/sweeps.journal"


def register(plugin: Cell | Task | type[Task]) -> Cell | Task:
    """Make a cell or task defined in this process usable by name (see `registry.register`)."""
    return registry.register(plugin)


def cells() -> dict[str, str]:
    """Installed and registered cells: name -> one-line summary (broken ones say so)."""
    return _listing("cell")


def tasks() -> dict[str, str]:
    """Installed and registered tasks: name -> one-line summary (broken ones say so)."""
    return _listing("task")


def _listing(kind: registry.Kind) -> dict[str, str]:
    return {name: entry.summary or f"({entry.disabled or 'failed to load: ' + str(entry.error)})"
            for name, entry in sorted(registry.plugins(kind).items())}


def _name(plugin: str | Cell | Task) -> str:
    """The registry name of `plugin`, registering a plugin object the first time it is seen."""
    if isinstance(plugin, str):
        return plugin
    if not isinstance(plugin, (Cell, Task)):
        raise SeqbenchError(f"expected a plugin name or a seqbench Cell or Task, got {plugin!r}.")
    entry = registry.plugins("task" if isinstance(plugin, Task) else "cell").get(plugin.name)
    if entry is None or entry.plugin is not plugin:
        registry.register(plugin)
    return plugin.name


@scoped
def run(
    task: str | Task | None = None,
    cell: str | Cell | None = None,
    dataset: str | None = None,
    seed: int | None = None,
    *,
    spec: RunSpec | PathLike | None = None,
    device: str | None = None,
    data_dir: PathLike | None = None,
    output_dir: PathLike = "runs",
    progress: bool = True,
    resume: PathLike | None = None,
    logger: str | None = None,
    threads: int | None = None,
    **settings: Any,
) -> Run:
    """Train `cell` (default lstm) on `task` and return the finished `Run`.

    `settings` are hyperparameters by name (`epochs=5`, `hidden_size=64`, `forget_bias=1`;
    `**{"cell.x": ...}` when a name is ambiguous), validated like `--set`; `devices`,
    `num_nodes`, `strategy` and `precision` among them, as `seqbench run --devices` etc. `task` and `cell`
    may be plugin objects defined in this process. `spec=` starts from a recorded run (its
    folder, its config.json or a `RunSpec`) and whatever else is given overrides it, as
    `seqbench run --spec` does. `resume=RUN_DIR` instead continues a stopped run from its
    last resume point with its own spec (so nothing else is given). Either prints one line
    where this machine differs from the record's (`seqbench.machine`). `logger` (csv,
    tensorboard or mlflow) also sends each epoch to that tracker. `threads` fixes the
    intra-op threads (default: `seqbench.threads`' choice).
    """
    from seqbench import loggers
    from seqbench import threads as thread_policy

    loggers.check(logger)  # a mistyped tracker is refused before anything is said or written
    thread_policy.configure(threads)  # before this process imports torch, if it has not
    from seqbench.run_state import stopped_run
    from seqbench.train import first_process, train

    as_path(data_dir, "data_dir", optional=True)
    if resume is not None:
        given = (task, cell, dataset, seed, spec, device, threads)
        if settings or any(value is not None for value in given):
            raise SeqbenchError("resume= continues the run's own spec (its seed and threads "
                                "included); give no task, cell, dataset, seed, device, spec "
                                "or settings with it.")
        run_dir = as_path(resume, "resume")
        stopped_run(run_dir, check_free=True)  # refused before Lightning is imported
    # A run on several devices starts this once per device: only the first one speaks.
    speaks = first_process()
    if resume is not None:
        run_spec = runs.read_spec(run_dir)
        if speaks:
            runs.note_machine_change(runs.read_run_config(run_dir), run_spec.threads)
        result = train(run_spec, data_dir=data_dir, show_progress=progress, run_dir=run_dir,
                       resume=True, logger=logger)
    else:
        run_spec = spec_for(task, cell, dataset, seed, spec=spec, device=device,
                            threads=threads, **settings)
        runs.check_output_dir(as_path(output_dir, "output_dir"))
        if progress and speaks:
            from rich.console import Console

            # On stdout, as the run's summary: stderr stays for the one error line.
            Console().print(f"[bold]seqbench[/] training [bold]{run_spec.cell}[/] on "
                          f"[bold]{run_spec.task}/{run_spec.dataset}[/] (seed {run_spec.seed})")
        if spec is not None and not isinstance(spec, RunSpec) and speaks:
            runs.note_machine_change(runs.read_run_config(Path(spec)), run_spec.threads)
        result = train(run_spec, output_dir=output_dir, data_dir=data_dir,
                       show_progress=progress, logger=logger)
    return Run(dir=result.run_dir, spec=result.spec, metrics=result.metrics, data_dir=data_dir,
               _model=result.model, _data=result.data)


def spec_for(task: str | Task | None = None, cell: str | Cell | None = None,
             dataset: str | None = None, seed: int | None = None, *,
             spec: RunSpec | PathLike | None = None, device: str | None = None,
             threads: int | None = None, **settings: Any) -> RunSpec:
    """The validated spec `run` trains: `spec` (a run folder, its config.json or a RunSpec)
    with the other arguments overriding it (a seed of 0 included), or those arguments alone
    (device "auto" unless given or recorded; threads as recorded, else decided when the
    model exists)."""
    base = spec if spec is None or isinstance(spec, RunSpec) else RunSpec.from_dict(
        runs.read_run_config(Path(spec))["spec"])
    if base is not None:
        task, cell = task or base.task, cell or base.cell
        dataset, seed = dataset or base.dataset, base.seed if seed is None else seed
        device = device or base.device
        threads = base.threads if threads is None else threads
        settings = {**base.settings(), **settings}
    if task is None:
        raise SeqbenchError(f"run() needs a task (or spec=); installed: {', '.join(tasks())}.")
    return build_spec(_name(task), _name(cell or "lstm"), dataset, settings,
                      seed=0 if seed is None else seed, device=device or "auto",
                      threads=threads)




def generate(run_dir: PathLike, out_dir: PathLike | None = None, device: str = "cpu",
             data_dir: PathLike | None = None, **options: Any) -> list[Path]:
    """Use a trained run as its task does (`Run.generate`); a stopped run's best epoch can be
    used too. Returns the files written (default folder: RUN_DIR/generated)."""
    opened = Run(dir=Path(run_dir), spec=runs.read_spec(Path(run_dir)), metrics={},
                 data_dir=data_dir, device=device)
    return opened.generate(out_dir, **options)


def export(run_dir: PathLike, format: str = "torchscript", out: PathLike | None = None,
           data_dir: PathLike | None = None) -> Exported:
    """Export a finished run's network (`encoder -> cell -> head`) as `format`, torchscript or
    onnx, to `out` (default RUN_DIR/model.pt or model.onnx), after checking that it gives the
    run's outputs on test inputs; the file and how closely it matched (`seqbench.exporter`)."""
    from seqbench import exporter

    return exporter.export(run_dir, format, out, data_dir)


@scoped
def sweep(
    task: str | Task,
    cells: Iterable[str | Cell],
    trials: int = 30,
    seeds: int = 10,
    *,
    dataset: str | None = None,
    top: int = 3,
    rerun_seeds: int | None = None,
    folds: int | None = None,
    repeats: int = 1,
    jobs: int = 1,
    gpus_per_trial: int = 1,
    pruner: str = "median",
    param_budget: int | None = None,
    max_seconds: float | None = None,
    seed: int = 0,
    device: str = "auto",
    study: str = "seqbench",
    storage: str | None = None,
    output_dir: PathLike = "sweeps",
    data_dir: PathLike | None = None,
    refit: bool = False,
    logger: str | None = None,
    threads: int | None = None,
    search_only: bool = False,
    **settings: Any,
) -> Comparison:
    """Tune every cell with the same budget, re-train each chosen configuration with `seeds`
    seeds, and return the `Comparison` (as `seqbench sweep`; re-running resumes it).

    Every option of `seqbench sweep` is an argument of the same name and default (tested),
    so a notebook and the command line run the same protocol: `refit=True` is `--refit`,
    `top`/`rerun_seeds` the selection re-runs (default: enough seeds for five paired values),
    `folds` the validation folds per trial, `repeats` independent searches per cell (to
    measure the search's own variance), `threads` the intra-op threads of every training
    process (recorded, and used by every final run), `gpus_per_trial` the GPUs each trial
    trains on with DDP (each worker of `jobs` gets its own). `search_only` stops after the search:
    how the workers of a cluster share one study, leaving selection and finals to a single
    process (README, "Scaling out").
    """
    from seqbench import threads as thread_policy
    from seqbench.sweeps.plan import SweepPlan
    from seqbench.sweeps.runner import run_sweep

    if isinstance(cells, str):  # iterating it would sweep the cells 'g', 'r' and 'u'
        raise SeqbenchError(f"cells is a list of names, e.g. cells=[{cells!r}], not the "
                            f"string {cells!r}.")
    jobs = whole_number(jobs, "jobs")
    output_dir = as_path(output_dir, "output_dir")
    as_path(data_dir, "data_dir", optional=True)
    if storage is not None and not isinstance(storage, str):  # a URL stays text
        storage = str(as_path(storage, "storage"))
    names = tuple(_name(cell) for cell in cells)
    plan = SweepPlan(
        task=_name(task), dataset=dataset or registry.get_task(_name(task)).default_dataset,
        cells=names, trials=trials, seeds=seeds, top=top, rerun_seeds=rerun_seeds, folds=folds,
        storage=storage_url(storage, Path(output_dir)), study=study,
        settings={key: str(value) for key, value in settings.items()},  # as --set gives them
        max_seconds=max_seconds, jobs=jobs, gpus_per_trial=gpus_per_trial, pruner=pruner,
        param_budget=param_budget,
        seed=seed, device=device, output_dir=str(output_dir),
        data_dir=None if data_dir is None else str(data_dir), logger=logger, refit=refit,
        repeats=repeats, threads=threads)
    local = [f"{kind} '{name}'" for kind, name in
             [("task", plan.task), *(("cell", name) for name in names)]
             if registry.in_process(kind, name)]
    if jobs > 1 and local:
        raise SeqbenchError(
            f"{' and '.join(local)} {'was' if len(local) == 1 else 'were'} registered in this "
            f"process, and jobs={jobs} trains in new processes that cannot import it; use "
            "jobs=1, or package it as a plugin (docs/plugins.md).")
    runs.check_output_dir(Path(output_dir))
    # decided once, before this process imports torch, and recorded for the finals
    plan = replace(plan, threads=thread_policy.configure(threads, jobs=jobs))
    run_sweep(plan, search_only)
    return Comparison(storage=plan.storage, study=study, task=plan.task,
                      dataset=plan.dataset, cells=names)


def report(output_dir: PathLike = "reports", storage: str = DEFAULT_STORAGE,
           task: str | None = None, dataset: str | None = None, study: str = "seqbench",
           against: str | None = None) -> list[Path]:
    """Write a sweep's tables, significance tests and plots, one folder per (task, dataset)
    under `output_dir` (and, for every dataset at once, `index.html` ranking the cells);
    return the folders. `against` compares every cell with that one only."""
    from seqbench.reports import write_reports

    runs.check_output_dir(Path(output_dir))
    return write_reports(storage_url(storage, Path(output_dir)), Path(output_dir), study=study,
                         task=task, dataset=dataset, against=against)


def status(study: str = "seqbench", storage: str = DEFAULT_STORAGE) -> list[StudyProgress]:
    """Where a sweep stands in its storage, read without changing it (`seqbench status`):
    per study (cell, repeat) its stage, search trials, selection re-runs, chosen trial and
    finals, counted by the rules a resumed sweep follows."""
    from seqbench.sweeps.progress import progress

    return progress(storage_url(storage, Path("sweeps")), study)


@scoped
def suite(suite: str | PathLike, *, jobs: int = 1, study: str | None = None,
          storage: str | None = None, output_dir: PathLike = "sweeps",
          report_dir: PathLike | None = None, data_dir: PathLike | None = None,
          device: str = "auto", poll_seconds: float = 10.0,
          threads: int | None = None, datasets: Iterable[str] | None = None) -> Path:
    """Run a benchmark suite (a shipped suite's name or a suite file) as `seqbench suite run`:
    every dataset's sweep under one study name (default: the suite's name) in one storage,
    shared with any other worker running the same suite there, then the cross-dataset
    report; return its folder (default OUTPUT_DIR/reports/STUDY, with index.html).
    Re-running it resumes; `jobs` is each sweep's parallel processes and `threads` their
    intra-op threads (as in `sweep`); a worker left with nothing to take looks at the storage
    every `poll_seconds` until the others finish. `datasets` (TASK/DATASET) runs that part
    first; its report covers every dataset done in the storage."""
    from seqbench import threads as thread_policy
    from seqbench.benchsuite.run import report_once, run_suite

    runs.check_output_dir(Path(output_dir))
    count = thread_policy.configure(threads, jobs=jobs)  # before anything imports torch
    loaded = load_suite(suite)
    study = study or loaded.name
    url = storage_url(storage, Path(output_dir))
    cells = loaded.cells + loaded.installed_optional_cells()

    def one(item: SuiteDataset) -> None:
        sweep(item.task, cells, trials=item.trials, seeds=item.seeds, repeats=item.repeats,
              dataset=item.dataset, jobs=jobs, max_seconds=item.max_time, study=study,
              storage=url, output_dir=output_dir, data_dir=data_dir, device=device,
              threads=count, epochs=item.epochs)

    finished = run_suite(loaded, cells, study, url, one, poll_seconds, datasets or ())
    folder = Path(report_dir) if report_dir is not None else Path(output_dir) / "reports" / study
    report_once(url, study, folder, finished, lambda: report(folder, storage=url, study=study))
    return folder


def suite_plan(suite: str | PathLike) -> Priced:
    """A suite (a shipped suite's name or a suite file) read and checked, with every
    dataset's budget, what it reduces, its reason and its estimated cost (`seqbench suite
    show`; `suites()` gives every shipped one)."""
    return priced(load_suite(suite))


def suite_status(suite: str | PathLike, study: str | None = None, storage: str | None = None,
                 output_dir: PathLike = "sweeps") -> list[DatasetProgress]:
    """Where a suite run stands in its storage, read without changing it (`seqbench suite
    status`): per dataset done, being swept (by whom) or not; per cell trials and finals."""
    from seqbench.benchsuite.progress import progress

    loaded = load_suite(suite)
    return progress(loaded, study or loaded.name, storage_url(storage, Path(output_dir)))


def suite_check(suite: str | PathLike, datasets: Iterable[str] | None = None,
                data_dir: PathLike | None = None,
                progress: Callable[[DatasetCheck], None] | None = None) -> list[DatasetCheck]:
    """Load every dataset of a suite (or those of `datasets`, as TASK/DATASET) as its runs
    will, past any failure: per dataset its split sizes, shortest sequence, seconds, or the
    one-line reason it does not load (`seqbench suite check`). `progress` is called with
    each dataset's result as it comes."""
    from seqbench.benchsuite.check import check_suite

    return check_suite(load_suite(suite), data_dir, datasets or (),
                       progress or (lambda _: None))


def publish(study: str, to: PathLike, storage: str = DEFAULT_STORAGE,
            cells: Iterable[str] | None = None) -> list[str]:
    """Copy a sweep's studies (`study`: a prefix, or several as "a,b") and their final runs'
    small files into the results folder `to`, so that its tables rebuild from committed
    files alone; return the study names copied. `cells` publishes only those cells."""
    from seqbench.sweeps.publish import publish as copy_studies

    if isinstance(cells, str):
        raise SeqbenchError(f"cells is a list of names, e.g. cells=[{cells!r}].")
    return copy_studies(storage_url(storage, Path(".")), study, Path(to),
                        cells=None if cells is None else tuple(cells))


def data(task: str, dataset: str | None = None, data_dir: PathLike | None = None,
         **settings: Any) -> DataCheck:
    """Load and validate a dataset as a run would (`settings` as in `run`); its splits'
    sizes, lengths and balance, the task's notes and baselines, and the data itself."""
    from seqbench.datacheck import check

    return check(_name(task), dataset, settings, data_dir)


def list() -> registry.Listing:  # noqa: A001 - `sb.list` is `seqbench list`
    """Every installed plugin (and why a broken one failed) and the core hyperparameters."""
    from seqbench.core_params import CORE_PARAMS

    return registry.Listing(CORE_PARAMS, registry.discover("cell"), registry.discover("task"))


def new(kind: str, name: str, directory: PathLike | None = None) -> list[Path]:
    """Write `seqbench-NAME`, a cell or task plugin distribution that installs, passes the
    conformance kit and trains; return its files (`seqbench new cell|task`)."""
    from seqbench.scaffold import scaffold

    return scaffold(kind, name, None if directory is None else Path(directory))
