"""Train one run from a spec: data, model, Lightning trainer, run record. Nothing else.

The trainer is configured for honest comparisons and low overhead: early stopping and
checkpointing on the task's primary validation metric, the best checkpoint restored before
the single test evaluation, no sanity-check batches, no Lightning logger (the run record is
our log), and a rich progress bar. Tested runs write resume points (`seqbench.resume`), so a
killed or interrupted run continues with `resume=True`; `train` returns the best-epoch
model with its data, so the Python API hands it over without loading anything again.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqbench import registry, runs
from seqbench.config import DEVICES, RunSpec
from seqbench.console import progress
from seqbench.contracts import DataContext, TaskData
from seqbench.datafiles import resolve_cache_dir, resolve_data_dir
from seqbench.errors import SeqbenchError, unknown_name


@dataclass
class RunResult:
    """What `train` leaves: the run folder, its metrics, and the best-epoch model (eval
    mode) with the data it was trained on, so nothing has to be loaded again to use it."""

    run_dir: Path
    metrics: dict[str, Any]
    model: Any
    data: TaskData


def quiet_lightning() -> None:
    """Silence Lightning's banners, tips and checkpoint chatter; keep warnings that matter.

    Must run after `lightning.pytorch` is imported: its `__init__` resets its log level.
    """
    import lightning.pytorch  # noqa: F401

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for message in (
        ".*does not have many workers.*",
        ".*exists and is not empty.*",
        ".*treespec.*",
        ".*litlogger.*",
    ):
        warnings.filterwarnings("ignore", message=message)


def accelerator_for(device: str) -> str:
    """Map `--device` to a Lightning accelerator, failing clearly if CUDA is asked but absent
    or the name is none of ours (`generate --device` reaches here unchecked by a spec)."""
    import torch

    if device not in DEVICES:
        raise unknown_name("device", device, DEVICES)
    if device == "cuda":
        if not torch.cuda.is_available():
            raise SeqbenchError("--device cuda was requested but no CUDA device is available.")
        return "gpu"
    if device == "cpu":
        return "cpu"
    return "gpu" if torch.cuda.is_available() else "cpu"


def prepare_data(spec: RunSpec, data_dir: str | os.PathLike[str] | None,
                 params: Mapping[str, Any] | None = None) -> TaskData:
    """Load the spec's dataset through its task plugin (with `params` instead of the spec's
    task parameters when given: sweeps pass a view that records what was read)."""
    return prepare_dataset(spec.task, spec.dataset,
                           spec.task_params if params is None else params, data_dir)


def prepare_dataset(task: str, dataset: str, task_params: Mapping[str, Any],
                    data_dir: str | os.PathLike[str] | None) -> TaskData:
    """Load `dataset` through its task plugin with validated task parameters (no cell needed:
    `seqbench data` inspects data before any run is specified)."""
    context = DataContext(
        data_dir=resolve_data_dir(data_dir), cache_dir=resolve_cache_dir(), progress=progress
    )
    return registry.get_task(task).prepare(dataset, context, task_params)


def make_trainer(
    spec: RunSpec,
    run_dir: Path,
    monitor: str,
    mode: str,
    show_progress: bool,
    extra_callbacks: Sequence[Any] = (),
    max_seconds: float | None = None,
):
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Checkpoint

    from seqbench.best import BestEpoch
    from seqbench.console import training_progress

    hp = spec.hparams
    callbacks: list[Any] = [BestEpoch(run_dir / runs.CHECKPOINT, monitor, mode, hp["patience"],
                                      hp["min_epochs"], hp["min_steps"], keep_last=hp["refit"])]
    if show_progress:
        callbacks.append(training_progress(monitor, mode))
    callbacks.extend(extra_callbacks)
    return pl.Trainer(
        max_epochs=hp["epochs"],
        max_time=None if max_seconds is None else {"seconds": max_seconds},
        accelerator=accelerator_for(spec.device),
        devices=1,
        deterministic=True,
        logger=False,
        # BestEpoch keeps the best epoch; a ResumePoint among the callbacks (train's own) is
        # the only checkpointing, so Lightning must not add its every-epoch ModelCheckpoint.
        enable_checkpointing=any(isinstance(c, Checkpoint) for c in callbacks),
        callbacks=callbacks,
        enable_progress_bar=show_progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=run_dir,
    )


def train(
    spec: RunSpec,
    output_dir: str | os.PathLike[str] = "runs",
    data_dir: str | os.PathLike[str] | None = None,
    show_progress: bool = True,
    *,
    data: TaskData | None = None,
    run_dir: Path | None = None,
    callbacks: Sequence[Any] = (),
    evaluate_test: bool = True,
    max_seconds: float | None = None,
    logger: str | None = None,
    resume: bool = False,
    origin: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run `spec` to completion and write its run record; return the folder, metrics, model.

    Sweeps pass the extra arguments: already-loaded `data` (one load per worker), a fixed
    `run_dir` (so a resumed sweep finds its runs), pruning `callbacks`, a per-trial time
    budget, and `evaluate_test=False` so that model selection never sees the test split.
    `logger` (csv, tensorboard or mlflow) copies each epoch's row to a tracker; `origin` is
    written into config.json (a sweep final's study and trial).
    Such trials are re-run rather than resumed, so they write no resume points; tested runs
    do (`seqbench.resume`), and `resume=True` continues the one in `run_dir`.
    """
    quiet_lightning()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    import lightning.pytorch as pl

    from seqbench import loggers, step
    from seqbench.best import BestEpoch
    from seqbench.loaders import SplitBatches
    from seqbench.model import DivergedError, SequenceModel, count_parameters
    from seqbench.resume import (
        RESUME_POINT,
        ResumePoint,
        StopRequest,
        StopTraining,
        ctrl_c_raises_stop,
        first_ctrl_c_stops_gracefully,
    )

    task, cell = registry.get_task(spec.task), registry.get_cell(spec.cell)
    accelerator_for(spec.device)  # fail before loading data if the device is impossible
    loggers.check(logger)
    if resume:
        resume_point = resumable(run_dir)
    data = as_trained(spec, data if data is not None else prepare_data(spec, data_dir))
    pl.seed_everything(spec.seed, workers=True, verbose=False)
    model = SequenceModel(task, data, cell, spec, progress_bar=show_progress)

    if run_dir is None:
        run_dir = runs.create_run_dir(Path(output_dir), spec)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        runs.write_config(run_dir, spec, origin)
    history = runs.HistoryWriter(run_dir / runs.HISTORY)
    model.epoch_listeners.append(history)
    tracker = loggers.start(logger, spec, run_dir)
    if tracker is not None:
        model.epoch_listeners.append(tracker)

    selected, direction = task.selection(spec.dataset)
    monitor = f"val_{selected}"
    mode = "min" if direction == "minimize" else "max"
    batch_size = spec.hparams["batch_size"]
    train_batches = SplitBatches(data, "train", batch_size, seed=spec.seed)
    valid_batches = SplitBatches(data, "valid", batch_size)
    stop = StopRequest()
    compiled_before = step.compile_report()["seconds"]
    resume_points = ResumePoint(run_dir / RESUME_POINT if evaluate_test else None,
                                train_batches, history, stop)
    trainer = make_trainer(spec, run_dir, monitor, mode, show_progress,
                           [*callbacks, resume_points], max_seconds)

    try:
        with first_ctrl_c_stops_gracefully(stop):
            trainer.fit(model, train_batches, valid_batches,
                        ckpt_path=resume_point if resume else None, weights_only=False)
    except DivergedError as exc:
        runs.write_json(run_dir / runs.METRICS, {"status": "diverged", "error": str(exc)})
        if tracker is not None:
            tracker.finish({}, "failed")
        raise DivergedError(f"{exc} Run record: {run_dir}") from None
    except (StopTraining, KeyboardInterrupt, SystemExit) as exc:
        # A first Ctrl-C stops between batches (StopTraining); Lightning turns a second one
        # into SystemExit(1).
        if not isinstance(exc, StopTraining) and not trainer.interrupted:
            raise
        raise stopped(run_dir, trainer.current_epoch, resume_points.saved_epochs, tracker) \
            from None
    if stop.requested:  # Ctrl-C in the last epoch's validation: stop before testing
        raise stopped(run_dir, trainer.current_epoch, resume_points.saved_epochs, tracker)
    train_seconds = resume_points.seconds()
    epochs_run = trainer.current_epoch
    best = next(c for c in trainer.callbacks if isinstance(c, BestEpoch))

    metrics = {
        "status": "completed",
        "task": spec.task,
        "dataset": spec.dataset,
        "cell": spec.cell,
        "seed": spec.seed,
        "primary_metric": f"test_{task.primary(spec.dataset)}",
        "direction": task.direction,
        "parameters": count_parameters(model),
        "epochs": epochs_run,
        "train_seconds": round(train_seconds, 3),
        "seconds_per_epoch": round(train_seconds / max(epochs_run, 1), 4),
        # Compiling a step cell's time loop (once per process and signature) is in the
        # training time above; this is its share, so a new cell's speed reads fairly.
        "compile_seconds": round(step.compile_report()["seconds"] - compiled_before, 3),
        "split_sizes": data.split_sizes(),
        "selection_metric": monitor,
        f"best_{monitor}": best.score,
        "best_epoch": best.epoch,
        **model.last_metrics.get("train", {}),
    }
    best.restore(model)
    if evaluate_test:
        try:
            with ctrl_c_raises_stop():
                metrics.update(test_once(trainer, model, data, valid_batches, run_dir,
                                         metrics["primary_metric"]))
        except (StopTraining, KeyboardInterrupt, SystemExit) as exc:
            # The resume point is still there: resuming trains from it and tests again.
            if isinstance(exc, SystemExit) and not trainer.interrupted:
                raise
            raise stopped(run_dir, epochs_run, resume_points.saved_epochs, tracker) from None
    if tracker is not None:
        tracker.finish(metrics)
    runs.write_json(run_dir / runs.METRICS, metrics)
    (run_dir / RESUME_POINT).unlink(missing_ok=True)  # finished: best.ckpt is what is kept
    return RunResult(run_dir=run_dir, metrics=metrics, model=model.eval(), data=data)


