"""Train one run from a spec: data, model, Lightning trainer, run record. Nothing else.

The trainer is plain Lightning, set up for honest comparisons: ModelCheckpoint keeps the
epoch with the best validation value of the task's selection metric and early stopping
watches it (`seqbench.best`), the best weights are restored before the single test
evaluation, there are no sanity-check batches and no Lightning logger (the run record is
our log), and RichProgressBar shows progress. One spec trains on one device or on many
(`devices`, `num_nodes`, `strategy`, `precision` in the spec; DDP on CPU or GPU): metrics
are summed over every process, and only the first process writes the run record. Tested
runs write resume points (`seqbench.resume`), so a killed or interrupted run continues with
`resume=True`; `train` returns the best-epoch model with its data, so the Python API hands
it over without loading anything again.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqbench import registry, run_lock, runs
from seqbench.config import DEVICES, RunSpec
from seqbench.console import progress
from seqbench.contracts import DataContext, TaskData
from seqbench.datafiles import resolve_cache_dir, resolve_data_dir
from seqbench.errors import Interrupted, SeqbenchError, unknown_name


@dataclass
class RunResult:
    """What `train` leaves: the run folder, its metrics, and the best-epoch model (eval
    mode) with the data it was trained on, so nothing has to be loaded again to use it."""

    run_dir: Path
    metrics: dict[str, Any]
    model: Any
    data: TaskData
    #: The spec as trained and recorded (with its thread count decided).
    spec: RunSpec


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
        ".*IterableDataset.*has `__len__` defined.*",
        ".*smaller than the logging interval.*",
    ):
        warnings.filterwarnings("ignore", message=message)


def first_process() -> bool:
    """Whether this process reports: the only one, or the first of a run on many devices
    (known from the launcher's environment, and exactly once a Trainer exists)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


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
    run_dir: Path | None,
    monitor: str,
    mode: str,
    show_progress: bool,
    extra_callbacks: Sequence[Any] = (),
    max_seconds: float | None = None,
):
    """The run's Trainer; `run_dir` is where best.ckpt goes (None on a process that writes
    nothing, or where the first process has not chosen the folder yet: then set the
    checkpoint's `dirpath` before fitting)."""
    import lightning.pytorch as pl
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from seqbench.best import selection_callbacks
    from seqbench.console import training_progress
    from seqbench.loaders import EpochOrder

    hp = spec.hparams
    accelerator = accelerator_for(spec.device)
    if hp["precision"] == "16-mixed" and accelerator == "cpu":
        # Lightning would quietly train in bf16 instead, and the record would say fp16.
        raise SeqbenchError("precision 16-mixed needs a GPU (float16 autocast is CUDA's); on "
                            "CPU use bf16-mixed or 32.")
    callbacks: list[Any] = [EpochOrder(), *selection_callbacks(run_dir, monitor, mode, hp)]
    if show_progress:
        callbacks.append(training_progress(monitor, mode))
    callbacks.extend(extra_callbacks)
    try:
        return pl.Trainer(
            max_epochs=hp["epochs"],
            max_time=None if max_seconds is None else {"seconds": max_seconds},
            accelerator=accelerator,
            devices=hp["devices"],
            num_nodes=hp["num_nodes"],
            strategy=hp["strategy"],
            precision=hp["precision"],
            deterministic=True,
            logger=False,
            callbacks=callbacks,
            enable_progress_bar=show_progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            use_distributed_sampler=False,  # `seqbench.loaders` shares batches out itself
        )
    except MisconfigurationException as exc:  # e.g. more GPUs than there are
        raise SeqbenchError(f"this machine cannot run devices={hp['devices']}, "
                            f"num_nodes={hp['num_nodes']}, strategy={hp['strategy']}, "
                            f"precision={hp['precision']}: {exc}") from None


