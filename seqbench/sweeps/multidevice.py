"""A sweep's run on several devices, trained by a command of its own.

Lightning starts the other processes of a DDP run by running this process's command again
(its subprocess launcher: the one that works with every accelerator, with `torchrun` and
with SLURM). For `seqbench run --devices 2` that command is the run, so every process
trains the same spec. Inside a sweep the command is the sweep: a second process would have
started a sweep of its own, asked Optuna for trials and trained them. So a sweep trains a
run whose spec asks for more than one device (`--gpus-per-trial`, or `--set devices=N`)
by launching `python -m seqbench.sweeps.multidevice JOB`, a command that trains exactly
that run and that Lightning may repeat once per device.

The job file holds the request, the data folder and, for a search trial, its pruning
callback (which reloads its Optuna trial from the storage: only the first process reports
to it, and its decision reaches every process, `seqbench.sweeps.pruning`). It lives in a
private temporary folder of the sweep's worker (0700), never in a run folder, and is
removed when the run ends: nothing is ever loaded from a run folder. The first process
writes the outcome (metrics, where pruning stopped it, or the error) next to it.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqbench.config import RunSpec
from seqbench.errors import SeqbenchError

MODULE = "seqbench.sweeps.multidevice"


def needs_launch(spec: RunSpec) -> bool:
    """Whether the run spans more than one process (its devices times its machines)."""
    return spec.hparams["devices"] * spec.hparams["num_nodes"] > 1


@dataclass(frozen=True)
class Job:
    """What the launched command trains: `seqbench.sweeps.cache.train`'s arguments."""

    request: Any  # cache.Request
    #: What config.json records about the run's origin, the cache key included.
    origin: dict[str, Any]
    data_dir: str | None
    logger: str | None
    resume: bool
    pruning: Any  # OptunaPruning or None
    outcome: str


def train_launched(request: Any, origin: dict[str, Any], data_dir: str | None,
                   logger: str | None, resume: bool, pruning: Any = None) -> dict[str, Any]:
    """Train `request` with the launched command and return its metrics; a pruned trial's
    callback learns where it stopped, as it would in this process."""
    from seqbench.model import DivergedError

    with tempfile.TemporaryDirectory(prefix="seqbench-devices-") as folder:
        job_file, outcome_file = Path(folder, "job.pickle"), Path(folder, "outcome.json")
        job_file.write_bytes(pickle.dumps(
            Job(request, origin, data_dir, logger, resume, pruning, str(outcome_file))))
        completed = subprocess.run([sys.executable, "-m", MODULE, str(job_file)], check=False)
        if completed.returncode == 130:
            raise KeyboardInterrupt
        if not outcome_file.is_file():
            raise SeqbenchError(f"the run on {request.spec.hparams['devices']} devices in "
                                f"{request.run_dir} ended with exit code "
                                f"{completed.returncode} before it reported (its output above "
                                "says why).")
        outcome = json.loads(outcome_file.read_text())
    if "diverged" in outcome:
        raise DivergedError(outcome["diverged"])
    if "error" in outcome:
        raise SeqbenchError(outcome["error"])
    if pruning is not None:
        pruning.pruned_at = outcome["pruned_at"]
    return outcome["metrics"]


def run_job(job: Job) -> dict[str, Any]:
    """Train the job's run in this process (one of the run's processes): its outcome."""
    from seqbench.model import DivergedError
    from seqbench.sweeps.prepared import PreparedData
    from seqbench.train import train

    request = job.request
    try:
        result = train(request.spec, data=PreparedData(job.data_dir).get(request.spec),
                       run_dir=request.run_dir, show_progress=False,
                       callbacks=[job.pruning] if job.pruning is not None else [],
                       evaluate_test=request.test, max_seconds=request.max_seconds,
                       logger=job.logger, resume=job.resume, origin=job.origin)
    except DivergedError as exc:
        return {"diverged": str(exc)}
    except SeqbenchError as exc:
        return {"error": str(exc)}
    pruned_at = job.pruning.pruned_at if job.pruning is not None else None
    return {"metrics": result.metrics, "pruned_at": pruned_at}


def main(job_file: str) -> int:
    from seqbench.train import first_process

    job: Job = pickle.loads(Path(job_file).read_bytes())
    outcome = run_job(job)
    if first_process():
        Path(job.outcome).write_text(json.dumps(outcome))
    return 2 if "error" in outcome else 0


if __name__ == "__main__":
    from seqbench.errors import Interrupted

    try:
        sys.exit(main(sys.argv[1]))
    except (KeyboardInterrupt, Interrupted):  # the sweep's worker says what was kept
        sys.exit(130)
