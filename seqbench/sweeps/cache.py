"""One cached `train`: every run of a sweep is trained once, whoever asks for it again.

benchopt caches a solver's run by its call arguments, so re-running a benchmark computes only
what is missing. A sweep does the same with its runs, keyed by what decides a run's result:
its spec (which holds the seed), whether it is tested, and its time budget. The cache is the
run folders themselves: `config.json` holds the key (written before training) and
`metrics.json` the outcome, so a killed sweep, a resumed one, a worker on another machine and
the process that reads a selection's re-runs back all find what is done, and nothing is kept
anywhere else that could disagree with the run records.

For a run folder asked for again under the same key:
- completed: its metrics, without training;
- diverged: the same `DivergedError` again (a seed that diverged stays a missing value, and
  is not trained a second time);
- stopped with a resume point (a tested run, killed or interrupted): it continues from there;
- anything else (no record, another key, a damaged resume point): trained from scratch.

A run on several devices is trained by a command of its own (`seqbench.sweeps.multidevice`),
since Lightning starts its other processes by repeating the command that started the first.

Search trials are the exception: a pruner stops them on what the other trials reported at
the time, so their result is not a function of the key. Optuna keeps their state, and a
trial that died is sampled again under a new number, in a new folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqbench import runs
from seqbench.config import RunSpec
from seqbench.errors import SeqbenchError
from seqbench.sweeps.prepared import PreparedData

#: config.json's key for what, beside the spec, decides the run's result.
KEY = "cache"


@dataclass(frozen=True)
class Request:
    """One run a sweep wants: what it trains and where its record lives."""

    spec: RunSpec
    run_dir: Path
    #: Evaluated on the test split once (finals); selection never sees the test split.
    test: bool = False
    max_seconds: float | None = None
    #: What config.json records about where the run came from (study, trial, seed's origin).
    origin: Mapping[str, Any] = field(default_factory=dict)

    def key(self) -> dict[str, Any]:
        return {"test": self.test, "max_seconds": self.max_seconds}


def train(request: Request, data: PreparedData, *, logger: str | None = None,
          pruning: Any = None) -> dict[str, Any]:
    """The metrics of the requested run: read back where its record has them, else trained
    (or continued); see the module docstring. `pruning` (a search trial's callback) trains
    afresh every time."""
    from seqbench.resume import can_resume
    from seqbench.sweeps.multidevice import needs_launch, train_launched
    from seqbench.train import train as train_run

    resume = False
    if pruning is None and _same_key(request):
        metrics = _recorded_metrics(request.run_dir)
        if metrics.get("status") == "completed":
            return metrics
        if runs.is_diverged(metrics):
            from seqbench.model import DivergedError

            raise DivergedError(metrics.get("error", "the run diverged"))
        resume = request.test and can_resume(request.run_dir, request.spec)
    if not resume:
        shutil.rmtree(request.run_dir, ignore_errors=True)
    origin = {**request.origin, KEY: request.key()}
    if needs_launch(request.spec):
        return train_launched(request, origin, data.data_dir, logger, resume, pruning)
    return train_run(request.spec, data=data.get(request.spec), run_dir=request.run_dir,
                     show_progress=False, callbacks=[pruning] if pruning is not None else [],
                     evaluate_test=request.test, max_seconds=request.max_seconds,
                     logger=logger, resume=resume, origin=origin).metrics


def _same_key(request: Request) -> bool:
    """Whether the folder's record was made for exactly this request. Records from before
    the cache (no key) are compared by spec alone, as their sweeps did; a record that no
    longer validates (a plugin renamed a parameter since) is another key."""
    config = request.run_dir / runs.CONFIG
    if not config.is_file():
        return False
    try:
        recorded = runs.read_run_config(config)
        spec = RunSpec.from_dict(recorded["spec"])
    except SeqbenchError:
        return False
    return spec == request.spec and recorded.get(KEY, request.key()) == request.key()


def _recorded_metrics(run_dir: Path) -> dict[str, Any]:
    """The metrics a run folder recorded, whatever its status ({} while it has none)."""
    path = run_dir / runs.METRICS
    return runs.read_json(path) if path.is_file() else {}


def completed_metrics(run_dir: Path) -> dict[str, Any] | None:
    """The metrics of a run folder whose run completed, else None (no training)."""
    metrics = _recorded_metrics(run_dir)
    return metrics if metrics.get("status") == "completed" else None
