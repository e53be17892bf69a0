"""What the Python API hands back: a `Run` (a run folder, opened) and a `Comparison` (a
finished sweep, read from its storage).

Both are views of files on disk (a run record; a sweep's storage and its run records), so
anything a notebook learns from them, a report or `seqbench run --spec` can reproduce.
Torch is imported only when a model is first used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqbench import registry, runs
from seqbench.config import RunSpec
from seqbench.contracts import TaskData
from seqbench.errors import SeqbenchError

if TYPE_CHECKING:
    import pandas

    from seqbench.model import SequenceModel

PathLike = str | os.PathLike[str]


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
        """Write the model as TorchScript or ONNX, checked against it on test inputs
        (`seqbench.export`); return the file."""
        from seqbench.exporter import export

        return export(self.dir, format, out, self.data_dir).path

    def forecast(self, n: int, **options: Any) -> pandas.DataFrame:
        """The next `n` steps past the end of the data, for every series, with prediction
        intervals (a forecasting task's `generate --horizon n`, as a DataFrame); `options`
        are the task's generate options (e.g. `samples`, `level`)."""
        from seqbench.params import resolve

        task = registry.get_task(self.spec.task)
        if task.forecast is None:
            raise SeqbenchError(f"task '{task.name}' does not forecast; forecast(n) is for "
                                "forecasting runs.")
        resolved = resolve(task.generate_params, {**options, "horizon": n},
                           f"forecast for task '{task.name}'")
        from seqbench.train import quiet_lightning

        quiet_lightning()
        return task.forecast(*self._generation_pair(), resolved)

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


def as_path(value: Any, name: str, optional: bool = False) -> Path | None:
    """An argument that names a file or folder, checked at the boundary: a number or None
    given by mistake would otherwise fail deep inside as a TypeError."""
    if value is None and optional:
        return None
    if isinstance(value, (str, os.PathLike)) and str(value):
        return Path(value)
    raise SeqbenchError(f"{name} must be a path (a str or pathlib.Path), got {value!r}.")


def load(run_dir: PathLike, data_dir: PathLike | None = None) -> Run:
    """Open a finished run folder (the model is loaded when first used)."""
    run_dir = as_path(run_dir, "run_dir")
    as_path(data_dir, "data_dir", optional=True)
    spec = runs.read_spec(run_dir)
    path = run_dir / runs.METRICS
    metrics = runs.read_json(path) if path.is_file() else {}
    if metrics.get("status") != "completed":
        raise SeqbenchError(f"run '{run_dir}' has not completed "
                            f"({metrics.get('status', 'no metrics.json')}); a stopped run "
                            f"continues with seqbench.run(resume='{run_dir}').")
    return Run(dir=run_dir, spec=spec, metrics=metrics, data_dir=data_dir)


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
