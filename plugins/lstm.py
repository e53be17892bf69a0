"""LSTM on PyTorch's fused `nn.LSTM` (cuDNN on CUDA), with the forget-gate bias option.

Jozefowicz et al. (2015) found that initialising the forget-gate bias to 1 closes most of
the gap between LSTM and GRU, so it is exposed as a declared hyperparameter rather than
hidden in code: a fair comparison must be able to turn it on and off.
"""

from __future__ import annotations

from seqbench import Cell, Param


def build(input_size: int, hidden_size: int, num_layers: int, dropout: float, *, forget_bias: float):
    from torch import nn

    module = nn.LSTM(
        input_size, hidden_size, num_layers=num_layers, dropout=dropout, batch_first=True
    )
    if forget_bias:
        # PyTorch orders the gates (input, forget, cell, output); the effective bias is
        # bias_ih + bias_hh, so put the whole value in one and zero the other.
        for name, tensor in module.named_parameters():
            if name.startswith("bias_"):
                gate = tensor.data[hidden_size : 2 * hidden_size]
                gate.fill_(forget_bias if name.startswith("bias_ih") else 0.0)
    return module


cell = Cell(
    name="lstm",
    summary="Long short-term memory (Hochreiter & Schmidhuber 1997), fused nn.LSTM",
    build=build,
    params=(
        Param(
            "forget_bias",
            float,
            0.0,
            "initial forget-gate bias (1.0 per Jozefowicz et al. 2015; 0 = PyTorch default init)",
            low=-5.0,
            high=5.0,
            search=(0.0, 2.0),
        ),
    ),
)
