"""The vanilla (Elman) RNN, `nn.RNN` with a fast CPU recurrence: the baseline gated cells must
beat (on CPU it trains through `seqbench_cells.recurrence.RNN`; cuDNN on CUDA).

tanh is the classic choice; relu is offered because Le et al. (2015) showed a ReLU RNN
with identity initialisation competing with LSTM on some tasks.
"""

from __future__ import annotations

from seqbench import Cell, Param


def build(input_size: int, hidden_size: int, num_layers: int, dropout: float, *, nonlinearity: str):
    from seqbench_cells.recurrence import RNN

    return RNN(
        input_size,
        hidden_size,
        num_layers=num_layers,
        nonlinearity=nonlinearity,
        dropout=dropout,
        batch_first=True,
    )


cell = Cell(
    name="rnn",
    summary="Vanilla Elman RNN (tanh or relu), nn.RNN with a fast CPU recurrence",
    build=build,
    params=(Param("nonlinearity", str, "tanh", "activation", choices=("tanh", "relu")),),
)
