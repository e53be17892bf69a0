"""How many intra-op threads a training process uses, decided before torch loads.

Two things make a recurrent run crawl on a machine that is not idle. `os.cpu_count()`
counts the host's cores, not the ones this process may use (its CPU affinity, and a
container's cgroup quota), so torch starts more threads than it gets cores. And OpenMP's
default wait policy spins: a thread that reaches a barrier first burns its core waiting for
one that shares a core with someone else's process, which turned a 2 s run into 55 s beside
one busy process. So the thread count comes from affinity and quota, and OpenMP is told to
wait passively (`OMP_WAIT_POLICY=PASSIVE`); both are read by OpenMP once, when torch is
imported, which is why `configure` must run first.

Passive waiting alone still leaves a run with one thread per core waiting at every parallel
region for the thread that shares its core with the neighbour (about 2x slower beside one
busy process on two cores). So the cores that are busy right now (over 50% used in a 0.1 s
sample of /proc/stat) are not counted either: a run beside a busy process takes the cores
that are actually free. For the small recurrent models seqbench trains, one thread fewer
costs far less than one thread stalled.

Precedence for the count: `--threads N`, else `$OMP_NUM_THREADS` (a user's explicit
choice), else the free usable cores divided between the processes of a sweep.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

from seqbench.errors import SeqbenchError

#: The per-process count this process decided on; inherited by the workers it starts.
THREADS_ENV = "SEQBENCH_THREADS"


def usable_cores() -> int:
    """Cores this process may use now: its affinity mask less the cores someone else keeps
    busy, capped by a cgroup CPU quota."""
    try:
        mask = os.sched_getaffinity(0)
    except AttributeError:  # macOS and Windows have no affinity API
        mask = set(range(os.cpu_count() or 1))
    cores = max(1, len(mask) - busy_cores(mask))
    quota = cgroup_quota()
    return min(cores, quota) if quota else cores


def busy_cores(mask: set[int], seconds: float = 0.1, stat: Path = Path("/proc/stat")) -> int:
    """How many of the cores in `mask` were over half busy during a short sample."""
    def sample() -> dict[int, tuple[int, int]]:
        times = {}
        for line in stat.read_text().splitlines():
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in mask:
                ticks = [int(f) for f in fields[:8]]
                times[int(name[3:])] = (sum(ticks), ticks[3] + ticks[4])  # total, idle+iowait
        return times

    try:
        first = sample()
        time.sleep(seconds)
        second = sample()
    except (OSError, ValueError):  # no /proc (macOS, Windows): assume the cores are free
        return 0
    busy = 0
    for cpu, (total, idle) in second.items():
        elapsed = total - first[cpu][0] if cpu in first else 0
        if elapsed > 0 and 1 - (idle - first[cpu][1]) / elapsed > 0.5:
            busy += 1
    return busy


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
