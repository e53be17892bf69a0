"""The asr task's check case: two test strings whose metrics are worked out by hand.

Alphabet "ab" (label ids 1 and 2; 0 is the CTC blank). The test references are "ab" (4
model steps) and "abab" (6 steps). At every step the prediction gives 1/2 to one symbol
and 1/4 to each of the other two; the favoured symbols spell the best paths "a _ b _"
(decoded "ab": no edit) and "a a _ _ _ _" (decoded "a": three labels missing). So the
label error rate is (0 + 3) / (2 + 4) = 0.5, where the mean of the two strings' rates
would be 0.375 (what a task averaging batch rates gives: the batches hold one string
each); string accuracy is 1/2. The CTC loss per label needs, for each reference, the
probability of every path of its length that collapses to it: `path_probability`
enumerates all 3^T paths (81 and 729), independently of the forward algorithm that
`torch.nn.functional.ctc_loss` runs.
"""

from __future__ import annotations

import itertools
import math

from seqbench import CheckCase
from seqbench.params import resolve

ALPHABET = "ab"
#: MFCC coefficients per 10 ms frame, as the speech front end computes them.
COEFFICIENTS = 13
#: (transcript, model steps) per utterance; each is long enough for CTC to emit it.
UTTERANCES = {
    "train": [("ab", 3), ("ba", 4), ("aab", 5), ("b", 2), ("bab", 4), ("a", 3)],
    "valid": [("ba", 3), ("aa", 4)],
    "test": [("ab", 4), ("abab", 6)],
}
#: The favoured symbol at each step of each test string's prediction (0: blank).
FAVOURED = {"ab": (1, 0, 2, 0), "abab": (1, 1, 0, 0, 0, 0)}
FAVOURED_PROB, OTHER_PROB = 0.5, 0.25


def path_probability(reference: str, favoured: tuple[int, ...]) -> float:
    """The probability that a path drawn step by step from the prediction collapses
    (repeats merged, blanks dropped) to `reference`: the sum over all 3^T paths."""
    from seqbench_tasks.asr.ctc import greedy

    labels = [ALPHABET.index(symbol) + 1 for symbol in reference]
    return sum(math.prod(FAVOURED_PROB if symbol == best else OTHER_PROB
                         for symbol, best in zip(path, favoured))
               for path in itertools.product(range(len(ALPHABET) + 1), repeat=len(favoured))
               if greedy(path) == labels)


def asr_check_case() -> CheckCase:
    import numpy as np
    import torch

    from seqbench_tasks.asr.task import AsrData, AsrTask
    from seqbench_tasks.asr.utterances import Utterances

    params = resolve(AsrTask.params, {}, "task 'asr'")
    frames = params["stack"]
    generator = np.random.default_rng(0)
    splits = {split: Utterances(
        features=[generator.standard_normal((steps * frames, COEFFICIENTS)).astype(np.float32)
                  for _, steps in specs],
        transcripts=[text for text, _ in specs],
        names=[f"{split}-{index}" for index in range(len(specs))])
        for split, specs in UTTERANCES.items()}
    data = AsrData("check", splits, ALPHABET, params)

    def predict(batch):
        outputs = torch.full((*batch.inputs.shape[:2], len(ALPHABET) + 1), math.log(OTHER_PROB))
        for row, (labels, length) in enumerate(zip(batch.targets,
                                                   batch.extra["target_lengths"].tolist())):
            for step, symbol in enumerate(FAVOURED[data.text(labels[:length].tolist())]):
                outputs[row, step, symbol] = math.log(FAVOURED_PROB)
        return outputs

    labels = sum(len(reference) for reference in FAVOURED)
    nll = -sum(math.log(path_probability(reference, favoured))
               for reference, favoured in FAVOURED.items())
    return CheckCase(data=data, predict=predict, batch_size=1,
                     expected={"ler": 3 / labels, "string_accuracy": 0.5,
                               "ctc_loss": nll / labels})
