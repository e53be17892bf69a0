"""One batching rule for every dataset: which items form each batch, and how many batches.

Every task and the throughput benchmark used to hand-write the same ceil-divide-and-shuffle
loop, next to a separate `num_batches` that had to agree with it by hand (the conformance
kit exists partly to catch the day they do not). Here the count is derived from the same
rule that cuts the batches, so the two cannot drift apart, and a dataset only says how many
items a split has and how to collate a few of them.

Order: without a seed, items come in their stored order (or shortest first when lengths are
given, which minimises padding for evaluation); with a seed, in a reproducible permutation.
`bucket=k` sorts every window of `k` batches' worth of items by length before cutting and
then shuffles the batches, so most padding disappears while batch composition still changes
from pass to pass.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from seqbench.contracts import Batch, PluginContractError, TaskData

if TYPE_CHECKING:  # numpy is imported where batches are cut: `import seqbench` stays light
    import numpy as np


def batch_count(items: int, batch_size: int) -> int:
    """How many batches of at most `batch_size` cover `items` items (the last may be short)."""
    return -(-items // batch_size)


def batch_rows(items: int, batch_size: int, seed: int | None = None,
               lengths: Sequence[int] | None = None, bucket: int = 0) -> list[np.ndarray]:
    """The item indices of every batch, in the order the batches are read."""
    import numpy as np

    if lengths is not None:
        lengths = np.asarray(lengths)
    if seed is None:
        order = np.arange(items) if lengths is None else np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, items, batch_size)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(items)
    if lengths is None or not bucket:
        return [order[i : i + batch_size] for i in range(0, items, batch_size)]
    groups = []
    window = batch_size * bucket
    for start in range(0, items, window):
        part = order[start : start + window]
        part = part[np.argsort(lengths[part], kind="stable")]
        groups += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return [groups[i] for i in rng.permutation(len(groups))]


class IndexedData(TaskData):
    """A `TaskData` whose splits are lists of items: `num_batches` and `batches` come free.

    Subclass it instead of `TaskData` and give `items(split)` and `collate(split, rows)`;
    `lengths(split)` (per-item lengths) and the class attribute `bucket` turn on
    length-sorted evaluation order and bucketed training batches.
    """

    #: Batches' worth of items sorted by length together when shuffling (0 = no bucketing).
    bucket: int = 0

    def __setattr__(self, name: str, value: object) -> None:
        # `self.lengths = {...}` in `__init__` hides the method, and the first batch then
        # fails with "'dict' object is not callable" far from the line that caused it.
        if name in ("items", "collate", "lengths") and not callable(value):
            raise PluginContractError(
                f"{type(self).__name__} sets self.{name} to a {type(value).__name__}, which "
                f"hides IndexedData's method {name}(split); keep the value under another name "
                f"(e.g. self._{name}) and return it from {name}(split).")
        super().__setattr__(name, value)

    @abstractmethod
    def items(self, split: str) -> int:
        """Number of items (sequences, windows) in `split`."""

    @abstractmethod
    def collate(self, split: str, rows: np.ndarray) -> Batch:
        """One batch made of the items at indices `rows` of `split`."""

    def lengths(self, split: str) -> Sequence[int] | None:
        """Per-item lengths, or None when order by length does not matter."""
        return None

    def num_batches(self, split: str, batch_size: int) -> int:
        return batch_count(self.items(split), batch_size)

    def batches(self, split: str, batch_size: int, seed: int | None = None) -> Iterator[Batch]:
        for rows in batch_rows(self.items(split), batch_size, seed, self.lengths(split),
                               self.bucket):
            yield self.collate(split, rows)
