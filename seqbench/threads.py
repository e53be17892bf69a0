"""How many intra-op threads a training process uses, decided before torch loads.

Two things make a recurrent run crawl on a machine that is not idle. `os.cpu_count()`
counts the host's cores, not the ones this process may use (its CPU affinity, and a
container's cgroup quota), so torch starts more threads than it gets cores. And OpenMP's
default wait policy spins: a thread that reaches a barrier first burns its core waiting for
one that shares a core with someone else's process, which turned a 2 s run into 55 s beside
one busy process. So the thread count comes from affinity and quota, and OpenMP is told to
wait passively (`OMP_WAIT_POLICY=PASSIVE`); both are read by OpenMP once, when torch is
imported, which is why `configure` must run first.

Precedence for the count: `--threads N`, else `$OMP_NUM_THREADS` (a user's explicit
choice), else the usable cores divided between the processes of a sweep.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from seqbench.errors import SeqbenchError

#: The per-process count this process decided on; inherited by the workers it starts.
THREADS_ENV = "SEQBENCH_THREADS"


def usable_cores() -> int:
    """Cores this process may run on: its affinity mask, capped by a cgroup CPU quota."""
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


def per_process(jobs: int = 1) -> int:
    """The thread count for one of `jobs` training processes (see the module docstring)."""
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return max(1, usable_cores() // max(1, jobs))


def configure(threads: int | None = None, jobs: int = 1) -> int:
    """Decide this process's threads (and its workers'), before torch loads; return it."""
    if threads is not None:
        if threads < 1:
            raise SeqbenchError(f"--threads must be at least 1 (got {threads}).")
        os.environ[THREADS_ENV] = str(threads)
    count = per_process(jobs)
    os.environ[THREADS_ENV] = str(count)
    os.environ["OMP_NUM_THREADS"] = str(count)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "torch" in sys.modules:  # too late for OpenMP's settings, not for torch's pool size
        sys.modules["torch"].set_num_threads(count)
    return count
