"""Turn a single-step cell into a full sequence module, with its time loop compiled.

Papers describe cells as one step, `h_t = f(x_t, h_{t-1})`; plugin authors should be able
to write exactly that and get the stacked, dropout-between-layers, state-carrying sequence
module the core expects, at a speed that does not turn a comparison of cells into a
comparison of implementations. So the author writes nothing more, and the loop over time is
compiled here: `torch.compile` of a fixed chunk of `CHUNK` steps, reused for every chunk of
every sequence, with the remaining `T mod CHUNK` steps run eagerly.

Why chunks (measured in benchmarks/step_vs_fused.py, see results/benchmarks.md): on CPU,
compiling the single step saves 0-4% (a compiled function's per-call overhead eats what
fusing the elementwise ops gains), TorchScript 4-6%, 16-step chunks 12-17%. Compiling the
whole loop unrolls it for one sequence length, so every new length (music pieces vary)
would recompile. A chunk fuses across steps and compiles once per process: its input is
always `[B, CHUNK, I]`, and it is compiled with dynamic shapes, parameters included, so
a new batch size or width reuses the same code. The rest of the gap to a fused kernel is
in the small matrix products, which compilation leaves to the BLAS (results/benchmarks.md
says why).

Compilation is paid once per process and signature (step class, dtype, device type, grad
mode and which inputs require grad; forward and backward together, at the first call).
Every width, depth and batch size of a step class then reuses the same code, so a sweep
worker compiles a cell a few times in all, not once per trial. First calls are timed and
reported (`compile_report`, and one line each on the console). Where `torch.compile` is
unavailable, fails, or keeps recompiling, that cell runs eagerly for the rest of the
process, after one logged warning. `SEQBENCH_COMPILE=0` turns compilation off.

A step module implements::

    def initial_state(self, batch_size, device, dtype): ...  # any tensor or tuple of tensors
    def forward(self, x_t, state): ...                          # -> (h_t[B, H], new_state)
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import time
import types
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from seqbench.console import console

#: Steps per compiled chunk: long enough to fuse across steps, short enough that most of a
#: 40-80-step music piece runs compiled (16 measured a little faster than 8).
CHUNK = 16

log = logging.getLogger(__name__)

#: Step classes whose compilation failed in this process (they run eagerly from then on).
_failed: set[type] = set()
#: Seconds the first call of each compiled signature took (compiling included).
_first_calls: dict[tuple, float] = {}
#: Numbers the compiled copies of `run_steps`, so each has a name of its own in traces.
_codes = itertools.count()
#: torch.compile settings while a chunk is traced: hitting the recompile limit is an error
#: (so the fallback is loud), and parameters' shapes are dynamic like the inputs'.
DYNAMO_SETTINGS = {"fail_on_recompile_limit_hit": True, "force_parameter_static_shapes": False,
                   "force_nn_module_property_static_shapes": False}
#: Sizes that happen to be equal when traced are not assumed equal ("duck sizing").
SHAPE_SETTINGS = {"use_duck_shape": False}


def _known(config: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings this torch version has (`torch>=2.4`; older ones lack some names and
    would refuse the whole patch), so compiling still works where they are missing."""
    return {name: value for name, value in settings.items() if hasattr(config, name)}

