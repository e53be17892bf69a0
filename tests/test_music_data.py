"""The music encoding and the dataset loaders: known pieces, both file forms, bad files."""

from __future__ import annotations

import pickle
from pathlib import Path

import mido
import numpy as np
import pytest

from seqbench import DataContext, SeqbenchError
from seqbench_tasks.music import bach, datasets
from seqbench_tasks.music.pianoroll import midi_to_roll, roll_to_midi, steps_to_roll


def context(data_dir: Path, cache_dir: Path) -> DataContext:
    return DataContext(data_dir=data_dir, cache_dir=cache_dir)


def test_a_tiny_piece_becomes_the_known_roll():
    roll = steps_to_roll([[60, 64, 67], [], [21, 108]])
    assert roll.shape == (3, 88) and roll.dtype == np.uint8
    assert np.flatnonzero(roll[0]).tolist() == [39, 43, 46]  # C4 E4 G4
    assert roll[1].sum() == 0
    assert np.flatnonzero(roll[2]).tolist() == [0, 87]  # A0 and C8, the piano's ends


@pytest.mark.parametrize("pitch", [20, 109])
def test_pitches_off_the_piano_are_rejected(pitch):
    with pytest.raises(ValueError, match=f"pitch {pitch} at step 0"):
        steps_to_roll([[pitch]])


def test_chorale_sampling_and_transposition_to_c():
    from music21 import chord, note, stream

    part = stream.Part()
    part.append(chord.Chord(["D4", "F#4", "A4"], quarterLength=2))  # D major, two beats
    part.append(note.Note("E4", quarterLength=0.5))  # a passing eighth on beat 3...
    part.append(note.Note("F#4", quarterLength=0.5))  # ...and its neighbour, off the beat
    part.append(note.Note("D4", quarterLength=1))
    score = stream.Score([part])
    shift = bach.transposition_to_c(score)
    assert shift == -2  # D -> C is down a whole tone
    roll = bach.chorale_to_roll(score, shift)
    c4 = 60 - 21
    assert [np.flatnonzero(frame).tolist() for frame in roll] == [
        [c4, c4 + 4, c4 + 7], [c4, c4 + 4, c4 + 7], [c4 + 2], [c4]
    ]


def test_midi_round_trip_keeps_notes_and_holds(tmp_path):
    roll = steps_to_roll([[60, 64], [60, 64], [60], [], [72]])
    path = roll_to_midi(roll, tmp_path / "piece.mid", tempo_bpm=90, steps_per_beat=2)
    midi = mido.MidiFile(path)
    onsets = [m.note for m in midi if m.type == "note_on" and m.velocity > 0]
    assert sorted(onsets) == [60, 64, 72]  # held keys are one note, not one per step
    assert np.array_equal(midi_to_roll(path, steps_per_beat=2), roll[[0, 1, 2, 3, 4]])


def write_pickle_set(folder: Path, name: str, sizes, pitch: int = 60) -> Path:
    piece = [[pitch], [pitch, pitch + 4], []]
    raw = {split: [piece] * size for split, size in zip(datasets.SPLITS, sizes)}
    path = folder / datasets.FOLDER / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(raw, protocol=2))
    return path


@pytest.fixture
def tiny_benchmark(monkeypatch):
    """Pretend JSB has 3/2/1 pieces, so tiny synthetic files pass the structure check."""
    real = datasets.CANONICAL["jsb"]
    fake = datasets.Canonical(real.title, real.pickle_name, real.mat_name, real.mat_sha256,
                              (3, 2, 1))
    monkeypatch.setitem(datasets.CANONICAL, "jsb", fake)
    return fake


def test_pickle_and_mat_forms_load_to_the_same_rolls(tmp_path, tiny_benchmark):
    from scipy.io import savemat

    pickled = tmp_path / "a"
    write_pickle_set(pickled, tiny_benchmark.pickle_name, tiny_benchmark.sizes)
    from_pickle = datasets.load_splits("jsb", context(pickled, tmp_path / "cache-a"))

    matted = tmp_path / "b" / datasets.FOLDER / "tcn-mat" / tiny_benchmark.mat_name
    matted.parent.mkdir(parents=True)
    cells = {}
    for split in datasets.SPLITS:
        cell = np.empty((1, len(from_pickle[split])), dtype=object)
        for i, roll in enumerate(from_pickle[split]):
            cell[0, i] = roll
        cells[f"{split}data"] = cell
    savemat(matted, cells)
    from_mat = datasets.load_splits("jsb", context(tmp_path / "b", tmp_path / "cache-b"))

    for split in datasets.SPLITS:
        assert len(from_mat[split]) == len(from_pickle[split]) == dict(
            zip(datasets.SPLITS, tiny_benchmark.sizes))[split]
        for a, b in zip(from_pickle[split], from_mat[split]):
            assert np.array_equal(a, b)


