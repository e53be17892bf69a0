"""The one batching rule: counts agree with the batches, every item once, seeded order."""

from __future__ import annotations

import numpy as np
import pytest

from seqbench import batch_count, batch_rows


@pytest.mark.parametrize("items,size", [(0, 4), (1, 4), (8, 4), (9, 4), (31, 7)])
def test_the_count_is_the_number_of_batches_and_every_item_appears_once(items, size):
    for seed, lengths, bucket in ((None, None, 0), (3, None, 0), (3, np.arange(items) % 5, 2)):
        rows = batch_rows(items, size, seed, lengths, bucket)
        assert len(rows) == batch_count(items, size)
        flat = np.concatenate(rows).tolist() if rows else []
        assert sorted(flat) == list(range(items))
        assert all(1 <= len(r) <= size for r in rows)


def test_unseeded_order_is_stored_order_or_shortest_first():
    assert [r.tolist() for r in batch_rows(5, 2)] == [[0, 1], [2, 3], [4]]
    assert [r.tolist() for r in batch_rows(4, 2, lengths=[9, 1, 5, 3])] == [[1, 3], [2, 0]]


def test_a_seed_gives_a_reproducible_permutation_that_changes_with_the_seed():
    first = np.concatenate(batch_rows(50, 8, seed=1))
    assert np.array_equal(first, np.concatenate(batch_rows(50, 8, seed=1)))
    assert not np.array_equal(first, np.concatenate(batch_rows(50, 8, seed=2)))
    assert np.array_equal(first, np.random.default_rng(1).permutation(50))


def test_buckets_hold_items_of_similar_length():
    lengths = np.random.default_rng(0).integers(1, 100, size=64)
    rows = batch_rows(64, 4, seed=0, lengths=lengths, bucket=16)
    spread = np.mean([np.ptp(lengths[r]) for r in rows])
    unbucketed = np.mean([np.ptp(lengths[r]) for r in batch_rows(64, 4, seed=0)])
    assert spread < unbucketed / 3
