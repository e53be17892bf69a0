"""Batches for Lightning without a DataLoader, in chunks.

Tasks hand over ready-made `Batch` objects (collated by the task, as tensors), so there is
no per-item collation, no worker processes and no sampler in the hot loop. Lightning
receives *chunks* of up to `STEPS_PER_CALL` consecutive batches; the model takes one
optimisation step per batch (see `model.py`), so chunking changes speed, never results.
Each pass over the training split gets a new, reproducible order: pass `p` of a run with
seed `s` is shuffled with seed `s * 1_000_003 + p`.
"""

from __future__ import annotations

from collections.abc import Iterator

from seqbench.contracts import Batch, TaskData

#: Batches per Lightning step. Lightning's per-step overhead (~0.5 ms on CPU) is paid once
#: per chunk; 8 makes it negligible for millisecond-sized batches while the progress bar
#: still moves several times a second for large ones.
STEPS_PER_CALL = 8


class SplitBatches:
    """A re-iterable, sized view of one split as chunks of batches, reshuffled per pass."""

    def __init__(
        self,
        data: TaskData,
        split: str,
        batch_size: int,
        seed: int | None = None,
        steps_per_call: int = STEPS_PER_CALL,
    ) -> None:
        self.data = data
        self.split = split
        self.batch_size = batch_size
        self.seed = seed
        self.steps_per_call = steps_per_call
        #: Passes started so far; a resumed run sets it to the epochs already trained.
        self.passes = 0

    @property
    def num_batches(self) -> int:
        """Batches per pass (what progress is counted in; `len` counts chunks)."""
        return self.data.num_batches(self.split, self.batch_size)

    def __len__(self) -> int:
        return -(-self.num_batches // self.steps_per_call)

    def __iter__(self) -> Iterator[list[Batch]]:
        seed = None if self.seed is None else self.seed * 1_000_003 + self.passes
        self.passes += 1
        chunk: list[Batch] = []
        for batch in self.data.batches(self.split, self.batch_size, seed):
            chunk.append(batch)
            if len(chunk) == self.steps_per_call:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
