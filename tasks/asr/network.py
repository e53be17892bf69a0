"""The transcriber: stacks of the run's cell reading MFCC steps, a per-step label readout.

Unidirectional: one stack reads the utterance forwards. Bidirectional (Graves et al. 2006's
BLSTM, for any cell): a second, independent stack reads it backwards, and the readout sees
both stacks' outputs at every step. Each direction is a whole stack of the run's depth;
the directions meet only at the readout (the contract's cell factory builds whole stacks,
so the layers of one direction do not see the other direction's lower layers).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from seqbench import Batch


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence of `x[B, T, ...]` reversed within its own length, padding left in place.

    Flipping the padded tensor would start a short utterance's backward pass on padding
    frames; reversing only the real steps makes the backward stack see the same inputs
    whatever the batch's longest utterance is. Applied twice it gives `x` back, which is how
    the backward outputs are put back in time order.
    """
    steps = torch.arange(x.shape[1], device=x.device)
    last = lengths.to(x.device).unsqueeze(1) - 1
    index = torch.where(steps <= last, last - steps, steps)
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


class Transcriber(nn.Module):
    """`forward(batch)` gives per-step log-probabilities over blank + labels `[B, T, K + 1]`."""

    def __init__(self, cells: Callable[[int], nn.Module], input_size: int, hidden_size: int,
                 labels: int, bidirectional: bool) -> None:
        super().__init__()
        self.forwards = cells(input_size)
        self.backwards = cells(input_size) if bidirectional else None
        self.readout = nn.Linear(hidden_size * (2 if bidirectional else 1), labels + 1)

    def forward(self, batch: Batch) -> torch.Tensor:
        ahead, _ = self.forwards(batch.inputs)
        if self.backwards is not None:
            lengths = batch.mask.sum(1)
            behind, _ = self.backwards(reverse_within(batch.inputs, lengths))
            ahead = torch.cat([ahead, reverse_within(behind, lengths)], -1)
        return self.readout(ahead).log_softmax(-1)
