"""The speech datasets, as variable-length feature sequences with integer labels.

* `japanese-vowels`: 9 speakers saying /ae/, 12 LPC cepstrum coefficients per frame, 7-29
  frames (Kudo et al. 1999; UCI). Loaded with aeon's own loader from the copy aeon ships,
  so it works offline; the official split is 270 train / 370 test.
* `fsdd`: the Free Spoken Digit Dataset, 3,000 8 kHz recordings of digits by 6 speakers.
  MFCCs come from the shared front end (`audio.py`: librosa, 13 coefficients, 25 ms
  windows, 10 ms hop) and are cached; the official split puts recordings 0-4 of each digit
  and speaker in the test set.
* `digits`: scikit-learn's 8x8 handwritten digits as 64-step pixel sequences, a long-range
  memory test that runs offline (`load_digits`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from seqbench import DataContext, SeqbenchError, cached, content_key
from seqbench_tasks.speech.audio import FSDD_NAME, N_MFCC, SAMPLE_RATE, fsdd_recordings, mfcc


@dataclass
class Sequences:
    """Feature sequences `[T_i, F]` (float32) with integer labels and their names, and the
    sequences' ids where the data has them (the user's files)."""

    features: list[np.ndarray]
    labels: np.ndarray
    classes: list[str]
    ids: list[str] = field(default_factory=list)


def load_japanese_vowels() -> dict[str, Sequences]:
    """The official train/test split, frames as rows (aeon stores channels first)."""
    from aeon.datasets import load_classification

    splits = {}
    classes: list[str] | None = None
    for split in ("train", "test"):
        try:
            X, y = load_classification("JapaneseVowels", split=split)
        except Exception as exc:  # aeon raises several types when its copy is missing
            raise SeqbenchError(f"aeon could not load JapaneseVowels ({exc}); reinstall aeon.") \
                from None
        classes = classes or sorted(set(map(str, y)), key=int)
        splits[split] = Sequences(
            features=[np.ascontiguousarray(np.asarray(x, dtype=np.float32).T) for x in X],
            labels=np.array([classes.index(str(label)) for label in y]),
            classes=classes,
        )
    return splits


def load_fsdd(context: DataContext) -> dict[str, Sequences]:
    """MFCC sequences per recording, digits as labels, the README's official split."""
    paths = fsdd_recordings(context)

    def build() -> dict[str, Sequences]:
        splits: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
        for path in context.progress("Computing FSDD MFCCs", paths, len(paths)):
            digit, _, index = FSDD_NAME.search(path.name).groups()
            features, labels = splits["test" if int(index) <= 4 else "train"]
            features.append(mfcc(path))
            labels.append(int(digit))
        classes = [str(d) for d in range(10)]
        return {name: Sequences(f, np.array(y), classes) for name, (f, y) in splits.items()}

    key = content_key("fsdd", N_MFCC, SAMPLE_RATE, [p.name for p in paths],
                      sum(p.stat().st_size for p in paths))
    return cached(context.cache_dir / f"fsdd-{key}.pkl", build)


def load_digits() -> dict[str, Sequences]:
    """scikit-learn's 8x8 handwritten digits read pixel by pixel, row by row: 64 steps of one
    feature (intensity 0-16), a label at the end. Sequential MNIST (Le et al. 2015) in
    miniature: the class depends on strokes spread over the whole sequence, so it tests
    memory over 64 steps, and the 1,797 images ship with scikit-learn (offline).

    The images have no official split (they are the UCI set's test half), so a stratified
    20% is the test split, drawn by scikit-learn's `train_test_split` with a fixed seed.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    images, labels = sklearn_digits(return_X_y=True)
    ids = np.arange(len(labels))
    train, test = train_test_split(ids, test_size=0.2, stratify=labels, random_state=0)
    classes = [str(d) for d in range(10)]
    return {name: Sequences(
        features=[images[i].reshape(64, 1).astype(np.float32) for i in rows],
        labels=labels[rows], classes=classes, ids=[f"digit-{i}" for i in rows])
        for name, rows in (("train", np.sort(train)), ("test", np.sort(test)))}


LOADERS = {"japanese-vowels": lambda context: load_japanese_vowels(), "fsdd": load_fsdd,
           "digits": lambda context: load_digits()}
DATASETS = {
    "japanese-vowels": "Japanese Vowels: 9 speakers, 12 LPC cepstra, 270 train / 370 test "
                       "(ships with aeon, offline)",
    "fsdd": "Free Spoken Digit Dataset: 10 digits, 6 speakers, 13 MFCCs, 2700 / 300",
    "digits": "sequential digits: scikit-learn's 8x8 digits read pixel by pixel (64 steps, "
              "1 feature), 1437 / 360 (ships with scikit-learn, offline)",
    "csv": "your long-format CSV: a sequence id, a label and feature columns, one row per "
           "frame (--set path=FILE [--set test=FILE] [--set id=COL] [--set label=COL])",
    "ts": "your UCR/UEA .ts file, read by aeon (--set path=TRAIN.ts [--set test=TEST.ts])",
}
