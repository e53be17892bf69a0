# file: src/seqbench_indrnn/plugin.py
"""Declarations only: no torch at import time."""
from seqbench import Cell, Param


def build(input_size, hidden_size, num_layers, dropout, *, max_recurrent):
    from seqbench.step import from_step

    from seqbench_indrnn.step import IndRNNStep

    return from_step(IndRNNStep)(input_size, hidden_size, num_layers, dropout,
                                 max_recurrent=max_recurrent)


cell = Cell(
    name="indrnn-old",
    summary="IndRNN (Li et al. 2018): h_t = relu(W x_t + u * h_{t-1} + b)",
    build=build,
    params=(Param("max_recurrent", float, 1.0, "bound of the recurrent weights u at init",
                  low=0.1, high=2.0),),
)
