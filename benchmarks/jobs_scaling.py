"""Trials per hour with `--jobs 2` against `--jobs 1` on the same small study.

Both sweeps run the same fixed study (task, cell, trial budget, epochs, no pruning, no
re-run selection, one final seed) from an empty storage, one after the other in this session, as `seqbench
sweep` processes; the figure is trials / wall-clock hours of the whole command, start-up
and the final run included, so it is what a user waits for.

    python benchmarks/jobs_scaling.py [--task speech] [--cell gru] [--trials 8] [--epochs 40]

Each job is a fresh process (torch import and data loading included), so trials must be
long enough for that to amortise: a few seconds each, not the fraction of a second that a
5-epoch Japanese Vowels trial takes.

Target: jobs 2 / jobs 1 >= 1.6 (it needs two idle cores).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def trials_per_hour(args: argparse.Namespace, jobs: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "SEQBENCH_THREADS")}
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "seqbench", "sweep", "--task", args.task,
                        "--cells", args.cell, "--trials", str(args.trials), "--seeds", "1",
                        "--top", "1", "--rerun-seeds", "0", "--epochs", str(args.epochs),
                        "--set", "patience=0", "--pruner", "none", "--jobs", str(jobs),
                        "--output-dir", out],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return args.trials / ((time.perf_counter() - started) / 3600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="speech")
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    one = trials_per_hour(args, 1)
    two = trials_per_hour(args, 2)
    print(f"{args.task}/{args.cell}, {args.trials} trials x {args.epochs} epochs, "
          f"usable cores {len(os.sched_getaffinity(0))}:")
    print(f"  --jobs 1  {one:8.0f} trials/hour")
    print(f"  --jobs 2  {two:8.0f} trials/hour   ratio {two / one:.2f}")


if __name__ == "__main__":
    main()
