"""A small decoder-only (causal) Transformer: a reference point, not a recurrent cell.

Pre-LayerNorm blocks (Xiong et al. 2020): x + attention(LN(x)), then x + MLP(LN(x)) with a
4x GELU MLP, dropout on both branches and on the attention weights, and a final LayerNorm;
the input is projected to the model width once, as an embedding.

Its state is a key/value cache. To fit the cell contract (a fixed-size state that, fed
back, continues the sequence exactly) every position attends to the last `window`
positions only, itself included, and the cache holds the last `window - 1` keys and values
with a flag per slot saying whether it holds a real position yet. Positions are encoded by
ALiBi (Press et al. 2022: a per-head penalty proportional to the distance, no position
embedding), because ALiBi depends only on distances: a cached key needs no absolute
position, so a stream of any length can be carried window to window (a language model's
truncated BPTT) and sampled one step at a time. With sequences no longer than the window,
this is an ordinary causal Transformer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from seqbench_cells.modern.stack import heads_for


def alibi_slopes(heads: int) -> torch.Tensor:
    """The per-head distance penalties 2^(-8 h / heads), h = 1..heads (Press et al. 2022)."""
    return torch.tensor([2 ** (-8 * h / heads) for h in range(1, heads + 1)])


class CausalSelfAttention(nn.Module):
    """Multi-head causal attention over a sliding window, with ALiBi and a carried cache."""

    def __init__(self, hidden_size: int, heads: int, window: int, dropout: float) -> None:
        super().__init__()
        self.hidden_size, self.window, self.dropout = hidden_size, window, dropout
        self.heads = heads_for(hidden_size, heads)
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.out = nn.Linear(hidden_size, hidden_size)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype):
        """(keys, values) `[B, window - 1, H]` and slot flags `[B, window - 1]` (1 = real)."""
        cache = torch.zeros(batch_size, self.window - 1, self.hidden_size, device=device,
                            dtype=dtype)
        return cache, cache.clone(), cache[..., 0].clone()

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, T, H]` -> `[B, heads, T, H / heads]`."""
        return x.view(x.shape[0], x.shape[1], self.heads, -1).transpose(1, 2)

    def forward(self, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        past_keys, past_values, past_real = state
        batch, steps, _ = x.shape
        memory = past_keys.shape[1]
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        keys, values = torch.cat([past_keys, k], dim=1), torch.cat([past_values, v], dim=1)
        real = torch.cat([past_real, past_real.new_ones(batch, steps)], dim=1)
        # Query t sits at position memory + t, key j at position j.
        queries = torch.arange(steps, device=x.device)[:, None] + memory
        distance = queries - torch.arange(memory + steps, device=x.device)[None, :]
        visible = (distance >= 0) & (distance < self.window)
        slopes = alibi_slopes(self.heads).to(x.device, x.dtype)
        bias = (-slopes[:, None, None] * distance).masked_fill(~visible, -math.inf)
        bias = bias + torch.zeros_like(real).masked_fill(real == 0, -math.inf)[:, None, None]
        y = F.scaled_dot_product_attention(
            self.split(q), self.split(keys), self.split(values), attn_mask=bias,
            dropout_p=self.dropout if self.training else 0.0)
        y = self.out(y.transpose(1, 2).reshape(batch, steps, self.hidden_size))
        return y, (keys[:, -memory:], values[:, -memory:], real[:, -memory:])


class TransformerBlock(nn.Module):
    """x + dropout(attention(LN(x))), then x + dropout(MLP(LN(x)))."""

    def __init__(self, hidden_size: int, heads: int, window: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(hidden_size)
        self.attention = CausalSelfAttention(hidden_size, heads, window, dropout)
        self.mlp_norm = nn.LayerNorm(hidden_size)
        self.mlp = nn.Sequential(nn.Linear(hidden_size, 4 * hidden_size), nn.GELU(),
                                 nn.Linear(4 * hidden_size, hidden_size))
        self.dropout = nn.Dropout(dropout)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype):
        return self.attention.initial_state(batch_size, device, dtype)

    def forward(self, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        y, state = self.attention(self.attention_norm(x), state)
        x = x + self.dropout(y)
        return x + self.dropout(self.mlp(self.mlp_norm(x))), state
