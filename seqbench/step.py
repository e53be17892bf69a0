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


def from_step(make_step: Callable[[int, int], nn.Module]) -> Callable[..., nn.Module]:
    """Adapt `make_step(input_size, hidden_size) -> step module` into a `Cell.build` function.

    Extra declared hyperparameters are forwarded to `make_step` as keyword arguments.
    """

    def build(input_size: int, hidden_size: int, num_layers: int, dropout: float, **extra):
        return StepSequence(
            lambda i, h: make_step(i, h, **extra), input_size, hidden_size, num_layers, dropout
        )

    return build
