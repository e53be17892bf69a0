"""The Python API: `seqbench.run`, `load`, `export`, `sweep`, `cells`, `tasks`, `register`.

The same calls the command line makes, for notebooks and scripts: a run returns a `Run`
holding its metrics, its per-epoch history as a DataFrame and the best-epoch model ready to
use; a sweep returns a `Comparison` whose table is the report's. A cell or task defined in
the notebook itself is passed as an object (or `register`ed once) and compared without
being packaged. Everything is validated by `build_spec`, exactly as on the command line.
Torch is imported only when something trains or loads a model.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqbench import registry, runs
from seqbench.config import RunSpec, build_spec
from seqbench.contracts import Cell, Task, TaskData
from seqbench.errors import SeqbenchError

if TYPE_CHECKING:
    import pandas

    from seqbench.model import SequenceModel

PathLike = str | os.PathLike[str]


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


@dataclass
class Run:
    """A run folder, opened: its spec, metrics, history and best-epoch model.

    `model` and the data it needs are loaded on first use when the run was opened with
    `load` (a run just trained already has both).
    """

    dir: Path
    spec: RunSpec
    metrics: dict[str, Any]
    data_dir: PathLike | None = None
    #: Where the model is loaded when first used ("cpu", "cuda" or "auto").
    device: str = "cpu"
    _model: SequenceModel | None = field(default=None, repr=False)
    _data: TaskData | None = field(default=None, repr=False)
    #: (model, data) loaded for `generate` alone, where the data may be restored from the
    #: run folder rather than loaded from the dataset.
    _for_generation: tuple[SequenceModel, TaskData] | None = field(default=None, repr=False)

    @property
    def history(self) -> pandas.DataFrame:
        """One row per epoch: seconds, lr, train_loss and every validation metric."""
        import pandas

        path = self.dir / runs.HISTORY
        return pandas.read_csv(path) if path.is_file() else pandas.DataFrame()

    @property
    def model(self) -> SequenceModel:
        """The best-epoch model in eval mode: `run.model(inputs)` -> `(predictions, state)`."""
        if self._model is None:
            from seqbench.train import load_trained

            _, self._data, self._model = load_trained(self.dir, self.data_dir, self.device)
        return self._model

    @property
    def data(self) -> TaskData:
        """The task's data the model was trained on (loaded with the model)."""
        self.model  # noqa: B018 - loads both
        return self._data

    def generate(self, out_dir: PathLike | None = None, **options: Any) -> list[Path]:
        """Use the model as the task does: sample music or text, forecast, predict.

        `options` are the task's generate options (`steps`, `temperature`, `seed`, ...);
        files go to `out_dir` (default: RUN_DIR/generated). Returns the files written.
        """
        from seqbench.params import resolve

        task = registry.get_task(self.spec.task)
        if task.generate is None:
            raise SeqbenchError(f"task '{task.name}' has nothing to generate; its test metrics "
                                f"are in {self.dir / runs.METRICS}.")
        resolved = resolve(task.generate_params, options, f"generate for task '{task.name}'")
        target = Path(out_dir) if out_dir else self.dir / "generated"
        runs.check_output_dir(target, "out_dir")
        from seqbench.train import quiet_lightning

        quiet_lightning()
        model, data = self._generation_pair()
        return task.generate(model, data, target, resolved)

    def export(self, format: str = "torchscript", out: PathLike | None = None) -> Path:
        """Write the model as TorchScript or ONNX (see `export`); return the file."""
        return export(self.dir, format, out, self.data_dir)

    def _generation_pair(self) -> tuple[SequenceModel, TaskData]:
        """The loaded model and data, else (once) the model with what the run folder holds
        for generating (`Task.restore`), so no dataset is loaded where none is needed."""
        if self._model is not None:
            return self._model, self._data
        if self._for_generation is None:
            from seqbench.train import load_trained

            _, data, model = load_trained(self.dir, self.data_dir, self.device, restore=True)
            self._for_generation = (model, data)
        return self._for_generation


