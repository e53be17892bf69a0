"""The language-modelling task's check case: a 4-token stream whose perplexity is known.

Vocabulary {a, b, c, d} = ids 0-3. The prediction after token i gives probability 1/2 to
token (i + 1) mod 4 and 1/6 to each of the other three. The test stream a b c d a c d has 6
predicted tokens; every step follows the rule except a -> c, so the NLL per token is
(5 ln 2 + ln 6) / 6. With bptt 4 the stream is two windows (4 targets, then 2), so this also
catches a dropped last window (ln 2) and an average of window averages, which differ.
"""

from __future__ import annotations

import math

import numpy as np

from seqbench import CheckCase

VOCAB = ["a", "b", "c", "d"]


def _successor_half(batch):
    """Logits of p(next = input + 1 mod 4) = 1/2, 1/6 for every other token."""
    import torch

    logits = torch.full((*batch.inputs.shape, len(VOCAB)), math.log(1 / 6))
    successor = ((batch.inputs + 1) % len(VOCAB)).unsqueeze(-1)
    return logits.scatter(-1, successor, math.log(1 / 2))


def lm_check_case() -> CheckCase:
    from seqbench_tasks.lm.corpus import Streams
    from seqbench_tasks.lm.task import LanguageData

    # Train and valid windows share no (input, target) row with the test windows.
    ids = {"train": [3, 3, 2, 2, 1, 1, 0, 0, 3, 2, 1, 0], "valid": [1, 0, 3, 2, 2, 1],
           "test": [0, 1, 2, 3, 0, 2, 3]}
    streams = Streams({split: np.array(s, dtype=np.int64) for split, s in ids.items()},
                      VOCAB, "word")
    nll = (5 * math.log(2) + math.log(6)) / 6
    return CheckCase(
        data=LanguageData("check", streams, {"bptt": 4, "emb_size": 8}, eval_window=4),
        predict=_successor_half,
        expected={"nll": nll, "ppl": math.exp(nll)},
        batch_size=2,
    )
