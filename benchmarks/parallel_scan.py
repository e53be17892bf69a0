"""Parallel forms against the same cells stepped sequentially, and against nn.LSTM.

minGRU, minLSTM, mLSTM, LRU and Mamba are trained through a parallel form (a log-space or
doubling scan, mLSTM's attention-like matrix form, mambapy's pscan) instead of a loop over
time; that form has to earn its place. This times forward + backward (a linear head and an
MSE loss) of one layer of each cell, with the same weights run both ways
(`seqbench_cells.modern.stack.set_parallel`), and of `nn.LSTM` at the same width, at
several sequence lengths. Outputs of the two forms are checked equal first.

The sides alternate `--repeats` times and the median of each is reported with its ratios;
ratios are the result (the machine is shared and noisy, all sides see the same noise).

    python benchmarks/parallel_scan.py [--lengths 64,256,1024] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from seqbench import registry
from seqbench_cells.modern.stack import set_parallel

CELLS = ("mingru", "minlstm", "mlstm", "lru", "mamba")
BATCH, INPUT, HIDDEN = 8, 8, 64


def build(name: str) -> nn.Module:
    cell = registry.get_cell(name)
    torch.manual_seed(0)
    return cell.build(INPUT, HIDDEN, 1, 0.0, **{p.name: p.default for p in cell.params})


def timed(step: Callable[[], None], iterations: int) -> float:
    started = time.perf_counter()
    for _ in range(iterations):
        step()
    return (time.perf_counter() - started) / iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default="64,256,1024")
    parser.add_argument("--cells", default=",".join(CELLS))
    parser.add_argument("--repeats", type=int, default=3, help="alternating timings per side")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lengths = [int(n) for n in args.lengths.split(",")]
    head = nn.Linear(HIDDEN, 1)
    torch.manual_seed(0)
    lstm = nn.LSTM(INPUT, HIDDEN, batch_first=True)
    print(f"forward+backward, batch {BATCH}, {INPUT} -> {HIDDEN}, one layer, "
          f"{args.threads} thread(s), torch {torch.__version__}; medians of {args.repeats}")
    print("| cell | steps | parallel ms | sequential ms | nn.LSTM ms | sequential / parallel "
          "| parallel / nn.LSTM |")
    print("|---|---|---|---|---|---|---|")
    for steps in lengths:
        generator = torch.Generator().manual_seed(1)
        x = torch.randn(BATCH, steps, INPUT, generator=generator)
        target = torch.randn(BATCH, steps, 1, generator=generator)
        iterations = max(1, 1024 // steps)

        def train_step(module: nn.Module) -> Callable[[], None]:
            def run() -> None:
                y, _ = module(x)
                nn.functional.mse_loss(head(y), target).backward()
            return run

        for name in args.cells.split(","):
            module = build(name)
            with torch.no_grad():
                parallel = set_parallel(module, True)(x)[0]
                sequential = set_parallel(module, False)(x)[0]
            torch.testing.assert_close(parallel, sequential, atol=1e-4, rtol=1e-3)
            sides = {"parallel": lambda m=module: set_parallel(m, True),
                     "sequential": lambda m=module: set_parallel(m, False),
                     "lstm": lambda: lstm}
            times: dict[str, list[float]] = {side: [] for side in sides}
            for side, choose in sides.items():  # warm-up
                train_step(choose())()
            for _ in range(args.repeats):
                for side, choose in sides.items():
                    times[side].append(timed(train_step(choose()), iterations))
            ms = {side: statistics.median(values) * 1000 for side, values in times.items()}
            print(f"| {name} | {steps} | {ms['parallel']:.1f} | {ms['sequential']:.1f} "
                  f"| {ms['lstm']:.1f} | **{ms['sequential'] / ms['parallel']:.2f}** "
                  f"| **{ms['parallel'] / ms['lstm']:.2f}** |", flush=True)


if __name__ == "__main__":
    main()
