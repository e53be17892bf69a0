"""Send a run's curves to the trackers people already use: CSV, TensorBoard or MLflow.

The run record (`history.csv`, `metrics.json`) stays the source of truth; a tracker gets a
copy through Lightning's own logger classes. The copy is made once per epoch by an epoch
listener, from the same row that `history.csv` receives, never per step and never through
`self.log` (which costs about a millisecond a call inside the training loop, see
`SequenceModel`): the throughput target holds with any tracker. The hyperparameters go in
at the start, the final test metrics at the end.

Where each writes:
- csv: `RUN_DIR/csv/metrics.csv` and `hparams.yaml` (Lightning's CSVLogger);
- tensorboard: `RUN_DIR/tensorboard/` (`tensorboard --logdir` over the run folders);
- mlflow: `$MLFLOW_TRACKING_URI` when set, else MLflow's local file store `./mlruns` in the
  working directory (`MLFLOW_ALLOW_FILE_STORE=true mlflow ui` there shows it); one
  experiment per task/dataset, one MLflow run per seqbench run, tagged with its run folder.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from seqbench.config import RunSpec
from seqbench.errors import SeqbenchError, unknown_name

LOGGERS = ("csv", "tensorboard", "mlflow")
#: The optional package each tracker needs, and the extra that installs it.
#: (mlflow-skinny, the extra's choice, provides the `mlflow` module without the server.)
NEEDS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def check(kind: str | None) -> None:
    """Fail before training on an unknown tracker or one whose package is missing."""
    if kind is None:
        return
    if kind not in LOGGERS:
        raise unknown_name("logger", kind, LOGGERS)
    if kind in NEEDS:
        import importlib.util

        module, extra = NEEDS[kind]
        if importlib.util.find_spec(module) is None:
            raise SeqbenchError(f"--logger {kind} needs the '{module}' package: "
                                f"pip install 'seqbench[{extra}]'.")


def mlflow_uri() -> str:
    """`$MLFLOW_TRACKING_URI`, else the local file store `./mlruns`: embedded, no server and
    no database package. MLflow 3 keeps file stores in maintenance mode and refuses them
    unless MLFLOW_ALLOW_FILE_STORE is set; one chosen here or named by the user (a path or a
    `file:` URI, as the README shows) is a deliberate choice, so that is set too."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri()
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return uri


def build(kind: str, spec: RunSpec, run_dir: Path) -> Any:
    """The Lightning logger for `kind`, writing where the module docstring says."""
    from lightning.pytorch import loggers

    if kind == "csv":
        return loggers.CSVLogger(save_dir=run_dir, name="csv", version="")
    if kind == "tensorboard":
        return loggers.TensorBoardLogger(save_dir=run_dir, name="tensorboard", version="",
                                         default_hp_metric=False)
    return loggers.MLFlowLogger(
        experiment_name=f"seqbench/{spec.task}/{spec.dataset}", run_name=run_dir.name,
        tracking_uri=mlflow_uri(),
        tags={"cell": spec.cell, "seed": str(spec.seed), "run_dir": str(run_dir.resolve())})


#: Seconds between a tracker's writes: rows are kept in memory and handed over together.
#: Writing and flushing TensorBoard's events after every epoch cost about 3 ms of a 24 ms
#: Japanese Vowels epoch (throughput ratio 1.14; its writer thread and bounded queue compete
#: with training); a killed run loses at most this much of the tracker's curve
#: (history.csv is still complete).
SAVE_EVERY = 10.0


def numbers(row: dict[str, Any], keep=lambda key: True) -> dict[str, float]:
    return {key: float(value) for key, value in row.items()
            if keep(key) and isinstance(value, (int, float)) and not isinstance(value, bool)}


class Tracker:
    """An epoch listener that copies each history row to a Lightning logger.

    Rows are kept and written together every `SAVE_EVERY` seconds and at the end, on the
    training thread. A writer thread of our own was measured and lost on this 2-core
    machine (its work still competes with training for the cores and the GIL).
    """

    def __init__(self, kind: str, spec: RunSpec, run_dir: Path) -> None:
        self.logger = build(kind, spec, run_dir)
        self.params = spec.to_dict()
        self.logger.log_hyperparams(self.params)
        self.logger.save()  # opens the event file / run now, not inside the first epoch
        self.saved = time.monotonic()
        self.pending: list[dict[str, Any]] = []
        #: TensorBoard's HParams tab lists a run only when its hyperparameters are written
        #: together with metrics, so there the final metrics go in through log_hyperparams.
        self.hparams_with_metrics = kind == "tensorboard"
        self.epoch = 0

    def __call__(self, row: dict[str, Any]) -> None:
        self.epoch = int(row["epoch"])
        self.pending.append(row)
        if time.monotonic() - self.saved >= SAVE_EVERY:
            self.write()

    def write(self) -> None:
        """Hand the rows kept since the last write to the tracker, and flush it to disk."""
        for row in self.pending:
            self.logger.log_metrics(numbers(row, lambda key: key != "epoch"),
                                    step=int(row["epoch"]))
        self.pending.clear()
        self.logger.save()
        self.saved = time.monotonic()

    def finish(self, metrics: dict[str, Any], status: str = "success") -> None:
        """Log the rows not yet written and the final test metrics at the last epoch, and
        close the tracker's run."""
        self.write()
        final = numbers(metrics, lambda key: key.startswith("test_"))
        if final and self.hparams_with_metrics:
            self.logger.log_hyperparams(self.params, metrics=final, step=self.epoch)
        elif final:
            self.logger.log_metrics(final, step=self.epoch)
        self.logger.finalize(status)


def start(kind: str | None, spec: RunSpec, run_dir: Path) -> Tracker | None:
    check(kind)
    return None if kind is None else Tracker(kind, spec, run_dir)
