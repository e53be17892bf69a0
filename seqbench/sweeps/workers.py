"""Independent local worker processes: one that dies costs only the trial it was running.

Every stage of a sweep is a list of `Job`s run here; one job per process, so a job must be
idempotent (its runs go through the run cache and its results into the study record): run
again after a death, or by another worker, it only does what is missing.

A `ProcessPoolExecutor` treats any worker's death as the pool's: it raises
`BrokenProcessPool` for every pending job and ends the other workers, so one SIGKILL (the
kernel's OOM killer, a user's `kill`) lost every running trial and the sweep with them.
Here every job is its own spawned process and the parent only watches them: a job that
ends by a signal is reported in one line, and the caller decides how to replace it (a
search job is started again: the storage marks the dead trial failed and the budget is
refilled). A job that raises a `SeqbenchError` sends its message back, so the user still
sees one `error:` line; at most `jobs` processes run at a time, each in a slot of its own
that can carry its own environment (on a GPU machine, its own GPU: `seqbench.sweeps.gpus`).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import connection, get_context
from typing import Any

from seqbench import stopping
from seqbench.console import console
from seqbench.errors import Interrupted, SeqbenchError, from_os_error


@dataclass
class Job:
    """One call `function(*args)` in its own process; `name` is how reports refer to it.

    A job with a `lock` (storage, name) runs while it holds that lock
    (`seqbench.sweeps.locks`), so that of many workers sharing a storage one runs it; its
    function must find what another worker finished and only do what is missing.
    """

    name: str
    function: Callable[..., Any]
    args: tuple[Any, ...] = ()
    deaths: int = field(default=0, compare=False)
    lock: tuple[str, str] | None = None


def attempt(job: Job, wait: bool) -> bool:
    """Run the job under its lock; False (not run) when another worker holds it and `wait`
    is False."""
    if job.lock is None:
        job.function(*job.args)
        return True
    from seqbench.sweeps import locks

    storage, name = job.lock
    with locks.held(storage, name, wait=wait) as held:
        if held:
            job.function(*job.args)
    return held


def _child(job: Job, wait: bool, pipe: Any) -> None:
    """Run the job and send back whether it ran; a user error is sent as its message (bugs
    keep their traceback). SIGTERM stops it as Ctrl-C does."""
    try:
        with stopping.sigterm_is_ctrl_c():
            pipe.send(attempt(job, wait))
    except SeqbenchError as exc:
        pipe.send(str(exc))
        raise SystemExit(2) from None
    except OSError as exc:  # a folder it cannot write (read-only, full): one line, as the CLI
        error = from_os_error(exc)
        if error is None:
            raise
        pipe.send(str(error))
        raise SystemExit(2) from None
    except (KeyboardInterrupt, Interrupted):  # Ctrl-C or SIGTERM; the parent says what
        raise SystemExit(130) from None       # was kept


def _outcome(receive: Any) -> bool | str | None:
    """What a finished job sent: whether it ran, or a user error's message; None when it
    sent nothing (it died). A closed pipe polls as readable."""
    try:
        return receive.recv() if receive.poll() else None
    except EOFError:
        return None
    finally:
        receive.close()


def how_it_ended(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def run_jobs(jobs: Sequence[Job], parallel: int,
             on_death: Callable[[Job], Job | None] = lambda job: None,
             placement: Callable[[int], Mapping[str, str]] | None = None) -> None:
    """Run `jobs`, `parallel` at a time, each in a fresh spawned process; with `parallel`
    1, one after the other in this process (nothing to share, and no process to start).

    Jobs with a lock are first tried without waiting, so a worker passes over the jobs other
    workers are running and takes the next; those it passed over are then run waiting for
    their lock, and find them done (or, where their worker died, do them). When a job's
    process dies (ends with a signal or a crash without a message), `on_death(job)` may
    return a job to run in its place. A `SeqbenchError` in any job is raised here after the
    jobs already running have finished. Running processes hold slots 0..parallel-1 (a
    finished one's slot goes to the next job); `placement(slot)` is added to the
    environment a process starts with (`seqbench.sweeps.gpus`: its GPU).
    """
    passed = _run(jobs, parallel, on_death, placement, wait=False)
    _run(passed, parallel, on_death, placement, wait=True)


def _run(jobs: Sequence[Job], parallel: int, on_death: Callable[[Job], Job | None],
         placement: Callable[[int], Mapping[str, str]] | None, wait: bool) -> list[Job]:
    """One pass over `jobs`; returns those another worker held the lock of."""
    if parallel == 1:
        return [job for job in jobs if not attempt(job, wait)]
    context = get_context("spawn")
    pending = list(jobs)
    running: dict[Any, tuple[Job, Any, Any, int]] = {}  # sentinel -> (job, process, pipe, slot)
    errors: list[str] = []
    passed: list[Job] = []
    with _forwarding_sigterm(running):
        try:
            while pending or running:
                while pending and len(running) < parallel and not errors:
                    job = pending.pop(0)
                    slot = min(set(range(parallel)) - {entry[3] for entry in running.values()})
                    receive, send = context.Pipe(duplex=False)
                    process = context.Process(target=_child, args=(job, wait, send),
                                              name=f"seqbench {job.name}", daemon=False)
                    with environment(placement(slot) if placement is not None else {}):
                        process.start()
                    send.close()
                    running[process.sentinel] = (job, process, receive, slot)
                if not running:
                    break
                for sentinel in connection.wait(list(running)):
                    job, process, receive, _ = running.pop(sentinel)
                    process.join()
                    outcome = _outcome(receive)
                    if isinstance(outcome, str):
                        errors.append(outcome)
                    elif process.exitcode == 130:
                        raise KeyboardInterrupt
                    elif process.exitcode != 0:
                        job.deaths += 1
                        console.print(f"[yellow]worker {job.name} died "
                                      f"({how_it_ended(process.exitcode)}); only the trial it "
                                      "was running is lost[/]")
                        replacement = on_death(job)
                        if replacement is not None:
                            pending.insert(0, replacement)
                    elif outcome is False:
                        passed.append(job)
        finally:
            for _, process, _, _ in running.values():
                process.join(timeout=30)  # stopping too; let them write what they keep
                if process.is_alive():
                    process.kill()
                    process.join()
    if errors:
        raise SeqbenchError(errors[0])
    return passed


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in this process's environment for the block (a spawned process inherits the
    environment it is started with), then as it was."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _forwarding_sigterm(running: dict[Any, tuple[Job, Any, Any, int]]) -> Iterator[None]:
    """While workers run, SIGTERM to this process is passed on to each of them and then
    stops this one as Ctrl-C does. (Ctrl-C itself reaches every process of the terminal's
    group; SIGTERM from a batch scheduler or `kill` reaches the parent alone, and its
    workers trained on as orphans.)"""
    def forward(signum: int, previous: dict[int, Any]) -> None:
        if signum == signal.SIGTERM:
            for _, process, _, _ in list(running.values()):
                if process.is_alive():
                    os.kill(process.pid, signal.SIGTERM)
        raise KeyboardInterrupt

    with stopping.on_stop(forward):
        yield
