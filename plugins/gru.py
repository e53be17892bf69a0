"""GRU (Cho et al. 2014): `nn.GRU`, with a fast CPU recurrence (cuDNN on CUDA).

On CPU the layer trains through `seqbench_cells.recurrence.GRU` (same parameters and
results as `nn.GRU`, about as fast as the fused LSTM; see that module).
"""

from __future__ import annotations

from seqbench import Cell


def build(input_size: int, hidden_size: int, num_layers: int, dropout: float):
    from seqbench_cells.recurrence import GRU

    return GRU(input_size, hidden_size, num_layers=num_layers, dropout=dropout, batch_first=True)


cell = Cell(
    name="gru",
    summary="Gated recurrent unit (Cho et al. 2014), nn.GRU with a fast CPU recurrence",
    build=build,
)
