"""Your own data in every task: files the tests write, run end to end, and bad files refused.

Each format gets `run`, `generate` and a tiny `sweep` on generated files (tiny hidden size,
two epochs), plus `seqbench data`; every bad file gives one `error:` line and exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np
import pytest

from seqbench.cli import main

FAST = ["--epochs", "2", "--hidden-size", "4"]


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error(code: int, err: str, message: str) -> None:
    """Exit 2 and exactly one `error:` line naming the problem (a progress bar may precede
    it on stderr; a traceback may not)."""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert message in errors[0], errors[0]


# --- file writers -------------------------------------------------------------------------


def write_midi(path: Path, pitches, *, channel=0, key=None, beats=0.5, midi_type=1) -> Path:
    """A one-track MIDI file playing `pitches` one after another, `beats` quarter notes each."""
    midi = mido.MidiFile(type=midi_type, ticks_per_beat=96)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    if key:
        track.append(mido.MetaMessage("key_signature", key=key))
    ticks = int(96 * beats)
    for pitch in pitches:
        track.append(mido.Message("note_on", note=pitch, velocity=80, channel=channel, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, channel=channel,
                                  time=ticks))
    if midi_type == 2:
        midi.tracks.append(mido.MidiTrack())
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(path)
    return path


def midi_folder(root: Path, pieces: int = 24) -> Path:
    """`pieces` short scales and arpeggios in D major, enough for every split of the hash."""
    rng = np.random.default_rng(0)
    for index in range(pieces):
        steps = rng.choice([0, 2, 4, 7, 9], size=int(rng.integers(12, 24)))
        write_midi(root / f"piece-{index:02d}.mid", (62 + steps).tolist(), key="D")
    return root


# --- end to end ---------------------------------------------------------------------------


def end_to_end(capsys, tmp_path: Path, task: str, dataset: str, settings: list[str],
               generated: str) -> dict:
    """`data`, `run`, `generate` and a tiny `sweep` on one user dataset; the run's metrics."""
    sets = [a for s in settings for a in ("--set", s)]
    code, out, err = cli(capsys, "data", "--task", task, "--dataset", dataset, *sets)
    assert code == 0, err
    assert "train" in out and "test" in out and "cache:" in out

    runs = tmp_path / "runs"
    code, out, err = cli(capsys, "run", "--task", task, "--dataset", dataset, "--cell", "gru",
                         "--output-dir", runs, "--quiet", *FAST, *sets)
    assert code == 0, err
    (run_dir,) = runs.iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert all(np.isfinite(v) for k, v in metrics.items() if k.startswith("test_")
               and isinstance(v, float))
    record = json.loads((run_dir / "split.json").read_text())
    assert record["how"] and set(record["items"]) == {"train", "valid", "test"}

    code, out, err = cli(capsys, "generate", run_dir)
    assert code == 0, err
    assert list((run_dir / "generated").glob(generated)), out

    code, out, err = cli(capsys, "sweep", "--task", task, "--dataset", dataset, "--cells", "rnn",
                         "--trials", "1", "--seeds", "1", "--epochs", "1", "--output-dir",
                         tmp_path / "sweep", *sets, "--set", "hidden_size=4")
    assert code == 0, err
    return metrics


def test_a_midi_folder_runs_generates_and_sweeps(capsys, tmp_path):
    folder = midi_folder(tmp_path / "midi")
    metrics = end_to_end(capsys, tmp_path, "music", "midi",
                         [f"path={folder}", "transpose=c", "steps_per_beat=2"], "sample-*.mid")
    sizes = metrics["split_sizes"]
    assert sum(sizes.values()) == 24 and min(sizes.values()) >= 1


def test_midi_sub_folders_are_the_split_and_the_record_names_every_file(capsys, tmp_path):
    for split, count in (("train", 4), ("valid", 2), ("test", 2)):
        for index in range(count):
            write_midi(tmp_path / "m" / split / f"{split}{index}.mid", [60, 62, 64, 65])
    code, out, err = cli(capsys, "run", "--task", "music", "--dataset", "midi", "--cell", "rnn",
                         "--set", f"path={tmp_path / 'm'}", "--output-dir", tmp_path / "runs",
                         "--quiet", "--epochs", "1", "--hidden-size", "4")
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "split.json").read_text())
    assert record["items"] == {"train": [f"train/train{i}.mid" for i in range(4)],
                               "valid": ["valid/valid0.mid", "valid/valid1.mid"],
                               "test": ["test/test0.mid", "test/test1.mid"]}