def stopped(run_dir: Path, epochs: int, resumable_from: int | None, tracker: Any):
    """What a run stopped by Ctrl-C raises (`Interrupted`, saying how to go on), after its
    tracker got every row it kept."""
    if tracker is not None:
        tracker.finish({}, "killed")
    return runs.interrupted(run_dir, epochs, resumable_from)


def test_once(trainer: Any, model: Any, data: TaskData, valid_batches: Any, run_dir: Path,
              primary_metric: str) -> dict[str, Any]:
    """The best epoch's validation and test metrics, per-item test scores, the baselines
    and the task's artifacts (the one look at the test split a run gets)."""
    from seqbench.loaders import SplitBatches

    trainer.validate(model, valid_batches, verbose=False)
    trainer.test(model, SplitBatches(data, "test", valid_batches.batch_size), verbose=False)
    metrics = {**model.last_metrics.get("val", {}), **model.last_metrics.get("test", {})}
    if model.test_items:
        metrics["test_items"] = runs.write_items(run_dir, model.test_items, primary_metric)
    baselines = data.baselines()
    if baselines:
        metrics["baselines"] = {name: {f"test_{key}": value for key, value in values.items()}
                                for name, values in baselines.items()}
    model.eval()
    metrics["artifacts"] = [str(path.relative_to(run_dir))
                            for path in data.artifacts(model, run_dir)]
    return metrics


