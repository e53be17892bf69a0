"""Test a step module against the equation it implements, written out by hand.

A cell that passes every conformance check can still compute the wrong recurrence (a gate
using `h_t` instead of `h_{t-1}`, a missing bias): the kit checks the contract, not the
maths. The maths is checked by writing the paper's equation once more, plainly, with the
step's own parameters, and comparing the two step by step in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from seqbench.step import state_shapes, validate_step
from seqbench.testing.kit import Check, expect


def _like(state: Any, generator: torch.Generator) -> Any:
    """A random state with the structure, shapes and dtype of `state`."""
    if isinstance(state, torch.Tensor):
        return torch.randn(state.shape, generator=generator, dtype=state.dtype)
    return type(state)(_like(item, generator) for item in state)


class _EquationStep(torch.nn.Module):
    """The reference equation as a step module, so that `validate_step` (what `from_step`
    runs on every build) checks its return value exactly as it checks the step's."""

    def __init__(self, step: torch.nn.Module, equation: Callable[..., Any]) -> None:
        super().__init__()
        self.step, self.equation = step, equation

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> Any:
        return self.step.initial_state(batch_size, device, dtype)

    def forward(self, x_t: torch.Tensor, state: Any) -> Any:
        return self.equation(self.step, x_t, state)


def _max_difference(a: Any, b: Any) -> float:
    """The largest absolute difference of two states whose shapes were found equal."""
    if isinstance(a, torch.Tensor):
        return float((a - b).abs().max()) if a.numel() else 0.0
    return max((_max_difference(x, y) for x, y in zip(a, b)), default=0.0)


def _expect_equal(what: str, got: Any, want: Any, t: int, atol: float) -> None:
    """Compare shapes first: a difference of shapes is its own message, not an infinite
    difference of values."""
    expect(state_shapes(got) == state_shapes(want),
           f"{what} of the reference equation's shapes at every step",
           f"{state_shapes(got)} from the step and {state_shapes(want)} from the equation "
           f"at step {t}")
    difference = _max_difference(got, want)
    expect(difference <= atol, f"{what} equal to the reference equation at every step "
           f"(float64, atol {atol:g})", f"a max difference of {difference:.3g} at step {t}")


def check_step_equation(make_step: Callable[..., torch.nn.Module],
                        equation: Callable[[Any, torch.Tensor, Any], tuple[torch.Tensor, Any]],
                        *, input_size: int = 4, hidden_size: int = 6, steps: int = 5,
                        batch_size: int = 3, params: Mapping[str, Any] | None = None,
                        atol: float = 1e-10) -> None:
    """Assert that `make_step(input_size, hidden_size, **params)` computes `equation`.

    `equation(step, x_t, state) -> (h_t, new_state)` is the reference, written with the
    step module's parameters (e.g. `torch.relu(x_t @ step.inp.weight.T + step.inp.bias +
    step.u * h)`). Both run in float64 from the same random, non-zero state over `steps`
    random inputs (a zero state would hide every recurrent term); `h_t` and the state must
    agree to `atol` at every step. Raises `CheckFailed` naming the first step that differs.
    """
    def run() -> None:
        torch.manual_seed(0)
        step = make_step(input_size, hidden_size, **dict(params or {}))
        # The step, then the equation: a broken protocol is one StepProtocolError naming
        # the side that broke it, not an unpacking error inside the comparison.
        validate_step(step, input_size, hidden_size)
        label = getattr(equation, "__name__", repr(equation))
        validate_step(_EquationStep(step, equation), input_size, hidden_size,
                      name=f"the reference equation {label}(step, x_t, state)")
        step = step.double()
        generator = torch.Generator().manual_seed(1)
        state = _like(step.initial_state(batch_size, torch.device("cpu"), torch.float64),
                      generator)
        reference = state
        with torch.no_grad():
            for t in range(steps):
                x_t = torch.randn(batch_size, input_size, generator=generator,
                                  dtype=torch.float64)
                h_t, state = step(x_t, state)
                want_h, reference = equation(step, x_t, reference)
                _expect_equal("h_t", h_t, want_h, t, atol)
                _expect_equal("state", state, reference, t, atol)

    Check("check_step_equation", run)()
