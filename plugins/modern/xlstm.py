"""sLSTM and mLSTM (Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory"), as cells.

Both use exponential input gating, made safe by a normaliser state n and a stabiliser
state m (the paper's Eqs. 15-17): with log-gates i~ (input) and log f = log sigmoid(f~),

    m_t = max(log f_t + m_{t-1}, i~_t),   i'_t = exp(i~_t - m_t),
    f'_t = exp(log f_t + m_{t-1} - m_t),

and every state is kept divided by exp(m_t), so no exponential overflows while every
output equals the unstabilised one exactly (m cancels in each ratio). A fresh state has
m = -inf: no memory yet, so the first step's stabiliser is its own input gate.

* sLSTM (scalar memory, recurrent connections, heads with block-diagonal recurrent
  matrices): c_t = f' c + i' tanh(z~), n_t = f' n + i', h_t = sigmoid(o~) * c_t / n_t,
  where every gate's pre-activation is W x_t + R h_{t-1} + b. Nonlinear in h, so it is a
  step cell: `seqbench.step.from_step` runs its time loop.
* mLSTM (matrix memory per head, no recurrent connections): C_t = f' C + i' v_t k_t^T,
  n_t = f' n + i' k_t, h~_t = C_t q_t / max(|n_t^T q_t|, exp(-m_t)),
  h_t = sigmoid(o~) * h~_t, with k scaled by 1/sqrt(d). Linear in (C, n), so training uses
  the parallel (attention-like) form of the paper's Appendix B and stepping uses the
  recurrence; the two agree to float tolerance (tested).

The xLSTM blocks around the cells (up- and down-projections, causal convolution, group
norm, residual connections) are architecture, not the cell, and are left out: every cell
here sits in the same task encoder -> cell -> head model as LSTM. Both cells start their
forget-gate biases spread over [3, 6], so memory starts long: the authors' mLSTM
initialisation. Their sLSTM examples use a block-dependent power-law spread instead; one
rule for both cells here is a simplification, not the paper's.
Written from the paper; the `xlstm` package is not used (its kernels package,
`mlstm_kernels`, is under a licence that is not open source).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from seqbench_cells.modern.stack import heads_for

#: Added to the mLSTM's normaliser, as in the authors' code: exp(-m_t) underflows to 0 in
#: float32 once m_t > 88, and |n^T q| may then be 0 too.
EPS = 1e-6


def forget_biases(size: int) -> torch.Tensor:
    """Forget-gate biases spread over [3, 6] (sigmoid 0.95-0.998): long memory at the start."""
    return torch.linspace(3.0, 6.0, size)


class SLSTMStep(nn.Module):
    """One sLSTM step; the state is (h, c, n, m), each `[B, H]`.

    The recurrent matrices are block-diagonal over `heads` heads (the paper's sLSTM heads),
    of sizes that differ by at most one where they cannot be equal: the parameter count
    then grows smoothly with the width, so `--param-budget` gives the sLSTM its full budget
    (with equal heads only, widths divisible by fewer heads cost up to 4x more).
    """

    def __init__(self, input_size: int, hidden_size: int, *, heads: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        count = min(heads, hidden_size)
        self.head_sizes = [hidden_size // count + (j < hidden_size % count)
                           for j in range(count)]
        #: Pre-activations of the gates i, f, z, o (rows in that order).
        self.input = nn.Linear(input_size, 4 * hidden_size)
        #: Per head: its h slice -> the four gates' pre-activations of that head, `[d, 4 d]`.
        self.recurrent = nn.ParameterList(
            nn.Parameter(torch.empty(d, 4 * d).uniform_(-1 / math.sqrt(d), 1 / math.sqrt(d)))
            for d in self.head_sizes)
        with torch.no_grad():
            self.input.bias[hidden_size : 2 * hidden_size] = forget_biases(hidden_size)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype):
        zeros = [torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
                 for _ in range(3)]
        return (*zeros, torch.full_like(zeros[0], -math.inf))

    def forward(self, x_t: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        h, c, n, m = state
        batch = x_t.shape[0]
        recurrent = torch.cat([(part @ weight).view(batch, 4, size) for part, weight, size in
                               zip(h.split(self.head_sizes, dim=-1), self.recurrent,
                                   self.head_sizes)], dim=2)
        pre = self.input(x_t) + recurrent.reshape(batch, 4 * self.hidden_size)
        i_pre, f_pre, z_pre, o_pre = pre.chunk(4, dim=-1)
        log_f = F.logsigmoid(f_pre)
        m_new = torch.maximum(log_f + m, i_pre)
        i, f = (i_pre - m_new).exp(), (log_f + m - m_new).exp()
        c = f * c + i * torch.tanh(z_pre)
        n = f * n + i
        h = torch.sigmoid(o_pre) * c / n
        return h, (h, c, n, m_new)


class MLSTMLayer(nn.Module):
    """One mLSTM layer; the state is (C `[B, heads, d, d]`, n `[B, heads, d]`, m `[B, heads]`)."""

    def __init__(self, input_size: int, hidden_size: int, heads: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.heads = heads_for(hidden_size, heads)
        self.head_size = hidden_size // self.heads
        self.parallel = True
        self.qkv = nn.Linear(input_size, 3 * hidden_size)
        #: Scalar input and forget gates per head (the paper's i~ and f~).
        self.gates = nn.Linear(input_size, 2 * self.heads)
        self.output_gate = nn.Linear(input_size, hidden_size)
        with torch.no_grad():  # the authors' initialisation: gates start input-independent
            self.gates.weight.zero_()
            self.gates.bias[: self.heads].normal_(0.0, 0.1)
            self.gates.bias[self.heads :] = forget_biases(self.heads)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype):
        d, k = self.head_size, self.heads
        return (torch.zeros(batch_size, k, d, d, device=device, dtype=dtype),
                torch.zeros(batch_size, k, d, device=device, dtype=dtype),
                torch.full((batch_size, k), -math.inf, device=device, dtype=dtype))

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """q, k (scaled by 1/sqrt(d)), v `[B, heads, T, d]`; i~ and log f `[B, heads, T]`."""
        batch, steps, _ = x.shape
        q, k, v = (part.view(batch, steps, self.heads, self.head_size).transpose(1, 2)
                   for part in self.qkv(x).chunk(3, dim=-1))
        i_pre, f_pre = self.gates(x).transpose(1, 2).chunk(2, dim=1)
        return q, k / math.sqrt(self.head_size), v, i_pre, F.logsigmoid(f_pre)

    def forward(self, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        q, k, v, i_pre, log_f = self.project(x)
        form = parallel if self.parallel and x.shape[1] > 1 else recurrent
        h, state = form(q, k, v, i_pre, log_f, state)
        h = h.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.hidden_size)
        return torch.sigmoid(self.output_gate(x)) * h, state


def recurrent(q, k, v, i_pre, log_f, state):
    """The mLSTM recurrence, one step at a time (generation, and the reference)."""
    C, n, m = state
    outputs = []
    # unbind, not indexing: see `scan.sequential`.
    for q_t, k_t, v_t, i_t, log_f_t in zip(q.unbind(2), k.unbind(2), v.unbind(2),
                                           i_pre.unbind(-1), log_f.unbind(-1)):
        m_new = torch.maximum(log_f_t + m, i_t)
        f, i = (log_f_t + m - m_new).exp(), (i_t - m_new).exp()
        C = f[..., None, None] * C + i[..., None, None] * (v_t[..., :, None] * k_t[..., None, :])
        n = f[..., None] * n + i[..., None] * k_t
        numerator = (C @ q_t[..., None]).squeeze(-1)
        denominator = (n * q_t).sum(-1).abs().maximum((-m_new).exp())
        outputs.append(numerator / (denominator[..., None] + EPS))
        m = m_new
    return torch.stack(outputs, dim=2), (C, n, m)


def parallel(q, k, v, i_pre, log_f, state):
    """The same outputs and final state for all T steps at once (the paper's parallel form).

    With F_t = sum_{j<=t} log f_j, step s reaches step t with log-weight
    log D_ts = F_t - F_s + i~_s (s <= t), and the carried state with F_t + m_0; m_t is the
    largest of these, exactly the recurrence's stabiliser, so the final (C, n, m) equal the
    recurrent form's and a carried state continues either form.
    """
    C0, n0, m0 = state
    steps = q.shape[2]
    cumulative = log_f.cumsum(-1)
    log_d = cumulative[..., :, None] - cumulative[..., None, :] + i_pre[..., None, :]
    causal = torch.ones(steps, steps, dtype=torch.bool, device=q.device).tril()
    log_d = log_d.masked_fill(~causal, -math.inf)
    log_carried = cumulative + m0[..., None]
    m = torch.maximum(log_d.amax(-1), log_carried)
    d = (log_d - m[..., None]).exp()
    carried = (log_carried - m).exp()
    scores = (q @ k.transpose(-1, -2)) * d
    numerator = scores @ v + carried[..., None] * (q @ C0.transpose(-1, -2))
    denominator = (scores.sum(-1) + carried * (q @ n0[..., None]).squeeze(-1)).abs()
    h = numerator / (denominator.maximum((-m).exp())[..., None] + EPS)
    last = d[..., -1, :]
    C = carried[..., -1, None, None] * C0 + torch.einsum("bhs,bhsv,bhsk->bhvk", last, v, k)
    n = carried[..., -1, None] * n0 + torch.einsum("bhs,bhsk->bhk", last, k)
    return h, (C, n, m[..., -1])