@run_lock.releases_run_folders
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
    With several processes (DDP), each one calls this; only the first writes files. The
    run folder is locked while this trains in it (`run_lock.lock_run_folder`).
    """
    quiet_lightning()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    import lightning.pytorch as pl

    from seqbench import loggers, step, threads
    from seqbench.best import kept_epoch
    from seqbench.loaders import loader, order_seed
    from seqbench.model import DivergedError, SequenceModel, count_parameters
    from seqbench.resume import (
        RESUME_POINT,
        ResumePoint,
        load_weights,
        resumable,
        StopRequest,
        StopTraining,
        ctrl_c_raises_stop,
        first_ctrl_c_stops_gracefully,
    )

    task, cell = registry.get_task(spec.task), registry.get_cell(spec.cell)
    accelerator_for(spec.device)  # fail before loading data if the device is impossible
    loggers.check(logger)
    if resume:
        if first_process():  # the process that writes the record holds the folder
            run_lock.lock_run_folder(run_dir)
        resume_point = resumable(run_dir)
    data = as_trained(spec, data if data is not None else prepare_data(spec, data_dir))
    pl.seed_everything(spec.seed, workers=True, verbose=False)
    model = SequenceModel(task, data, cell, spec)
    if resume:
        load_weights(model, resume_point, f"start it again with: {spec.command()}")
    spec = spec.with_threads(threads.decide(count_parameters(model), spec.threads,
                                            processes=spec.hparams["devices"]))

    selected, direction = task.selection(spec.dataset)
    monitor = f"val_{selected}"
    mode = "min" if direction == "minimize" else "max"
    batch_size = spec.hparams["batch_size"]
    stop = StopRequest()
    compiled_before = step.compile_report()["seconds"]
    resume_points = ResumePoint(None, None, stop)
    trainer = make_trainer(spec, run_dir, monitor, mode, show_progress,
                           [*callbacks, resume_points], max_seconds)
    writer, tracker = trainer.is_global_zero, None
    if writer:
        run_dir = record_folder(trainer, spec, output_dir, run_dir, resume, origin)
        history = runs.HistoryWriter(run_dir / runs.HISTORY)
        model.epoch_listeners.append(history)
        tracker = loggers.start(logger, spec, run_dir)
        if tracker is not None:
            model.epoch_listeners.append(tracker)
        resume_points.history = history
        resume_points.path = run_dir / RESUME_POINT if evaluate_test else None

    try:
        with first_ctrl_c_stops_gracefully(stop):
            trainer.fit(model, loader(data, "train", batch_size, seed=spec.seed),
                        loader(data, "valid", batch_size),
                        ckpt_path=resume_point if resume else None, weights_only=True)
    except DivergedError as exc:
        if writer:
            runs.write_json(run_dir / runs.METRICS, runs.diverged_record(exc))
        if tracker is not None:
            tracker.finish({}, "failed")
        raise DivergedError(f"{exc} Run record: {run_dir}") from None
    except (StopTraining, KeyboardInterrupt, SystemExit) as exc:
        # A first Ctrl-C stops between loader items (StopTraining); Lightning turns a second one
        # into SystemExit(1).
        if not isinstance(exc, StopTraining) and not trainer.interrupted:
            raise
        raise stopped(run_dir, trainer.current_epoch, resume_points.saved_epochs, tracker,
                      writer) from None
    if stop.requested:  # Ctrl-C in the last epoch's validation: stop before testing
        raise stopped(run_dir, trainer.current_epoch, resume_points.saved_epochs, tracker,
                      writer)
    run_dir = Path(trainer.checkpoint_callback.dirpath)  # the first process's choice
    train_seconds = resume_points.seconds()
    epochs_run = trainer.current_epoch
    best_score, best_epoch = kept_epoch(trainer, model, monitor)

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
        f"best_{monitor}": best_score,
        "best_epoch": best_epoch,
        # The seed that shuffled each epoch's training batches (`seqbench.loaders`).
        "order_seeds": [order_seed(spec.seed, epoch) for epoch in range(epochs_run)],
        **model.last_metrics.get("train", {}),
    }
    if evaluate_test:
        try:
            with ctrl_c_raises_stop():
                metrics.update(test_once(trainer, model, data, batch_size,
                                         run_dir if writer else None,
                                         metrics["primary_metric"]))
        except (StopTraining, KeyboardInterrupt, SystemExit) as exc:
            # The resume point is still there: resuming trains from it and tests again.
            if isinstance(exc, SystemExit) and not trainer.interrupted:
                raise
            raise stopped(run_dir, epochs_run, resume_points.saved_epochs, tracker,
                          writer) from None
        if writer:
            runs.refuse_non_finite(metrics, run_dir)
    if tracker is not None:
        tracker.finish(metrics)
    if writer:
        runs.write_json(run_dir / runs.METRICS, metrics)
        (run_dir / RESUME_POINT).unlink(missing_ok=True)  # finished: best.ckpt is kept
    return RunResult(run_dir=run_dir, metrics=metrics, model=model.eval(), data=data,
                     spec=spec)


def record_folder(trainer: Any, spec: RunSpec, output_dir: str | os.PathLike[str],
                  run_dir: Path | None, resume: bool,
                  origin: Mapping[str, Any] | None) -> Path:
    """The run folder, made by the process that writes the record (a new one unless
    given), with config.json written unless the run resumes, and best.ckpt pointed there."""
    if run_dir is None:
        run_dir = runs.create_run_dir(Path(output_dir), spec)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        run_lock.lock_run_folder(run_dir)
        runs.write_config(run_dir, spec, origin)
    trainer.checkpoint_callback.dirpath = str(run_dir)
    return run_dir


def stopped(run_dir: Path | None, epochs: int, resumable_from: int | None, tracker: Any,
            writer: bool = True):
    """What a run stopped by Ctrl-C raises (`Interrupted`, saying how to go on), after its
    tracker got every row it kept and (by the writing process) its status was recorded."""
    if tracker is not None:
        tracker.finish({}, "killed")
    if not writer:
        return Interrupted(f"the run stopped after {epochs} finished epoch(s).")
    return runs.interrupted(run_dir, epochs, resumable_from)


def test_once(trainer: Any, model: Any, data: TaskData, batch_size: int,
              run_dir: Path | None, primary_metric: str) -> dict[str, Any]:
    """The best epoch's validation and test metrics, per-item test scores, the baselines
    and the task's artifacts (the one look at the test split a run gets). Every process
    evaluates its share; the one with `run_dir` writes the files."""
    from seqbench.loaders import loader

    trainer.validate(model, loader(data, "valid", batch_size), verbose=False)
    trainer.test(model, loader(data, "test", batch_size), verbose=False)
    metrics = {**model.last_metrics.get("val", {}), **model.last_metrics.get("test", {})}
    if run_dir is None:
        return metrics
    if model.test_items:
        metrics["test_items"] = runs.write_items(run_dir, model.test_items, primary_metric)
    baselines = {name: {f"test_{key}": value for key, value in values.items()}
                 for name, values in data.baselines().items()}
    if baselines:
        metrics["baselines"] = baselines
    model.eval()
    # A task's artifacts may run the network again (translation writes its test
    # translations): under the precision the test step ran at, so they are what was scored.
    with trainer.precision_plugin.test_step_context():
        written = data.artifacts(model, run_dir)
    metrics["artifacts"] = [str(path.relative_to(run_dir)) for path in written]
    return metrics


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
    from seqbench.resume import load_weights

    run_dir = Path(run_dir)
    spec = runs.read_spec(run_dir)
    checkpoint = run_dir / runs.CHECKPOINT
    if not checkpoint.is_file():
        raise SeqbenchError(f"run '{run_dir}' has no {runs.CHECKPOINT} (did it finish?).")
    task, cell = registry.get_task(spec.task), registry.get_cell(spec.cell)
    restored = task.restore(spec.dataset, spec.task_params, run_dir) if restore else None
    data = restored if restored is not None else as_trained(spec, prepare_data(spec, data_dir))
    model = SequenceModel(task, data, cell, spec)
    load_weights(model, checkpoint, "re-run the training that made it")
    target = "cuda" if accelerator_for(device) == "gpu" else "cpu"
    return spec, data, model.to(target).eval()
