"""What every modern cell shares: a stack of stateful layers, and how heads divide a width.

A layer here is any module with `initial_state(batch_size, device, dtype)` and
`forward(x[B, T, I], state) -> (y[B, T, H], state)`: a whole-sequence version of the step
protocol (`seqbench.step`), for cells whose training path is not a loop over time (a
parallel scan, attention, a convolution). `LayerStack` gives such layers the shape the core
expects: one state per layer in a tuple, fed back to continue a sequence exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn


def heads_for(hidden_size: int, heads: int) -> int:
    """The largest divisor of `hidden_size` not above `heads`.

    Multi-head cells split the width into equal heads, but `--param-budget` picks any width
    (37 units, say). Taking the nearest number of heads that divides it, rather than padding
    heads (parameters a budget would count and nothing would use) or refusing the width,
    keeps every width buildable; the head count a run used follows from its spec.
    """
    return max(d for d in range(1, min(heads, hidden_size) + 1) if hidden_size % d == 0)


class LayerStack(nn.Module):
    """Layers run in order, with dropout between them (as nn.LSTM's `dropout`), optionally
    after an input projection and before a final normalisation (residual-block models:
    LRU, Transformer, Mamba project the input to the model width once, as an embedding).

    `forward(x, state=None)` returns `(y, state)`, where `state` is a tuple with one entry
    per layer; passing it back continues the sequence.
    """

    def __init__(self, layers: Iterable[nn.Module], dropout: float = 0.0,
                 projection: nn.Module | None = None, norm: nn.Module | None = None) -> None:
        super().__init__()
        self.projection = projection or nn.Identity()
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)
        self.norm = norm or nn.Identity()

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> tuple:
        return tuple(layer.initial_state(batch_size, device, dtype) for layer in self.layers)

    def forward(self, x: torch.Tensor, state: Sequence[Any] | None = None
                ) -> tuple[torch.Tensor, tuple]:
        if state is None:
            state = self.initial_state(x.shape[0], x.device, x.dtype)
        x = self.projection(x)
        new_state = []
        for index, (layer, layer_state) in enumerate(zip(self.layers, state, strict=True)):
            if index > 0:
                x = self.dropout(x)
            x, layer_state = layer(x, layer_state)
            new_state.append(layer_state)
        return self.norm(x), tuple(new_state)


def set_parallel(module: nn.Module, parallel: bool) -> nn.Module:
    """Train `module`'s parallel-form layers (scans, the mLSTM's matrix form) with their
    parallel form (True, the default) or step by step (False), for benchmarks and tests
    that compare the two on the same weights. Returns the module."""
    for layer in module.modules():
        if hasattr(layer, "parallel"):
            layer.parallel = parallel
    return module
