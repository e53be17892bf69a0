"""The task's ready-made batches as ordinary DataLoaders, shared out across processes.

Tasks hand over collated `Batch` objects (`TaskData.batches(split, batch_size, seed)`), so
the loader is a standard `torch.utils.data.DataLoader` over an `IterableDataset` of those
batches with `batch_size=None`: no per-item collation, no worker processes, and Lightning
sees a loader like any other (lengths, progress, device transfer).

An item is a list of up to `BATCHES_PER_ITEM` consecutive batches (in training, one
optimisation step each: `SequenceModel.training_step`), like Keras' `steps_per_execution`:
Lightning's machinery around a batch (fetcher, hooks, progress, optimizer wrappers) costs
about 0.7 ms here, a fifth of an epoch on small models such as Japanese Vowels, and a list
of 8 pays it once per 8 batches (benchmarks/throughput.py measures both). The steps, their
order and their numbers are exactly those of one batch per item.

Order: epoch `e` (0-based) of a run with seed `s` shuffles with `order_seed(s, e)`, child
`e` of numpy's `SeedSequence(s)`, so the order is a pure function of the seed and the
epoch (a resumed run needs nothing restored for it) and each epoch's seed is independent
of the others and of torch's generator. Runs record the seeds they used (`order_seeds` in
metrics.json). Validation and test batches come in the task's fixed order.

Many processes (DDP): every rank cuts the same list of batches into contiguous blocks, one
per rank. Contiguous, so a task that carries state across consecutive windows carries it
within each block, and per-item test scores gathered in rank order keep the
single-process order. Each training block has ceil(N / ranks) batches, the last rank
wrapping round to the first batches as DistributedSampler pads, because DDP averages
gradients at every step and a rank with a step fewer would wait forever. Evaluation blocks
cover each batch exactly once; a rank short of batches gets a copy marked as not counted
(its statistics are zeros), so every rank still runs the same steps. An item's entries are
therefore `(batch, counted)` pairs; every rank's share has the same length, so every rank's
items hold the same number of batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, IterableDataset

from seqbench.contracts import Batch, TaskData

#: Batches per item (in training, optimisation steps); see the module's docstring.
BATCHES_PER_ITEM = 8


def order_seed(seed: int, epoch: int) -> int:
    """The seed that shuffles epoch `epoch` (0-based) of a run seeded with `seed`: child
    `epoch` of `numpy.random.SeedSequence(seed)`, as a 32-bit integer (which every
    generator a task may use accepts)."""
    import numpy as np

    return int(np.random.SeedSequence(seed, spawn_key=(epoch,)).generate_state(1)[0])


def world() -> tuple[int, int]:
    """(this process's rank, number of processes) of the running job; (0, 1) alone."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def block(batches: int, rank: int, ranks: int, pad: bool) -> tuple[range, list[int | None]]:
    """What rank `rank` of `ranks` reads from a list of `batches`: its contiguous share,
    then padding up to ceil(batches / ranks) steps, either the first batches again (`pad`,
    for training) or None, a step that counts nothing (evaluation)."""
    share = -(-batches // ranks)
    if pad:
        start = min(rank * share, batches)
        own = range(start, min(start + share, batches))
        return own, list(range(share - len(own)))
    own = range(rank * batches // ranks, (rank + 1) * batches // ranks)
    return own, [None] * (share - len(own))


class SplitBatches(IterableDataset):
    """One split as `(batch, counted)` pairs: this rank's share, reshuffled every epoch."""

    def __init__(self, data: TaskData, split: str, batch_size: int,
                 seed: int | None = None) -> None:
        self.data = data
        self.split = split
        self.batch_size = batch_size
        self.seed = seed
        #: The epoch about to be read (set by `EpochOrder` before each training epoch).
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _share(self) -> tuple[range, list[int | None]]:
        total = self.data.num_batches(self.split, self.batch_size)
        return block(total, *world(), pad=self.seed is not None) if total else (range(0), [])

    def __len__(self) -> int:
        own, padding = self._share()
        return len(own) + len(padding)

    def __iter__(self) -> Iterator[tuple[Batch, bool]]:
        """Streams this rank's own batches as the task yields them, keeping only the few
        that padding repeats."""
        own, padding = self._share()
        filler = own.start if own else 0
        kept = {filler if position is None else position: None for position in padding}
        last = max([*own, *kept], default=-1)
        seed = None if self.seed is None else order_seed(self.seed, self.epoch)
        for position, batch in enumerate(self.data.batches(self.split, self.batch_size, seed)):
            if position in kept:
                kept[position] = batch
            if position in own:
                yield batch, True
            if position >= last:
                break
        for position in padding:
            yield kept[filler if position is None else position], position is not None


class Items(IterableDataset):
    """A split's `(batch, counted)` pairs in lists of up to `size` consecutive ones."""

    def __init__(self, batches: SplitBatches, size: int) -> None:
        self.batches = batches
        self.size = size

    def set_epoch(self, epoch: int) -> None:
        self.batches.set_epoch(epoch)

    @property
    def num_batches(self) -> int:
        """Batches in this rank's share (what a progress bar counts)."""
        return len(self.batches)

    def __len__(self) -> int:
        return -(-self.num_batches // self.size)

    def __iter__(self) -> Iterator[list[tuple[Batch, bool]]]:
        item: list[tuple[Batch, bool]] = []
        for pair in self.batches:
            item.append(pair)
            if len(item) == self.size:
                yield item
                item = []
        if item:
            yield item


def _as_is(item: Any) -> Any:
    """The loader's collate function: items are batched already (a plain function, so the
    loader stays picklable)."""
    return item


def loader(data: TaskData, split: str, batch_size: int, seed: int | None = None) -> DataLoader:
    """A DataLoader of `split` in lists of up to `BATCHES_PER_ITEM` `(batch, counted)`
    pairs: given a `seed`, in the training order (reshuffled every epoch), without one in
    the split's fixed order.

    It gets a generator of its own: every iterator a DataLoader starts draws a seed for its
    (here absent) worker processes, and drawn from the global generator that draw would
    shift dropout's random numbers by one per epoch and per evaluation. A resumed run
    starts its first iterator before the resume point's generators are restored, so it
    would then drop out differently from the uninterrupted run."""
    import torch

    return DataLoader(Items(SplitBatches(data, split, batch_size, seed), BATCHES_PER_ITEM),
                      batch_size=None, collate_fn=_as_is, generator=torch.Generator())


class EpochOrder(Callback):
    """Tells the training loader which epoch starts: Lightning calls `set_epoch` on samplers,
    which an iterable dataset does not have."""

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        dataset = getattr(trainer.train_dataloader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(trainer.current_epoch)
