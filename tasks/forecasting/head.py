"""The forecasting head: the cell's last state to every step and channel of the horizon.

Dropout on that state regularises the head the same way for every cell, and it is what
`generate` samples at prediction time (MC dropout, Gal & Ghahramani 2016) for the spread of
the prediction intervals.
"""

from __future__ import annotations

from torch import nn


class HorizonHead(nn.Module):
    def __init__(self, hidden_size: int, horizon: int, channels: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.horizon, self.channels = horizon, channels
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_size, horizon * channels)

    def forward(self, features):
        return self.linear(self.dropout(features[:, -1])).view(-1, self.horizon, self.channels)
