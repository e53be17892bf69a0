"""The linear recurrence h_t = a_t * h_{t-1} + b_t, computed two ways.

`log_scan` does all time steps at once in log space (Heinsen 2023, "Efficient Parallelization
of a Ubiquitous Sequential Computation"): with A_t = a_1 ... a_t,
h_t = A_t * (h_0 + sum_{k<=t} b_k / A_k), so
log h_t = log A_t + logcumsumexp_k(log b_k - log A_k) over k = 0..t with log b_0 = log h_0.
Working in logs keeps the products of many gates in (0, 1) from underflowing; it needs
positive a, b and h_0, which the min-cells guarantee. `sequential` is the same recurrence
as a loop: the definition the scan is tested against, and the cheaper path for one step.
"""

from __future__ import annotations

import torch


def log_scan(log_a: torch.Tensor, log_b: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    """All h_t for `log_a`, `log_b` of shape [B, T, H] and `h0` [B, H] (None = zeros)."""
    if h0 is not None:
        # h_0 enters as the value at step 0 with coefficient 1 (log 1 = 0); drop it after.
        log_h0 = h0.clamp_min(torch.finfo(h0.dtype).tiny).log().unsqueeze(1)
        log_a = torch.cat([torch.zeros_like(log_h0), log_a], dim=1)
        log_b = torch.cat([log_h0, log_b], dim=1)
    log_a_star = torch.cumsum(log_a, dim=1)
    log_h = log_a_star + torch.logcumsumexp(log_b - log_a_star, dim=1)
    h = log_h.exp()
    return h if h0 is None else h[:, 1:]


def sequential(log_a: torch.Tensor, log_b: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    """The same h_t, one step at a time in ordinary space."""
    a, b = log_a.exp(), log_b.exp()
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    outputs = []
    for t in range(b.shape[1]):
        h = a[:, t] * h + b[:, t]
        outputs.append(h)
    return torch.stack(outputs, dim=1)
