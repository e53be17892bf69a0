"""One thread or all usable cores: where a second thread starts to pay, by model size.

seqbench picks a run's thread count from things that never change between runs (issue 38):
the cores this process may use, and the model's size, because small recurrent models train
faster on one thread (their matrix products are too small to split, and every parallel
region costs a synchronisation). This measures where that stops being true: forward +
backward + Adam of the built-in cells through the core's own model (encoder -> cell ->
head), on the shapes of three tasks, at growing hidden sizes, with 1 thread and with
`--threads` threads, alternating `--repeats` times in one process (both sides see the same
machine noise). The ratio is threads-time / one-thread-time: below 1, the extra threads pay.

    python benchmarks/threads_by_size.py [--threads 2] [--repeats 5] [--iterations 10]

The threshold in seqbench/threads.py (`ONE_THREAD_BELOW`) comes from this table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

#: (name, input features, output classes, batch, steps): music (Nottingham-like piano
#: rolls), speech (Japanese Vowels), and word-level language modelling (PTB windows, whose
#: embedding and softmax layers dominate the parameter count).
WORKLOADS = (("music", 88, 88, 16, 64), ("speech", 12, 9, 32, 20),
             ("ptb-words", 10_000, 10_000, 20, 35))
HIDDEN = (16, 32, 64, 128, 256, 512)


class Model(nn.Module):
    """Embedding or linear encoder -> recurrent cell -> linear head, as seqbench builds it."""

    def __init__(self, kind: str, inputs: int, outputs: int, hidden: int, tokens: bool):
        super().__init__()
        self.encoder = nn.Embedding(inputs, hidden) if tokens else nn.Identity()
        size = hidden if tokens else inputs
        self.cell = {"lstm": nn.LSTM, "gru": nn.GRU}[kind](size, hidden, batch_first=True)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cell(self.encoder(x))[0])


def step_seconds(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], threads: int,
                 iterations: int) -> float:
    torch.set_num_threads(threads)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = batch
    started = time.perf_counter()
    for _ in range(iterations):
        optimizer.zero_grad()
        out = model(x)
        loss = nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - started) / iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--cells", default="lstm,gru")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}; ms per training step, median of {args.repeats} "
          f"alternating timings of {args.iterations} steps")
    print(f"{'workload':10} {'cell':5} {'hidden':>6} {'parameters':>11} {'1 thread':>9} "
          f"{args.threads} threads  ratio")
    for name, inputs, outputs, batch, steps in WORKLOADS:
        tokens = name.startswith("ptb")
        x = (torch.randint(inputs, (batch, steps)) if tokens
             else torch.randn(batch, steps, inputs))
        y = torch.randint(outputs, (batch, steps))
        for kind in args.cells.split(","):
            for hidden in HIDDEN:
                model = Model(kind, inputs, outputs, hidden, tokens)
                parameters = sum(p.numel() for p in model.parameters())
                step_seconds(model, (x, y), 1, 2)  # warm-up: allocations, oneDNN primitives
                step_seconds(model, (x, y), args.threads, 2)
                one, many = [], []
                for _ in range(args.repeats):
                    one.append(step_seconds(model, (x, y), 1, args.iterations))
                    many.append(step_seconds(model, (x, y), args.threads, args.iterations))
                t1, tn = statistics.median(one), statistics.median(many)
                print(f"{name:10} {kind:5} {hidden:6d} {parameters:11,d} {t1 * 1e3:9.2f} "
                      f"{tn * 1e3:10.2f}  {tn / t1:5.2f}", flush=True)


if __name__ == "__main__":
    main()
