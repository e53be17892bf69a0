"""IndRNN (Li et al. 2018, "Independently Recurrent Neural Network (IndRNN): Building A
Longer and Deeper RNN"): h_t = relu(W x_t + u * h_{t-1} + b), one recurrent weight per unit.

Each unit sees only its own past, so its gradient through T steps is a product of T of its
own u (times ReLU slopes): it neither vanishes nor explodes when |u| <= 2^(1/T). The paper
keeps that bound by clipping the recurrent weights (Section 3.1, with gamma = 2 for ReLU)
and initialises u uniformly in [0, 1]; T is the number of steps gradients flow through.
The authors' code offers more for deep, long-range models, none of it used here: the last
layer's u drawn near 1 (long memory from the start), zero input biases, and batch norm
between layers (which would make one sequence's output depend on its batch).
Here that is the length of the training sequences (a window's length where a task carries
state across windows, since gradients stop at the window).

The optimiser belongs to seqbench's core, so the clip cannot follow each update; it runs at
the start of every training forward instead (`clip_recurrent_weights`, a forward pre-hook
on the stack), which is the same thing: every step computes with clipped weights. The bound
of the last training batch is kept in the buffer `recurrent_bound` (saved with the model),
and evaluation and generation clip to it, so a restored model computes exactly as trained.
(An in-place write between a forward and its backward would break that backward; the core
runs one forward per update, as the paper's clip-after-update assumes.)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

#: gamma of the paper's bound |u| <= gamma^(1/T): the largest gradient growth kept for ReLU.
GAMMA = 2.0


class IndRNNStep(nn.Module):
    """One IndRNN step; the state is h `[B, H]`."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.input = nn.Linear(input_size, hidden_size)
        self.recurrent = nn.Parameter(torch.rand(hidden_size))
        self.register_buffer("recurrent_bound", torch.tensor(math.inf))

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def forward(self, x_t: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.input(x_t) + self.recurrent * h)
        return h, h


def clip_recurrent_weights(stack: nn.Module, args: tuple[Any, ...]) -> None:
    """Forward pre-hook: in training, set every layer's bound to 2^(1/T) for this batch's T;
    always clip the recurrent weights to [-bound, bound] in place before they are used."""
    steps = args[0].shape[1]
    with torch.no_grad():
        for layer in stack.layers:
            if stack.training:
                layer.recurrent_bound.fill_(GAMMA ** (1 / steps))
            bound = layer.recurrent_bound
            layer.recurrent.copy_(layer.recurrent.clamp(-bound, bound))
