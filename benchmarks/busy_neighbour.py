"""A run beside one busy process: how much slower than on an idle machine?

OpenMP threads that spin while they wait turn a neighbour's busy loop into a many-fold
slowdown (2.1 s -> 55 s for a speech run before seqbench chose its threads and OpenMP's
passive wait policy). This times the same `seqbench run` three ways, in one session so the
ratios share the machine's noise: idle, beside one busy process (what seqbench does now),
and beside one busy process with the old settings (spinning OpenMP, one thread per core of
the host). The figure is the training time the run records (`train_seconds`), the median of
`--repeats` runs; start-up is not counted.

    python benchmarks/busy_neighbour.py [--task speech] [--cell gru] [--epochs 5] [--repeats 3]

Target: busy / idle <= 1.5.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BUSY_LOOP = "while True: pass"


def train_seconds(args: argparse.Namespace, env: dict[str, str]) -> float:
    """One `seqbench run`, in a fresh process; the training time it recorded."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "seqbench", "run", "--task", args.task, "--cell",
                        args.cell, "--epochs", str(args.epochs), "--set", "patience=0",
                        "--quiet", "--output-dir", out], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        (metrics,) = Path(out).glob("*/metrics.json")
        return json.loads(metrics.read_text())["train_seconds"]


def timed(args: argparse.Namespace, env: dict[str, str], busy: bool, repeats: int) -> float:
    neighbour = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if busy else None
    try:
        return statistics.median(train_seconds(args, env) for _ in range(repeats))
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="speech")
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old-repeats", type=int, default=1,
                        help="repeats for the old settings (slow by design)")
    args = parser.parse_args()

    # seqbench decides the threads itself; drop any choice the caller's shell made.
    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "SEQBENCH_THREADS",
                         "SEQBENCH_THREAD_CEILING")}
    old = {**base, "OMP_WAIT_POLICY": "ACTIVE", "SEQBENCH_THREADS": str(os.cpu_count() or 1)}
    idle = timed(args, base, busy=False, repeats=args.repeats)
    busy = timed(args, base, busy=True, repeats=args.repeats)
    before = timed(args, old, busy=True, repeats=args.old_repeats)
    print(f"{args.task}/{args.cell}, {args.epochs} epochs, train seconds (median):")
    print(f"  idle                                  {idle:8.3f}")
    print(f"  beside a busy process                 {busy:8.3f}   ratio {busy / idle:.2f}")
    print(f"  beside it, old settings (spin, {os.cpu_count()} thr) {before:8.3f}   "
          f"ratio {before / idle:.2f}")


if __name__ == "__main__":
    main()
