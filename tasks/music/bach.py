"""The offline default dataset: piano rolls built from music21's Bach chorale corpus.

It ships with music21, so `seqbench run --cell lstm --task music` trains on real music with
no download. The encoding follows the JSB Chorales benchmark: one frame per quarter note
(what sounds at each beat), every piece transposed to C major or C minor, 88 keys.
The split is a hash of the file name, so it is the same on every machine and does not
move when music21 adds or removes pieces.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from seqbench import DataContext, SeqbenchError, cached, content_key
from seqbench_tasks.music.pianoroll import LOWEST_PITCH, NUM_KEYS, shift_to_c

#: Bump when the encoding changes so stale caches are rebuilt.
ENCODING_VERSION = 1
#: Score formats in the corpus (the `.rntxt` files are harmonic analyses, not music).
SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn")
#: More unreadable files than this fraction means something is wrong with the install.
MAX_FAILED_FRACTION = 0.05


def chorale_paths() -> list[Path]:
    from music21 import corpus

    return sorted(p for p in corpus.getComposer("bach") if p.suffix in SCORE_SUFFIXES)


def split_of(path: Path) -> str:
    """80/10/10 train/valid/test by a stable hash of the file name."""
    bucket = hashlib.sha1(path.name.encode()).digest()[0] % 10
    return "test" if bucket == 0 else "valid" if bucket == 1 else "train"


def transposition_to_c(score) -> int:
    """Semitones that move the analysed tonic to C, choosing the smaller move (-6..+5)."""
    return shift_to_c(score.analyze("key").tonic.pitchClass)


def chorale_to_roll(score, transpose: int = 0, steps_per_quarter: int = 1) -> np.ndarray:
    """Sample `score` `steps_per_quarter` times per quarter note (the chorales: once, at
    every beat): a key is on if a note sounds at the sampling point."""
    notes = list(score.flatten().notes)
    length = int(np.ceil(float(score.highestTime) * steps_per_quarter))
    roll = np.zeros((length, NUM_KEYS), dtype=np.uint8)
    for element in notes:
        start = float(element.offset) * steps_per_quarter
        end = start + float(element.quarterLength) * steps_per_quarter
        beats = np.arange(np.ceil(start), min(np.ceil(end), length), dtype=int)
        for pitch in element.pitches:
            key = pitch.midi + transpose - LOWEST_PITCH
            if 0 <= key < NUM_KEYS:
                roll[beats, key] = 1
    return roll


def _build(paths: list[Path], context: DataContext) -> dict[str, list[np.ndarray]]:
    from music21 import corpus

    splits: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    failed: list[str] = []
    for path in context.progress("Building Bach chorale piano rolls", paths, len(paths)):
        try:
            score = corpus.parse(path)
            roll = chorale_to_roll(score, transposition_to_c(score))
        except Exception as exc:  # music21 raises many types for a bad file; count them
            failed.append(f"{path.name} ({type(exc).__name__})")
            continue
        if roll.any():
            splits[split_of(path)].append(roll)
    if len(failed) > MAX_FAILED_FRACTION * len(paths):
        raise SeqbenchError(
            f"music21 could not read {len(failed)} of {len(paths)} Bach chorales "
            f"(e.g. {', '.join(failed[:3])}); is the music21 install complete?"
        )
    return splits


def load_bach(context: DataContext) -> dict[str, list[np.ndarray]]:
    """The Bach chorale rolls, built once (about half a minute) and then read from the cache."""
    import music21

    paths = chorale_paths()
    if not paths:
        raise SeqbenchError("music21's corpus has no Bach chorales; reinstall music21.")
    key = content_key("bach", ENCODING_VERSION, music21.__version__, [p.name for p in paths])
    return cached(context.cache_dir / f"bach-{key}.pkl", lambda: _build(paths, context))
