"""The built-in cells' training cost at matched parameter counts on CPU, before and after
the GRU and RNN got their own CPU recurrence.

At about 20k parameters a Nottingham GRU epoch took 5.5 times an LSTM epoch on this
project's CPU machine, so every music sweep waited on its GRU and RNN stages. On CPU only
`nn.LSTM` runs on oneDNN's fused RNN primitive (`aten::mkldnn_rnn_layer` refuses the GRU and
RNN kinds); `nn.GRU` and `nn.RNN` run ATen's loop over time, recording a dozen autograd nodes
per step. seqbench's `gru` and `rnn` cells now train through `seqbench_cells.recurrence`
(one autograd node per layer, input projections hoisted, a hand-derived backward); the rows
"nn.GRU" and "nn.RNN" are PyTorch's own modules with the same weights, what the cells ran
before. The last row is the LSTM with oneDNN switched off: ATen's loop again, which
separates the kernel from the cell.

Each cell has the hidden size that brings cell + linear head closest to `--budget`
parameters without exceeding it (as `--param-budget` does for the whole model), and trains
forward + backward + Adam on music shapes (88 keys, Bernoulli loss). The sides alternate
`--repeats` times; the median of each is reported with its ratio to the LSTM, measured in
the same run (the machine is shared and noisy; both sides see the same noise).

    python benchmarks/fused_cells.py [--budget 20000] [--batch 8] [--steps 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import warnings

import torch
from torch import nn

from seqbench import registry
from seqbench.model import count_parameters
from seqbench.sweeps.budget import largest_width_within

KEYS = 88


def matched_cell(name: str, budget: int) -> tuple[nn.Module, int]:
    """The cell (one layer, its default extra parameters) with the largest hidden size whose
    cell + head stays within `budget` parameters, and that parameter count."""
    cell = registry.get_cell(name)
    extra = {param.name: param.default for param in cell.params}

    def count(hidden: int) -> int:
        with torch.device("meta"):
            module = cell.build(KEYS, hidden, 1, 0.0, **extra)
        return count_parameters(module) + hidden * KEYS + KEYS

    hidden = largest_width_within(count, budget)
    return cell.build(KEYS, hidden, 1, 0.0, **extra), count(hidden)


def pytorch_module(cell: nn.Module) -> nn.Module:
    """PyTorch's own module with `cell`'s weights (ATen's loop on CPU): what it ran before."""
    kind, extra = ((nn.GRU, {}) if isinstance(cell, nn.GRU)
                   else (nn.RNN, {"nonlinearity": cell.nonlinearity}))
    module = kind(cell.input_size, cell.hidden_size, batch_first=True, **extra)
    module.load_state_dict(cell.state_dict())
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=20_000, help="parameters per model")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--iterations", type=int, default=10, help="training steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="alternating timings per side")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
    torch.manual_seed(0)
    x = (torch.rand(args.batch, args.steps, KEYS) < 0.1).float()
    targets = (torch.rand(args.batch, args.steps, KEYS) < 0.1).float()
    sides = {}
    for name in ("lstm", "gru", "rnn"):
        sides[name] = (*matched_cell(name, args.budget), contextlib.nullcontext)
    for name in ("gru", "rnn"):
        cell, parameters, _ = sides[name]
        sides[f"nn.{name.upper()}"] = (pytorch_module(cell), parameters, contextlib.nullcontext)
    lstm, parameters, _ = sides["lstm"]
    sides["lstm, oneDNN off"] = (lstm, parameters,
                                 lambda: torch.backends.mkldnn.flags(enabled=False))

    def timed(cell: nn.Module, backend) -> float:
        head = nn.Linear(cell.hidden_size, KEYS)
        optimizer = torch.optim.Adam([*cell.parameters(), *head.parameters()])
        with backend():
            started = time.perf_counter()
            for _ in range(args.iterations):
                loss = nn.functional.binary_cross_entropy_with_logits(head(cell(x)[0]), targets)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
        return (time.perf_counter() - started) / args.iterations

    for cell, _, backend in sides.values():
        timed(cell, backend)  # warm-up: allocator, oneDNN primitive cache
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, (cell, _, backend) in sides.items():
            times[name].append(timed(cell, backend))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"~{args.budget} parameters, {args.batch} x {args.steps} steps, {KEYS} keys, "
          f"forward + backward + Adam, cpu, {args.threads} thread(s), torch {torch.__version__}")
    print("| cell | hidden | parameters | ms per batch | ratio to LSTM |")
    print("|---|---|---|---|---|")
    for name, (cell, count, _) in sides.items():
        print(f"| {name} | {cell.hidden_size} | {count:,} | {median[name] * 1000:.1f} "
              f"| **{median[name] / median['lstm']:.2f}** |")


if __name__ == "__main__":
    main()
