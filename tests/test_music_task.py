"""The music task's batching, loss and metrics on hand-checkable cases."""

import math

import numpy as np
import pytest
import torch

from seqbench_tasks.music.task import MusicData


def roll(*frames):
    out = np.zeros((len(frames), 88), dtype=np.uint8)
    for t, keys in enumerate(frames):
        out[t, list(keys)] = 1
    return out


def data_with(train, valid=None, test=None):
    valid = valid or train
    test = test or train
    return MusicData("hand", {"train": train, "valid": valid, "test": test})


def test_batches_pair_each_frame_with_the_next_and_mask_the_padding():
    short, long = roll({1}, {2}), roll({3}, {4}, {5}, {6})
    (batch,) = list(data_with([short, long]).batches("valid", batch_size=2))
    assert batch.inputs.shape == (2, 3, 88)
    assert batch.mask.tolist() == [[True, False, False], [True, True, True]]
    assert batch.inputs[1, :, 3:7].argmax(-1).tolist() == [0, 1, 2]
    assert batch.targets[1, :, 3:7].argmax(-1).tolist() == [1, 2, 3]
    assert batch.targets[0, 0, 2] == 1


def test_nll_is_summed_over_keys_and_averaged_over_real_frames():
    data = data_with([roll({0}, {0}, set())])
    (batch,) = list(data.batches("test", batch_size=1))
    outputs = torch.zeros(1, 2, 88)
    outputs[0, 0, 0] = math.log(3.0)  # p(key 0 on) = 0.75, and it is on
    stats = data.statistics(outputs, batch)
    metrics = data.metrics({k: float(v) for k, v in stats.items()})
    expected = (-math.log(0.75) + 87 * math.log(2) + 88 * math.log(2)) / 2
    assert abs(metrics["nll"] - expected) < 1e-5
    assert abs(float(data.loss(outputs, batch)) - expected) < 1e-5


def test_padding_does_not_change_the_statistics():
    a, b = roll({1}, {2}, {3}), roll({4}, {5}, {6}, {7}, {8}, {9})
    outputs_for = lambda batch: torch.where(batch.inputs > 0, 2.0, -2.0)  # noqa: E731
    together = data_with([a, b])
    (joint,) = list(together.batches("test", batch_size=2))
    joint_stats = together.statistics(outputs_for(joint), joint)
    separate = [data_with([x]) for x in (a, b)]
    sums = {}
    for d in separate:
        (single,) = list(d.batches("test", batch_size=1))
        for k, v in d.statistics(outputs_for(single), single).items():
            sums[k] = sums.get(k, 0.0) + float(v)
    assert {k: float(v) for k, v in joint_stats.items()} == pytest.approx(sums, rel=1e-6)


def test_frame_accuracy_counts_true_and_false_positives_and_misses():
    data = data_with([roll({0, 1}, {0, 1})])
    (batch,) = list(data.batches("test", batch_size=1))
    outputs = torch.full((1, 1, 88), -5.0)
    outputs[0, 0, 0] = 5.0  # hit
    outputs[0, 0, 2] = 5.0  # false positive; key 1 is a miss
    stats = {k: float(v) for k, v in data.statistics(outputs, batch).items()}
    assert (stats["tp"], stats["fp"], stats["fn"]) == (1, 1, 1)
    assert data.metrics(stats)["frame_accuracy"] == 1 / 3


def test_training_order_is_shuffled_reproducibly_and_covers_every_piece():
    pieces = [roll(*[{i}] * (2 + i % 5)) for i in range(20)]
    data = data_with(pieces)

    def order(seed):
        return [tuple(b.inputs[:, 0].argmax(-1).tolist()) for b in data.batches("train", 4, seed)]

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(k for batch in order(1) for k in batch) == list(range(20))
