"""GRU and Elman RNN layers that train on CPU about as fast as the fused LSTM.

On CPU only `nn.LSTM` reaches a fused kernel (oneDNN's RNN primitive, through
`aten::mkldnn_rnn_layer`, which builds the LSTM kind only); `nn.GRU` and `nn.RNN` run ATen's
generic loop, where every time step records a dozen autograd nodes. At the small sizes
recurrent comparisons train (20k parameters, batches of 8), that bookkeeping, not
arithmetic, is the cost: benchmarks/fused_cells.py measured the GRU at 5.9x and the RNN at
3.1x the LSTM's time per batch.

`GRU` and `RNN` here are `nn.GRU` and `nn.RNN` (same parameters, names, initialisation and
state layout, so checkpoints and seeds carry over) whose CPU forward runs the recurrence
as one autograd node per layer with a hand-derived backward:

* the input projections of all time steps are one matrix product before the loop (autograd
  differentiates it);
* the loop does only what depends on the previous step: one small product and the gate
  arithmetic, written into preallocated buffers;
* the backward computes every derivative factor that does not depend on the incoming
  gradient for all time steps at once, so its loop is four operations per step (two for
  the RNN), and the recurrent weights' gradient is one product over the whole sequence.

Hand-written because nothing maintained offers it: oneDNN has GRU (linear-before-reset,
PyTorch's variant) and vanilla RNN primitives, but PyTorch binds only the LSTM one, and
compiling the loop (`torch.compile`) costs tens of seconds per process. Results agree with
the parent modules to float tolerance (tests/test_cells.py). Everywhere else (CUDA, where
cuDNN is fused; evaluation without autograd; autocast; half precision; bidirectional or
bias-free layers; tracing) the parent's own forward runs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class _GRURecurrence(torch.autograd.Function):
    """One GRU layer's recurrence: `gi[T, B, 3H]` (input projections, bias included), the
    initial state `h0[B, H]`, `w_hh[3H, H]`, `b_hh[3H]` -> every state `out[T, B, H]`.

    Gates in PyTorch's order (reset r, update z, new n): r, z = sigmoid(gi + gh),
    n = tanh(gi_n + r * gh_n), h = n + z * (h_prev - n), with gh = h_prev @ w_hh.T + b_hh.
    The forward keeps the states and the recurrent products; the backward recomputes the
    gates from them for all steps at once (cheaper than a per-step view of each gate).
    """

    @staticmethod
    def forward(ctx: Any, gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor,
                b_hh: torch.Tensor) -> torch.Tensor:
        steps, batch, gates = gi.shape
        hidden = gates // 3
        # pre[t] starts as (gi_rz + b_rz, b_n); adding h_prev @ w_hh.T in place makes it
        # (pre-activation of r and z, gh_n): one product and no separate sum per step.
        pre = torch.cat([gi[..., : 2 * hidden] + b_hh[: 2 * hidden],
                         b_hh[2 * hidden :].expand(steps, batch, hidden)], dim=-1)
        out = gi.new_empty(steps, batch, hidden)
        rz, new = gi.new_empty(batch, 2 * hidden), gi.new_empty(batch, hidden)
        r, z = rz[:, :hidden], rz[:, hidden:]
        w_t = w_hh.t()
        h = h0
        # The per-step views are made once, in C++ (slicing inside the loop costs more).
        for pre_t, pre_rz, gh_n, gi_n, h_t in zip(*(buffer.unbind(0) for buffer in (
                pre, pre[..., : 2 * hidden], pre[..., 2 * hidden :], gi[..., 2 * hidden :],
                out))):
            pre_t.addmm_(h, w_t)
            torch.sigmoid(pre_rz, out=rz)
            torch.addcmul(gi_n, r, gh_n, out=new).tanh_()
            h = torch.lerp(new, h, z, out=h_t)
        ctx.save_for_backward(gi, h0, w_hh, out, pre)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, d_out: torch.Tensor) -> tuple[torch.Tensor, ...]:
        gi, h0, w_hh, out, pre = ctx.saved_tensors
        steps, batch, hidden = out.shape
        previous = torch.cat([h0.unsqueeze(0), out[:-1]])
        rz, gh_n = torch.sigmoid(pre[..., : 2 * hidden]), pre[..., 2 * hidden :]
        r, z = rz[..., :hidden], rz[..., hidden:]
        new = torch.tanh(torch.addcmul(gi[..., 2 * hidden :], r, gh_n))
        # d(pre-activation) = g * factor for the gates (r, z, n), with g = dL/dh_t in full.
        factor = out.new_empty(steps, batch, 3, hidden)
        keep = 1 - z
        torch.mul(keep, 1 - new * new, out=factor[:, :, 2])
        torch.mul(factor[:, :, 2] * gh_n, r * (1 - r), out=factor[:, :, 0])
        torch.mul(previous - new, z * keep, out=factor[:, :, 1])
        # The recurrent product sees r * d(pre_n) in the new gate's slot.
        recurrent_factor = factor.clone()
        recurrent_factor[:, :, 2] *= r
        g = d_out.unsqueeze(2).clone(memory_format=torch.contiguous_format)
        d_gh = out.new_empty(steps, batch, 3, hidden)
        d_h = out.new_zeros(batch, 1, hidden)
        d_h_flat = d_h.view(batch, hidden)
        for g_t, factor_t, d_gh_t, d_gh_flat, z_t in zip(*(buffer.unbind(0)[::-1] for buffer in (
                g, recurrent_factor, d_gh, d_gh.view(steps, batch, 3 * hidden),
                z.unsqueeze(2)))):
            g_t.add_(d_h)
            torch.mul(g_t, factor_t, out=d_gh_t)
            torch.mm(d_gh_flat, w_hh, out=d_h_flat)
            d_h.addcmul_(g_t, z_t)
        d_gh = d_gh.view(steps * batch, 3 * hidden)
        d_gi = (g * factor).view(steps, batch, 3 * hidden)
        d_w = d_gh.t() @ previous.view(steps * batch, hidden)
        return d_gi, d_h_flat, d_w, d_gh.sum(0)


class _ElmanRecurrence(torch.autograd.Function):
    """One Elman layer's recurrence: `gi[T, B, H]` (input projections, both biases),
    `h0[B, H]`, `w_hh[H, H]` -> `out[T, B, H]` with h_t = act(gi_t + h_{t-1} @ w_hh.T)."""

    @staticmethod
    def forward(ctx: Any, gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor,
                relu: bool) -> torch.Tensor:
        out = gi.clone(memory_format=torch.contiguous_format)
        w_t = w_hh.t()
        h = h0
        for h_t in out.unbind(0):
            h = h_t.addmm_(h, w_t)
            h.relu_() if relu else h.tanh_()
        ctx.relu = relu
        ctx.save_for_backward(h0, w_hh, out)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, d_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h0, w_hh, out = ctx.saved_tensors
        steps, batch, hidden = out.shape
        slope = (out > 0).to(out.dtype) if ctx.relu else 1 - out * out
        d_pre = d_out.clone(memory_format=torch.contiguous_format)
        d_h = torch.zeros_like(h0)
        for d_pre_t, slope_t in zip(d_pre.unbind(0)[::-1], slope.unbind(0)[::-1]):
            d_h = d_pre_t.add_(d_h).mul_(slope_t) @ w_hh
        previous = torch.cat([h0.unsqueeze(0), out[:-1]]).view(steps * batch, hidden)
        d_w = d_pre.view(steps * batch, hidden).t() @ previous
        return d_pre, d_h, d_w, None


def _runs_here(module: nn.RNNBase, x: Any) -> bool:
    """Whether the hand-written recurrence serves this call (else the parent's forward).

    Only while autograd records: without it ATen's loop is as fast (its cost is the graph).
    """
    return (torch.is_grad_enabled() and isinstance(x, torch.Tensor) and x.dim() == 3
            and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64) and module.bias
            and not module.bidirectional and x.shape[1 if module.batch_first else 0] > 0
            and not torch.is_autocast_enabled("cpu")
            and not torch.jit.is_scripting() and not torch.jit.is_tracing()
            and not torch.compiler.is_compiling())


def _layers(module: nn.RNNBase, x: torch.Tensor, h0: torch.Tensor | None, recurrence: Any
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run every layer of `module` over `x` (time-major inside), dropout between layers as
    the parent applies it; returns (output, final states) in the parent's layouts."""
    x = x.transpose(0, 1) if module.batch_first else x
    batch = x.shape[1]
    if h0 is None:
        h0 = x.new_zeros(module.num_layers, batch, module.hidden_size)
    finals = []
    for layer in range(module.num_layers):
        if layer and module.dropout and module.training:
            x = F.dropout(x, module.dropout, training=True)
        w_ih, w_hh, b_ih, b_hh = (getattr(module, f"{name}_l{layer}")
                                  for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        x = recurrence(F.linear(x, w_ih, b_ih), h0[layer], w_hh, b_hh)
        finals.append(x[-1])
    output = x.transpose(0, 1) if module.batch_first else x
    return output, torch.stack(finals)


class GRU(nn.GRU):
    """`nn.GRU` with the fast CPU recurrence above (unbatched, packed, bidirectional or
    bias-free input, and every device but the CPU, use `nn.GRU`'s own forward)."""

    def forward(self, x: Any, hx: torch.Tensor | None = None) -> Any:
        if not _runs_here(self, x):
            return super().forward(x, hx)
        return _layers(self, x, hx, _GRURecurrence.apply)


class RNN(nn.RNN):
    """`nn.RNN` (tanh or relu) with the fast CPU recurrence above, under the same rules."""

    def forward(self, x: Any, hx: torch.Tensor | None = None) -> Any:
        if not _runs_here(self, x):
            return super().forward(x, hx)
        relu = self.nonlinearity == "relu"
        return _layers(self, x, hx, lambda gi, h0, w_hh, b_hh: _ElmanRecurrence.apply(
            gi + b_hh, h0, w_hh, relu))