def test_a_file_with_the_wrong_split_sizes_is_refused(tmp_path, tiny_benchmark):
    write_pickle_set(tmp_path, tiny_benchmark.pickle_name, (3, 2, 2))
    with pytest.raises(SeqbenchError, match=r"has 3/2/2 train/valid/test pieces, but JSB "
                                            r"Chorales has 3/2/1"):
        datasets.load_splits("jsb", context(tmp_path, tmp_path / "cache"))


def test_a_corrupt_file_is_a_one_line_error(tmp_path, tiny_benchmark):
    path = tmp_path / datasets.FOLDER / tiny_benchmark.pickle_name
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a pickle")
    with pytest.raises(SeqbenchError, match="not a readable piano-roll pickle") as info:
        datasets.load_splits("jsb", context(tmp_path, tmp_path / "cache"))
    assert "\n" not in str(info.value)


def test_offline_and_absent_names_both_forms_and_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQBENCH_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(SeqbenchError) as info:
        datasets.load_splits("nottingham", context(tmp_path, tmp_path / "cache"))
    message = str(info.value)
    assert "'Nottingham.pickle'" in message and "tcn-mat/Nottingham.mat" in message
    assert str(tmp_path / datasets.FOLDER) in message and "\n" not in message


def test_bach_is_built_once_then_read_from_the_cache(tmp_path, monkeypatch):
    from music21 import corpus

    every = bach.chorale_paths()
    chosen = [next(p for p in every if bach.split_of(p) == s) for s in ("train", "valid", "test")]
    monkeypatch.setattr(bach, "chorale_paths", lambda: chosen)
    parsed = []
    monkeypatch.setattr(corpus, "parse", lambda p, _parse=corpus.parse: parsed.append(p) or _parse(p))
    shown = []

    def progress(description, items, total=None):
        shown.append((description, total))
        return items

    ctx = DataContext(data_dir=tmp_path, cache_dir=tmp_path / "cache", progress=progress)
    first = datasets.load_splits("bach", ctx)
    second = datasets.load_splits("bach", ctx)
    assert len(parsed) == 3 and shown == [("Building Bach chorale piano rolls", 3)]
    for split in datasets.SPLITS:
        (roll,) = first[split]
        assert np.array_equal(roll, second[split][0]) and roll.shape[1] == 88
        assert 3 <= roll.sum(axis=1).max() <= 6  # four voices (sometimes doubled)


def test_the_bach_split_is_a_stable_hash_of_the_file_name():
    paths = bach.chorale_paths()
    counts = {s: sum(bach.split_of(p) == s for p in paths) for s in datasets.SPLITS}
    assert len(paths) >= 400
    assert counts["train"] > 0.7 * len(paths) and min(counts.values()) > 0.05 * len(paths)
    assert bach.split_of(Path("x/bwv1.6.mxl")) == bach.split_of(Path("y/bwv1.6.mxl"))


@pytest.mark.realdata
@pytest.mark.parametrize("name, steps", [("jsb", (13_807, 4_602, 4_725)),
                                         ("nottingham", (176_561, 45_513, 44_463))])
def test_canonical_sets_have_the_published_splits(real_data_dir, tmp_path, name, steps):
    splits = datasets.load_splits(name, context(real_data_dir, tmp_path))
    assert tuple(len(splits[s]) for s in datasets.SPLITS) == datasets.CANONICAL[name].sizes
    assert tuple(sum(len(r) for r in splits[s]) for s in datasets.SPLITS) == steps


@pytest.mark.realdata
def test_the_canonical_pickle_and_the_tcn_mat_agree(real_data_dir):
    jsb = datasets.CANONICAL["jsb"]
    folder = real_data_dir / datasets.FOLDER
    from_pickle = datasets.read_pickle(folder / jsb.pickle_name)
    from_mat = datasets.read_mat(folder / "tcn-mat" / jsb.mat_name)
    for split in datasets.SPLITS:
        assert all(np.array_equal(a, b) for a, b in zip(from_pickle[split], from_mat[split]))
    assert np.flatnonzero(from_pickle["train"][0][0]).tolist() == [p - 21 for p in (60, 72, 79, 88)]


@pytest.mark.slow
def test_the_full_bach_set_builds(tmp_path):
    splits = datasets.load_splits("bach", context(tmp_path, tmp_path / "cache"))
    assert sum(len(v) for v in splits.values()) >= 400
    assert min(len(v) for v in splits.values()) >= 40
