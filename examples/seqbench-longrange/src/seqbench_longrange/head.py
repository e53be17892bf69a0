"""The adding task's head: one number per sequence, read from the cell's last output."""

from __future__ import annotations

import torch
from torch import nn


class LastStep(nn.Module):
    """`[B, T, H] -> [B]`: a linear read-out of the final time step only.

    Reading only the end is what forces the cell to carry the first marked value across
    the whole sequence.
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features[:, -1]).squeeze(-1)
