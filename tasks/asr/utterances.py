"""What the asr task's datasets produce: per split, MFCC frames and a transcript per utterance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLITS = ("train", "valid", "test")


@dataclass
class Utterances:
    """One split: MFCC frames `[T_i, 13]` (float32), the transcript and a name per utterance
    (a file name for your recordings, a generated string's id for fsdd-connected)."""

    features: list[np.ndarray]
    transcripts: list[str]
    names: list[str]
