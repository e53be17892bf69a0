"""Step-function LSTM against PyTorch's fused nn.LSTM: what a new cell pays for being new.

A third party writes a cell as one step (`seqbench.step.from_step`); the comparison tables
should not mix its quality with its implementation's speed. This times forward + backward
of the same LSTM (same weights) on music-256 shapes: 16 sequences x 64 steps, 88 -> 256,
through a linear head and a Bernoulli loss as the music task has, for each way of running
the step's time loop:

  fused         nn.LSTM (oneDNN's fused RNN on CPU, cuDNN on CUDA): the reference
  eager         the Python loop over time (seqbench before compilation)
  compile-step  torch.compile of the single step, called once per time step
  torchscript   torch.jit.script of the whole loop
  seqbench      what `from_step` does now: torch.compile of 16-step chunks (seqbench.step)

The sides alternate `--repeats` times and the median of each is reported with its ratio to
fused; ratios are the result (the machine is shared and noisy, both sides see the same
noise). The first call of each compiled strategy (compilation included) is reported too.

    python benchmarks/step_vs_fused.py [--iterations 20] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from seqbench.step import StepSequence, run_steps

BATCH, STEPS, KEYS, HIDDEN = 16, 64, 88, 256


class LSTMStep(nn.Module):
    """The textbook LSTM step, as a plugin author would write it (PyTorch's gate order)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.ih = nn.Linear(input_size, 4 * hidden_size)
        self.hh = nn.Linear(hidden_size, 4 * hidden_size)

    def initial_state(self, batch_size: int, device: torch.device,
                      dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return zeros, zeros

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        h, c = state
        i, f, g, o = (self.ih(x) + self.hh(h)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class ScriptedLoop(nn.Module):
    """The time loop as a TorchScript-able module (TorchScript needs the types spelled out)."""

    def __init__(self, step: LSTMStep) -> None:
        super().__init__()
        self.step = step

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        outputs = []
        for t in range(x.shape[1]):
            h, state = self.step(x[:, t], state)
            outputs.append(h)
        return torch.stack(outputs, dim=1)


def same_weights(fused: nn.LSTM, step: LSTMStep) -> None:
    with torch.no_grad():
        step.ih.weight.copy_(fused.weight_ih_l0)
        step.ih.bias.copy_(fused.bias_ih_l0)
        step.hh.weight.copy_(fused.weight_hh_l0)
        step.hh.bias.copy_(fused.bias_hh_l0)


def strategies(device: torch.device) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Each strategy maps x[B, T, I] to y[B, T, H], all with the fused LSTM's weights."""
    torch.manual_seed(0)
    fused = nn.LSTM(KEYS, HIDDEN, batch_first=True).to(device)
    sequence = StepSequence(LSTMStep, KEYS, HIDDEN, compile_loop=True).to(device)
    eager = StepSequence(LSTMStep, KEYS, HIDDEN, compile_loop=False).to(device)
    step = sequence.layers[0]
    for other in (step, eager.layers[0]):
        same_weights(fused, other)
    compiled_step = torch.compile(step)
    scripted = torch.jit.script(ScriptedLoop(step))

    def start(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return step.initial_state(x.shape[0], x.device, x.dtype)

    return {
        "fused": lambda x: fused(x)[0],
        "eager": lambda x: eager(x)[0],
        "compile-step": lambda x: run_steps(compiled_step, x, start(x))[0],
        "torchscript": lambda x: scripted(x, start(x)),
        "seqbench": lambda x: sequence(x)[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=20, help="forward+backward per timing")
    parser.add_argument("--repeats", type=int, default=3, help="alternating timings per side")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(1)
    x = (torch.rand(BATCH, STEPS, KEYS, generator=generator) < 0.1).float().to(device)
    targets = (torch.rand(BATCH, STEPS, KEYS, generator=generator) < 0.1).float().to(device)
    head = nn.Linear(HIDDEN, KEYS).to(device)
    runs = strategies(device)

    def train_step(run: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        y = run(x)
        loss = nn.functional.binary_cross_entropy_with_logits(head(y), targets)
        loss.backward()
        return y

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    outputs, first = {}, {}
    for name, run in runs.items():
        started = time.perf_counter()
        for _ in range(3):  # compiles, then lets TorchScript's profiling executor optimise
            outputs[name] = train_step(run).detach()
        sync()
        first[name] = time.perf_counter() - started
    for name, y in outputs.items():
        torch.testing.assert_close(y, outputs["fused"], atol=1e-4, rtol=1e-3)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            sync()
            started = time.perf_counter()
            for _ in range(args.iterations):
                train_step(run)
            sync()
            times[name].append((time.perf_counter() - started) / args.iterations)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"music-256 shapes ({BATCH} x {STEPS} steps, {KEYS} -> {HIDDEN}), forward+backward, "
          f"{device.type}, {args.threads} thread(s), torch {torch.__version__}")
    print("| strategy | ms per batch | ratio to fused | first 3 calls, s (compilation included) |")
    print("|---|---|---|---|")
    for name in runs:
        print(f"| {name} | {median[name] * 1000:.2f} | **{median[name] / median['fused']:.2f}** "
              f"| {first[name]:.1f} |")


if __name__ == "__main__":
    main()