def run_steps(step: Callable[..., Any], x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
    """Run `step` over every time step of `x[B, T, I]`: the eager loop, and what gets compiled."""
    outputs = []
    for t in range(x.shape[1]):
        h_t, state = step(x[:, t], state)
        outputs.append(h_t)
    return torch.stack(outputs, dim=1), state

@functools.cache
def _compiled_steps(signature: tuple) -> Callable[..., Any]:
    """`run_steps` compiled for one signature (`_signature`), as a copy with a code object of
    its own.

    torch.compile keeps its cache, and its limit on recompilations (8), per code object. With
    one function shared by every signature, a sweep in one worker process (layer 1 and 2,
    training and evaluation, a zero or a carried state, over many trials) used up the limit
    within a few trials and then silently ran eagerly. One code object per signature
    compiles each once for all widths, depths and batch sizes above one: shapes are dynamic,
    and parameters are graph inputs, so new modules of the same class reuse the code. (A
    width of exactly 1, e.g. one input feature, is still specialised: one graph more.)
    """
    code = run_steps.__code__.replace(co_name=f"run_steps_{signature[0].__name__}_{next(_codes)}")
    return torch.compile(types.FunctionType(code, run_steps.__globals__), dynamic=True)


def compile_enabled() -> bool:
    """Whether step loops are compiled in this process (`SEQBENCH_COMPILE=0` says no)."""
    return os.environ.get("SEQBENCH_COMPILE", "1") != "0"


def compile_report() -> dict[str, float]:
    """What compilation cost this process so far: how many signatures were compiled and the
    seconds their first calls took (compiling included).

    A signature is a step class, dtype, device type, grad mode and which inputs require
    grad; shapes are dynamic. The backward is compiled with the forward, at the first call.
    """
    return {"compiled": len(_first_calls), "seconds": round(sum(_first_calls.values()), 3)}


def _requires_grad(state: Any) -> bool:
    """Whether any tensor of a (nested) state requires grad: compiled code differs for it."""
    if isinstance(state, torch.Tensor):
        return state.requires_grad
    if isinstance(state, dict):
        state = list(state.values())
    return isinstance(state, (tuple, list)) and any(_requires_grad(s) for s in state)

def _signature(step: nn.Module, x: torch.Tensor, state: Any) -> tuple:
    """What a compiled loop specialises on besides shapes: the step class, dtype, device type,
    grad mode, and which inputs require grad."""
    return (type(step), x.dtype, x.device.type, torch.is_grad_enabled(), x.requires_grad,
            _requires_grad(state))


def _unaliased(state: Any) -> Any:
    """The state with repeated tensors copied: a cell whose initial state is `(zeros, zeros)`
    (one tensor twice) would otherwise compile a second graph for the aliasing. Tuples,
    named tuples, lists and dicts keep their type."""
    seen: set[int] = set()

    def copy(item: Any) -> Any:
        if isinstance(item, torch.Tensor):
            if id(item) in seen:
                return item.clone()
            seen.add(id(item))
            return item
        if isinstance(item, dict):
            return type(item)((key, copy(value)) for key, value in item.items())
        if isinstance(item, tuple) and hasattr(item, "_fields"):
            return type(item)(*(copy(part) for part in item))
        if isinstance(item, (tuple, list)):
            return type(item)(copy(part) for part in item)
        return item

    return copy(state)


def _run_chunk(step: nn.Module, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
    """One `CHUNK`-step slice `x[B, CHUNK, I]` through the compiled loop (eagerly if compiling
    failed, and for a batch of one, which torch.compile would specialise a second graph for).

    Its time dimension is marked static, and sizes are not "duck-typed": left as they are,
    torch.compile's shape analysis ties any two sizes that happen to be equal when it first
    traces (a batch of 16 and 16 steps, 16 gate units and 16 steps) and recompiles when they
    differ. A recompilation beyond torch.compile's limit is an error here, so a loop that
    keeps recompiling falls back to eager with a warning instead of silently.
    """
    kind = type(step)
    if kind in _failed or x.shape[0] == 1:
        return run_steps(step, x, state)
    signature = _signature(step, x, state)
    first = signature not in _first_calls
    started = time.perf_counter()
    try:
        torch._dynamo.mark_static(x, 1)
        with torch._dynamo.config.patch(_known(torch._dynamo.config, DYNAMO_SETTINGS)), \
                torch.fx.experimental._config.patch(_known(torch.fx.experimental._config,
                                                           SHAPE_SETTINGS)):
            result = _compiled_steps(signature)(step, x, _unaliased(state))
    except Exception as error:  # noqa: BLE001 - any compiler failure means: run eagerly
        _failed.add(kind)
        log.warning("could not compile the time loop of %s (%s: %s); running it eagerly",
                    kind.__name__, type(error).__name__, error)
        return run_steps(step, x, state)
    if first:
        _first_calls[signature] = time.perf_counter() - started
        console.print(f"Compiled the time loop of {kind.__name__} in "
                      f"{_first_calls[signature]:.1f} s (once per process and signature).")
    return result


class StepSequence(nn.Module):
    """Stack `num_layers` step modules and run them over a `[B, T, I]` sequence.

    `forward(x, state=None)` returns `(y[B, T, H], state)` where `state` is a tuple with one
    entry per layer; feeding it back continues the sequence exactly. `compile_loop=False`
    keeps this module's loop eager (`None`: follow `compile_enabled()`).
    """

    def __init__(
        self,
        make_step: Callable[[int, int], nn.Module],
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        compile_loop: bool | None = None,
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.compile_loop = compile_loop
        self.layers = nn.ModuleList(
            make_step(input_size if i == 0 else hidden_size, hidden_size) for i in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)

    def _layer(self, step: nn.Module, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        compiled = compile_enabled() if self.compile_loop is None else self.compile_loop
        full = x.shape[1] - x.shape[1] % CHUNK if compiled else 0
        outputs = []
        for start in range(0, full, CHUNK):
            y, state = _run_chunk(step, x[:, start : start + CHUNK], state)
            outputs.append(y)
        if full < x.shape[1]:
            y, state = run_steps(step, x[:, full:], state)
            outputs.append(y)
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1), state

    def forward(self, x: torch.Tensor, state: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        batch_size = x.shape[0]
        if state is None:
            state = tuple(
                layer.initial_state(batch_size, x.device, x.dtype) for layer in self.layers
            )
        new_state = []
        for index, (layer, layer_state) in enumerate(zip(self.layers, state, strict=True)):
            if index > 0:
                x = self.dropout(x)
            x, layer_state = self._layer(layer, x, layer_state)
            new_state.append(layer_state)
        return x, tuple(new_state)


def from_step(make_step: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Adapt `make_step(input_size, hidden_size, **params) -> step module` (a class or a
    factory) into a `Cell.build` function.

    Extra declared hyperparameters are forwarded to `make_step` as keyword arguments. The
    step protocol is checked twice, each time with one `StepProtocolError` naming what is
    missing: here, cheaply, when `make_step` is a class (so a plugin that forgets
    `initial_state` is refused when it loads); and on the first layer of every build.
    """
    if not callable(make_step):
        raise StepProtocolError(f"from_step needs a step class or factory, got {make_step!r}")
    if isinstance(make_step, type):
        missing = [m for m in ("initial_state", "forward") if not callable(
            getattr(make_step, m, None)) or getattr(make_step, m) is nn.Module.forward]
        if not issubclass(make_step, nn.Module) or missing:
            raise StepProtocolError(_protocol_message(f"step module {make_step.__name__}", (
                "it is not a torch.nn.Module" if not issubclass(make_step, nn.Module)
                else f"it does not define {' or '.join(missing)}")))

    def build(input_size: int, hidden_size: int, num_layers: int, dropout: float, **extra):
        module = StepSequence(
            lambda i, h: make_step(i, h, **extra), input_size, hidden_size, num_layers, dropout
        )
        validate_step(module.layers[0], input_size, hidden_size)
        return module

    return build


class StepProtocolError(TypeError):
    """A step module breaks the step protocol; the message says which part and how."""


def _protocol_message(subject: str, problem: str) -> str:
    return (f"{subject} breaks the step protocol: {problem}. A step defines "
            "initial_state(batch_size, device, dtype) -> a tensor or tuple of tensors "
            "[batch_size, ...] on that device and dtype, and forward(x_t[B, input_size], "
            "state) -> (h_t[B, hidden_size], new state of the same shapes)")


def state_shapes(state: object) -> object:
    """The structure of a state with every tensor replaced by its shape, for comparing
    states and for messages; anything that is not a tensor shows as its type's name."""
    if isinstance(state, torch.Tensor):
        return tuple(state.shape)
    if isinstance(state, (tuple, list)) and state:
        return tuple(state_shapes(item) for item in state)
    return type(state).__name__


def _batch_first(shapes: object, batch_size: int) -> bool:
    """Whether `state_shapes(state)` is made only of tensors whose first dimension is the batch."""
    if isinstance(shapes, tuple) and shapes and all(isinstance(n, int) for n in shapes):
        return shapes[0] == batch_size
    return isinstance(shapes, tuple) and bool(shapes) and all(
        _batch_first(item, batch_size) for item in shapes)


def validate_step(step: nn.Module, input_size: int, hidden_size: int,
                  name: str | None = None) -> None:
    """Run one step on a batch of 2 zeros; raise one `StepProtocolError` if the protocol
    is broken, instead of an AttributeError from deep inside the time loop.

    `name` is who the message blames (default: "step module <class>"); the conformance kit
    also validates a reference equation run as a step, and must say which of the two broke
    the protocol. The random state is restored afterwards, so validating never changes a
    seeded run.
    """
    name = name or f"step module {type(step).__name__}"
    if not isinstance(step, nn.Module):
        raise StepProtocolError(_protocol_message(name, "make_step returned a "
                                                  f"{type(step).__name__}, not a torch.nn.Module"))
    if not callable(getattr(step, "initial_state", None)):
        raise StepProtocolError(_protocol_message(name, "it has no initial_state method"))
    weight = next(step.parameters(), None)
    device, dtype = (weight.device, weight.dtype) if weight is not None else (
        torch.device("cpu"), torch.get_default_dtype())
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            state = step.initial_state(2, device, dtype)
        except Exception as exc:
            raise StepProtocolError(_protocol_message(
                name, f"initial_state(2, device, dtype) raised {type(exc).__name__}: {exc}")
            ) from exc
        shapes = state_shapes(state)
        if not _batch_first(shapes, 2):
            raise StepProtocolError(_protocol_message(
                name, f"initial_state(batch_size=2, ...) returned {shapes}"))
        try:
            out = step(torch.zeros(2, input_size, device=device, dtype=dtype), state)
        except Exception as exc:
            raise StepProtocolError(_protocol_message(
                name, f"forward(x_t[2, {input_size}], state) raised {type(exc).__name__}: {exc}")
            ) from exc
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], torch.Tensor)):
            raise StepProtocolError(_protocol_message(
                name, f"forward returned {state_shapes(out)}, not a pair (h_t, state)"))
        if tuple(out[0].shape) != (2, hidden_size) or state_shapes(out[1]) != shapes:
            raise StepProtocolError(_protocol_message(
                name, f"forward(x_t[2, {input_size}], state {shapes}) returned h_t "
                f"{tuple(out[0].shape)} and state {state_shapes(out[1])}, expected h_t "
                f"{(2, hidden_size)} and state {shapes}"))
