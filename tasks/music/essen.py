"""Essen folk tunes: 8,462 monophonic melodies from music21's copy of the Essen Folksong
Collection (Schaffrath 1995), as piano rolls; offline, like the Bach chorales.

The collection (German, other European and Chinese folk songs, in ABC notation) is the
classic corpus of melody modelling (Conklin & Witten 1995; Pearce & Wiggins 2004). The
encoding is the Bach set's with a finer grid: one frame per eighth note, since the tunes
move mostly in eighths and quarters (in ballad40.abc, 46% of the notes are eighths, 38%
quarters, 6% sixteenths); a sixteenth that starts between two frames is not seen, as in
every fixed-grid roll. Tunes are 12-1,392 frames long (median 72). Each
tune is transposed to C major or C minor by its notated key (the ABC `K:` field), which
the collection gives for every tune, so no key analysis is needed.

music21's copy holds 8,514 tunes in 31 files; the four `test*.abc` files (52 tunes) are
variants of a single song and are left out, since they would put near-copies of one tune
in training and test. The split is a stable hash of each tune's file and number (80/10/10:
6,753 / 857 / 852 tunes), so it is the same on every machine. Building the rolls parses
every ABC file (about 5-7 minutes on one core), once; they are then read from the cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqbench import DataContext, SeqbenchError, cached, content_key
from seqbench.userdata import hash_split
from seqbench_tasks.music.bach import MAX_FAILED_FRACTION, chorale_to_roll
from seqbench_tasks.music.pianoroll import shift_to_c

#: Bump when the encoding changes so stale caches are rebuilt.
ENCODING_VERSION = 1
#: Frames per quarter note: eighth-note frames.
STEPS_PER_QUARTER = 2
#: The collection's folder in music21's corpus, and the files left out (see above).
CORPUS_FOLDER = "essenFolksong"
VARIANT_FILES = "test"


def tune_files() -> list[Path]:
    from music21 import corpus

    return sorted(p for p in corpus.getPaths(fileExtensions=("abc",))
                  if p.parent.name == CORPUS_FOLDER and not p.name.startswith(VARIANT_FILES))


def transposition_to_c(tune) -> int:
    """Semitones that move the tune's notated tonic to C (a key signature without a mode
    is read as major)."""
    from music21 import key

    signatures = tune.flatten().getElementsByClass(key.KeySignature)
    if not signatures:
        return 0
    notated = signatures[0]
    tonic = notated.tonic if isinstance(notated, key.Key) else notated.asKey("major").tonic
    return shift_to_c(tonic.pitchClass)


def tune_to_roll(tune) -> np.ndarray:
    """One tune in C, sampled at every eighth note."""
    return chorale_to_roll(tune, transposition_to_c(tune), STEPS_PER_QUARTER)


def _build(paths: list[Path], context: DataContext) -> dict[str, list[np.ndarray]]:
    from music21 import converter

    splits: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    failed: list[str] = []
    tunes = 0
    for path in context.progress("Building Essen folk-tune piano rolls", paths, len(paths)):
        try:
            scores = converter.parse(path).scores
        except Exception as exc:  # music21 raises many types for a bad file; count them
            failed.append(f"{path.name} ({type(exc).__name__})")
            continue
        for number, tune in enumerate(scores, start=1):
            tunes += 1
            try:
                roll = tune_to_roll(tune)
            except Exception as exc:  # one unreadable tune must not lose the collection
                failed.append(f"{path.name} tune {number} ({type(exc).__name__})")
                continue
            if roll.any():
                splits[hash_split(f"{path.stem}/{number}")].append(roll)
    if not tunes or len(failed) > MAX_FAILED_FRACTION * tunes:
        raise SeqbenchError(
            f"music21 could not read {len(failed)} of the Essen files and tunes (e.g. "
            f"{', '.join(failed[:3])}); is the music21 install complete?")
    return splits


def load_essen(context: DataContext) -> dict[str, list[np.ndarray]]:
    """The Essen rolls per split, built once and then read from the cache."""
    import music21

    paths = tune_files()
    if not paths:
        raise SeqbenchError("music21's corpus has no Essen folk songs; reinstall music21.")
    key = content_key("essen", ENCODING_VERSION, music21.__version__,
                      [(p.name, p.stat().st_size) for p in paths])
    return cached(context.cache_dir / f"essen-{key}.pkl", lambda: _build(paths, context))
