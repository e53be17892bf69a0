"""The music task's check case: a few piano rolls whose metrics can be worked out by hand.

The test split is two pieces sharing key 40 (E3), the second also holding key 44 (G#3):
3 frames (2 predicted) and 5 frames (4 predicted). The prediction is "key 40 only", with
logit +20 on it and -20 on every other key. Per predicted frame the NLL is 88 sp where
sp = softplus(-20), plus 20 on each of the 4 frames that miss key 44, so the frame-weighted
NLL is 88 sp + 4 * 20 / 6 (an average of per-piece averages would give 10 + 88 sp), and the
frame accuracy is TP / (TP + FP + FN) = 6 / (6 + 0 + 4) = 0.6. One batch of both pieces also
checks that padding is masked out (the padded frames would add 20 each for key 40).
"""

from __future__ import annotations

import math

import numpy as np

from seqbench import CheckCase
from seqbench_tasks.music.pianoroll import NUM_KEYS


def _roll(frames: int, *keys: int) -> np.ndarray:
    roll = np.zeros((frames, NUM_KEYS), dtype=np.uint8)
    roll[:, list(keys)] = 1
    return roll


def _random_rolls(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [(rng.random((int(rng.integers(4, 10)), NUM_KEYS)) < 0.08).astype(np.uint8)
            for _ in range(count)]


def _key_40_only(batch):
    import torch

    logits = torch.full_like(batch.targets, -20.0)
    logits[..., 40] = 20.0
    return logits


def music_check_case() -> CheckCase:
    from seqbench_tasks.music.task import MusicData

    rng = np.random.default_rng(0)
    splits = {"train": _random_rolls(6, rng), "valid": _random_rolls(3, rng),
              "test": [_roll(3, 40), _roll(5, 40, 44)]}
    softplus = math.log1p(math.exp(-20.0))
    return CheckCase(
        data=MusicData("check", splits, steps_per_beat=1),
        predict=_key_40_only,
        expected={"nll": NUM_KEYS * softplus + 4 * 20.0 / 6, "frame_accuracy": 0.6},
        batch_size=2,
    )
