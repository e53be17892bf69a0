"""Task checks on the data itself: splits, batches, shuffles, targets and classes.

A comparison is only as fair as its data: every cell must see the same examples, each with
its own targets, shuffled by the run's seed, scored on a test split that shares nothing
with training and holds the classes training saw.
"""

from __future__ import annotations

from collections import Counter

import torch

from seqbench.contracts import Batch, TaskData
from seqbench.testing.composing import check_stacks
from seqbench.testing.kit import CheckSkipped, expect
from seqbench.testing.task_subject import (
    BATCH_SIZE,
    SPLITS,
    TaskSubject,
    example_hashes,
    expect_declarations,
    row_hashes,
)

#: Rows `check_targets_follow_inputs` reads per split in batches of 1 (enough for small
#: datasets to be read whole, a bound for large ones).
PAIRS_READ = 2048
#: How far a stratified split's class count may be from its due share, in items.
STRATIFIED_SLACK = 2


def check_declarations(subject: TaskSubject) -> None:
    expect_declarations(subject.task)


def check_splits_nonempty(subject: TaskSubject) -> None:
    data, size = subject.data, subject.batch_size
    for split in SPLITS:
        count = sum(1 for _ in data.batches(split, size))
        expect(count > 0, f"a non-empty '{split}' split", "no batches")
        declared = data.num_batches(split, size)
        expect(declared == count, f"num_batches('{split}', {size}) == {count} (batches yielded)",
               f"{declared}")
    empty = {split: n for split, n in data.split_sizes().items() if n <= 0}
    expect(not empty, "split_sizes() > 0 for every split", f"{empty}")


def check_batches(subject: TaskSubject) -> None:
    for split in SPLITS:
        batch = subject.first_batch(split)
        expect(isinstance(batch, Batch), "batches to be seqbench.Batch objects",
               type(batch).__name__)
        rows = batch.inputs.shape[0]
        expect(batch.targets.shape[:1] == (rows,),
               f"targets with the inputs' batch size {rows} ('{split}')",
               f"targets of shape {tuple(batch.targets.shape)}")
        # A composed network's inputs and targets may differ in length (a source sentence
        # and its translation); its mask marks the real steps of either: the targets' for
        # a decoder (one output per target), the inputs' for CTC (one per input step).
        shapes = [tuple(batch.inputs.shape[:2])]
        if subject.task.composes_cells:
            shapes.append(tuple(batch.targets.shape[:2]))
        if batch.mask is not None:
            expect(batch.mask.dtype == torch.bool and tuple(batch.mask.shape) in shapes,
                   f"a bool mask of shape {' or '.join(map(str, dict.fromkeys(shapes)))} "
                   f"('{split}')", f"{batch.mask.dtype} of shape {tuple(batch.mask.shape)}")


def _training_pass(data: TaskData, size: int, seed: int) -> list[Batch]:
    return list(data.batches("train", size, seed=seed))


def _same(first: list[Batch], second: list[Batch]) -> bool:
    return len(first) == len(second) and all(
        torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
        for a, b in zip(first, second))


def check_shuffle_follows_seed(subject: TaskSubject) -> None:
    """The run's seed decides the training order, and only it: the same seed repeats an
    epoch exactly (resumed and repeated runs), another seed gives another order (the
    final seeds are meant to be independent runs). A task carrying state across batches
    reads its stream in order, so only the first half applies to it."""
    data, size = subject.data, subject.batch_size
    first, again = (_training_pass(data, size, seed=1) for _ in range(2))
    expect(_same(first, again), "the same training batches for the same shuffle seed",
           "different batches: the shuffle is not drawn from the seed")
    if subject.task.carry_state or sum(b.inputs.shape[0] for b in first) < 2:
        return
    expect(not _same(first, _training_pass(data, size, seed=2)),
           "another order of training examples for another shuffle seed (seeds 1 and 2)",
           "the same order: the shuffle ignores its seed")


def check_splits_disjoint(subject: TaskSubject) -> None:
    """Real corpora can repeat content across splits (newswire boilerplate in PTB repeats
    whole 20-token windows, the Bach chorales repeat a harmonisation), so the message gives
    the share, and `max_overlap` tolerates a known one; a copied split shows as 100%."""
    owner: dict[str, str] = {}  # content hash -> the first split it appeared in
    shared: list[str] = []
    total = 0
    for split in SPLITS:
        first_seen: dict[str, str] = {}
        for index, batch in enumerate(subject.data.batches(split, subject.batch_size)):
            for row, digest in enumerate(example_hashes(batch)):
                first_seen.setdefault(digest, f"{split} batch {index} row {row}")
                total += split != SPLITS[0]
        shared += [f"{where} is also in {owner[digest]}"
                   for digest, where in first_seen.items() if digest in owner]
        for digest in first_seen:
            owner.setdefault(digest, split)
    share = len(shared) / max(total, 1)
    allowed = (f"at most {subject.max_overlap:.1%} of the valid and test examples"
               if subject.max_overlap else "no example")
    expect(share <= subject.max_overlap,
           f"{allowed} (content hash of a batch row) in two splits",
           f"{len(shared)} of the {total} valid and test examples also in an earlier split "
           f"({share:.1%}), e.g. {shared[0] if shared else ''}")


