"""Stage 3, the finals: the chosen configuration re-trained on fresh seeds, tested once each.

One job per (cell, repeat, final seed). The seeds are the study's recorded final seeds, the
same for every cell and every repeat, and apart from every search and selection seed, so
the test set sees runs that selection never chose among (the winner's curse). A final is a
cached run (`seqbench.sweeps.cache`): done, it is read back; stopped, it resumes; and if the
selection changed since (a larger budget), its spec changed, so it is trained again.
Every final of a study uses the thread count the study recorded, since the same spec and
seed give other numbers on another number of threads.
"""

from __future__ import annotations

import socket
import statistics
from pathlib import Path
from typing import Any

from seqbench import runs
from seqbench.config import RunSpec
from seqbench.console import console
from seqbench.errors import SeqbenchError
from seqbench.sweeps import cache, record, seeds
from seqbench.sweeps.plan import SweepPlan
from seqbench.sweeps.prepared import PreparedData
from seqbench.sweeps.select import rerun_folder
from seqbench.sweeps.studies import open_study
from seqbench.sweeps.workers import Job


def final_jobs(plan: SweepPlan) -> list[Job]:
    """One job per cell and final seed, covering every repeat: repeats that chose the same
    configuration share the run (same spec, same seed), which one job trains once."""
    count = len(record.read(open_study(plan, plan.cells[0]).user_attrs).final_seeds)
    return [Job(f"{cell}/final-{index}", final, (plan, cell, index),
                lock=(plan.storage, f"{plan.study_name(cell)}: final {index}"))
            for cell in plan.cells for index in range(count)]


def final(plan: SweepPlan, cell: str, index: int) -> None:
    """Train (or read back) final run `index` of every repeat of the cell's search."""
    from seqbench import threads

    trained: list[tuple[cache.Request, dict[str, Any]]] = []
    data = PreparedData(plan.data_dir)
    for repeat in range(plan.repeats):
        study = open_study(plan, cell, repeat)
        recorded = record.read(study.user_attrs)
        chosen = chosen_trial(study, recorded)
        if chosen is None:
            continue
        if recorded.protocol is not None and recorded.protocol.threads is not None:
            threads.configure(recorded.protocol.threads)
        seed = recorded.final_seeds[index]
        spec = plan.spec(cell, final_settings(plan, cell, study, recorded, repeat, chosen), seed)
        request, metrics = next(((r, m) for r, m in trained if r.spec == spec), (None, None))
        earlier = next((f for f in recorded.finals if f.seed == seed), None)
        run_dir = plan.folder("finals", cell, repeat) / f"seed{seed}"
        if request is None and done_elsewhere(earlier, chosen, spec, run_dir):
            continue
        if request is None:
            request = cache.Request(
                spec=spec, run_dir=run_dir,
                test=True, max_seconds=plan.max_seconds,
                # The trial is recorded before training, so a final the user resumes by hand
                # (`seqbench run --resume`) is still recognised as this trial's final.
                origin={"study": study.study_name, "trial": chosen, "stage": "final",
                        "seed_origin": recorded.seeding.origin(seeds.FINAL, index)})
            metrics = trained_or_diverged(request, data, plan)
            trained.append((request, metrics))
        now = record.Final(seed, str(request.run_dir), chosen, metrics, spec.to_dict(),
                           socket.gethostname())
        if earlier != now:
            key = metrics.get("primary_metric")
            outcome = (f"diverged ({metrics['error'].rstrip('.')})"
                       if runs.is_diverged(metrics) else f"{key} {metrics[key]:.4g}")
            console.print(f"  {cell}{f' repeat {repeat}' if repeat else ''} final seed {seed}: "
                          f"{outcome}")
            record.write_final(study, now)


def trained_or_diverged(request: cache.Request, data: PreparedData,
                        plan: SweepPlan) -> dict[str, Any]:
    """The final's metrics, or its divergence as {"status": "diverged", "error": ...}.

    A final that diverges is an outcome of the chosen configuration on a fresh seed, not a
    broken sweep: it is recorded (the reports name it and count the cell's other seeds) and
    the sweep goes on. Raised instead, it stopped the whole sweep, and every later attempt
    read the same divergence back from the run cache, so the sweep could never finish.
    """
    from seqbench.model import DivergedError

    try:
        return cache.train(request, data, logger=plan.logger)
    except DivergedError as exc:
        return runs.diverged_record(exc)


def done_elsewhere(earlier: record.Final | None, chosen: int, spec: RunSpec,
                   run_dir: Path) -> bool:
    """Whether another worker, whose run folders are not this one's (another machine, or
    another output folder), recorded this final trained to completion: the chosen trial
    and the same spec. A final recorded in this worker's own folder goes through the run
    cache instead (read back, continued from its resume point, or trained again)."""
    if earlier is None or earlier.spec is None or earlier.trial != chosen or \
            earlier.metrics.get("status") != "completed":
        return False
    if earlier.host == socket.gethostname() and earlier.run_dir == str(run_dir):
        return False
    try:
        return RunSpec.from_dict(earlier.spec) == spec
    except SeqbenchError:  # no longer valid (a plugin renamed a parameter since)
        return False


def chosen_trial(study: Any, recorded: record.StudyRecord) -> int | None:
    """The trial the finals re-train: the selection's, else (studies from before the
    selection step) the best; None before any trial completed."""
    from optuna.trial import TrialState

    if recorded.selection is not None:
        return recorded.selection.chosen
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    return study.best_trial.number


def final_settings(plan: SweepPlan, cell: str, study: Any, recorded: record.StudyRecord,
                   repeat: int, chosen: int) -> dict[str, Any]:
    """The chosen trial's settings, and with `--refit` its refit epochs (recorded once)."""
    settings = record.trial_settings(study.get_trials(deepcopy=False)[chosen])
    if not plan.refit:
        return settings
    epochs = refit_epochs(plan, cell, repeat, chosen, recorded.refit_epochs)
    if recorded.refit_epochs != epochs:
        record.write_refit_epochs(study, epochs)
    return {**settings, "refit": True, "epochs": epochs}


def refit_epochs(plan: SweepPlan, cell: str, repeat: int, trial: int,
                 recorded: int | None = None) -> int:
    """Epochs for `--refit` finals: the median best epoch of the chosen configuration's
    validation runs (its selection re-runs, fold by fold; else its search trial's; else the
    number recorded when the finals first ran, for a sweep whose run folders were cleaned).

    Refit finals train on every training item, so no validation split is left to stop them;
    these runs already measured when this configuration stops improving. An option, not the
    default: on Japanese Vowels and airline it tested worse than early stopping for two
    cells of three (results/README.md).
    """
    folds = plan.selection_folds()

    def runs_of(folder: Path) -> list[Path]:
        return [folder / f"fold-{k}" for k in range(folds)] if folds > 1 else [folder]

    selection = [run for index in range(plan.rerun_count())
                 for run in runs_of(rerun_folder(plan, cell, repeat, trial, index))]
    search = runs_of(plan.folder("trials", cell, repeat) / f"trial-{trial:04d}")
    for folders in (selection, search):
        best = [m["best_epoch"] for folder in folders
                if (m := cache.completed_metrics(folder)) and m.get("best_epoch")]
        if best:
            return max(1, round(statistics.median(best)))
    if recorded is not None:
        return recorded
    raise SeqbenchError(f"{cell}: trial {trial} has no completed validation runs under "
                        f"{plan.output_dir} to take the refit finals' epochs from.")
