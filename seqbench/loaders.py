"""Batches for Lightning without a DataLoader.

Tasks hand over ready-made `Batch` objects (collated once, as tensors), so there is no
per-item collation, no worker processes and no sampler in the hot loop. Each pass over the
training split gets a new, reproducible order: epoch `e` of a run with seed `s` is
shuffled with seed `s * 1_000_003 + e`.
"""

from __future__ import annotations

from collections.abc import Iterator

from seqbench.contracts import Batch, TaskData


class SplitBatches:
    """A re-iterable, sized view of one split, reshuffled on every pass when `seed` is set."""

    def __init__(self, data: TaskData, split: str, batch_size: int, seed: int | None = None):
        self.data = data
        self.split = split
        self.batch_size = batch_size
        self.seed = seed
        self._passes = 0

    def __len__(self) -> int:
        return self.data.num_batches(self.split, self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        seed = None if self.seed is None else self.seed * 1_000_003 + self._passes
        self._passes += 1
        return iter(self.data.batches(self.split, self.batch_size, seed))
