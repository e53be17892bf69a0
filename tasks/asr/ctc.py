"""CTC decoding and scoring: best-path and prefix beam search, label error rate.

Label ids are 1..K; 0 is the CTC blank (as `torch.nn.CTCLoss(blank=0)` expects). A
decoder turns per-step log-probabilities `[T, K + 1]` of one utterance into label ids.

The prefix beam search is written here (about thirty lines) rather than taken from a
library: torchaudio's decoder (flashlight-text) is built against its own torch release and
has none for torch 2.13, and pyctcdecode (last release 2023) decodes to text through a
language-model interface and pulls in hypothesis and pygtrie. The label error rate is
rapidfuzz's Levenshtein distance (the engine jiwer itself uses), taken on label ids rather
than text so that no text normalisation (jiwer strips and merges spaces) changes a
transcript whose alphabet contains a space.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

BLANK = 0
#: Symbols below this probability at a step are not tried as extensions of a prefix (the
#: character pruning of Hannun et al. 2014): CTC outputs are peaky, so this saves most of
#: the work and changes no decision a beam of reasonable width would make.
PRUNE_LOG_PROB = math.log(1e-4)


def logsumexp(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) for two floats (math is several times faster than numpy on
    scalars, and the beam search makes millions of these calls per test split)."""
    if a < b:
        a, b = b, a
    return a if b == -math.inf else a + math.log1p(math.exp(b - a))


def greedy(best: Sequence[int]) -> list[int]:
    """Best-path decoding of one utterance's per-step argmax: merge repeats, drop blanks."""
    out = []
    previous = BLANK
    for label in best:
        if label != BLANK and label != previous:
            out.append(int(label))
        previous = label
    return out


def prefix_beam_search(log_probs: np.ndarray, width: int) -> list[int]:
    """The most probable labelling among the `width` best prefixes kept at every step
    (Graves 2012, §7.3; Hannun et al. 2014), for log-probabilities `[T, K + 1]`.

    Each prefix carries the probability of the paths that produce it and end in a blank
    and of those that end in its last label, so that "a a" (a repeat merged) and "a _ a"
    (two labels) are told apart. Unlike the best path, it sums over every alignment of a
    labelling, so several likely paths to one labelling can beat a single likeliest path.
    """
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}
    for step in log_probs:
        step = step.tolist()
        tried = [label for label in range(1, len(step)) if step[label] >= PRUNE_LOG_PROB]
        following: dict[tuple[int, ...], list[float]] = {}

        def add(prefix: tuple[int, ...], ends_blank: bool, value: float) -> None:
            scores = following.setdefault(prefix, [-math.inf, -math.inf])
            scores[not ends_blank] = logsumexp(scores[not ends_blank], value)

        for prefix, (blank, label_end) in beams.items():
            total = logsumexp(blank, label_end)
            add(prefix, True, total + step[BLANK])
            for label in tried:
                if prefix and prefix[-1] == label:
                    add(prefix, False, label_end + step[label])  # a repeat merges
                    add(prefix + (label,), False, blank + step[label])  # a blank between
                else:
                    add(prefix + (label,), False, total + step[label])
        ranked = sorted(following.items(), key=lambda item: -logsumexp(*item[1]))
        beams = {prefix: tuple(scores) for prefix, scores in ranked[:width]}
    return list(max(beams.items(), key=lambda item: logsumexp(*item[1]))[0])


def decode(log_probs, lengths, decoder: str, width: int) -> list[list[int]]:
    """Label ids of every utterance of a batch: log-probabilities `[B, T, K + 1]` (a
    tensor), each utterance read up to its own length."""
    if decoder == "greedy":
        best = log_probs.argmax(-1).cpu().numpy()
        return [greedy(row[:length]) for row, length in zip(best, lengths.tolist())]
    values = log_probs.detach().float().cpu().numpy()
    return [prefix_beam_search(row[:length], width) for row, length in
            zip(values, lengths.tolist())]


def edit_distance(reference: Sequence[int], hypothesis: Sequence[int]) -> int:
    """Insertions, deletions and substitutions turning `hypothesis` into `reference`."""
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(list(reference), list(hypothesis))
