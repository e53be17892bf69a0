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
sees one `error:` line; at most `jobs` processes run at a time.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing import connection, get_context
from typing import Any

from seqbench.console import console
from seqbench.errors import Interrupted, SeqbenchError


@dataclass
class Job:
    """One call `function(*args)` in its own process; `name` is how reports refer to it."""

    name: str
    function: Callable[..., Any]
    args: tuple[Any, ...] = ()
    deaths: int = field(default=0, compare=False)


def _child(function: Callable[..., Any], args: tuple[Any, ...], pipe: Any) -> None:
    """Run the job; report a user error as its message (bugs keep their traceback)."""
    try:
        function(*args)
    except SeqbenchError as exc:
        pipe.send(str(exc))
        raise SystemExit(2) from None
    except (KeyboardInterrupt, Interrupted):  # Ctrl-C (or SIGTERM, which a run turns into
        # a graceful stop) reaches every process; the parent says what was kept.
        raise SystemExit(130) from None


def _message(receive: Any) -> str | None:
    """The user error a finished job sent, if any (a closed pipe polls as readable)."""
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
             on_death: Callable[[Job], Job | None] = lambda job: None) -> None:
    """Run `jobs`, `parallel` at a time, each in a fresh spawned process; with `parallel`
    1, one after the other in this process (nothing to share, and no process to start).

    When a job's process dies (ends with a signal or a crash without a message),
    `on_death(job)` may return a job to run in its place. A `SeqbenchError` in any job is
    raised here after the jobs already running have finished.
    """
    if parallel == 1:
        for job in jobs:
            job.function(*job.args)
        return
    context = get_context("spawn")
    pending = list(jobs)
    running: dict[Any, tuple[Job, Any, Any]] = {}  # sentinel -> (job, process, pipe)
    errors: list[str] = []
    try:
        while pending or running:
            while pending and len(running) < parallel and not errors:
                job = pending.pop(0)
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=_child, args=(job.function, job.args, send),
                                          name=f"seqbench {job.name}", daemon=False)
                process.start()
                send.close()
                running[process.sentinel] = (job, process, receive)
            if not running:
                break
            for sentinel in connection.wait(list(running)):
                job, process, receive = running.pop(sentinel)
                process.join()
                message = _message(receive)
                if message is not None:
                    errors.append(message)
                elif process.exitcode == 130:
                    raise KeyboardInterrupt
                elif process.exitcode != 0:
                    job.deaths += 1
                    console.print(f"[yellow]worker {job.name} died ({how_it_ended(process.exitcode)}); "
                                  "only the trial it was running is lost[/]")
                    replacement = on_death(job)
                    if replacement is not None:
                        pending.insert(0, replacement)
    finally:
        for job, process, _ in running.values():
            process.join(timeout=30)  # Ctrl-C reached them too; let them write what they keep
            if process.is_alive():
                process.terminate()
                process.join()
    if errors:
        raise SeqbenchError(errors[0])
