"""How many intra-op threads a training process uses: never what the machine is doing now.

The thread count changes a run's numbers (it changes the order of floating-point sums: a
speech LSTM's test NLL moves in the seventh digit between one thread and two, and a whole
training can end a point of accuracy apart), so it is decided only from things that stay
the same between runs of one spec on one machine, and recorded in the spec (`RunSpec.threads`,
so `--spec` and `--resume` train on the recorded count):

* the cores this process may use: its CPU affinity and its container's cgroup quota, never
  `os.cpu_count()` (the host's) and never a sample of which cores are busy right now;
* the model's size: below `ONE_THREAD_BELOW` parameters one thread is fastest, because the
  products are too small to split and each parallel region costs a synchronisation
  (benchmarks/threads_by_size.py: two threads take 1.5-5x as long for models of 10^4-10^5
  parameters, and pay only from about 10^6); larger models get every usable core, divided
  between the processes of a sweep (`--jobs`) and between a run's own processes (its
  `devices`: a DDP run on N devices of one machine is N processes).

A busy neighbour then costs little: OpenMP is told to wait passively
(`OMP_WAIT_POLICY=PASSIVE`; a spinning thread that waits for one sharing its core with
someone else's process turned a 2 s run into 55 s), and a run never starts more threads than
it has usable cores. OpenMP reads its settings once, when torch is imported, which is why
`configure` runs first; the count for a model is set when the model exists (`decide`).

Precedence: the spec's count (`--threads`, or the one a re-run or resumed run recorded),
else an explicit count in the environment (`--threads` of a sweep, or `$OMP_NUM_THREADS` as
the user's shell set it), else the rule above. A count above the usable cores is capped
(with a note: the numbers may then differ from the recorded run's).
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from seqbench.errors import SeqbenchError

#: An explicit per-process count (`--threads`, or the user's `$OMP_NUM_THREADS`), passed on
#: to the worker processes of a sweep. Absent: the count follows the model's size.
THREADS_ENV = "SEQBENCH_THREADS"
#: The most threads one process of this command may use (usable cores / --jobs); set by
#: `configure`, which also marks `$OMP_NUM_THREADS` as seqbench's own from then on.
CEILING_ENV = "SEQBENCH_THREAD_CEILING"
#: Models with fewer parameters train on one thread (see the module docstring).
ONE_THREAD_BELOW = 1_000_000
#: Everything `configure` writes into the environment.
SETTINGS = (THREADS_ENV, CEILING_ENV, "OMP_NUM_THREADS", "OMP_WAIT_POLICY")

F = TypeVar("F", bound=Callable[..., Any])


def usable_cores() -> int:
    """Cores this process may use: its affinity mask, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity API
        cores = os.cpu_count() or 1
    quota = cgroup_quota()
    return max(1, min(cores, quota) if quota else cores)


def cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The CPU quota in whole cores (rounded up) from cgroup v2 or v1, or None if unlimited."""
    try:
        limit, period = (root / "cpu.max").read_text().split()[:2]
        if limit != "max":
            return math.ceil(int(limit) / int(period))
        return None
    except (OSError, ValueError):
        pass
    try:
        limit = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return math.ceil(limit / period) if limit > 0 and period > 0 else None


def _count(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def explicit() -> int | None:
    """The count chosen outside seqbench's rule: `--threads` of this command or its parent,
    else `$OMP_NUM_THREADS` as the user's shell set it (not as `configure` set it)."""
    chosen = _count(THREADS_ENV)
    if chosen is None and CEILING_ENV not in os.environ:
        chosen = _count("OMP_NUM_THREADS")
    return chosen


def configure(threads: int | None = None, jobs: int = 1) -> int:
    """Before torch loads: OpenMP's pool (the explicit count, else this process's share of
    the usable cores) and its passive waiting; return the pool's size."""
    if threads is not None:
        if threads < 1:
            raise SeqbenchError(f"--threads must be at least 1 (got {threads}).")
        os.environ[THREADS_ENV] = str(threads)
    elif explicit() is not None:
        os.environ[THREADS_ENV] = str(explicit())  # the user's, kept for the workers
    ceiling = max(1, usable_cores() // max(1, jobs))
    os.environ[CEILING_ENV] = str(ceiling)
    pool = explicit() or ceiling
    os.environ["OMP_NUM_THREADS"] = str(pool)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "torch" in sys.modules:  # too late for OpenMP's settings, not for torch's pool size
        sys.modules["torch"].set_num_threads(pool)
    return pool


def scoped(function: F) -> F:
    """`function` (an API entry point that calls `configure`) leaves the thread settings
    of the environment as it found them, and torch's pool size too where torch was loaded
    before the call. `configure` writes them into this process's environment for the worker
    processes it starts; left there, a notebook's `sb.run(threads=2)` made the next
    `sb.run()` train its small model on two threads too, where the rule gives one (five
    times slower on two cores, and other numbers than the same spec from the shell).

    Two limits: a torch first imported inside the call keeps the pool the call gave it
    (each later call sets the pool it needs anyway, `decide`), and the environment is the
    process's, so API calls from several threads at once are not supported."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        saved = {name: os.environ.get(name) for name in SETTINGS}
        torch = sys.modules.get("torch")
        pool = torch.get_num_threads() if torch is not None else None
        try:
            return function(*args, **kwargs)
        finally:
            restore(saved)
            if pool is not None:
                torch.set_num_threads(pool)
    return wrapper  # type: ignore[return-value]


def restore(saved: dict[str, str | None]) -> None:
    """Put the thread settings back as `saved` ({name: value, None where unset}) has them."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def decide(parameters: int, recorded: int | None = None, processes: int = 1) -> int:
    """The threads for training a model of `parameters` (see the module docstring), set
    in torch; `recorded` is the spec's count, `processes` how many processes of the run
    share this machine's cores."""
    import torch

    usable = usable_cores()
    chosen = recorded or explicit()
    if chosen is None:
        ceiling = max(1, min(_count(CEILING_ENV) or usable, usable) // processes)
        count = 1 if parameters < ONE_THREAD_BELOW else ceiling
    else:
        count = min(chosen, usable)
        if count < chosen:
            from seqbench.console import note

            note(f"{chosen} threads were asked for but this process may use {usable} cores; "
                 f"training on {usable} (the numbers may differ from a run on {chosen}).")
    torch.set_num_threads(count)
    return count