#: What `Trainer.save_checkpoint` writes beside the weights and `fit(ckpt_path=)` reads back.
TRAINING_STATE = {"pytorch-lightning_version", "loops", "optimizer_states"}


def stopped_run(run_dir: Path | None) -> Path:
    """The resume point of a stopped run, or a one-line error saying why there is none, from
    the folder's record files alone: a finished run is refused at once, before torch and
    Lightning are imported (seconds) to read the point itself (`resumable`)."""
    if run_dir is None or not (Path(run_dir) / runs.CONFIG).is_file():
        raise SeqbenchError(f"'{run_dir}' is not a run folder (no {runs.CONFIG}).")
    status = _status(Path(run_dir))
    if status not in (None, "interrupted"):
        raise SeqbenchError(f"run '{run_dir}' has already ended ({status}); there is nothing "
                            "to resume.")
    point = Path(run_dir) / runs.RESUME_POINT
    if not point.is_file():
        raise SeqbenchError(f"run '{run_dir}' stopped before its first resume point; "
                            f"{start_again(run_dir)}")
    return point


def start_again(run_dir: Path) -> str:
    return f"start it again with: {runs.read_spec(Path(run_dir)).command()}"


def resumable(run_dir: Path | None) -> Path:
    """The checked resume point of a stopped run (`stopped_run`, then the file itself)."""
    point = stopped_run(run_dir)
    check_resume_point(point, start_again(run_dir))
    return point


