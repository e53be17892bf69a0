"""The forecasting head: the cell's last state to every step and channel of the horizon."""

from __future__ import annotations

from torch import nn


class HorizonHead(nn.Module):
    def __init__(self, hidden_size: int, horizon: int, channels: int) -> None:
        super().__init__()
        self.horizon, self.channels = horizon, channels
        self.linear = nn.Linear(hidden_size, horizon * channels)

    def forward(self, features):
        return self.linear(features[:, -1]).view(-1, self.horizon, self.channels)