def test_midi_reading_ignores_drums_counts_notes_off_the_piano_and_transposes(tmp_path):
    from seqbench_tasks.music.midi_folder import read_piece

    path = tmp_path / "a.mid"
    midi = mido.MidiFile(type=1, ticks_per_beat=96)
    melody, drums = mido.MidiTrack(), mido.MidiTrack()
    midi.tracks += [melody, drums]
    melody.append(mido.MetaMessage("key_signature", key="Eb"))
    for pitch in (63, 67, 10, 70):  # Eb G (below A0) Bb
        melody.append(mido.Message("note_on", note=pitch, velocity=80, time=0))
        melody.append(mido.Message("note_off", note=pitch, velocity=0, time=96))
    drums.append(mido.Message("note_on", note=36, velocity=90, channel=9, time=0))
    drums.append(mido.Message("note_off", note=36, velocity=0, channel=9, time=96))
    midi.save(path)
    piece, moved = read_piece(path, steps_per_beat=1, transpose=True)
    assert moved and piece.outside == 1 and piece.drum_notes == 1
    assert [np.flatnonzero(row).tolist() for row in piece.roll] == [[60 - 21], [64 - 21], [],
                                                                      [67 - 21]]  # C E - G


def test_a_corrupt_file_can_be_skipped_and_is_counted(capsys, tmp_path):
    folder = midi_folder(tmp_path / "midi")
    (folder / "broken.mid").write_bytes(b"MThd garbage")
    code, out, err = cli(capsys, "data", "--task", "music", "--dataset", "midi",
                         "--set", f"path={folder}", "--set", "skip_bad=true")
    assert code == 0, err
    assert "1 files skipped: broken.mid" in out


# --- bad files: one `error:` line, exit 2 -------------------------------------------------


def bad_midi(tmp_path: Path, case: str) -> tuple[list[str], str]:
    """(settings, expected message fragment) for one broken MIDI folder."""
    folder = tmp_path / "midi"
    if case == "missing-path":
        return [], "needs --set path="
    if case == "no-such-folder":
        return [f"path={folder}"], "does not exist"
    folder.mkdir()
    if case == "a-file-not-a-folder":
        return [f"path={write_midi(folder / 'one.mid', [60, 62])}"], "is not a folder"
    if case == "no-midi":
        (folder / "notes.txt").write_text("la la")
        return [f"path={folder}"], "no MIDI files"
    midi_folder(folder)
    broken = {
        "corrupt": lambda p: p.write_bytes(b"not a midi file at all"),
        "truncated": lambda p: p.write_bytes(write_midi(p, [60, 62, 64]).read_bytes()[:30]),
        "empty": lambda p: write_midi(p, []),
        "all-drums": lambda p: write_midi(p, [36, 38, 36, 38], channel=9),
        "too-short": lambda p: write_midi(p, [60], beats=0.25),
        "off-the-piano": lambda p: write_midi(p, [5, 7, 9]),
        "type-2": lambda p: write_midi(p, [60, 62], midi_type=2),
    }
    if case in broken:
        broken[case](folder / "zz-bad.mid")
        return [f"path={folder}", "transpose=c"], "zz-bad.mid"
    if case == "half-the-sub-folders":
        (folder / "train").mkdir()
        (folder / "test").mkdir()
        return [f"path={folder}"], "no valid/"
    if case == "empty-valid-sub-folder":
        for split in ("train", "valid", "test"):
            (folder / split).mkdir()
        write_midi(folder / "train" / "a.mid", [60, 62])
        write_midi(folder / "test" / "b.mid", [60, 62])
        return [f"path={folder}"], "no usable valid pieces"
    if case == "everything-skipped":
        for path in folder.glob("*.mid"):
            path.write_bytes(b"junk")
        return [f"path={folder}", "skip_bad=true"], "no usable train pieces"
    assert case == "path-on-another-dataset"
    return [f"path={folder}"], "applies to dataset 'midi'"


MIDI_CASES = ["missing-path", "no-such-folder", "a-file-not-a-folder", "no-midi", "corrupt",
              "truncated", "empty", "all-drums", "too-short", "off-the-piano", "type-2",
              "half-the-sub-folders", "empty-valid-sub-folder",
              "everything-skipped", "path-on-another-dataset"]


