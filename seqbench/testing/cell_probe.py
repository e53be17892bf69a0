"""What every cell check shares: building the cell under test, feeding it, comparing results.

Every check builds small modules (input 4, hidden 16, batch 3, 5 steps unless it needs
more) on CPU, so the whole kit runs in seconds. `build` refuses a build that returns no
module in the same words for every check, so an author reads one root cause, not each
check's own AttributeError.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import torch

from seqbench import registry
from seqbench.contracts import Cell
from seqbench.declarations import valid
from seqbench.params import Param, resolve
from seqbench.step import state_shapes
from seqbench.testing.kit import expect

BATCH, STEPS, INPUT, HIDDEN = 3, 5, 4, 16

CellLike = str | Cell | Callable[..., Any]


def resolve_cell(cell: CellLike) -> Cell:
    """A registered name, a `Cell`, or a bare `build` function (wrapped, no extra params)."""
    if isinstance(cell, str):
        return registry.get_cell(cell)
    if isinstance(cell, Cell):
        return cell
    if callable(cell):
        name = getattr(cell, "__name__", "cell")
        return Cell(name=name, summary=f"the bare build function {name}", build=cell)
    raise TypeError(f"expected a cell name, a seqbench.Cell or a build function, got {cell!r}")


def cell_label(cell: CellLike) -> str:
    """A readable name for test ids and messages, without loading anything."""
    if isinstance(cell, str):
        return cell
    return getattr(cell, "name", None) or getattr(cell, "__name__", "cell")


def build(cell: Cell, layers: int = 1, dropout: float = 0.0, seed: int = 0, **values: Any):
    """`cell.build(INPUT, HIDDEN, layers, dropout, **params)` after `torch.manual_seed(seed)`."""
    torch.manual_seed(seed)
    extra = resolve(cell.params, values, f"cell '{cell.name}'")
    module = cell.build(INPUT, HIDDEN, layers, dropout, **extra)
    expect(isinstance(module, torch.nn.Module), "build(input_size, hidden_size, num_layers, "
           "dropout, **params) to return a torch.nn.Module", type(module).__name__)
    return module


def inputs(steps: int = STEPS, seed: int = 1, batch: int = BATCH) -> torch.Tensor:
    return torch.randn(batch, steps, INPUT, generator=torch.Generator().manual_seed(seed))


def call(module, x, state=None):
    """`module(x, state)`, checking that it returns `(output, state)`. The module gets a copy
    of `x`, so a cell that writes into its input fails `check_input_untouched` alone."""
    x = x.clone()
    out = module(x) if state is None else module(x, state)
    expect(isinstance(out, tuple) and len(out) == 2,
           "forward(x, state=None) to return a pair (output, state)",
           f"{type(out).__name__}" + (f" of length {len(out)}" if isinstance(out, tuple) else ""))
    return out


def leaves(state: Any) -> list[torch.Tensor]:
    """The tensors of a state: a tensor or nested tuples/lists of tensors, as the core
    carries and detaches them (anything else is not a state the core can carry)."""
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, (tuple, list)):
        return [leaf for item in state for leaf in leaves(item)]
    return []


def kinds(value: Any, kind: Callable[[torch.Tensor], Any]) -> list[str] | str:
    """The sorted distinct `kind` (dtype, device type) of the tensors in an output or
    state; one holding no tensor says what it is instead, since an empty list would hide
    that the state is None (or a string, or numbers)."""
    tensors = leaves(value)
    if not tensors:
        shown = "None" if value is None else repr(state_shapes(value))
        return f"{shown}, not a tensor or tuple of tensors"
    return sorted({str(kind(t)) for t in tensors})


def max_diff(a, b) -> float:
    return float((a - b).abs().max()) if a.numel() else 0.0


def close(a, b, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, atol=atol, rtol=rtol)


def other_value(param: Param) -> Any:
    """A valid non-default value for `param`, or None when none can be derived (free str)."""
    if param.choices is not None:
        return next((c for c in param.choices if c != param.default), None)
    if param.type is bool:
        return not param.default
    if param.type is str:
        return None
    default = param.default if param.default is not None else 0
    low, high = param.search_range
    candidates = [default + 1, default - 1]
    if param.type is float:
        candidates = [(default + b) / 2 for b in (high, low) if b is not None] + candidates
    accepted = (param.coerce(v) for v in candidates if valid(param, v))
    return next((v for v in accepted if v != param.default), None)


def fingerprint(module, x) -> tuple:
    """Eval-mode outputs, state_dict and structure: what tells two built modules apart."""
    with torch.no_grad():
        y, _ = call(module.eval(), x)
    return y, module.state_dict(), repr(module)


def same_module(a: tuple, b: tuple) -> bool:
    (y, state, text), (y0, state0, text0) = a, b
    return (torch.equal(y, y0) and text == text0 and state.keys() == state0.keys()
            and all(torch.equal(state[k], state0[k]) for k in state))


def weights_digest(cell: Cell, seed: int) -> str | None:
    """A hash of the initial `state_dict` built under `torch.manual_seed(seed)`, or None for
    a cell without one; compared across processes by `check_init_follows_seed`."""
    state = build(cell, layers=2, seed=seed).state_dict()
    if not state:
        return None
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
