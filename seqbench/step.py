"""Turn a single-step cell into a full sequence module.

Papers describe cells as one step, `h_t = f(x_t, h_{t-1})`; plugin authors should be able
to write exactly that and get the stacked, dropout-between-layers, state-carrying sequence
module the core expects. The Python loop over time is slower than a fused kernel; that is
the price of a new idea, and the comparison tables report time per epoch so it is visible.

A step module implements::

    def initial_state(self, batch_size, device, dtype): ...  # any tensor or tuple of tensors
    def forward(self, x_t, state): ...                          # -> (h_t[B, H], new_state)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class StepSequence(nn.Module):
    """Stack `num_layers` step modules and run them over a `[B, T, I]` sequence.

    `forward(x, state=None)` returns `(y[B, T, H], state)` where `state` is a tuple with one
    entry per layer; feeding it back continues the sequence exactly.
    """

    def __init__(
        self,
        make_step: Callable[[int, int], nn.Module],
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.layers = nn.ModuleList(
            make_step(input_size if i == 0 else hidden_size, hidden_size) for i in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)

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
            outputs = []
            for t in range(x.shape[1]):
                h_t, layer_state = layer(x[:, t], layer_state)
                outputs.append(h_t)
            x = torch.stack(outputs, dim=1)
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
            raise StepProtocolError(_protocol_message(make_step.__name__, (
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


def _protocol_message(name: str, problem: str) -> str:
    return (f"step module {name} breaks the step protocol: {problem}. A step defines "
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


def validate_step(step: nn.Module, input_size: int, hidden_size: int) -> None:
    """Run one step on a batch of 2 zeros; raise one `StepProtocolError` if the protocol
    is broken, instead of an AttributeError from deep inside the time loop.

    The random state is restored afterwards, so validating never changes a seeded run.
    """
    name = type(step).__name__
    if not isinstance(step, nn.Module):
        raise StepProtocolError(_protocol_message(name, "make_step returned a "
                                                  f"{name}, not a torch.nn.Module"))
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
