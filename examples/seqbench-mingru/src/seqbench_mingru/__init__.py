"""minGRU and minLSTM cells for seqbench (Feng et al. 2024, "Were RNNs All We Needed?").

Only seqbench's public API is used: a `Cell` declares the plugin, and its `build` returns a
module honouring the cell contract. Torch is imported when a cell is built, not when
`seqbench list` discovers the plugin.
"""

from seqbench import Cell


def build_mingru(input_size: int, hidden_size: int, num_layers: int, dropout: float):
    from seqbench_mingru.cells import MinRNN

    return MinRNN("gru", input_size, hidden_size, num_layers, dropout)


def build_minlstm(input_size: int, hidden_size: int, num_layers: int, dropout: float):
    from seqbench_mingru.cells import MinRNN

    return MinRNN("lstm", input_size, hidden_size, num_layers, dropout)


mingru = Cell(
    name="mingru",
    summary="minGRU (Feng et al. 2024): input-only gates, parallel log-space scan",
    build=build_mingru,
)
minlstm = Cell(
    name="minlstm",
    summary="minLSTM (Feng et al. 2024): normalised input-only gates, parallel log-space scan",
    build=build_minlstm,
)
