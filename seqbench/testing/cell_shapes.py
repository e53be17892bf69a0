"""Cell checks on what `forward` returns: shapes, the state's structure, dtype and device.

The core stacks the cell between the task's encoder and head, carries its state, and runs
it on the input's device and dtype, so each of these is a promise the core relies on
without testing it itself.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch

from seqbench.contracts import Cell
from seqbench.declarations import cell_problems
from seqbench.step import state_shapes
from seqbench.testing.cell_probe import (
    BATCH,
    HIDDEN,
    STEPS,
    build,
    call,
    close,
    inputs,
    kinds,
    leaves,
    max_diff,
)
from seqbench.testing.kit import CheckSkipped, expect


def check_params_declared(cell: Cell) -> None:
    problems = cell_problems(cell)
    expect(not problems, "a well-formed cell declaration (what the registry checks at load)",
           "; ".join(problems))
    build(cell)  # every declared default is accepted by build as a keyword


def check_output_shape(cell: Cell) -> None:
    y, _ = call(build(cell, layers=1), inputs())
    expect(tuple(y.shape) == (BATCH, STEPS, HIDDEN),
           f"output shape {(BATCH, STEPS, HIDDEN)}", f"{tuple(y.shape)}")


def check_output_shape_stacked(cell: Cell) -> None:
    y, _ = call(build(cell, layers=3, dropout=0.25), inputs())
    expect(tuple(y.shape) == (BATCH, STEPS, HIDDEN),
           f"output shape {(BATCH, STEPS, HIDDEN)} with 3 layers", f"{tuple(y.shape)}")


def check_state_shape(cell: Cell) -> None:
    module = build(cell, layers=2).eval()
    x = inputs()
    _, first = call(module, x[:, :2])
    expect(leaves(first), "a state made of tensors", f"{state_shapes(first)!r}")
    _, second = call(module, x[:, 2:], first)
    expect(state_shapes(second) == state_shapes(first),
           "the state returned after a state was passed in to have that state's shapes",
           f"{state_shapes(second)} after passing {state_shapes(first)}")


def _initial_states(module, device, dtype) -> list[tuple[str, Any]]:
    """`initial_state(BATCH, device, dtype)` of every step inside `module` (cells made with
    `seqbench.step.from_step`, or any module following the step protocol)."""
    return [(type(sub).__name__, sub.initial_state(BATCH, device, dtype))
            for sub in module.modules() if callable(getattr(sub, "initial_state", None))]


def check_dtype_follows_input(cell: Cell) -> None:
    """float64 weights and inputs must give float64 outputs and states: a state created
    without the given dtype (or device) is the bug this finds, and it needs no GPU."""
    module = build(cell, layers=2).double().eval()
    x = inputs().double()
    with torch.no_grad():
        for step, state in _initial_states(module, torch.device("cpu"), torch.float64):
            dtypes = kinds(state, lambda leaf: leaf.dtype)
            expect(dtypes == ["torch.float64"],
                   f"{step}.initial_state(batch_size, device, dtype=torch.float64) to return "
                   "float64 tensors", f"{dtypes}")
        y, state = call(module, x)
        _, carried = call(module, x[:, :2], state)
    for what, value in (("output", y), ("state", state), ("carried state", carried)):
        dtypes = kinds(value, lambda leaf: leaf.dtype)
        expect(dtypes == ["torch.float64"], f"a float64 {what} from a float64 module and input",
               f"{dtypes}")


#: How PyTorch words a tensor on the wrong device; anything else a meta run raises is an
#: operation that cannot run on the meta device, which makes the check inapplicable.
DEVICE_MISMATCH = ("expected device", "same device", "on the expected device")


def check_device_follows_input(cell: Cell) -> None:
    """Run the cell on PyTorch's `meta` device (shapes only, no data, no GPU): a tensor
    created on the CPU inside `forward` or `initial_state` meets the meta inputs and fails,
    exactly as it would meet CUDA inputs on a GPU machine."""
    meta = torch.device("meta")
    module = build(cell, layers=2).eval().to(meta)
    x = inputs().to(meta)
    try:
        with torch.no_grad():
            for step, state in _initial_states(module, meta, torch.float32):
                devices = kinds(state, lambda leaf: leaf.device.type)
                expect(devices == ["meta"], f"{step}.initial_state(batch_size, device=meta, "
                       "dtype) to return tensors on that device", f"{devices}")
            y, state = call(module, x)
            _, carried = call(module, x[:, :2], state)
    except (RuntimeError, NotImplementedError) as exc:
        if not any(words in str(exc) for words in DEVICE_MISMATCH):
            raise CheckSkipped("the cell uses an operation the meta device cannot run "
                               f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc
        expect(False, "every tensor on the input's device (run on the meta device)",
               f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    devices = sorted({t.device.type for t in [y, *leaves(state), *leaves(carried)]})
    expect(devices == ["meta"], "the output and state on the input's device (meta)",
           f"{devices}")


@contextmanager
def cudnn_in_float32():
    """cuDNN's RNNs and convolutions without TF32, which they use by default on Ampere and
    later GPUs: its 10-bit mantissa alone differs from the CPU by more than the 1e-4 the
    check asks of the cell's own code."""
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved


def check_cuda(cell: Cell) -> None:
    if not torch.cuda.is_available():
        raise CheckSkipped("no CUDA device available")
    module = build(cell, layers=2).eval()
    x = inputs()
    with torch.no_grad(), cudnn_in_float32():
        expected, _ = call(module, x)
        got, state = call(module.to("cuda"), x.to("cuda"))
        call(module, x[:, :1].to("cuda"), state)
    expect(got.is_cuda, "the output on the input's CUDA device", f"device {got.device}")
    expect(close(got.cpu(), expected, atol=1e-4, rtol=1e-3),
           "the same outputs on CUDA as on CPU (to 1e-4)",
           f"a max difference of {max_diff(got.cpu(), expected):.3g}")
