"""Conformance checks for cell plugins: what `Cell.build(...)` must promise to the core.

Every check builds small modules (input 4, hidden 16, batch 3, 5 steps) on CPU, so the
whole kit runs in a fraction of a second for most cells. The checks are the properties the core
relies on without testing them itself: it trains with dropout between stacked layers,
carries state across windows, restores `best.ckpt` with `weights_only=True`, and lets
sweeps vary every declared hyperparameter.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import torch

from seqbench import registry
from seqbench.contracts import Cell
from seqbench.declarations import cell_problems, valid
from seqbench.params import Param, resolve
from seqbench.step import state_shapes
from seqbench.testing.kit import Check, CheckSkipped, expect, with_skips

BATCH, STEPS, INPUT, HIDDEN = 3, 5, 4, 16
#: Adam steps `check_learns` allows; GRU and LSTM need under 100.
LEARN_STEPS = 300


def resolve_cell(cell: str | Cell | Callable[..., Any]) -> Cell:
    """A registered name, a `Cell`, or a bare `build` function (wrapped, no extra params)."""
    if isinstance(cell, str):
        return registry.get_cell(cell)
    if isinstance(cell, Cell):
        return cell
    if callable(cell):
        name = getattr(cell, "__name__", "cell")
        return Cell(name=name, summary=f"the bare build function {name}", build=cell)
    raise TypeError(f"expected a cell name, a seqbench.Cell or a build function, got {cell!r}")


def cell_label(cell: str | Cell | Callable[..., Any]) -> str:
    """A readable name for test ids and messages, without loading anything."""
    if isinstance(cell, str):
        return cell
    return getattr(cell, "name", None) or getattr(cell, "__name__", "cell")


# ---- helpers ----

def _build(cell: Cell, layers: int = 1, dropout: float = 0.0, seed: int = 0, **values: Any):
    """`cell.build(...)`, refused in the same words by every check when it is not a module,
    so the author reads one root cause instead of each check's own AttributeError."""
    torch.manual_seed(seed)
    extra = resolve(cell.params, values, f"cell '{cell.name}'")
    module = cell.build(INPUT, HIDDEN, layers, dropout, **extra)
    expect(isinstance(module, torch.nn.Module), "build(input_size, hidden_size, num_layers, "
           "dropout, **params) to return a torch.nn.Module", type(module).__name__)
    return module


def _inputs(steps: int = STEPS, seed: int = 1):
    return torch.randn(BATCH, steps, INPUT, generator=torch.Generator().manual_seed(seed))


def _call(module, x, state=None):
    """`module(x, state)`, checking that it returns `(output, state)`."""
    out = module(x) if state is None else module(x, state)
    expect(isinstance(out, tuple) and len(out) == 2,
           "forward(x, state=None) to return a pair (output, state)",
           f"{type(out).__name__}" + (f" of length {len(out)}" if isinstance(out, tuple) else ""))
    return out


def _leaves(state: Any) -> list[torch.Tensor]:
    """The tensors of a state: a tensor or nested tuples/lists of tensors, as the core
    carries and detaches them (anything else is not a state the core can carry)."""
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, (tuple, list)):
        return [leaf for item in state for leaf in _leaves(item)]
    return []


def _kinds(value: Any, kind: Callable[[torch.Tensor], Any]) -> list[str] | str:
    """The sorted distinct `kind` (dtype, device type) of the tensors in an output or
    state; one holding no tensor says what it is instead, since an empty list would hide
    that the state is None (or a string, or numbers)."""
    tensors = _leaves(value)
    if not tensors:
        shown = "None" if value is None else repr(state_shapes(value))
        return f"{shown}, not a tensor or tuple of tensors"
    return sorted({str(kind(t)) for t in tensors})


def _max_diff(a, b) -> float:
    return float((a - b).abs().max()) if a.numel() else 0.0


def _close(a, b, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, atol=atol, rtol=rtol)


def _other_value(param: Param) -> Any:
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


