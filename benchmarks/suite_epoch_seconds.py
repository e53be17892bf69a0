"""Seconds per training epoch for a suite's datasets and cells, at each task's defaults,
one thread per run: the measurements `seqbench suite list` estimates a suite's cost from.

One thread per run is how a sweep with `--jobs 2` trains on a 2-core machine (each worker
gets one core). Each (dataset, cell) trains `--epochs` epochs (default 2) at the task's
default configuration and the last epoch's seconds (training plus validation, from the
run's history.csv) are kept: the first epoch also pays one-off costs (kernel selection,
numba compilation, caches). Each run is a fresh spawned process (nothing cached in memory
from the previous one); its seconds outside its epochs, counted from after torch and
Lightning are imported (a sweep's worker imports them once, then trains run after run),
are `setup`: preparing the data, testing, the baselines. The median over the cells is
kept. Measured entries replace earlier ones in the file; entries
not measured now (another machine's, or ones taken from published run records) are kept.

    python benchmarks/suite_epoch_seconds.py standard --datasets speech/coffee,music/jsb \\
        --cells lstm,gru,rnn

writes suites/epoch-seconds.toml (or --output). Run it through the torch queue.

Datasets too slow to measure in a session (an epoch of PTB takes minutes) can take their
epoch times from published run records instead: `--from-runs results/finals/fsdd,results/lm`
reads every `history.csv` below those folders whose run (its config.json) is a suite
dataset, and keeps per (task, dataset, cell) the median epoch, first epochs left out. Those
runs used tuned configurations, not the defaults, and the `how` line says so.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from seqbench import threads
from seqbench.benchsuite import load_suite
from seqbench.benchsuite.cost import MEASUREMENTS, Measurements, format_measurements, read_measurements

HEADER = """Seconds per training epoch (training + validation) at each task's default configuration,
one thread per run (as each worker of `seqbench sweep --jobs 2` on a 2-core machine), and
finished sweeps that calibrate how early runs stop (seqbench/benchsuite/cost.py).
Rebuild: python benchmarks/suite_epoch_seconds.py SUITE [--datasets T/D,...] [--cells ...]"""


def machine() -> str:
    """The CPU, its cores, the thread count, torch's version and today's date."""
    cpu = platform.processor() or "unknown CPU"
    if Path("/proc/cpuinfo").exists():
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores, 1 thread per run, torch "
            f"{version('torch')}, {datetime.date.today().isoformat()}")


#: The file a spawned run writes its own wall time to (from after its imports).
WALL = "wall-seconds.txt"


def train(task: str, dataset: str, cell: str, epochs: int, folder: str) -> None:
    """One run at the task's defaults (in a spawned process, from `epoch_seconds`); its
    wall time from after the imports goes to WALL, because a sweep's worker imports once
    and then trains run after run."""
    threads.configure(1)
    import seqbench as sb
    import seqbench.train  # noqa: F401 - torch and Lightning, before the clock starts

    start = time.perf_counter()
    sb.run(task=task, cell=cell, dataset=dataset, epochs=epochs, min_epochs=epochs,
           output_dir=folder, progress=False)
    Path(folder, WALL).write_text(str(time.perf_counter() - start))


def epoch_seconds(task: str, dataset: str, cell: str, epochs: int) -> tuple[float, float]:
    """(the last epoch's seconds, the run's seconds outside its epochs)."""
    with tempfile.TemporaryDirectory() as folder:
        process = multiprocessing.get_context("spawn").Process(
            target=train, args=(task, dataset, cell, epochs, folder))
        process.start()
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"{task}/{dataset} {cell}: the run failed ({process.exitcode})")
        (history,) = Path(folder).glob("*/history.csv")
        with open(history, newline="") as handle:
            rows = list(csv.DictReader(handle))
        wall = float(Path(folder, WALL).read_text())
    return float(rows[-1]["seconds"]), wall - sum(float(row["seconds"]) for row in rows)


def recorded_seconds(folders: list[Path]) -> dict[tuple[str, str, str], list[float]]:
    """Epoch seconds of published runs below `folders`, by (task, dataset, cell), first
    epochs left out."""
    found: dict[tuple[str, str, str], list[float]] = {}
    for folder in folders:
        for history in sorted(folder.rglob("history.csv")):
            spec = json.loads((history.parent / "config.json").read_text())["spec"]
            with open(history, newline="") as handle:
                rows = list(csv.DictReader(handle))[1:]
            found.setdefault((spec["task"], spec["dataset"], spec["cell"]), []).extend(
                float(row["seconds"]) for row in rows)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite")
    parser.add_argument("--datasets", default="", help="task/dataset,... (default: all)")
    parser.add_argument("--cells", default="", help="default: the suite's required cells")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--from-runs", default="", help="folders of published run records "
                        "(a,b) to read epoch times from instead of training")
    args = parser.parse_args()
    threads.configure(1)
    suite = load_suite(args.suite)
    output = args.output or suite.path.parent / MEASUREMENTS
    chosen = set(filter(None, args.datasets.split(",")))
    cells = tuple(filter(None, args.cells.split(","))) or suite.cells
    old = read_measurements(output) if output.is_file() else Measurements("", {}, {})
    seconds = {key: dict(value) for key, value in old.seconds.items()}
    how, setup = dict(old.how), dict(old.setup)
    if args.from_runs:
        folders = [Path(f) for f in args.from_runs.split(",")]
        wanted = {(d.task, d.dataset) for d in suite.datasets
                  if not chosen or d.name in chosen}
        for (task, dataset, cell), values in recorded_seconds(folders).items():
            if (task, dataset) in wanted and values:
                seconds.setdefault((task, dataset), {})[cell] = statistics.median(values)
                how[task, dataset] = (f"published run records under {args.from_runs}: median "
                                      "epoch of the final runs (tuned configurations, not the "
                                      "defaults), first epochs left out")
        output.write_text(format_measurements(
            Measurements(old.machine or machine(), seconds, how, old.calibrations, setup),
            HEADER))
        return
    for item in suite.datasets:
        if chosen and item.name not in chosen:
            continue
        key = (item.task, item.dataset)
        overheads = []
        for cell in cells:
            seconds.setdefault(key, {})[cell], overhead = epoch_seconds(*key, cell, args.epochs)
            overheads.append(overhead)
            print(f"{item.name} {cell}: {seconds[key][cell]:.3g} s per epoch, {overhead:.3g} s "
                  "outside them", flush=True)
            how[key] = (f"measured: epoch {args.epochs} of {args.epochs} at the task's "
                        "defaults")
            setup[key] = statistics.median(overheads)
            output.write_text(format_measurements(
                Measurements(machine(), seconds, how, old.calibrations, setup), HEADER))


if __name__ == "__main__":
    main()