def check_input_size(subject: TaskSubject) -> None:
    if subject.task.composes_cells:  # no encoder: the widths its stacks ask for instead
        check_stacks(subject)
        return
    data = subject.data
    expect(isinstance(data.input_size, int) and data.input_size > 0,
           "TaskData.input_size to be a positive int", repr(getattr(data, "input_size", None)))
    batch = subject.first_batch("train")
    features = data.modules(1, subject.params)[0](batch.inputs)
    wanted = (*batch.inputs.shape[:2], data.input_size)
    expect(tuple(features.shape) == wanted,
           f"encoder output [batch, time, input_size] = {wanted}", f"{tuple(features.shape)}")


def _pairs(data: TaskData, split: str, size: int, seed: int | None,
           limit: int | None = None) -> dict[str, str | None]:
    """{content hash of an example's inputs: hash of its targets} over the first `limit`
    rows (all without one), None where two examples with the same inputs have different
    targets (duplicates say nothing about pairing)."""
    pairs: dict[str, str | None] = {}
    read = 0
    for batch in data.batches(split, size, seed=seed):
        rows = batch.inputs.shape[0]
        for key, target in zip(row_hashes([batch.inputs], rows, batch.mask),
                               row_hashes([batch.targets], rows, batch.mask)):
            pairs[key] = target if pairs.get(key, target) == target else None
        read += rows
        if limit is not None and read >= limit:
            break
    return pairs


def check_targets_follow_inputs(subject: TaskSubject) -> None:
    """Each example keeps its own targets whatever the batch size and order: labels
    gathered with indices one off from the inputs' (or before a shuffle the inputs got)
    still give well-formed batches and a finite loss, and train nothing. The shuffled
    reading covers the whole split, so inputs that recur with other targets (a sentence
    translated twice) are known and left out."""
    compared, size = 0, subject.batch_size
    for split in SPLITS:
        alone = _pairs(subject.data, split, 1, None, PAIRS_READ)
        shuffled = _pairs(subject.data, split, size, 1)
        common = [key for key in alone if key in shuffled
                  and alone[key] is not None and shuffled[key] is not None]
        moved = sum(alone[key] != shuffled[key] for key in common)
        compared += len(common)
        expect(not moved, f"each example's targets to stay with its inputs whatever the batch "
               f"size and order ('{split}' read in batches of 1, then of {size} shuffled)",
               f"{moved} of {len(common)} examples with other targets: targets shifted "
               "against their inputs")
    if not compared:
        raise CheckSkipped(f"no example reads the same in batches of 1 and of {size} (a "
                           "stream cut by the batch size)")


def _labels(data: TaskData, split: str) -> Counter:
    return Counter(label for batch in data.batches(split, BATCH_SIZE)
                   for label in batch.targets.tolist())


def check_label_sets(subject: TaskSubject) -> None:
    """On the default dataset, for a task whose targets are one class per example: every
    class of the validation and test splits occurs in training, and the splits declared
    in `Task.stratified` hold each class in the pool's share (within 2 items). A split
    cut from data sorted by label passes every other check and scores a model on classes
    it never saw, or on a share that favours some cells."""
    real = subject.real
    first = real.first_batch("train")
    if first.targets.dim() != 1 or first.targets.dtype.is_floating_point:
        raise CheckSkipped("the targets are not one class label per example")
    counts = {split: _labels(real.data, split) for split in SPLITS}
    for split in SPLITS[1:]:
        unseen = sorted(set(counts[split]) - set(counts["train"]))
        expect(not unseen, f"every class of '{split}' to occur in 'train'",
               f"classes {unseen} only in '{split}': a split sorted by label?")
    for split in subject.task.stratified:
        pool = counts["train"] + counts[split]
        size, whole = sum(counts[split].values()), sum(pool.values())
        due = {label: size * count / whole for label, count in pool.items()}
        worst = max(due, key=lambda label: abs(counts[split][label] - due[label]))
        expect(abs(counts[split][worst] - due[worst]) <= STRATIFIED_SLACK,
               f"'{split}' stratified by class as Task.stratified declares (each class's "
               f"count within {STRATIFIED_SLACK} of its share of train + {split})",
               f"class {worst}: {counts[split][worst]} of {size} where {due[worst]:.1f} were "
               "due: a split sorted by label, or drawn without stratifying?")
