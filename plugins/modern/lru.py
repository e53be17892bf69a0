"""The Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks
for Long Sequences"), in the paper's Norm -> LRU -> GLU -> skip block.

The recurrence is diagonal and complex:

    x_t = lambda * x_{t-1} + gamma * (B u_t),   y_t = Re(C x_t) + D * u_t,

with the stable exponential parametrisation lambda = exp(-exp(nu) + i exp(theta)) (|lambda|
< 1 for any real nu, theta) and the normalisation gamma = sqrt(1 - |lambda|^2), which keeps
the state's scale independent of how close |lambda| is to 1. As in the paper's code, log
gamma is a parameter initialised to that value. lambda is drawn uniformly on the ring
r_min <= |lambda| <= r_max with phases in [0, max_phase]. The recurrence is linear and
time-invariant, so training runs it as one parallel scan (`scan.doubling_scan`); one step
(generation) is the plain recurrence.

A stack of LRUs alone would be a linear system: the nonlinearity is in the block around
it, which the paper (after S4/S5) makes LayerNorm -> LRU -> GELU -> gated linear unit ->
skip connection. LayerNorm, not BatchNorm: batch statistics would make one sequence's
output depend on the others in its batch. Two simplifications against the paper's code,
both said here because they change what a parameter buys: the gated linear unit is S5's
"half" GLU, y * sigmoid(W y + b), one dense layer where the LRU code has two
(out1(y) * sigmoid(out2(y))), so under `--param-budget` the width goes to the recurrence
rather than the gate; and nu, theta and gamma train at the core's one learning rate (the
paper halves it for them), because the protocol tunes one learning rate per cell. The state (complex) is carried as its real and
imaginary parts, `[B, N, 2]`, so it is an ordinary real tensor to the core.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from seqbench_cells.modern.scan import doubling_scan, sequential


class LRU(nn.Module):
    """The recurrence alone: `[B, T, H]` in, `[B, T, H]` out, state size N."""

    def __init__(self, size: int, state_size: int, r_min: float, r_max: float,
                 max_phase: float) -> None:
        super().__init__()
        self.state_size = state_size
        self.parallel = True
        radius = torch.rand(state_size) * (r_max**2 - r_min**2) + r_min**2  # |lambda|^2
        self.nu_log = nn.Parameter((-0.5 * radius.log()).log())
        self.theta_log = nn.Parameter((max_phase * torch.rand(state_size)).log())
        self.gamma_log = nn.Parameter(0.5 * (1 - radius).log())
        self.B = nn.Parameter(torch.randn(2, state_size, size) / math.sqrt(2 * size))
        self.C = nn.Parameter(torch.randn(2, size, state_size) / math.sqrt(state_size))
        self.D = nn.Parameter(torch.randn(size))

    def lambdas(self) -> torch.Tensor:
        """lambda = exp(-exp(nu) + i exp(theta)), complex `[N]`."""
        return torch.complex(-self.nu_log.exp(), self.theta_log.exp()).exp()

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype):
        return torch.zeros(batch_size, self.state_size, 2, device=device, dtype=dtype)

    def forward(self, u: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gamma = self.gamma_log.exp()
        # torch.complex takes no bfloat16: under mixed precision the projections are raised
        # to float32, so the recurrence runs in complex64 as it does without autocast.
        real, imag = u @ self.B[0].T, u @ self.B[1].T
        exact = torch.promote_types(real.dtype, torch.float32)
        inputs = torch.complex(real.to(exact), imag.to(exact)) * gamma
        x0 = torch.view_as_complex(state.contiguous())
        scan = doubling_scan if self.parallel and u.shape[1] > 1 else sequential
        x = scan(self.lambdas(), inputs, x0)
        y = x.real @ self.C[0].T - x.imag @ self.C[1].T + self.D * u
        return y, torch.view_as_real(x[:, -1]).contiguous()


class LRUBlock(nn.Module):
    """LayerNorm -> LRU -> GELU -> dropout -> GLU (x * sigmoid(W x + b)) -> dropout -> + skip."""

    def __init__(self, hidden_size: int, dropout: float, r_min: float, r_max: float,
                 max_phase: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size)
        self.lru = LRU(hidden_size, hidden_size, r_min, r_max, max_phase)
        self.gate = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype):
        return self.lru.initial_state(batch_size, device, dtype)

    def forward(self, u: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, state = self.lru(self.norm(u), state)
        y = self.dropout(F.gelu(y))
        return u + self.dropout(y * torch.sigmoid(self.gate(y))), state