# ---- the checks ----

def check_params_declared(cell: Cell) -> None:
    problems = cell_problems(cell)
    expect(not problems, "a well-formed cell declaration (what the registry checks at load)",
           "; ".join(problems))
    _build(cell)  # every declared default is accepted by build as a keyword


def check_output_shape(cell: Cell) -> None:
    y, _ = _call(_build(cell, layers=1), _inputs())
    expect(tuple(y.shape) == (BATCH, STEPS, HIDDEN),
           f"output shape {(BATCH, STEPS, HIDDEN)}", f"{tuple(y.shape)}")


def check_output_shape_stacked(cell: Cell) -> None:
    y, _ = _call(_build(cell, layers=3, dropout=0.25), _inputs())
    expect(tuple(y.shape) == (BATCH, STEPS, HIDDEN),
           f"output shape {(BATCH, STEPS, HIDDEN)} with 3 layers", f"{tuple(y.shape)}")


def check_state_shape(cell: Cell) -> None:
    module = _build(cell, layers=2).eval()
    x = _inputs()
    _, first = _call(module, x[:, :2])
    expect(_leaves(first), "a state made of tensors", f"{state_shapes(first)!r}")
    _, second = _call(module, x[:, 2:], first)
    expect(state_shapes(second) == state_shapes(first),
           "the state returned after a state was passed in to have that state's shapes",
           f"{state_shapes(second)} after passing {state_shapes(first)}")


def check_state_carry(cell: Cell) -> None:
    module = _build(cell, layers=2, dropout=0.25).eval()
    x = _inputs(steps=9)
    with torch.no_grad():
        whole, _ = _call(module, x)
        first, state = _call(module, x[:, :4])
        second, _ = _call(module, x[:, 4:], state)
    joined = torch.cat([first, second], dim=1)
    expect(_close(joined, whole),
           "two calls carrying the state (4 then 5 steps, eval mode) to equal one call on "
           "all 9 steps", f"a max difference of {_max_diff(joined, whole):.3g}")


def check_gradients(cell: Cell) -> None:
    module = _build(cell, layers=2, dropout=0.25).train()
    y, _ = _call(module, _inputs())
    weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(2))
    (y * weights).sum().backward()
    missing = [name for name, p in module.named_parameters() if p.requires_grad and (
        p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum())]
    expect(not missing, "a finite, non-zero gradient for every parameter (2 layers)",
           f"none or zero or non-finite for {missing}")


