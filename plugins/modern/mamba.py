"""Mamba (Gu & Dao 2023) through `mambapy` (pure PyTorch, MIT): a state-space reference point.

The layers are mambapy's own `ResidualBlock`s (RMSNorm -> Mamba block -> + x: input
projection to two branches, short causal convolution, selective SSM, SiLU gate, output
projection), with mambapy's initialisation, and the selective scan is mambapy's `pscan`.
What mambapy lacks is a forward that *starts from a state*: its `forward` always starts
from zero and its `step` takes one token. seqbench carries state across a language model's
windows, so `MambaLayer.forward` runs the same block from a given state: the convolution
reads the carried last `d_conv - 1` inputs instead of zero padding, and the SSM state h_0
enters the scan as `deltaA_1 h_0` added to its first input. From a zero state it equals
mambapy's `forward`, and step by step it equals mambapy's `step` (both tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seqbench_cells.modern.scan import sequential


class MambaLayer(nn.Module):
    """One mambapy `ResidualBlock`; the state is (h `[B, E*H, N]`, the convolution's last
    inputs `[B, E*H, d_conv - 1]`)."""

    def __init__(self, config) -> None:
        from mambapy.mamba import ResidualBlock

        super().__init__()
        self.config = config
        self.parallel = True
        self.block = ResidualBlock(config)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype):
        inner, config = self.config.d_inner, self.config
        return (torch.zeros(batch_size, inner, config.d_state, device=device, dtype=dtype),
                torch.zeros(batch_size, inner, config.d_conv - 1, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        h0, past = state
        mixer = self.block.mixer
        inputs, gate = mixer.in_proj(self.block.norm(x)).chunk(2, dim=-1)
        window = torch.cat([past, inputs.transpose(1, 2)], dim=2)
        convolved = F.conv1d(window, mixer.conv1d.weight, mixer.conv1d.bias,
                             groups=self.config.d_inner).transpose(1, 2)
        y, h = self.selective_scan(F.silu(convolved), h0)
        out = mixer.out_proj(y * F.silu(gate)) + x
        return out, (h, window[:, :, window.shape[2] - past.shape[2]:])

    def selective_scan(self, x: torch.Tensor,
                       h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mambapy's selective scan (`MambaBlock.ssm`), from state `h0`; returns y and h_T."""
        from mambapy.pscan import pscan

        mixer, config = self.block.mixer, self.config
        delta, B, C = torch.split(mixer.x_proj(x), [config.dt_rank, config.d_state,
                                                    config.d_state], dim=-1)
        delta = F.softplus(mixer.dt_proj(delta))
        delta_a = torch.exp(delta.unsqueeze(-1) * -torch.exp(mixer.A_log))
        bx = delta.unsqueeze(-1) * B.unsqueeze(2) * x.unsqueeze(-1)
        if self.parallel and x.shape[1] > 1:
            first = delta_a[:, :1] * h0.unsqueeze(1) + bx[:, :1]
            hs = pscan(delta_a, torch.cat([first, bx[:, 1:]], dim=1))
        else:
            hs = sequential(delta_a, bx, h0)
        y = (hs @ C.unsqueeze(-1)).squeeze(-1) + mixer.D * x
        return y, hs[:, -1]