def load(run_dir: PathLike, data_dir: PathLike | None = None) -> Run:
    """Open a finished run folder (the model is loaded when first used)."""
    run_dir = Path(run_dir)
    spec = runs.read_spec(run_dir)
    path = run_dir / runs.METRICS
    metrics = runs.read_json(path) if path.is_file() else {}
    if metrics.get("status") != "completed":
        raise SeqbenchError(f"run '{run_dir}' has not completed "
                            f"({metrics.get('status', 'no metrics.json')}); a stopped run "
                            f"continues with seqbench.run(resume='{run_dir}').")
    return Run(dir=run_dir, spec=spec, metrics=metrics, data_dir=data_dir)


def export(run_dir: PathLike, format: str = "torchscript", out: PathLike | None = None,
           data_dir: PathLike | None = None) -> Path:
    """Export a finished run's network (`encoder -> cell -> head`) as `format`, torchscript or
    onnx, to `out` (default RUN_DIR/model.pt or model.onnx), after checking that it gives the
    run's outputs on test inputs (`seqbench.exporter`); return the file."""
    from seqbench import exporter

    return exporter.export(run_dir, format, out, data_dir).path


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
    **settings: Any,
) -> Run:
    """Train `cell` (default lstm) on `task` and return the finished `Run`.

    `settings` are hyperparameters by name (`epochs=5`, `hidden_size=64`, `forget_bias=1`;
    `**{"cell.x": ...}` when a name is ambiguous), validated like `--set`. `task` and `cell`
    may be plugin objects defined in this process. `spec=` starts from a recorded run (its
    folder, its config.json or a `RunSpec`) and whatever else is given overrides it, as
    `seqbench run --spec` does. `resume=RUN_DIR` instead continues a stopped run from its
    last resume point with its own spec (so nothing else is given). Either prints one line
    where this machine differs from the record's (`seqbench.machine`). `logger` (csv,
    tensorboard or mlflow) also sends each epoch to that tracker.
    """
    from seqbench.train import train

    if resume is not None:
        given = (task, cell, dataset, seed, spec, device)
        if settings or any(value is not None for value in given):
            raise SeqbenchError("resume= continues the run's own spec; give no task, "
                                "cell, dataset, seed, device, spec or settings with it.")
        run_dir = Path(resume)
        run_spec = runs.read_spec(run_dir)
        runs.note_machine_change(runs.read_run_config(run_dir))
        result = train(run_spec, data_dir=data_dir, show_progress=progress, run_dir=run_dir,
                       resume=True, logger=logger)
    else:
        run_spec = spec_for(task, cell, dataset, seed, spec=spec, device=device, **settings)
        runs.check_output_dir(Path(output_dir))
        if spec is not None and not isinstance(spec, RunSpec):
            runs.note_machine_change(runs.read_run_config(Path(spec)))
        result = train(run_spec, output_dir=output_dir, data_dir=data_dir,
                       show_progress=progress, logger=logger)
    return Run(dir=result.run_dir, spec=run_spec, metrics=result.metrics, data_dir=data_dir,
               _model=result.model, _data=result.data)


def spec_for(task: str | Task | None = None, cell: str | Cell | None = None,
             dataset: str | None = None, seed: int | None = None, *,
             spec: RunSpec | PathLike | None = None, device: str | None = None,
             **settings: Any) -> RunSpec:
    """The validated spec `run` trains: `spec` (a run folder, its config.json or a RunSpec)
    with the other arguments overriding it, or those arguments alone (device "auto" unless
    given or recorded)."""
    base = spec if spec is None or isinstance(spec, RunSpec) else RunSpec.from_dict(
        runs.read_run_config(Path(spec))["spec"])
    if base is not None:
        task, cell = task or base.task, cell or base.cell
        dataset, seed = dataset or base.dataset, base.seed if seed is None else seed
        device = device or base.device
        settings = {**base.settings(), **settings}
    if task is None:
        raise SeqbenchError(f"run() needs a task (or spec=); installed: {', '.join(tasks())}.")
    return build_spec(_name(task), _name(cell or "lstm"), dataset, settings,
                      seed=seed or 0, device=device or "auto")


