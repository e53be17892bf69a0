"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?").

minGRU:  z_t = sigmoid(W_z x_t),  h~_t = g(W_h x_t),  h_t = (1 - z_t) h_{t-1} + z_t h~_t
minLSTM: f_t, i_t = sigmoid(W_f x_t), sigmoid(W_i x_t), normalised to f' = f/(f+i),
         i' = i/(f+i);  h_t = f'_t h_{t-1} + i'_t g(W_h x_t)
with g(x) = x + 0.5 for x >= 0 and sigmoid(x) otherwise, which keeps h~ (hence h) positive
so that the recurrence can run in log space (the paper's Appendix B). Gates and candidates
are computed in log space directly (log sigmoid(k) = -softplus(-k)) rather than as logs of
rounded values. The gates see the input only, so h_t = a_t h_{t-1} + b_t is linear in h and
a whole sequence is one parallel scan; one step (sampling) takes the plain loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seqbench_cells.modern.scan import log_scan, sequential


def log_g(x: torch.Tensor) -> torch.Tensor:
    """log g(x) for the positive activation g above."""
    return torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))


class MinLayer(nn.Module):
    """One minGRU or minLSTM layer; its state is h_{t-1} `[B, H]` (positive)."""

    def __init__(self, variant: str, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.variant = variant
        self.hidden_size = hidden_size
        self.parallel = True
        gates = {"gru": 2, "lstm": 3}[variant]
        self.linear = nn.Linear(input_size, gates * hidden_size)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def log_coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log a_t and log b_t of the recurrence h_t = a_t h_{t-1} + b_t."""
        if self.variant == "gru":
            k, candidate = self.linear(x).chunk(2, dim=-1)
            log_keep, log_write = -F.softplus(k), -F.softplus(-k)  # log(1 - z), log z
        else:
            k_f, k_i, candidate = self.linear(x).chunk(3, dim=-1)
            diff = F.softplus(-k_f) - F.softplus(-k_i)
            log_keep, log_write = -F.softplus(diff), -F.softplus(-diff)  # log f', log i'
        return log_keep, log_write + log_g(candidate)

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_a, log_b = self.log_coefficients(x)
        if self.parallel and x.shape[1] > 1:
            h = log_scan(log_a, log_b, h0)
        else:
            h = sequential(log_a.exp(), log_b.exp(), h0)
        return h, h[:, -1]
