"""Cell checks on what an output may depend on: its own sample's inputs up to its step
and the state passed in. Never other samples, later steps, earlier batches, or (in eval
mode) chance.

A cell breaking one of these scores well for the wrong reason (it sees the future, or
the rest of the batch) or scores by luck, and a comparison built on it is wrong.
"""

from __future__ import annotations

import torch

from seqbench.contracts import Cell
from seqbench.testing.cell_probe import STEPS, build, call, close, inputs, max_diff
from seqbench.testing.kit import expect

#: Where `check_causal` starts changing the inputs.
CUT = 3


def _with_sample_changed(x: torch.Tensor, sample: int) -> torch.Tensor:
    changed = x.clone()
    changed[sample] = torch.randn(changed.shape[1:], generator=torch.Generator().manual_seed(3))
    return changed


def _unchanged(module, x, changed) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return call(module, x)[0], call(module, changed)[0]


def check_batch_independence(cell: Cell) -> None:
    module = build(cell, layers=2).eval()
    x = inputs()
    y, y_changed = _unchanged(module, x, _with_sample_changed(x, -1))
    expect(close(y_changed[:-1], y[:-1], atol=1e-6, rtol=1e-5),
           "the outputs of samples 0-1 to stay the same when only sample 2 changes",
           f"a max difference of {max_diff(y_changed[:-1], y[:-1]):.3g}")
    expect(not close(y_changed[-1], y[-1], atol=1e-6, rtol=0),
           "the output of sample 2 to change when its input changes", "the same output")


def check_batch_first(cell: Cell) -> None:
    """x is `[batch, time, features]`. A module that reads dimension 0 as time (a torch
    RNN, GRU or LSTM built without `batch_first=True`) lets sample 0 change samples 1-2
    while sample 2 changes nothing else: a pattern that mixing the batch does not give."""
    module = build(cell, layers=1).eval()
    x = inputs()
    y, first_changed = _unchanged(module, x, _with_sample_changed(x, 0))
    _, last_changed = _unchanged(module, x, _with_sample_changed(x, -1))
    reads_time_first = (not close(first_changed[1:], y[1:], atol=1e-6, rtol=1e-5)
                        and close(last_changed[:-1], y[:-1], atol=1e-6, rtol=1e-5))
    expect(not reads_time_first, "x read as [batch, time, features] (samples 1-2 unchanged "
           "when only sample 0 changes)", "samples 1-2 changed while sample 2 changes nothing "
           "before it: the module reads dimension 0 as time (batch_first=False?)")


def check_causal(cell: Cell) -> None:
    """Output t may depend on inputs up to t only: a normalisation or pooling over the time
    axis lets the model see the future, which the task's targets often are."""
    module = build(cell, layers=2).eval()
    x = inputs()
    changed = x.clone()
    changed[:, CUT:] = torch.randn(changed[:, CUT:].shape,
                                   generator=torch.Generator().manual_seed(4))
    y, y_changed = _unchanged(module, x, changed)
    expect(close(y_changed[:, :CUT], y[:, :CUT], atol=1e-6, rtol=1e-5),
           f"the outputs of steps 0-{CUT - 1} to stay the same when only steps "
           f"{CUT}-{STEPS - 1} change (a causal cell)",
           f"a max difference of {max_diff(y_changed[:, :CUT], y[:, :CUT]):.3g}: the outputs "
           "see later steps (a normalisation or pooling over time?)")


def check_fresh_state(cell: Cell) -> None:
    """`forward(x)` without a state starts from the initial state. A state kept on the
    module (`self.h = h`, even written out of place and detached) leaks from one batch
    into the next: unrelated sequences then share memory, in training only or always."""
    for training in (True, False):
        module = build(cell, layers=2).train(training)
        x, other = inputs(seed=7), inputs(seed=8)
        first, _ = call(module, x)
        call(module, other)
        again, _ = call(module, x)
        mode = "train" if training else "eval"
        expect(close(first.detach(), again.detach()),
               f"forward(x) without a state to start afresh: the same batch twice, another "
               f"batch between, to give the same outputs ({mode} mode)",
               f"a max difference of {max_diff(first.detach(), again.detach()):.3g}: the "
               "module keeps something across batches (a state attribute, a buffer)")


def check_eval_deterministic(cell: Cell) -> None:
    """Validation and the test run in eval mode, once; dropout or noise left on there makes
    the reported metric a draw."""
    module = build(cell, layers=2, dropout=0.5).eval()
    x = inputs()
    runs = []
    with torch.no_grad():
        for seed in (5, 6):
            torch.manual_seed(seed)
            runs.append(call(module, x)[0])
    expect(torch.equal(*runs), "two forward passes in eval mode (2 layers, dropout=0.5) to "
           "give the same outputs", f"a max difference of {max_diff(*runs):.3g}: dropout or "
           "noise is active in eval mode")
