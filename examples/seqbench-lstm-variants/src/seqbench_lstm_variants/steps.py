"""The vanilla LSTM of Greff et al. 2017 ("LSTM: A Search Space Odyssey") and its variants.

Vanilla LSTM, the paper's section 2 (peepholes p are diagonal, i.e. vectors):

    z_t = g(W_z x_t + R_z y_{t-1} + b_z)                  block input,   g = tanh
    i_t = sigmoid(W_i x_t + R_i y_{t-1} + p_i * c_{t-1} + b_i)   input gate
    f_t = sigmoid(W_f x_t + R_f y_{t-1} + p_f * c_{t-1} + b_f)   forget gate
    c_t = z_t * i_t + c_{t-1} * f_t                        cell
    o_t = sigmoid(W_o x_t + R_o y_{t-1} + p_o * c_t + b_o)       output gate (sees the new cell)
    y_t = o_t * h(c_t)                                     block output,  h = tanh

Each variant changes one thing (section 3 of the paper):

    NIG   no input gate, i = 1              NIAF  no input activation, g(x) = x
    NFG   no forget gate, f = 1             NOAF  no output activation, h(x) = x
    NOG   no output gate, o = 1             NP    no peepholes
    CIFG  coupled input and forget gate, f = 1 - i (GRU-like)
    FGR   full gate recurrence: i, f and o also see the previous step's i, f and o
          through nine more recurrent matrices (the original LSTM of 1997 had them)

A removed gate has no weights and is not computed (a constant 1 multiplies nothing), so
parameter counts and speed are those of the variant, not of a vanilla LSTM with a gate
pinned. Each variant is its own class, so seqbench compiles each one's time loop separately.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class VanillaStep(nn.Module):
    """One step of Greff et al.'s vanilla LSTM; subclasses switch the class flags."""

    input_gate = True
    forget_gate = True
    output_gate = True
    input_activation = True
    output_activation = True
    peepholes = True
    coupled = False  # CIFG: f = 1 - i
    gate_recurrence = False  # FGR

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        gates = [name for name, present in (("i", self.input_gate),
                                            ("f", self.forget_gate and not self.coupled),
                                            ("o", self.output_gate)) if present]
        #: Blocks of the stacked input and recurrent weights: the block input z, then gates.
        self.blocks = ("z", *gates)
        self.input = nn.Linear(input_size, len(self.blocks) * hidden_size)
        self.recurrent = nn.Linear(hidden_size, len(self.blocks) * hidden_size, bias=False)
        bound = 1 / math.sqrt(hidden_size)  # nn.Linear's initial range
        self.peephole = nn.ParameterDict({
            gate: nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))
            for gate in (gates if self.peepholes else ())
        })
        if self.gate_recurrence:
            self.gate_recurrent = nn.Linear(3 * hidden_size, 3 * hidden_size, bias=False)

    def initial_state(self, batch_size: int, device, dtype) -> tuple[torch.Tensor, ...]:
        """y and c, and for FGR the previous step's gates [i, f, o]."""
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        if self.gate_recurrence:
            return zeros, zeros, torch.zeros(batch_size, 3 * self.hidden_size, device=device,
                                             dtype=dtype)
        return zeros, zeros

    def _gate(self, pre: dict[str, torch.Tensor], gate: str, cell: torch.Tensor) -> torch.Tensor:
        if gate in self.peephole:
            return torch.sigmoid(pre[gate] + self.peephole[gate] * cell)
        return torch.sigmoid(pre[gate])

    def activations(self, x: torch.Tensor, state: tuple[torch.Tensor, ...]) -> dict:
        """Every quantity of one step by the paper's name; a removed gate is None.

        `pre` holds the linear pre-activations of the blocks (before peepholes).
        """
        y, c = state[0], state[1]
        stacked = self.input(x) + self.recurrent(y)
        if self.gate_recurrence:
            gates = self.gate_recurrent(state[2])
            stacked = torch.cat([stacked[:, : self.hidden_size],
                                 stacked[:, self.hidden_size :] + gates], dim=-1)
        pre = dict(zip(self.blocks, stacked.chunk(len(self.blocks), dim=-1), strict=True))
        z = torch.tanh(pre["z"]) if self.input_activation else pre["z"]
        i = self._gate(pre, "i", c) if self.input_gate else None
        if self.coupled:
            f = 1 - i
        else:
            f = self._gate(pre, "f", c) if self.forget_gate else None
        written = z if i is None else z * i
        c_new = written + (c if f is None else c * f)
        o = self._gate(pre, "o", c_new) if self.output_gate else None
        shown = torch.tanh(c_new) if self.output_activation else c_new
        return {"pre": pre, "z": z, "i": i, "f": f, "o": o, "c": c_new,
                "y": shown if o is None else o * shown}

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, ...]):
        step = self.activations(x, state)
        new_state = (step["y"], step["c"])
        if self.gate_recurrence:
            new_state += (torch.cat([step["i"], step["f"], step["o"]], dim=-1),)
        return step["y"], new_state


class NIGStep(VanillaStep):
    """No input gate."""

    input_gate = False


class NFGStep(VanillaStep):
    """No forget gate."""

    forget_gate = False


class NOGStep(VanillaStep):
    """No output gate."""

    output_gate = False


class NIAFStep(VanillaStep):
    """No input activation function."""

    input_activation = False


class NOAFStep(VanillaStep):
    """No output activation function."""

    output_activation = False


class NPStep(VanillaStep):
    """No peepholes."""

    peepholes = False


class CIFGStep(VanillaStep):
    """Coupled input and forget gate."""

    coupled = True


class FGRStep(VanillaStep):
    """Full gate recurrence."""

    gate_recurrence = True


#: The paper's abbreviation of each variant -> its step class.
STEPS: dict[str, type[VanillaStep]] = {
    "vanilla": VanillaStep, "nig": NIGStep, "nfg": NFGStep, "nog": NOGStep, "niaf": NIAFStep,
    "noaf": NOAFStep, "np": NPStep, "cifg": CIFGStep, "fgr": FGRStep,
}
