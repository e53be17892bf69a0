"""Your own data in every task: files the tests write, run end to end, and bad files refused.

Each format gets `run`, `generate` and a tiny `sweep` on generated files (tiny hidden size,
two epochs), plus `seqbench data`; every bad file gives one `error:` line and exit 2.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import mido
import numpy as np
import pytest
import re

from seqbench.cli import main
from seqbench.errors import SeqbenchError
from seqbench.userdata import read_long_table

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
    assert "baseline " in out and " on test: " in out  # what a model has to beat

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
    write_midi(folder / "low.mid", [10, 40, 42, 44])  # one note below the piano's A0
    metrics = end_to_end(capsys, tmp_path, "music", "midi",
                         [f"path={folder}", "transpose=c", "steps_per_beat=2"], "sample-*.mid")
    sizes = metrics["split_sizes"]
    assert sum(sizes.values()) == 25 and min(sizes.values()) >= 1
    (run_dir,) = (tmp_path / "runs").iterdir()
    notes = json.loads((run_dir / "split.json").read_text())["notes"]
    assert "1 notes outside the 88 piano keys (MIDI 21-108) dropped" in notes
    # the README's third command: the comparison table from the sweep
    code, out, err = cli(capsys, "report", "--storage", tmp_path / "sweep" / "sweeps.journal",
                         "--output-dir", tmp_path / "results")
    assert code == 0, err
    table = (tmp_path / "results" / "music-midi" / "table.md").read_text()
    assert re.search(r"^\| rnn( \(defaults\))? \|", table.replace("**", ""), re.M)


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


def bad_midi(tmp_path: Path, case: str) -> tuple[str, list[str], str]:
    """(dataset, settings, expected message fragment) for one broken MIDI folder."""
    folder = tmp_path / "midi"
    if case == "missing-path":
        return "midi", [], "needs --set path="
    if case == "no-such-folder":
        return "midi", [f"path={folder}"], "does not exist"
    folder.mkdir()
    if case == "a-file-not-a-folder":
        return "midi", [f"path={write_midi(folder / 'one.mid', [60, 62])}"], "is not a folder"
    if case == "no-midi":
        (folder / "notes.txt").write_text("la la")
        return "midi", [f"path={folder}"], "no MIDI files"
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
        return "midi", [f"path={folder}", "transpose=c"], "zz-bad.mid"
    if case == "half-the-sub-folders":
        (folder / "train").mkdir()
        (folder / "test").mkdir()
        return "midi", [f"path={folder}"], "no valid/"
    if case == "empty-valid-sub-folder":
        for split in ("train", "valid", "test"):
            (folder / split).mkdir()
        write_midi(folder / "train" / "a.mid", [60, 62])
        write_midi(folder / "test" / "b.mid", [60, 62])
        return "midi", [f"path={folder}"], "no usable valid pieces"
    if case == "everything-skipped":
        for path in folder.glob("*.mid"):
            path.write_bytes(b"junk")
        return "midi", [f"path={folder}", "skip_bad=true"], "no usable train pieces"
    assert case == "path-on-another-dataset"
    return "bach", [f"path={folder}"], "applies to dataset 'midi'"


MIDI_CASES = ["missing-path", "no-such-folder", "a-file-not-a-folder", "no-midi", "corrupt",
              "truncated", "empty", "all-drums", "too-short", "off-the-piano", "type-2",
              "half-the-sub-folders", "empty-valid-sub-folder",
              "everything-skipped", "path-on-another-dataset"]


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
    # Adam: the sweep's search space leaves out SGD, the task's (Zaremba) default optimizer
    settings = [f"path={path}", "level=bpe", "vocab_size=300", "bptt=8", "emb_size=8",
                "batch_size=4", "optimizer=adam", "lr=0.01"]
    metrics = end_to_end(capsys, tmp_path, "lm", "text", settings, "sample-*.txt")
    (run_dir,) = (tmp_path / "runs").iterdir()
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(run_dir / "tokenizer.json"))
    text = "the cat sat\non a mat"
    assert tokenizer.decode(tokenizer.encode(text).ids) == text
    assert metrics["test_ppl"] > 1
    # generate needs no corpus: the run folder's tokenizer is the vocabulary
    path.rename(tmp_path / "gone.txt")
    code, out, err = cli(capsys, "generate", run_dir, "--output", tmp_path / "later",
                         "--set", "prompt=the cat", "--set", "steps=12")
    assert code == 0, err
    (sample,) = (tmp_path / "later").glob("sample-*.txt")
    assert sample.read_text().startswith("the cat") and len(sample.read_text()) > 8


def test_generate_without_the_corpus_works_at_char_and_word_level(tmp_path):
    import seqbench as sb

    path = write_text(tmp_path / "corpus.txt")
    for level in ("char", "word"):
        run = sb.run(task="lm", cell="gru", dataset="text", epochs=1, hidden_size=8,
                     output_dir=tmp_path / level, progress=False, path=str(path), level=level,
                     bptt=8, emb_size=8, batch_size=4, optimizer="adam", lr=0.01)
        moved = tmp_path / f"moved-{level}.txt"
        path.rename(moved)
        (sample,) = sb.load(run.dir).generate(tmp_path / f"out-{level}", prompt="the cat",
                                              steps=5)
        assert sample.read_text().startswith("the cat")
        moved.rename(path)


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


def bad_text(tmp_path: Path, case: str) -> tuple[str, list[str], str]:
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
        return "text", [f"path={path}"], message
    if case == "missing-path":
        return "text", [], "needs --set path="
    if case == "no-such-file":
        return "text", [f"path={path}"], "does not exist"
    if case == "not-a-file-or-folder":  # /dev/null once read as "no .txt files in '/dev/null'"
        os.mkfifo(tmp_path / "pipe")
        return "text", [f"path={tmp_path / 'pipe'}"], "pipe' is neither a file nor a folder"
    if case == "folder-without-text":
        (tmp_path / "empty").mkdir()
        return "text", [f"path={tmp_path / 'empty'}"], "no .txt files"
    if case == "part-of-the-split":
        write_text(tmp_path / "c" / "train.txt")
        write_text(tmp_path / "c" / "test.txt")
        return "text", [f"path={tmp_path / 'c'}"], "but no valid.txt"
    assert case == "level-on-ptb"
    return "ptb", ["level=word"], "applies to dataset 'text', not 'ptb'"


TEXT_CASES = ["empty", "only-whitespace", "undecodable", "binary", "too-short", "missing-path",
              "no-such-file", "not-a-file-or-folder", "folder-without-text",
              "part-of-the-split", "level-on-ptb"]


# --- speech: labelled sequences in a long CSV or a .ts file -------------------------------


def labelled(count: int, seed: int = 0, classes: str = "ab") -> list[tuple[str, str, np.ndarray]]:
    """(id, label, frames [T, 2]): class 'a' rises, 'b' falls, lengths 5-12."""
    rng = np.random.default_rng(seed)
    out = []
    for index in range(count):
        label = classes[index % len(classes)]
        length = int(rng.integers(5, 13))
        slope = 1.0 if label == "a" else -1.0
        frames = np.stack([slope * np.linspace(0, 1, length), rng.normal(size=length)], 1)
        out.append((f"s{seed}-{index}", label, frames.round(4)))
    return out


def write_long_csv(path: Path, sequences, header="sequence,label,x,y") -> Path:
    lines = [header] + [f"{key},{label},{a},{b}" for key, label, frames in sequences
                        for a, b in frames]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_ts(path: Path, sequences, *, labels=True, classes="a b") -> Path:
    """The UCR/UEA .ts format: header lines, then one case per line, channels split by ':'."""
    header = ["@problemName toy", "@timeStamps false", "@missing false", "@univariate false",
              "@dimensions 2", "@equalLength false",
              f"@classLabel {'true ' + classes if labels else 'false'}", "@data"]
    rows = [":".join(",".join(str(v) for v in frames[:, c]) for c in range(frames.shape[1]))
            + (f":{label}" if labels else "") for _, label, frames in sequences]
    path.write_text("\n".join(header + rows) + "\n")
    return path


def test_a_long_csv_runs_generates_and_sweeps(capsys, tmp_path):
    path = write_long_csv(tmp_path / "frames.csv", labelled(40),
                          header="take,gesture,x,y")
    metrics = end_to_end(capsys, tmp_path, "speech", "csv",
                         [f"path={path}", "id=take", "label=gesture"], "predictions.csv")
    assert sum(metrics["split_sizes"].values()) == 40
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "split.json").read_text())["items"]
    assert sorted(sum(record.values(), [])) == sorted(f"s0-{i}" for i in range(40))


def test_a_ts_file_with_its_test_file_runs_generates_and_sweeps(capsys, tmp_path):
    train = write_ts(tmp_path / "toy_TRAIN.ts", labelled(24))
    test = write_ts(tmp_path / "toy_TEST.ts", labelled(10, seed=1))
    metrics = end_to_end(capsys, tmp_path, "speech", "ts", [f"path={train}", f"test={test}"],
                         "predictions.csv")
    assert metrics["split_sizes"]["test"] == 10


def test_aeon_classification_sets_are_datasets_by_name(capsys):
    from seqbench import registry

    names = registry.get_task("speech").datasets
    assert {"basic-motions", "pickup-gesture-wiimote-z", "gun-point"} <= set(names)
    code, out, err = cli(capsys, "data", "--task", "speech", "--dataset", "basic-motions")
    assert code == 0, err
    import seqbench as sb

    checked = sb.data("speech", "basic-motions")
    rows, facts = checked.rows, checked.facts
    assert rows[2] == ["test", "40", "100 / 100 / 100.0 / 100",
                       "badminton: 10, running: 10, standing: 10, walking: 10"]
    assert "BasicMotions_TRAIN.ts / BasicMotions_TEST.ts" in facts["notes"][0]


def bad_speech(tmp_path: Path, case: str) -> tuple[str, list[str], str]:
    """(dataset, settings, message) for one broken labelled-sequence file."""
    csv_path, ts_path = tmp_path / "f.csv", tmp_path / "f.ts"
    good = labelled(20)
    rows = {
        "csv-no-label-column": ("sequence,tag,x,y\ns1,a,1,2\n", "no column 'label'"),
        "csv-no-id-column": ("id,label,x,y\ns1,a,1,2\n", "no column 'sequence'"),
        "csv-no-features": ("sequence,label\ns1,a\n", "no feature columns"),
        "csv-no-rows": ("sequence,label,x,y\n", "has no data rows"),
        "csv-unlabelled": ("sequence,label,x,y\ns1,a,1,2\ns2,,1,2\n",
                           "line 3: sequence 's2' has no label"),
        "csv-two-labels": ("sequence,label,x,y\ns1,a,1,2\ns1,b,1,2\n",
                           "label 'b' here but 'a' above"),
        "csv-not-a-number": ("sequence,label,x,y\ns1,a,1,oops\n", "column 'y' is not a number"),
        "csv-ragged": ("sequence,label,x,y\ns1,a,1,2\ns1,a,1\n", "line 3 has 3 fields"),
        "csv-beyond-float32": ("sequence,label,x,y\ns1,a,1,2\ns1,a,1e308,2\n",
                               "line 3, column 'x': value 1e+308 is too large for 32-bit floats"),
        "csv-column-twice": ("sequence,label,x,x\ns1,a,1,2\n", "column 'x' appears twice"),
        "csv-tab-separated": ("sequence\tlabel\tx\ns1\ta\t1\n",
                              "the header looks tab-separated; seqbench reads comma-separated"),
        "csv-nan": ("sequence,label,x,y\ns1,a,1,nan\n", "sequence 's1' contains NaN"),
        "csv-inf": ("sequence,label,x,y\ns1,a,inf,2\n", "sequence 's1' contains NaN"),
    }
    if case in rows:
        text, message = rows[case]
        csv_path.write_text(text)
        return "csv", [f"path={csv_path}"], message
    if case == "csv-one-class":
        write_long_csv(csv_path, labelled(20, classes="a"))
        return "csv", [f"path={csv_path}"], "needs at least 2"
    clashes = {"csv-id-is-the-label": "id=label", "csv-label-is-the-id": "label=sequence"}
    if case in clashes:  # one column as both id and label once failed to unpack
        write_long_csv(csv_path, good)
        column = clashes[case].split("=")[1]
        return "csv", [f"path={csv_path}", clashes[case]], f"column '{column}' is named twice"
    if case == "csv-label-only-in-test":
        write_long_csv(csv_path, good)
        write_long_csv(tmp_path / "t.csv", labelled(4, seed=1, classes="c"))
        return "csv", [f"path={csv_path}", f"test={tmp_path / 't.csv'}"], \
            "label 'c' occurs only in the test split"
    if case == "ts-garbage":
        ts_path.write_bytes(b"\x00\x01 not a ts file")
        return "ts", [f"path={ts_path}"], "f.ts' has no sequences"
    if case == "ts-unlabelled":
        write_ts(ts_path, good, labels=False)
        return "ts", [f"path={ts_path}"], "unlabelled sequences"
    if case == "ts-ragged-channels":
        write_ts(ts_path, good)
        ts_path.write_text(ts_path.read_text() + "1,2,3:a\n")
        return "ts", [f"path={ts_path}"], "Inconsistent number of dimensions"
    if case == "ts-missing-values":
        write_ts(ts_path, good)
        ts_path.write_text(ts_path.read_text().replace("@data\n", "@data\n?,1,2:3,4,5:a\n"))
        return "ts", [f"path={ts_path}"], "contains NaN"
    if case == "ts-beyond-float32":  # once reported as NaN: the check ran after the cast
        write_ts(ts_path, good)
        ts_path.write_text(ts_path.read_text().replace("@data\n", "@data\n1,1e308,2:3,4,5:a\n"))
        return "ts", [f"path={ts_path}"], "case 1, channel 1, step 2: value 1e+308 is too large"
    if case == "ts-test-width":
        write_ts(ts_path, good)
        one = [(k, label, frames[:, :1]) for k, label, frames in labelled(4, seed=1)]
        text = write_ts(tmp_path / "t.ts", one).read_text().replace("@dimensions 2",
                                                                   "@dimensions 1")
        (tmp_path / "t.ts").write_text(text)
        return "ts", [f"path={ts_path}", f"test={tmp_path / 't.ts'}"], "1 features per frame"
    if case == "ts-no-file":
        return "ts", [f"path={ts_path}"], "does not exist"
    assert case == "path-on-japanese-vowels"
    return "japanese-vowels", [f"path={ts_path}"], "applies to dataset 'csv' or 'ts'"


SPEECH_CASES = ["csv-no-label-column", "csv-no-id-column", "csv-no-features", "csv-no-rows",
                "csv-unlabelled", "csv-two-labels", "csv-not-a-number", "csv-ragged", "csv-nan",
                "csv-inf", "csv-beyond-float32", "csv-column-twice", "csv-tab-separated",
                "csv-one-class", "csv-id-is-the-label", "csv-label-is-the-id",
                "csv-label-only-in-test", "ts-garbage",
                "ts-unlabelled", "ts-ragged-channels", "ts-missing-values", "ts-beyond-float32",
                "ts-test-width",
                "ts-no-file", "path-on-japanese-vowels"]


# --- forecasting: many series in one long file ------------------------------------------

FORECAST_BASELINES = {"naive", "seasonal_naive", "linear", "ets", "theta", "auto_arima"}


def write_panel(path: Path, series: int = 6, length: int = 40, bad_row: str = "") -> Path:
    """`series` noisy seasonal trends, one row per (date, store) in long format."""
    rng = np.random.default_rng(0)
    lines = ["date,store,sales,price"]
    for s in range(series):
        level = 10.0 * (s + 1)
        for t in range(length):
            value = level + 0.5 * t + 3 * np.sin(2 * np.pi * t / 4) + rng.normal(scale=0.3)
            lines.append(f"2020-{t:03d},store{s},{value:.3f},{1 + 0.01 * t:.2f}")
    if bad_row:
        lines.append(bad_row)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_many_series_in_a_long_csv_train_one_global_model(capsys, tmp_path):
    path = write_panel(tmp_path / "sales.csv")
    settings = [f"path={path}", "id=store", "target=sales", "season=4", "lookback=8",
                "horizon=4"]
    metrics = end_to_end(capsys, tmp_path, "forecasting", "csv", settings, "forecast.csv")
    assert metrics["split_sizes"] == {"train": 6 * (40 - 8 - 4), "valid": 6, "test": 6}
    assert set(metrics["baselines"]) == FORECAST_BASELINES
    (run_dir,) = (tmp_path / "runs").iterdir()
    rows = (run_dir / "forecast.csv").read_text().splitlines()
    assert rows[0] == "series,time,true,forecast,lower_95,upper_95" and len(rows) == 1 + 6 * 4
    record = json.loads((run_dir / "split.json").read_text())["items"]
    assert record["test"][0] == "store0: 2020-036..2020-039"


def test_a_panel_is_parsed_once_and_cached_by_its_content(tmp_path, monkeypatch):
    from seqbench.datafiles import resolve_cache_dir
    from seqbench.train import prepare_dataset
    from seqbench_tasks.forecasting import panel

    path = write_panel(tmp_path / "sales.csv")
    params = {"path": str(path), "id": "store", "target": "sales", "lookback": 8, "horizon": 4}
    first = prepare_dataset("forecasting", "csv", resolve_params(params), None)
    (cache,) = resolve_cache_dir().glob("panel-*.pkl")
    parse = panel.read_long_series
    monkeypatch.setattr(panel, "read_long_series", lambda *a: pytest.fail("parsed again"))
    again = prepare_dataset("forecasting", "csv", resolve_params(params), None)
    assert again.split_sizes() == first.split_sizes()
    write_panel(path, series=5)  # new content, new cache entry
    monkeypatch.setattr(panel, "read_long_series", parse)
    assert prepare_dataset("forecasting", "csv", resolve_params(params), None
                           ).split_sizes()["test"] == 5
    assert len(list(resolve_cache_dir().glob("panel-*.pkl"))) == 2 and cache.is_file()


def resolve_params(given: dict) -> dict:
    """The forecasting task's parameters with `given` set, validated as a run's are."""
    from seqbench.config import build_spec

    return dict(build_spec("forecasting", "gru", "csv",
                           {f"task.{k}": v for k, v in given.items()}).task_params)


def test_one_series_through_path_runs_generates_and_sweeps(capsys, tmp_path):
    rng = np.random.default_rng(0)
    rows = [f"2000-{t:03d},{20 + 0.3 * t + 2 * np.sin(t / 2) + rng.normal(0, 0.1):.3f}"
            for t in range(120)]
    path = tmp_path / "one.csv"
    path.write_text("date,load\n" + "\n".join(rows) + "\n")
    end_to_end(capsys, tmp_path, "forecasting", "csv",
               [f"path={path}", "target=load", "lookback=12", "horizon=4"], "forecast.csv")
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "split.json").read_text())["items"]
    assert record == {"train": ["2000-000..2000-083"], "valid": ["2000-084..2000-095"],
                      "test": ["2000-096..2000-119"]}


@pytest.mark.parametrize("features", ["S", "MS"])
def test_aeon_series_are_datasets_by_name(features):
    import seqbench as sb

    data = sb.data("forecasting", "uschange", features=features).data
    assert data.series.values.shape == (187, 5) and data.series.target == "Consumption"
    assert data.series.dates[0] == "1970Q1" and data.series.dates[-1] == "2016Q3"
    assert data.input_size == (1 if features == "S" else 5)
    assert min(data.split_sizes().values()) >= 1
    assert set(data.baselines()) == FORECAST_BASELINES


def test_covariates_feed_their_past_and_future_known_ones_their_future(capsys, tmp_path):
    import seqbench as sb

    path = write_panel(tmp_path / "sales.csv")
    settings = {"path": str(path), "id": "store", "target": "sales", "lookback": "8",
                "horizon": "4", "covariates": "price", "future_covariates": "price"}
    data = sb.data("forecasting", "csv", **settings).data
    assert data.input_size == 3  # sales, price, "in the future" flag
    batch = data.collate("test", np.arange(2))
    assert batch.inputs.shape == (2, 8 + 4, 3)
    assert (batch.inputs[:, 8:, 0] == 0).all() and (batch.inputs[:, 8:, 2] == 1).all()
    price = np.diff(batch.inputs[0, :, 1].numpy())  # price rises linearly: equal steps
    assert np.allclose(price, price[0], atol=1e-5) and price[0] > 0
    past_only = sb.data("forecasting", "csv", **{**settings, "future_covariates": ""}).data
    assert past_only.collate("test", np.arange(2)).inputs.shape == (2, 8, 2)
    code, out, err = cli(capsys, "run", "--task", "forecasting", "--dataset", "csv", "--cell",
                         "lstm", "--output-dir", tmp_path / "runs", "--quiet", *FAST,
                         *[a for k, v in settings.items() for a in ("--set", f"{k}={v}")])
    assert code == 0, err


def test_panel_errors_are_averaged_over_series_each_on_its_own_scale():
    """Two series 1000x apart with the same relative error score the same MASE as either
    alone: the mean over series, not a sum dominated by the big one."""
    import torch

    from seqbench_tasks.forecasting.panel import Panel, PanelData

    base = np.arange(20.0) + np.tile([0.0, 1.0], 10)
    one = PanelData(Panel("p", ["a"], [base], [list(map(str, range(20)))], 1), 4, 2)
    two = PanelData(Panel("p", ["a", "b"], [base, 1000 * base], [list(map(str, range(20)))] * 2,
                          1), 4, 2)

    def mase(data):
        batch = data.collate("test", np.arange(data.items("test")))
        outputs = batch.targets + 0.5  # the same error in standardised units for each series
        return data.metrics({k: float(v) for k, v in data.statistics(outputs, batch).items()})

    assert mase(two)["mase"] == pytest.approx(mase(one)["mase"])
    assert mase(two)["smape"] == pytest.approx(mase(one)["smape"], rel=1e-4)
    assert torch.is_tensor(two.collate("train", np.arange(3)).extra["std"])
    with pytest.raises(SeqbenchError, match="a panel cannot train on its validation horizons"):
        two.refit()  # one clear line, not an AttributeError from ForecastData.refit


def test_m1_yearly_is_a_dataset_with_its_competition_horizon(capsys):
    """M1's own split, and every baseline on a dozen of its series (fitting ETS, Theta and
    AutoARIMA on all 181 takes 20 s: the slow test below)."""
    from dataclasses import replace

    import seqbench as sb
    from seqbench_tasks.forecasting.panel import PanelData

    data = sb.data("forecasting", "m1-yearly").data
    assert data.split_sizes()["test"] == 181 and data.horizon == 6
    panel = data.panel
    few = PanelData(replace(panel, ids=panel.ids[:12], values=panel.values[:12],
                            times=panel.times[:12]), data.lookback, data.horizon)
    baselines = few.baselines()
    assert set(baselines) == FORECAST_BASELINES
    assert all(np.isfinite(b["mase"]) and "fallbacks" not in b for b in baselines.values())


@pytest.mark.slow
def test_m1_yearly_statistical_baselines_fit_every_series_and_beat_naive():
    """ETS, Theta and AutoARIMA on all 181 series, each fitted on everything before its last
    six years: none falls back to naive, and each beats naive (MASE 3.95, 3.61 and 3.50
    against 4.89 with statsforecast 2.1), as the M competitions found for trended yearly
    data."""
    import seqbench as sb

    baselines = sb.data("forecasting", "m1-yearly").data.baselines()
    for name in ("ets", "theta", "auto_arima"):
        assert "fallbacks" not in baselines[name], name
        assert baselines[name]["mase"] < baselines["naive"]["mase"], name


#: case -> (settings naming the columns, message): one column given two roles.
ROLE_CLASHES = {
    "id-is-the-target": (["id=sales", "target=sales"], "'sales' is named twice (as id and as "
                                                       "target)"),
    "covariate-is-the-target": (["id=store", "target=sales", "covariates=sales"],
                                "'sales' is named twice (as target and as covariates)"),
    "covariate-twice": (["id=store", "target=sales", "covariates=price,price"],
                        "'price' is named twice (as covariates and as covariates)"),
}


#: case -> (edit of the panel's text, message): the file's own shape is wrong.
PANEL_TEXT_CASES = {
    "time-out-of-order": (lambda text: text + "5,store0,1.0,1.0\n",
                          "line 242: time '5' is not after '039' on line 41; sort the file"),
    "time-repeated": (lambda text: text + "039,store0,1.0,1.0\n",
                      "line 242: time '039' is not after '039' on line 41; keep one row"),
    "column-twice": (lambda text: text.replace("sales,price", "sales,sales", 1),
                     "line 1: column 'sales' appears twice"),
    "beyond-float32": (lambda text: text + "000,store9,1e308,1.0\n",
                       "line 242, column 'sales': value 1e+308 is too large for 32-bit floats"),
    "tab-separated": (lambda text: text.replace(",", "\t"), "looks tab-separated"),
    "semicolon-separated": (lambda text: text.replace(",", ";"), "looks semicolon-separated"),
}


def bad_panel(tmp_path: Path, case: str) -> tuple[str, list[str], str]:
    path = tmp_path / "sales.csv"
    base = ["id=store", "target=sales", "lookback=8", "horizon=4"]
    if case == "no-id-column":
        write_panel(path)
        return "csv", [f"path={path}", "id=shop", *base[1:]], "no column 'shop'"
    if case == "no-target-column":
        write_panel(path)
        return "csv", [f"path={path}", "id=store", "target=revenue"], "no column 'revenue'"
    if case == "no-target-given":
        write_panel(path)
        return "csv", [f"path={path}", "id=store"], "--set target=COLUMN"
    if case == "not-a-number":
        write_panel(path, bad_row="2020-040,store0,lots,1.0")
        return "csv", [f"path={path}", *base], "'sales' is not a number ('lots')"
    if case == "nan":
        write_panel(path, bad_row="2020-040,store0,nan,1.0")
        return "csv", [f"path={path}", *base], "'sales' is nan"
    if case == "ragged-row":
        write_panel(path, bad_row="2020-040,store0")
        return "csv", [f"path={path}", *base], "2 fields, the header has 4"
    if case == "series-too-short":
        write_panel(path, bad_row="2020-000,tiny,1.0,1.0")
        return "csv", [f"path={path}", *base], "series 'tiny' has 1 values"
    if case in PANEL_TEXT_CASES:  # numeric times (000..039 per store), then one edit
        edit, message = PANEL_TEXT_CASES[case]
        path.write_text(edit(write_panel(path).read_text().replace("2020-", "")))
        return "csv", [f"path={path}", *base], message
    if case in ROLE_CLASHES:
        settings, message = ROLE_CLASHES[case]
        return "csv", [f"path={write_panel(path)}", *base[2:], *settings], message
    if case == "season-past-a-series":  # 40 values, 2 horizons of 4 held out: 32 train
        return "csv", [f"path={write_panel(path)}", *base, "season=32"], \
            "series 'store0': season 32 leaves no seasonal difference in the 32 training values"
    if case == "path-and-csv-differ":
        return "csv", [f"path={write_panel(path)}", f"csv={tmp_path / 'other.csv'}", *base], \
            "give one of them"
    if case == "covariate-missing":
        write_panel(path)
        return "csv", [f"path={path}", *base, "covariates=promo"], "no column 'promo'"
    if case == "future-not-a-covariate":
        write_panel(path)
        return "csv", [f"path={path}", *base, "future_covariates=price"], \
            "not among covariates"
    if case == "covariates-without-id":
        write_panel(path)
        return "csv", [f"path={path}", "target=sales", "covariates=price"], \
            "covariates apply to many series"
    if case == "covariate-not-a-number":
        write_panel(path, bad_row="2020-040,store0,1.0,cheap")
        return "csv", [f"path={path}", *base, "covariates=price"], \
            "'price' is not a number ('cheap')"
    assert case == "id-on-airline"
    return "airline", ["id=store"], "applies to dataset 'csv', not 'airline'"


PANEL_CASES = ["no-id-column", "no-target-column", "no-target-given", "not-a-number", "nan",
               "ragged-row", "series-too-short", "path-and-csv-differ", "covariate-missing",
               "future-not-a-covariate", "covariates-without-id", "covariate-not-a-number",
               "id-on-airline", *ROLE_CLASHES, *PANEL_TEXT_CASES, "season-past-a-series"]


BAD_FILES = [("music", bad_midi, case) for case in MIDI_CASES] \
    + [("lm", bad_text, case) for case in TEXT_CASES] \
    + [("speech", bad_speech, case) for case in SPEECH_CASES] \
    + [("forecasting", bad_panel, case) for case in PANEL_CASES]


@pytest.mark.parametrize(("task", "build", "case"), BAD_FILES,
                         ids=[f"{task}-{case}" for task, _, case in BAD_FILES])
def test_a_bad_file_is_one_error_line_and_exit_2(capsys, tmp_path, task, build, case):
    dataset, settings, message = build(tmp_path, case)
    code, out, err = cli(capsys, "data", "--task", task, "--dataset", dataset,
                         *[a for s in settings for a in ("--set", s)])
    assert_one_error(code, err, message)


def test_a_long_table_with_a_bom_and_blank_lines_reads_like_the_plain_file(tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM, which once named the first column
    '\\ufeffsequence'; blank lines (interior or trailing) are skipped, not refused."""
    text = "sequence,label,x\ns1,a,1\ns1,a,2\ns2,b,3\n"
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    plain.write_text(text)
    excel.write_bytes(b"\xef\xbb\xbf" + text.replace("s2", "\ns2").encode() + b"\n\n")
    roles = [("id", "sequence"), ("label", "label")]
    header, where, body = read_long_table(plain, roles)
    assert read_long_table(excel, roles) == (header, where, [(2, ["s1", "a", "1"]),
                                                             (3, ["s1", "a", "2"]),
                                                             (5, ["s2", "b", "3"])])
    assert header == ["sequence", "label", "x"] and [row for _, row in body] == [
        ["s1", "a", "1"], ["s1", "a", "2"], ["s2", "b", "3"]]


def test_there_are_at_least_25_bad_file_cases():
    assert len(BAD_FILES) >= 25
