"""The adding problem (Hochreiter & Schmidhuber 1997, experiment 4), in its common modern form.

Each step carries two numbers: a value drawn uniformly from [0, 1] and a marker that is 1 at
exactly two steps and 0 elsewhere, one marked step in each half of the sequence (Le et al.
2015; Arjovsky et al. 2016). The target, read after the last step, is the sum of the two
marked values. The first marked value must be held for at least T/2 steps while T - 2
distractors go by, which is what makes the task long-range: predicting the mean sum 1.0
always scores the variance of a sum of two uniforms, 2/12 = 0.167 MSE.
"""

from __future__ import annotations

import numpy as np

#: Fixed generator seeds, so every run (and every cell) sees exactly the same sequences.
SPLIT_SEEDS = {"train": 1, "valid": 2, "test": 3}


def make_sequences(count: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` sequences `float32[count, length, 2]` (value, marker) and their targets."""
    rng = np.random.default_rng([seed, length])
    values = rng.random((count, length), dtype=np.float32)
    half = length // 2
    first = rng.integers(0, half, size=count)
    second = rng.integers(half, length, size=count)
    markers = np.zeros((count, length), dtype=np.float32)
    rows = np.arange(count)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1), targets.astype(np.float32)


def from_marked(values: list[float], marked: tuple[int, int]) -> tuple[np.ndarray, float]:
    """One hand-written sequence: its inputs `[T, 2]` and its target."""
    markers = np.zeros(len(values), dtype=np.float32)
    markers[list(marked)] = 1.0
    inputs = np.stack([np.asarray(values, dtype=np.float32), markers], axis=-1)
    return inputs, float(sum(values[i] for i in marked))
