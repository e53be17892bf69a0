"""The speech task's check case: five test sequences whose label is read off their length.

The prediction at frame t (0-based) has logits (0, +ln 3) when t + 1 is odd and (0, -ln 3)
when it is even, so a sequence read at its last real frame gets p(class 1) = 3/4 if its
length is odd and 1/4 if it is even. Test lengths 3, 4, 5, 2, 6 with labels 1, 0, 0, 0, 0
are predicted 1, 0, 1, 0, 0: accuracy 4/5; class 0 has F1 2*3/(2*3 + 0 + 1) = 6/7 and
class 1 2*1/(2*1 + 1 + 0) = 2/3, macro-F1 16/21; four sequences cost ln(4/3) and one ln 4.
Batches of two pad the shorter sequence, so reading a padded frame changes the answer.
"""

from __future__ import annotations

import math

import numpy as np

from seqbench import CheckCase

FEATURES = 3


def _length_parity(batch):
    import torch

    steps = torch.arange(batch.inputs.shape[1])
    odd_length = (steps + 1) % 2 == 1
    class_1 = torch.where(odd_length, math.log(3), -math.log(3))
    logits = torch.stack([torch.zeros_like(class_1), class_1], -1)
    return logits.expand(batch.inputs.shape[0], -1, -1)


def speech_check_case() -> CheckCase:
    from seqbench_tasks.speech.datasets import Sequences
    from seqbench_tasks.speech.task import SpeechData

    rng = np.random.default_rng(0)

    def sequences(lengths, labels) -> Sequences:
        features = [rng.normal(size=(n, FEATURES)).astype(np.float32) for n in lengths]
        return Sequences(features, np.array(labels), ["zero", "one"])

    splits = {"train": sequences([4, 7, 5, 6, 3, 8, 5, 4, 6, 7], [0, 1] * 5),
              "test": sequences([3, 4, 5, 2, 6], [1, 0, 0, 0, 0])}
    return CheckCase(
        data=SpeechData("check", splits, valid_fraction=0.2, valid_seed=0, pooling="last"),
        predict=_length_parity,
        expected={"accuracy": 0.8, "macro_f1": 16 / 21,
                  "nll": (4 * math.log(4 / 3) + math.log(4)) / 5},
        batch_size=2,
    )
