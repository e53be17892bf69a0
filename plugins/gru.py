"""GRU (Cho et al. 2014) on PyTorch's fused `nn.GRU` (cuDNN on CUDA)."""

from __future__ import annotations

from seqbench import Cell


def build(input_size: int, hidden_size: int, num_layers: int, dropout: float):
    from torch import nn

    return nn.GRU(input_size, hidden_size, num_layers=num_layers, dropout=dropout, batch_first=True)


cell = Cell(
    name="gru",
    summary="Gated recurrent unit (Cho et al. 2014), fused nn.GRU",
    build=build,
)