@dataclass(frozen=True)
class Comparison:
    """A finished sweep of several cells on one task and dataset, read from its storage."""

    storage: str
    study: str
    task: str
    dataset: str
    cells: tuple[str, ...]

    def _summaries(self) -> list[Any]:
        from seqbench.reports.collect import collect

        found = collect(self.storage, self.study, self.task, self.dataset)
        # The storage may hold other cells' studies of the same task; this sweep's are asked.
        return sorted((c for c in found[(self.task, self.dataset)] if c.cell in self.cells),
                      key=lambda c: c.cell)

    def table(self) -> pandas.DataFrame:
        """One row per cell, the report table's: test mean, 95% interval and std over the
        final seeds, validation scores, parameters, trial counts, whether the cell is among
        the top (no other cell significantly better) and which cells it beats."""
        import pandas

        from seqbench.reports import compare, tables

        cells = self._summaries()
        return pandas.DataFrame(tables.rows(cells, compare.pairwise(cells))).set_index("cell")

    def report(self, out_dir: PathLike, against: str | None = None) -> Path:
        """Write the report (tables, significance tests, plots) as `seqbench report` does;
        return its folder. It covers every cell swept on this task and dataset under this
        study name in the storage, as `seqbench report` would; `against` compares every cell
        with that one only."""
        from seqbench.reports import write_reports

        runs.check_output_dir(Path(out_dir), "out_dir")
        return write_reports(self.storage, Path(out_dir), study=self.study, task=self.task,
                             dataset=self.dataset, against=against)[0]

    def best(self, cell: str) -> Run:
        """`cell`'s final run with the best validation score (never chosen on test)."""
        summary = next((c for c in self._summaries() if c.cell == cell), None)
        if summary is None or not summary.finals:
            raise SeqbenchError(f"the sweep has no final runs for cell '{cell}'.")
        sign = 1.0 if summary.selection_direction == "minimize" else -1.0
        key = f"best_val_{summary.selection_metric}"
        chosen = min(summary.finals, key=lambda f: sign * f["metrics"][key])
        return load(chosen["run_dir"])


def sweep(
    task: str | Task,
    cells: Iterable[str | Cell],
    trials: int = 30,
    seeds: int = 5,
    *,
    dataset: str | None = None,
    top: int = 3,
    rerun_seeds: int = 2,
    folds: int | None = None,
    jobs: int = 1,
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
    **settings: Any,
) -> Comparison:
    """Tune every cell with the same budget, re-train each best configuration with `seeds`
    seeds, and return the `Comparison` (as `seqbench sweep`; re-running resumes it).
    Every option of `seqbench sweep` is an argument with the same default (tested), so a
    notebook and the command line run the same protocol: `refit=True` is `--refit`,
    `top`/`rerun_seeds` the selection re-runs, `folds` the validation folds per trial."""
    from seqbench.sweeps.runner import SweepPlan, run_sweep
    from seqbench.sweeps.storage import storage_url

    if isinstance(cells, str):  # iterating it would sweep the cells 'g', 'r' and 'u'
        raise SeqbenchError(f"cells is a list of names, e.g. cells=[{cells!r}], not the "
                            f"string {cells!r}.")
    task_name = _name(task)
    names = tuple(_name(cell) for cell in cells)
    local = [f"{kind} '{name}'" for kind, name in
             [("task", task_name), *(("cell", name) for name in names)]
             if registry.in_process(kind, name)]
    if jobs > 1 and local:
        raise SeqbenchError(
            f"{' and '.join(local)} {'was' if len(local) == 1 else 'were'} registered in this "
            f"process, and jobs={jobs} trains in new processes that cannot import it; use "
            "jobs=1, or package it as a plugin (docs/plugins.md).")
    plan = SweepPlan(
        task=task_name, dataset=dataset or registry.get_task(task_name).default_dataset,
        cells=names, trials=trials, seeds=seeds, top=top, rerun_seeds=rerun_seeds, folds=folds,
        storage=storage_url(storage, Path(output_dir)), study=study,
        settings=_settings_as_text(settings), max_seconds=max_seconds, jobs=jobs,
        pruner=pruner, param_budget=param_budget, seed=seed, device=device,
        output_dir=str(output_dir), data_dir=None if data_dir is None else str(data_dir),
        logger=logger, refit=refit)
    run_sweep(plan)
    return Comparison(storage=plan.storage, study=study, task=plan.task,
                      dataset=plan.dataset, cells=names)


def _settings_as_text(settings: Mapping[str, Any]) -> dict[str, str]:
    """Settings as `--set` gives them: the plan is recorded in the study and re-run as text."""
    return {key: str(value) for key, value in settings.items()}
