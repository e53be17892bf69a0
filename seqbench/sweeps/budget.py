"""Matched parameter counts (Chung et al. 2014): each cell gets the hidden size that brings
the whole model (encoder + cell + head) closest to a common budget without exceeding it.

A GRU has 3/4 of an LSTM's recurrent weights at equal width, so comparing equal hidden sizes
favours the LSTM by capacity; comparing equal parameter counts does not.
"""

from __future__ import annotations

from collections.abc import Callable

from seqbench import registry
from seqbench.config import RunSpec
from seqbench.contracts import TaskData
from seqbench.errors import SeqbenchError

MAX_HIDDEN = 16_384


def parameter_count(spec: RunSpec, data: TaskData) -> int:
    """Trainable parameters of the spec's model, built on the meta device (no memory used)."""
    import torch

    from seqbench.model import SequenceModel, count_parameters

    with torch.device("meta"):
        model = SequenceModel(registry.get_task(spec.task), data, registry.get_cell(spec.cell),
                              spec)
    return count_parameters(model)


def hidden_size_for(spec: RunSpec, data: TaskData, budget: int) -> int:
    """Largest hidden size whose model has at most `budget` parameters (binary search)."""

    def count(hidden: int) -> int:
        return parameter_count(spec.with_settings({"hidden_size": hidden}), data)

    if count(1) > budget:
        raise SeqbenchError(
            f"--param-budget {budget} is too small for cell '{spec.cell}' on this task: even "
            f"hidden_size=1 has {count(1)} parameters."
        )
    return largest_width_within(count, budget)


def largest_width_within(count: Callable[[int], int], budget: int) -> int:
    """Largest hidden size in 1..MAX_HIDDEN whose `count` is at most `budget` (binary search;
    `count` grows with the width), or 1 if none is."""
    low, high = 1, MAX_HIDDEN
    while low < high:
        middle = (low + high + 1) // 2
        if count(middle) <= budget:
            low = middle
        else:
            high = middle - 1
    return low