def check_resume_point(point: Path, remedy: str) -> None:
    """Checked as best.ckpt is: Lightning would fail deep inside `fit` with a traceback on a
    damaged or foreign file."""
    if not TRAINING_STATE <= runs.load_checkpoint(point, remedy, weights_only=False).keys():
        raise SeqbenchError(f"'{point}' is not a resume point (no training state); {remedy}")


def can_resume(run_dir: Path, spec: RunSpec) -> bool:
    """Whether `run_dir` holds a stopped run of exactly `spec` with a usable resume point: a
    sweep's final run, killed or interrupted, continues such a folder instead of starting
    over (and starts over where the resume point is damaged)."""
    point = run_dir / runs.RESUME_POINT
    if not (point.is_file() and (run_dir / runs.CONFIG).is_file()
            and _status(run_dir) in (None, "interrupted") and runs.read_spec(run_dir) == spec):
        return False
    try:
        check_resume_point(point, "the sweep trains this final again")
    except SeqbenchError:
        return False
    return True


def _status(run_dir: Path) -> str | None:
    """The status in a run's metrics.json, or None while it has none (running, or killed)."""
    path = run_dir / runs.METRICS
    return runs.read_json(path).get("status") if path.is_file() else None


def as_trained(spec: RunSpec, data: TaskData) -> TaskData:
    """The data exactly as the run trained on it: its fold, or refit on the validation items
    too; a reloaded run then scales its inputs with the statistics it was trained with."""
    if spec.hparams["folds"] > 1:
        return data.fold(spec.hparams["fold"], spec.hparams["folds"])
    if spec.hparams["refit"]:
        return data.refit()
    return data


def load_trained(run_dir: str | os.PathLike[str], data_dir=None, device: str = "cpu",
                 restore: bool = False):
    """Rebuild a finished run's model from its record (on CPU by default): (spec, data, model).

    With `restore`, the data comes from the run folder where the task can rebuild it
    (`Task.restore`: enough to generate, not to evaluate), else from the dataset.
    """
    from seqbench.model import SequenceModel

    run_dir = Path(run_dir)
    spec = runs.read_spec(run_dir)
    checkpoint = run_dir / runs.CHECKPOINT
    if not checkpoint.is_file():
        raise SeqbenchError(f"run '{run_dir}' has no {runs.CHECKPOINT} (did it finish?).")
    task, cell = registry.get_task(spec.task), registry.get_cell(spec.cell)
    restored = task.restore(spec.dataset, spec.task_params, run_dir) if restore else None
    data = restored if restored is not None else as_trained(spec, prepare_data(spec, data_dir))
    model = SequenceModel(task, data, cell, spec)
    try:
        model.load_state_dict(runs.read_checkpoint(checkpoint))
    except RuntimeError as exc:  # shapes or names that config.json's model does not have
        raise SeqbenchError(f"'{checkpoint}' does not fit the model in {runs.CONFIG} "
                            f"({str(exc).strip().splitlines()[-1].strip()}).") from None
    target = "cuda" if accelerator_for(device) == "gpu" else "cpu"
    return spec, data, model.to(target).eval()