def check_batch_independence(cell: Cell) -> None:
    module = _build(cell, layers=2).eval()
    x = _inputs()
    changed = x.clone()
    changed[-1] = torch.randn(STEPS, INPUT, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y, _ = _call(module, x)
        y_changed, _ = _call(module, changed)
    expect(_close(y_changed[:-1], y[:-1], atol=1e-6, rtol=1e-5),
           "the outputs of samples 0-1 to stay the same when only sample 2 changes",
           f"a max difference of {_max_diff(y_changed[:-1], y[:-1]):.3g}")
    expect(not _close(y_changed[-1], y[-1], atol=1e-6, rtol=0),
           "the output of sample 2 to change when its input changes", "the same output")


def check_deterministic(cell: Cell) -> None:
    runs = []
    for _ in range(2):
        module = _build(cell, layers=2, dropout=0.25, seed=4).train()
        torch.manual_seed(5)
        runs.append(_call(module, _inputs())[0].detach())
    expect(torch.equal(*runs),
           "identical outputs from two builds and forward passes under the same seeds "
           "(train mode, dropout on)", f"a max difference of {_max_diff(*runs):.3g}")


def check_state_dict_roundtrip(cell: Cell) -> None:
    source, target = _build(cell, layers=2, seed=0).eval(), _build(cell, layers=2, seed=1).eval()
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    # weights_only=True is how the core reloads best.ckpt: plain tensors must be enough.
    target.load_state_dict(torch.load(buffer, weights_only=True))
    x = _inputs()
    with torch.no_grad():
        expected, _ = _call(source, x)
        got, _ = _call(target, x)
    expect(torch.equal(expected, got),
           "a module loaded from another's saved state_dict to give the same outputs",
           f"a max difference of {_max_diff(expected, got):.3g}")


def check_params_respected(cell: Cell) -> None:
    varied = [(p, _other_value(p)) for p in cell.params]
    varied = [(p, value) for p, value in varied if value is not None]
    if not varied:
        raise CheckSkipped("the cell declares no hyperparameter the kit can vary")
    x = _inputs()

    def fingerprint(module) -> tuple:
        with torch.no_grad():
            y, _ = _call(module.eval(), x)
        return y, module.state_dict(), repr(module)

    y0, state0, text0 = fingerprint(_build(cell, layers=2))
    for param, value in varied:
        y, state, text = fingerprint(_build(cell, layers=2, **{param.name: value}))
        expect(tuple(y.shape) == (BATCH, STEPS, HIDDEN),
               f"output shape {(BATCH, STEPS, HIDDEN)} with {param.name}={value!r}",
               f"{tuple(y.shape)}")
        same = (torch.equal(y, y0) and text == text0 and state.keys() == state0.keys()
                and all(torch.equal(state[k], state0[k]) for k in state))
        expect(not same,
               f"building with {param.name}={value!r} instead of {param.default!r} to change "
               "the module (outputs, parameters or structure)", "an identical module")


def check_cuda(cell: Cell) -> None:
    if not torch.cuda.is_available():
        raise CheckSkipped("no CUDA device available")
    module = _build(cell, layers=2).eval()
    x = _inputs()
    with torch.no_grad():
        expected, _ = _call(module, x)
        got, state = _call(module.to("cuda"), x.to("cuda"))
        _call(module, x[:, :1].to("cuda"), state)
    expect(got.is_cuda, "the output on the input's CUDA device", f"device {got.device}")
    expect(_close(got.cpu(), expected, atol=1e-4, rtol=1e-3),
           "the same outputs on CUDA as on CPU (to 1e-4)",
           f"a max difference of {_max_diff(got.cpu(), expected):.3g}")


def _initial_states(module, device, dtype) -> list[tuple[str, Any]]:
    """`initial_state(BATCH, device, dtype)` of every step inside `module` (cells made with
    `seqbench.step.from_step`, or any module following the step protocol)."""
    return [(type(sub).__name__, sub.initial_state(BATCH, device, dtype))
            for sub in module.modules() if callable(getattr(sub, "initial_state", None))]


def check_dtype_follows_input(cell: Cell) -> None:
    """float64 weights and inputs must give float64 outputs and states: a state created
    without the given dtype (or device) is the bug this finds, and it needs no GPU."""
    module = _build(cell, layers=2).double().eval()
    x = _inputs().double()
    with torch.no_grad():
        for step, state in _initial_states(module, torch.device("cpu"), torch.float64):
            dtypes = _kinds(state, lambda leaf: leaf.dtype)
            expect(dtypes == ["torch.float64"],
                   f"{step}.initial_state(batch_size, device, dtype=torch.float64) to return "
                   "float64 tensors", f"{dtypes}")
        y, state = _call(module, x)
        _, carried = _call(module, x[:, :2], state)
    for what, value in (("output", y), ("state", state), ("carried state", carried)):
        dtypes = _kinds(value, lambda leaf: leaf.dtype)
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
    module = _build(cell, layers=2).eval().to(meta)
    x = _inputs().to(meta)
    try:
        with torch.no_grad():
            for step, state in _initial_states(module, meta, torch.float32):
                devices = _kinds(state, lambda leaf: leaf.device.type)
                expect(devices == ["meta"], f"{step}.initial_state(batch_size, device=meta, "
                       "dtype) to return tensors on that device", f"{devices}")
            y, state = _call(module, x)
            _, carried = _call(module, x[:, :2], state)
    except (RuntimeError, NotImplementedError) as exc:
        if not any(words in str(exc) for words in DEVICE_MISMATCH):
            raise CheckSkipped("the cell uses an operation the meta device cannot run "
                               f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc
        expect(False, "every tensor on the input's device (run on the meta device)",
               f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    devices = sorted({t.device.type for t in [y, *_leaves(state), *_leaves(carried)]})
    expect(devices == ["meta"], "the output and state on the input's device (meta)",
           f"{devices}")


def check_learns(cell: Cell) -> None:
    """Optional (`learn=True`): with a linear read-out, fit "output the input of the step
    before" on 32 fixed sequences. Needs memory of one step, so a cell that learns anything
    does it in a few hundred Adam steps; the MSE must fall below a quarter of its start."""
    module = _build(cell, layers=1)
    head = torch.nn.Linear(HIDDEN, 1)
    x = torch.randn(32, 8, INPUT, generator=torch.Generator().manual_seed(6))
    target = torch.cat([torch.zeros(32, 1), x[:, :-1, 0]], dim=1)
    optimizer = torch.optim.Adam([*module.parameters(), *head.parameters()], lr=1e-2)
    losses = []
    for _ in range(LEARN_STEPS):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(head(_call(module, x)[0]).squeeze(-1), target)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    expect(losses[-1] < losses[0] / 4,
           f"the MSE of 'repeat the previous input' to fall below a quarter of its start "
           f"in {LEARN_STEPS} Adam steps", f"{losses[0]:.3g} -> {losses[-1]:.3g}")

def check_state_carried_by_core(cell: Cell) -> None:
    """The core's own carrying (`seqbench.model.carried_state`) on this cell's state.

    Tasks with `carry_state` never see the state: the core detaches it and hands it to the
    next batch of the same size. This check runs exactly that code on the cell's state,
    whatever its nesting and layout (e.g. `[B, H, K]` per layer, batch first), so a state
    the core would drop or fail to detach is caught here rather than as a silently worse
    language model.
    """
    from seqbench.model import carried_state

    _, state = _call(_build(cell, layers=2, dropout=0.25).train(), _inputs(steps=4))
    carried = carried_state((BATCH, state), BATCH)
    expect(type(carried) is type(state) and state_shapes(carried) == state_shapes(state),
           "the core to carry the state, as it is, to a batch of the same size",
           f"{type(carried).__name__} {state_shapes(carried)!r} from {state_shapes(state)!r}")
    pairs = list(zip(_leaves(carried), _leaves(state), strict=True))
    expect(all(torch.equal(got, kept) for got, kept in pairs),
           "the carried state to hold the values of the state returned", "other values")
    attached = sum(got.requires_grad for got, _ in pairs)
    expect(not attached, "the carried state to be cut from the previous window's graph",
           f"{attached} tensor(s) still requiring grad")


CELL_CHECKS: tuple[Callable[[Cell], None], ...] = (
    check_params_declared,
    check_output_shape,
    check_output_shape_stacked,
    check_state_shape,
    check_state_carry,
    check_gradients,
    check_batch_independence,
    check_deterministic,
    check_state_dict_roundtrip,
    check_params_respected,
    check_dtype_follows_input,
    check_device_follows_input,
    check_cuda,
    check_state_carried_by_core,
    check_learns,
)


def cell_checks(cell: str | Cell | Callable[..., Any],
                skip: Mapping[str, str] | None = None, learn: bool = False) -> list[Check]:
    """The checks for `cell`; the cell is resolved when a check runs, not before.
    `check_learns` (a short training run) is skipped unless `learn`."""

    def bind(check: Callable[[Cell], None]) -> Check:
        return Check(check.__name__, lambda: check(resolve_cell(cell)))

    off = {} if learn else {"check_learns": "optional: pass learn=True to run it"}
    return with_skips([bind(check) for check in CELL_CHECKS], skip, off)
