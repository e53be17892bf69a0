"""A causal temporal convolutional network (Bai et al. 2018, "An Empirical Evaluation of
Generic Convolutional and Recurrent Networks for Sequence Modeling"): a reference point.

Layer i is the paper's residual block with dilation 2^i: two causal, dilated,
weight-normalised convolutions (kernel k), each followed by ReLU and dropout, plus the input
(through a 1x1 convolution where widths differ), then ReLU. Weights start N(0, 0.01), the
initialisation the paper's code asks for. In that code it has no effect on the dilated
convolutions: it runs after the old `weight_norm` hook has taken g and v from PyTorch's
default weights, and the hook rebuilds the weight from them at every forward (its maintainer
confirms this in locuslab/TCN#1), so those convolutions train from PyTorch's defaults. Here
N(0, 0.01) is applied before weight norm and does take effect: a deliberate difference (the
paper states this initialisation, and the published TCN rows were trained with it). Biases
(the 1x1 convolution's too) start at zero, which their code does not do: with PyTorch's
default bias (uniform, about +-0.3 here) beside weights that small, a unit's sign at
initialisation is its bias's, so about half the ReLU units are dead for every input, never
train, and still count against `--param-budget` (the kit's `check_no_unused_parameters`
found it). The receptive field of L blocks is
1 + 2 (k - 1)(2^L - 1) steps; nothing older reaches the output, which is what a reader
comparing it with a recurrent cell should know. A seqbench layer holds `levels` blocks
(`cells.build_tcn`), so the search can reach a field as long as the sequence.

Causal padding is the past: the state of a block is the last (k - 1) * dilation inputs of
each of its two convolutions (zeros at the start, exactly the paper's zero padding), so a
long sequence fed in pieces, or one step at a time when generating, gives the same outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def causal_convolution(input_size: int, hidden_size: int, kernel_size: int,
                       dilation: int) -> nn.Module:
    convolution = nn.Conv1d(input_size, hidden_size, kernel_size, dilation=dilation)
    nn.init.normal_(convolution.weight, 0.0, 0.01)
    nn.init.zeros_(convolution.bias)  # every unit alive at the start (module docstring)
    return weight_norm(convolution)


class TemporalBlock(nn.Module):
    """One residual block; its state is the two convolutions' pasts `[B, C, (k-1) d]`."""

    def __init__(self, input_size: int, hidden_size: int, kernel_size: int, dilation: int,
                 dropout: float) -> None:
        super().__init__()
        self.context = (kernel_size - 1) * dilation
        self.sizes = (input_size, hidden_size)
        self.conv1 = causal_convolution(input_size, hidden_size, kernel_size, dilation)
        self.conv2 = causal_convolution(hidden_size, hidden_size, kernel_size, dilation)
        self.residual = (nn.Conv1d(input_size, hidden_size, 1) if input_size != hidden_size
                         else nn.Identity())
        if input_size != hidden_size:
            nn.init.normal_(self.residual.weight, 0.0, 0.01)
            nn.init.zeros_(self.residual.bias)  # as the convolutions' (module docstring)
        self.dropout = nn.Dropout(dropout)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype):
        return tuple(torch.zeros(batch_size, size, self.context, device=device, dtype=dtype)
                     for size in self.sizes)

    def forward(self, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        x = x.transpose(1, 2)
        first = torch.cat([state[0], x], dim=2)
        y = self.dropout(F.relu(self.conv1(first)))
        second = torch.cat([state[1], y], dim=2)
        y = self.dropout(F.relu(self.conv2(second)))
        out = F.relu(y + self.residual(x)).transpose(1, 2)
        return out, (first[:, :, -self.context :], second[:, :, -self.context :])