@pytest.mark.parametrize("case", MIDI_CASES)
def test_a_bad_midi_folder_is_one_error_line_and_exit_2(capsys, tmp_path, case):
    settings, message = bad_midi(tmp_path, case)
    dataset = "bach" if case == "path-on-another-dataset" else "midi"
    code, out, err = cli(capsys, "data", "--task", "music", "--dataset", dataset,
                         *[a for s in settings for a in ("--set", s)])
    assert_one_error(code, err, message)


# --- lm: your text ------------------------------------------------------------------------


def write_text(path: Path, lines: int = 300, seed: int = 0) -> Path:
    """Simple sentences from a small vocabulary, so every split sees known words."""
    words = "the cat sat on a mat and then the dog ran off to see what the bird had done".split()
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(" ".join(rng.choice(words, size=int(rng.integers(4, 12))))
                              for _ in range(lines)) + "\n")
    return path


def test_a_text_file_at_bpe_level_runs_generates_and_sweeps(capsys, tmp_path):
    path = write_text(tmp_path / "corpus.txt")
    settings = [f"path={path}", "level=bpe", "vocab_size=300", "bptt=8", "emb_size=8",
                "batch_size=4"]
    metrics = end_to_end(capsys, tmp_path, "lm", "text", settings, "sample-*.txt")
    (run_dir,) = (tmp_path / "runs").iterdir()
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(run_dir / "tokenizer.json"))
    assert tokenizer.decode(tokenizer.encode("the cat sat\non a mat").ids) == "the cat sat\non a mat"
    assert metrics["test_ppl"] > 1


def test_a_folder_with_its_own_split_at_word_level(capsys, tmp_path):
    for seed, split in enumerate(("train", "valid", "test")):
        write_text(tmp_path / "corpus" / f"{split}.txt", lines=300 if split == "train" else 60,
                   seed=seed)
    code, out, err = cli(capsys, "data", "--task", "lm", "--dataset", "text",
                         "--set", f"path={tmp_path / 'corpus'}", "--set", "level=word")
    assert code == 0, err
    assert "your train.txt / valid.txt / test.txt" in out
    assert "word level, 19 tokens" in out  # 17 words, <eos> and <unk>


def test_word_and_char_streams_of_your_text_decode_back_to_it(tmp_path):
    from seqbench_tasks.lm.text import build

    path = write_text(tmp_path / "t.txt")
    for level in ("char", "word", "bpe"):
        streams = build([path], False, level, 0)
        sample = "the dog ran\nto the mat"
        assert streams.decode(streams.encode(sample)) == sample, level
        assert all(len(ids) for ids in streams.ids.values())


def bad_text(tmp_path: Path, case: str) -> tuple[list[str], str]:
    path = tmp_path / "corpus.txt"
    contents = {
        "empty": (b"", "is empty"),
        "only-whitespace": (b" \n\n\t\n", "is empty"),
        "undecodable": (b"good text" + b"\xff\xfe" + b"more", "undecodable byte at offset 9"),
        "binary": (b"abc\x00\x01\x02", "NUL byte at offset 3"),
        "too-short": (b"hello world", "too few for 1 stream(s) of bptt=20"),
    }
    if case in contents:
        data, message = contents[case]
        path.write_bytes(data)
        return [f"path={path}"], message
    if case == "missing-path":
        return [], "needs --set path="
    if case == "no-such-file":
        return [f"path={path}"], "does not exist"
    if case == "folder-without-text":
        (tmp_path / "empty").mkdir()
        return [f"path={tmp_path / 'empty'}"], "no .txt files"
    if case == "part-of-the-split":
        write_text(tmp_path / "c" / "train.txt")
        write_text(tmp_path / "c" / "test.txt")
        return [f"path={tmp_path / 'c'}"], "but no valid.txt"
    assert case == "level-on-ptb"
    return ["level=word"], "applies to dataset 'text', not 'ptb'"


TEXT_CASES = ["empty", "only-whitespace", "undecodable", "binary", "too-short", "missing-path",
              "no-such-file", "folder-without-text", "part-of-the-split", "level-on-ptb"]


@pytest.mark.parametrize("case", TEXT_CASES)
def test_a_bad_text_is_one_error_line_and_exit_2(capsys, tmp_path, case):
    settings, message = bad_text(tmp_path, case)
    dataset = "ptb" if case == "level-on-ptb" else "text"
    code, out, err = cli(capsys, "data", "--task", "lm", "--dataset", dataset,
                         *[a for s in settings for a in ("--set", s)])
    assert_one_error(code, err, message)
