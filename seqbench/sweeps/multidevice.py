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

The launched command starts clean of any earlier launcher's variables (`MASTER_PORT`,
`RANK`, torchrun's and SLURM's task counts, `launch_environment`): they describe the
sweep's worker, not the run, and with them two workers' runs would bind one port, or
Lightning would take the run for a SLURM task of the wrong size. A stop signal reaches the
run as its graceful stop (SIGTERM: it writes its resume point and ends); the worker waits
for it, and a second signal ends it at once.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqbench import stopping
from seqbench.config import RunSpec
from seqbench.errors import SeqbenchError

MODULE = "seqbench.sweeps.multidevice"
OUTCOME = "outcome.json"

#: Variables an earlier launcher (torchrun, Lightning, SLURM's srun) sets for the process
#: it started; a launched run must not inherit them (module docstring).
LAUNCHER_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE",
                      "LOCAL_WORLD_SIZE", "NODE_RANK", "GROUP_RANK", "TORCHELASTIC_RUN_ID")


def needs_launch(spec: RunSpec) -> bool:
    """Whether the run spans more than one process (its devices times its machines)."""
    return spec.hparams["devices"] * spec.hparams["num_nodes"] > 1


def launch_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The launched command's environment: this one without any launcher's variables, and
    with SLURM's job name set to "interactive", Lightning's documented way to say that this
    process was started by hand, not as a SLURM task (`SLURMEnvironment.detect`)."""
    kept = {key: value for key, value in environ.items() if key not in LAUNCHER_VARIABLES}
    if "SLURM_NTASKS" in kept:
        kept["SLURM_JOB_NAME"] = "interactive"
    return kept


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


def command(job_file: Path) -> list[str]:
    return [sys.executable, "-m", MODULE, str(job_file)]


def run_to_the_end(argv: list[str]) -> int:
    """Run the launched command and return its exit code. A first stop signal (Ctrl-C, or
    SIGTERM from the sweep's parent or a scheduler) is passed on as SIGTERM to the run's
    first process, its graceful stop (the others learn of it after the loader item they are
    on, as every process of a run does), and the wait goes on until the run has written what
    it keeps; a second one kills every process of the run. Either way the caller then gets
    KeyboardInterrupt, as it would have in process. The run gets a session of its own, so
    the kill reaches the processes Lightning started for it and nothing else; the handler
    is in place before the command starts, so no stop is missed."""
    process: subprocess.Popen[bytes] | None = None
    stops = 0

    def stop(signum: int, previous: dict[int, Any]) -> None:
        nonlocal stops
        stops += 1
        if process is None:
            return
        if stops == 1:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:  # every process of the run has ended already
            pass

    with stopping.on_stop(stop):
        if not stops:
            process = subprocess.Popen(argv, env=launch_environment(), start_new_session=True)
            code = process.wait()
    if stops:
        raise KeyboardInterrupt
    return code


def train_launched(request: Any, origin: dict[str, Any], data_dir: str | None,
                   logger: str | None, resume: bool, pruning: Any = None) -> dict[str, Any]:
    """Train `request` with the launched command and return its metrics; a pruned trial's
    callback learns where it stopped, as it would in this process."""
    from seqbench.model import DivergedError
    from seqbench.sweeps.workers import how_it_ended

    with tempfile.TemporaryDirectory(prefix="seqbench-devices-") as folder:
        job_file = Path(folder, "job.pickle")
        job_file.write_bytes(pickle.dumps(Job(request, origin, data_dir, logger, resume,
                                              pruning)))
        code = run_to_the_end(command(job_file))
        if code == 130:
            raise KeyboardInterrupt
        outcome_file = job_file.with_name(OUTCOME)
        if not outcome_file.is_file():
            raise SeqbenchError(f"the run on {request.spec.hparams['devices']} devices in "
                                f"{request.run_dir} ended ({how_it_ended(code)}) before it "
                                "reported; its output above says why.")
        outcome = json.loads(outcome_file.read_text())
    if "diverged" in outcome:
        raise DivergedError(outcome["diverged"])
    if "error" in outcome:
        raise SeqbenchError(outcome["error"])
    if pruning is not None:
        pruning.pruned_at = outcome["pruned_at"]
    return outcome["metrics"]


def run_job(job_file: Path) -> dict[str, Any]:
    """Train the job's run in this process (one of the run's processes): its outcome. What
    the user can fix (a storage that cannot be opened, a full disk, a bad setting) is an
    error line, as it would be in the sweep's own process."""
    from seqbench.errors import from_os_error
    from seqbench.model import DivergedError
    from seqbench.sweeps.prepared import PreparedData
    from seqbench.train import train

    try:
        job: Job = pickle.loads(job_file.read_bytes())  # reopens the trial's storage
        request = job.request
        result = train(request.spec, data=PreparedData(job.data_dir).get(request.spec),
                       run_dir=request.run_dir, show_progress=False,
                       callbacks=[job.pruning] if job.pruning is not None else [],
                       evaluate_test=request.test, max_seconds=request.max_seconds,
                       logger=job.logger, resume=job.resume, origin=job.origin)
    except DivergedError as exc:
        return {"diverged": str(exc)}
    except SeqbenchError as exc:
        return {"error": str(exc)}
    except OSError as exc:
        error = from_os_error(exc)
        if error is None:
            raise
        return {"error": str(error)}
    pruned_at = job.pruning.pruned_at if job.pruning is not None else None
    return {"metrics": result.metrics, "pruned_at": pruned_at}


def main(job_file: str) -> int:
    from seqbench.train import first_process

    outcome = run_job(Path(job_file))
    if first_process():
        Path(job_file).with_name(OUTCOME).write_text(json.dumps(outcome))
    return 2 if "error" in outcome else 0


if __name__ == "__main__":
    from seqbench.errors import Interrupted

    try:
        sys.exit(main(sys.argv[1]))
    except (KeyboardInterrupt, Interrupted):  # the sweep's worker says what was kept
        sys.exit(130)
