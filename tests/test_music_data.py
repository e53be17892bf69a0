"""The music encoding and the dataset loaders: known pieces, both file forms, bad files."""

from __future__ import annotations

import pickle
from pathlib import Path

import mido
import numpy as np
import pytest

from seqbench import DataContext, SeqbenchError
from seqbench_tasks.music import bach, datasets
from seqbench_tasks.music.midi_folder import load_midi_folder
from seqbench_tasks.music.pianoroll import MAX_BEATS, midi_to_roll, roll_to_midi, steps_to_roll


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


def write_mat_set(path: Path, splits, **options) -> Path:
    """Rolls per split as a TCN `.mat` file (one 1 x N cell array per split)."""
    from scipy.io import savemat

    cells = {}
    for split in datasets.SPLITS:
        cell = np.empty((1, len(splits[split])), dtype=object)
        for i, roll in enumerate(splits[split]):
            cell[0, i] = roll
        cells[f"{split}data"] = cell
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, cells, **options)
    return path


def test_pickle_and_mat_forms_load_to_the_same_rolls(tmp_path, tiny_benchmark):
    pickled = tmp_path / "a"
    write_pickle_set(pickled, tiny_benchmark.pickle_name, tiny_benchmark.sizes)
    from_pickle = datasets.load_splits("jsb", context(pickled, tmp_path / "cache-a"))

    write_mat_set(tmp_path / "b" / datasets.FOLDER / "tcn-mat" / tiny_benchmark.mat_name,
                  from_pickle)
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


@pytest.mark.parametrize("pitch, problem", [
    (float("inf"), "pitch inf at step 0 is not a whole MIDI note number"),
    (float("nan"), "pitch nan at step 0 is not a whole MIDI note number"),
    (60.5, "pitch 60.5 at step 0 is not a whole MIDI note number"),
    (1e300, "at step 0 is outside the piano range"),
], ids=["inf", "nan", "fraction", "huge"])
def test_a_pickle_with_a_bad_pitch_is_a_one_line_error(tmp_path, tiny_benchmark, pitch, problem):
    path = write_pickle_set(tmp_path, tiny_benchmark.pickle_name, tiny_benchmark.sizes, pitch)
    with pytest.raises(SeqbenchError) as info:
        datasets.load_splits("jsb", context(tmp_path, tmp_path / "cache"))
    message = str(info.value)
    assert str(path) in message and problem in message and "\n" not in message


def test_whole_number_floats_and_numpy_integers_are_pitches():
    assert np.array_equal(steps_to_roll([[60.0, np.int64(64), np.float32(67)]]),
                          steps_to_roll([[60, 64, 67]]))


def damaged_mat(path: Path, damage: str) -> None:
    """A `.mat` file that is empty, a bare header, or compressed with its checksum flipped."""
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "bare header":
        path.write_bytes(b"MATLAB 5.0 MAT-file garbage")
    else:
        roll = steps_to_roll([[60], [64], []])
        write_mat_set(path, {split: [roll] for split in datasets.SPLITS}, do_compression=True)
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["empty", "bare header", "bad checksum"])
def test_a_damaged_mat_file_is_a_one_line_error(tmp_path, tiny_benchmark, damage):
    path = tmp_path / datasets.FOLDER / "tcn-mat" / tiny_benchmark.mat_name
    path.parent.mkdir(parents=True)
    damaged_mat(path, damage)
    with pytest.raises(SeqbenchError, match="is not a readable piano-roll .mat file") as info:
        datasets.load_splits("jsb", context(tmp_path, tmp_path / "cache"))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def write_division(path: Path, division: bytes) -> Path:
    """A one-note MIDI file whose header's time division is the two bytes `division`."""
    roll_to_midi(steps_to_roll([[60], [60]]), path)
    data = bytearray(path.read_bytes())
    data[12:14] = division
    path.write_bytes(bytes(data))
    return path


def write_one_note(path: Path, beats: int) -> Path:
    """Middle C held for `beats` beats, at one tick per beat."""
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=80, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=beats)])
    midi = mido.MidiFile(ticks_per_beat=1)
    midi.tracks.append(track)
    midi.save(path)
    return path


@pytest.mark.parametrize("division, problem", [
    (b"\x00\x00", "has 0 ticks per beat in its header"),
    (b"\xe7\x28", "SMPTE time division is not supported"),  # 25 frames/s, 40 ticks a frame
], ids=["zero", "smpte"])
def test_a_midi_header_without_a_beat_grid_is_refused(tmp_path, division, problem):
    path = write_division(tmp_path / "piece.mid", division)
    with pytest.raises(SeqbenchError, match=problem) as info:
        midi_to_roll(path, steps_per_beat=4)
    assert str(path) in str(info.value)


def test_a_midi_piece_longer_than_the_cap_is_refused_before_its_roll_is_made(tmp_path):
    longest = write_one_note(tmp_path / "longest.mid", MAX_BEATS)
    assert midi_to_roll(longest, steps_per_beat=2).shape == (2 * MAX_BEATS, 88)
    beyond = write_one_note(tmp_path / "beyond.mid", MAX_BEATS + 1)
    with pytest.raises(SeqbenchError, match=f"is {MAX_BEATS + 1:,} beats long") as info:
        midi_to_roll(beyond, steps_per_beat=2)
    assert str(beyond) in str(info.value)


def test_skip_bad_skips_midi_files_without_a_usable_beat_grid(tmp_path):
    folder = tmp_path / "midi"
    for split in datasets.SPLITS:
        (folder / split).mkdir(parents=True)
        roll_to_midi(steps_to_roll([[60], [62], [64]]), folder / split / "good.mid")
    write_division(folder / "train" / "no-beats.mid", b"\x00\x00")
    write_division(folder / "train" / "smpte.mid", b"\xe7\x28")
    write_one_note(folder / "train" / "endless.mid", MAX_BEATS + 1)
    params = {"path": str(folder), "steps_per_beat": 4, "transpose": "none", "skip_bad": True}
    pieces, _ = load_midi_folder(params, context(tmp_path, tmp_path / "cache"))
    assert sorted(pieces.skipped) == ["train/endless.mid", "train/no-beats.mid",
                                      "train/smpte.mid"]
    assert pieces.names == {split: [f"{split}/good.mid"] for split in datasets.SPLITS}


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
