"""The asr task: connected-digit generation, CTC decoding, label error rate, your recordings
(every bad input), bidirectional masking, and a small end-to-end run on real FSDD."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import seqbench as sb
from seqbench import Batch, DataContext, SeqbenchError
from seqbench.cli import main
from seqbench_tasks.asr.connected import GAP, POOLS, Spoken, join, plan, pool_of
from seqbench_tasks.asr.ctc import decode, edit_distance, greedy, prefix_beam_search
from seqbench_tasks.asr.network import Transcriber, reverse_within
from seqbench_tasks.asr.task import AsrData, ctc_steps_needed, stack_frames
from seqbench_tasks.asr.utterances import Utterances
from seqbench_tasks.speech.audio import SAMPLE_RATE

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
FSDD_NAMES = [f"{d}_{s}_{i}.wav" for d in range(10) for s in SPEAKERS for i in range(50)]
PARAMS = {"stack": 1, "decoder": "greedy", "beam_width": 4}


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error(code: int, err: str, message: str) -> None:
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert message in errors[0], errors[0]


# --- generating connected digit strings -------------------------------------------------


def test_no_recording_crosses_splits_and_each_split_draws_from_its_own_pool():
    plans = {split: plan(FSDD_NAMES, split, 400, 7, seed=0) for split in POOLS}
    used = {split: {n for spoken in strings for n in spoken.recordings}
            for split, strings in plans.items()}
    assert all(pool_of(n) == split for split, names in used.items() for n in names)
    assert not used["train"] & used["valid"] and not used["train"] & used["test"]
    assert not used["valid"] & used["test"]
    assert {int(n.split("_")[2][:-4]) for n in used["test"]} <= set(range(5))  # official test


def test_strings_are_one_speaker_with_true_transcripts_gaps_in_range_and_all_lengths():
    strings = plan(FSDD_NAMES, "train", 500, 7, seed=3)
    assert {len(s.recordings) for s in strings} == set(range(1, 8))
    for spoken in strings:
        assert {n.split("_")[1] for n in spoken.recordings} == {spoken.speaker}
        assert spoken.transcript == "".join(n[0] for n in spoken.recordings)
        assert len(spoken.gaps) == len(spoken.recordings) - 1
        assert all(GAP[0] <= g <= GAP[1] for g in spoken.gaps)
    assert GAP == (400, 2400)  # 50 and 300 ms at 8 kHz
    gaps = [g for s in strings for g in s.gaps]
    assert min(gaps) < 600 and max(gaps) > 2200  # the whole range is used


def test_generation_is_seeded_and_a_split_s_draw_ignores_the_other_sizes():
    assert plan(FSDD_NAMES, "test", 50, 7, seed=0) == plan(FSDD_NAMES, "test", 50, 7, seed=0)
    assert plan(FSDD_NAMES, "test", 50, 7, seed=0) != plan(FSDD_NAMES, "test", 50, 7, seed=1)
    assert plan(FSDD_NAMES, "test", 80, 7, seed=0)[:50] == plan(FSDD_NAMES, "test", 50, 7,
                                                               seed=0)


def test_joined_audio_puts_silence_of_the_planned_length_between_recordings():
    audio = {"1_theo_10.wav": np.full(5, 0.5, np.float32),
             "2_theo_11.wav": np.full(3, -0.5, np.float32)}
    spoken = Spoken("theo", ("1_theo_10.wav", "2_theo_11.wav", "1_theo_10.wav"), (4, 2))
    joined = join(spoken, audio)
    assert joined.tolist() == [0.5] * 5 + [0.0] * 4 + [-0.5] * 3 + [0.0] * 2 + [0.5] * 5
    assert spoken.transcript == "121"


# --- decoding ------------------------------------------------------------------------------


def test_greedy_merges_repeats_then_drops_blanks():
    assert greedy([1, 1, 0, 1, 2, 2, 0, 0, 3]) == [1, 1, 2, 3]
    assert greedy([0, 0, 0]) == [] and greedy([]) == []
    assert greedy([2, 2, 2]) == [2]


def test_prefix_beam_search_sums_alignments_where_the_best_path_does_not():
    """Two steps, p(blank) = 0.6 and p(a) = 0.4 at each: the best path is blank-blank
    (0.36, the empty string), but "a" has three paths, a-a, a-blank, blank-a: 0.16 + 0.24 +
    0.24 = 0.64. A beam of one keeps only "" after step 1 (0.6 > 0.4) and says ""."""
    log_probs = np.log(np.array([[0.6, 0.4], [0.6, 0.4]]))
    assert greedy(log_probs.argmax(-1)) == []
    assert prefix_beam_search(log_probs, width=2) == [1]
    assert prefix_beam_search(log_probs, width=1) == []


def test_prefix_beam_search_tells_a_repeat_from_a_doubled_label():
    """Three steps over {blank, a}: a (0.9), blank (0.9), a (0.9). "aa" needs the blank
    between: 0.9^3 = 0.729 for a-blank-a, beating "a" (whose paths all need a low step)."""
    log_probs = np.log(np.array([[0.1, 0.9], [0.9, 0.1], [0.1, 0.9]]))
    assert prefix_beam_search(log_probs, width=4) == [1, 1]
    assert greedy(log_probs.argmax(-1)) == [1, 1]


def labelling_probabilities(probabilities: np.ndarray) -> dict[tuple[int, ...], float]:
    """Every labelling's CTC probability by brute force over all paths."""
    totals: dict[tuple[int, ...], float] = {}
    steps, symbols = probabilities.shape
    for path in itertools.product(range(symbols), repeat=steps):
        labels = tuple(greedy(path))
        totals[labels] = totals.get(labels, 0.0) + math.prod(
            probabilities[t, s] for t, s in enumerate(path))
    return totals


@pytest.mark.parametrize("seed", range(5))
def test_a_wide_beam_finds_the_most_probable_labelling(seed):
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(3), size=5)
    totals = labelling_probabilities(probabilities)
    best = max(totals, key=totals.get)
    assert tuple(prefix_beam_search(np.log(probabilities), width=64)) == best


def test_decode_reads_each_utterance_only_up_to_its_length():
    one_hot = torch.full((2, 4, 3), -20.0)
    for row, path in enumerate(([1, 0, 2, 2], [2, 2, 1, 1])):
        for t, label in enumerate(path):
            one_hot[row, t, label] = 0.0
    lengths = torch.tensor([4, 2])
    assert decode(one_hot, lengths, "greedy", 1) == [[1, 2], [2]]
    assert decode(one_hot.log_softmax(-1), lengths, "beam", 4) == [[1, 2], [2]]


# --- label error rate ----------------------------------------------------------------------


def test_edit_distance_counts_insertions_deletions_and_substitutions():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([1, 2, 3], []) == 3 and edit_distance([], [4]) == 1
    assert edit_distance([1, 2, 3], [1, 3]) == 1 and edit_distance([5], [5]) == 0


def utterances(transcripts: list[str], frames: int = 12, seed: int = 0) -> Utterances:
    rng = np.random.default_rng(seed)
    return Utterances([rng.normal(size=(frames, 2)).astype(np.float32) for _ in transcripts],
                      list(transcripts), [f"u{i}.wav" for i in range(len(transcripts))])


def tiny_data(test: list[str], **params) -> AsrData:
    splits = {"train": utterances(["12", "3", "45"]), "valid": utterances(["1"]),
              "test": utterances(test, seed=1)}
    return AsrData("tiny", splits, "12345", {**PARAMS, **params})


def emit(batch: Batch, paths: dict[int, list[int]]) -> torch.Tensor:
    """Log-probabilities whose best path is `paths[row]` (label ids, 0 = blank) per row."""
    steps = batch.inputs.shape[1]
    outputs = torch.full((batch.inputs.shape[0], steps, 6), -30.0)
    for row in range(len(outputs)):
        for t, label in enumerate(paths[row] + [0] * (steps - len(paths[row]))):
            outputs[row, t, label] = 0.0
    return outputs.log_softmax(-1)


def test_label_error_rate_and_string_accuracy_match_hand_computed_values():
    """References "12", "345", "5" heard as "1", "3445", "5": 1 deletion, 1 insertion,
    nothing: 2 edits over 6 labels, 1 string of 3 right. Item scores give the same rate."""
    data = tiny_data(["12", "345", "5"])
    (batch,) = data.batches("test", 3)
    order = [data.transcripts["test"][i] for i in range(3)]
    heard = {"12": [1, 0, 0], "345": [3, 4, 0, 4, 5], "5": [5, 5, 5]}
    by_reference = {data.text(batch.targets[r, :int(n)].tolist()): r for r, n in
                    enumerate(batch.extra["target_lengths"])}
    outputs = emit(batch, {by_reference[ref]: path for ref, path in heard.items()})
    totals = {k: float(v) for k, v in data.statistics(outputs, batch).items()}
    metrics = data.metrics(totals)
    assert metrics["ler"] == pytest.approx(2 / 6)
    assert metrics["string_accuracy"] == pytest.approx(1 / 3)
    assert metrics["ctc_loss"] > 0 and sorted(order) == ["12", "345", "5"]
    values, weights = data.item_scores(outputs, batch)
    assert float(values.sum() / weights.sum()) == pytest.approx(2 / 6)
    assert sorted(weights.tolist()) == [1, 2, 3]
    assert data.baselines()["empty_output"] == {"ler": 1.0, "string_accuracy": 0.0}


def test_the_loss_is_ctc_per_label_and_refuses_nothing_feasible():
    data = tiny_data(["12", "345", "5"])
    (batch,) = data.batches("test", 3)
    outputs = torch.zeros(*batch.inputs.shape[:2], 6).log_softmax(-1)
    expected = nn.CTCLoss(reduction="sum")(outputs.transpose(0, 1), batch.targets,
                                           batch.mask.sum(1), batch.extra["target_lengths"])
    assert float(data.loss(outputs, batch)) == pytest.approx(float(expected) / 6)


def test_frames_are_stacked_into_steps_and_ctc_s_minimum_length_is_enforced():
    frames = np.arange(10, dtype=np.float32).reshape(5, 2)
    assert stack_frames(frames, 2).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 0]]
    assert ctc_steps_needed([1, 1, 2]) == 4 and ctc_steps_needed([1, 2, 3]) == 3
    with pytest.raises(SeqbenchError, match=r"'u0.wav' \(test\) is too short for its "
                                            r"transcript: 3 steps of 40 ms"):
        tiny_data(["111"], stack=4)  # 12 frames -> 3 steps; "111" needs 5


# --- bidirectional encoders ----------------------------------------------------------------


def test_reverse_within_flips_only_the_real_steps_and_undoes_itself():
    x = torch.arange(8.0).view(2, 4, 1)
    lengths = torch.tensor([4, 2])
    flipped = reverse_within(x, lengths)
    assert flipped[..., 0].tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]
    assert torch.equal(reverse_within(flipped, lengths), x)


def gru_stacks(input_size: int) -> nn.Module:
    return nn.GRU(input_size, 5, batch_first=True)


def test_a_padded_utterance_gets_the_outputs_it_gets_alone_in_both_directions():
    torch.manual_seed(0)
    network = Transcriber(gru_stacks, 3, 5, labels=4, bidirectional=True).eval()
    from seqbench_tasks.speech.task import collate

    short, longer = torch.randn(4, 3), torch.randn(9, 3)
    alone = network(collate([short], torch.zeros(1)))[0]
    padded = network(collate([longer, short], torch.zeros(2)))[1, :4]
    assert torch.allclose(alone, padded, atol=1e-6)
    # Flipping the padded tensor instead would start the backward stack on padding.
    batch = collate([longer, short], torch.zeros(2))
    behind, _ = network.backwards(batch.inputs.flip(1))
    naive = torch.cat([network.forwards(batch.inputs)[0], behind.flip(1)], -1)
    assert not torch.allclose(network.readout(naive).log_softmax(-1)[1, :4], alone, atol=1e-3)


def test_bidirectional_builds_two_independent_stacks_and_a_wider_readout():
    both = Transcriber(gru_stacks, 3, 5, labels=4, bidirectional=True)
    one = Transcriber(gru_stacks, 3, 5, labels=4, bidirectional=False)
    assert both.forwards is not both.backwards and one.backwards is None
    assert both.readout.in_features == 10 and one.readout.in_features == 5


# --- your recordings -----------------------------------------------------------------------

#: Each symbol is a tone of its own pitch, so a transcript is audible in the file.
TONES = {"a": 440.0, "b": 1250.0, "c": 2500.0}


def write_wav(path: Path, text: str) -> Path:
    import soundfile

    seconds = np.arange(int(0.25 * SAMPLE_RATE)) / SAMPLE_RATE
    pieces = []
    for symbol in text:
        pieces += [0.3 * np.sin(2 * np.pi * TONES[symbol] * seconds), np.zeros(800)]
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.concatenate(pieces), SAMPLE_RATE)
    return path


#: 8 train, 2 valid, 2 test recordings, by the table's split column.
ROWS = [(f"r{i}.wav", text, split) for i, (text, split) in enumerate(
    [("ab", "train"), ("ba", "train"), ("abc", "train"), ("c", "train"), ("ca", "train"),
     ("bca", "train"), ("a", "train"), ("cb", "train"), ("ac", "valid"), ("b", "valid"),
     ("bc", "test"), ("cab", "test")])]


def recordings_folder(root: Path, change=None) -> Path:
    """A WAV per row of ROWS and transcripts.csv (file,text,split); `change(rows, root)` may
    spoil the rows or the files first."""
    rows = list(ROWS)
    for file, text, _ in rows:
        write_wav(root / file, text)
    if change is not None:
        change(rows, root)
    with open(root / "transcripts.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "text", "split"])
        writer.writerows(rows)
    return root


def test_your_recordings_are_read_with_their_split_and_training_alphabet(tmp_path):
    folder = recordings_folder(tmp_path / "mine")
    write_wav(folder / "extra.wav", "a")  # not in the table: left out and counted
    from seqbench_tasks.asr import task

    params = {**{p.name: p.default for p in task.params}, "path": str(folder)}
    loaded = task.prepare("wav", DataContext(data_dir=tmp_path, cache_dir=tmp_path / "c"),
                          params)
    assert loaded.alphabet == "abc" and loaded.split_sizes() == {"train": 8, "valid": 2,
                                                                 "test": 2}
    assert loaded.transcripts["test"] == ["bc", "cab"] and loaded.input_size == 39
    facts = loaded.describe()
    assert "1 WAV file(s) in the folder are not in transcripts.csv and were not used" in \
        facts["notes"]
    assert "split: the split column of transcripts.csv" in facts["notes"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows, root: (root / "r3.wav").write_bytes(b"RIFF not really a wav"),
         "r3.wav' is not a readable audio file"),
        (lambda rows, root: rows.__setitem__(10, ("r10.wav", "bd", "test")),
         "r10.wav' (test): its transcript has 'd', which no training transcript has; the "
         "alphabet is 'abc'"),
        (lambda rows, root: rows.__setitem__(4, ("gone.wav", "ca", "train")),
         "gone.wav' (line 6 of transcripts.csv) does not exist"),
        (lambda rows, root: rows.__setitem__(2, ("r2.wav", "  ", "train")),
         "r2.wav' has an empty transcript (line 4 of transcripts.csv)"),
        (lambda rows, root: rows.__setitem__(11, ("r0.wav", "ab", "test")),
         "line 13: 'r0.wav' is listed again (first on line 2)"),
        (lambda rows, root: rows.__setitem__(9, ("r9.wav", "b", "validation")),
         "line 11: split 'validation' is not one of train, valid, test"),
        (lambda rows, root: [rows.__setitem__(i, (f"r{i}.wav", rows[i][1], "train"))
                             for i in (8, 9)], "no recording is in the valid split"),
    ],
)
def test_every_bad_recording_or_transcript_is_one_line_naming_the_file(capsys, tmp_path, change,
                                                                      message):
    root = recordings_folder(tmp_path / "mine", change)
    code, _, err = cli(capsys, "data", "--task", "asr", "--dataset", "wav", "--set",
                       f"path={root}")
    assert_one_error(code, err, message)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (None, "has no transcripts.csv (columns file,text"),
        ("file,words\nr0.wav,ab\n", "has no column 'text'; columns: file, words"),
        ("file,text\n", "has no data rows"),
    ],
)
def test_a_missing_or_malformed_transcripts_table_is_one_line(capsys, tmp_path, table, message):
    root = tmp_path / "mine"
    write_wav(root / "r0.wav", "ab")
    if table is not None:
        (root / "transcripts.csv").write_text(table)
    code, _, err = cli(capsys, "data", "--task", "asr", "--dataset", "wav", "--set",
                       f"path={root}")
    assert_one_error(code, err, message)


def test_options_of_the_other_dataset_are_refused(capsys, tmp_path):
    code, _, err = cli(capsys, "data", "--task", "asr", "--set", f"path={tmp_path}")
    assert_one_error(code, err, "option 'path' applies to dataset 'wav', not 'fsdd-connected'")
    code, _, err = cli(capsys, "data", "--task", "asr", "--dataset", "wav", "--set",
                       "train_strings=10")
    assert_one_error(code, err, "option 'train_strings' applies to dataset 'fsdd-connected'")


def test_your_recordings_train_bidirectionally_and_transcribe_without_the_folder(capsys,
                                                                              tmp_path):
    folder = recordings_folder(tmp_path / "mine")
    run = sb.run(task="asr", cell="gru", dataset="wav", epochs=2, hidden_size=6,
                 batch_size=4, output_dir=tmp_path / "runs", progress=False, path=str(folder),
                 bidirectional=True)
    per_stack = 3 * (6 * 39 + 6 * 6 + 2 * 6)  # a one-layer GRU stack reading 39 features
    assert run.metrics["parameters"] == 2 * per_stack + (2 * 6 + 1) * 4
    assert json.loads((run.dir / "asr.json").read_text())["alphabet"] == "abc"
    assert json.loads((run.dir / "split.json").read_text())["items"]["test"] == [
        "r10.wav", "r11.wav"]

    code, out, err = cli(capsys, "generate", run.dir)  # the folder is there: its test files
    assert code == 0, err
    rows = list(csv.DictReader(open(out.split()[0])))
    assert [(r["file"], r["reference"]) for r in rows] == [("r10.wav", "bc"), ("r11.wav", "cab")]
    assert all(set(r["text"]) <= set("abc") for r in rows)

    new = write_wav(tmp_path / "new" / "hello.wav", "cba")
    other = write_wav(tmp_path / "new" / "more" / "again.wav", "a")
    folder.rename(tmp_path / "moved")  # the training files are gone: asr.json is enough
    code, out, err = cli(capsys, "generate", run.dir, "--input", new, "--input", other.parent,
                         "--output", tmp_path / "out")
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "out" / "transcripts.csv")))
    assert [r["file"] for r in rows] == [str(new), str(other)] and "reference" not in rows[0]
    code, _, err = cli(capsys, "generate", run.dir, "--output", tmp_path / "out2")
    assert_one_error(code, err, "this run's test recordings are not loaded")
    code, _, err = cli(capsys, "generate", run.dir, "--input", tmp_path / "nothing.wav",
                       "--output", tmp_path / "out3")
    assert_one_error(code, err, "does not exist")


# --- real FSDD -----------------------------------------------------------------------------


@pytest.mark.realdata
def test_fsdd_connected_runs_end_to_end_on_real_recordings(real_data_dir, capsys, tmp_path):
    """A few real strings through data, run (with its baselines and per-item scores) and
    generate; seconds, not minutes (learning to LER < 10% is the slow test below)."""
    sizes = ["--set", "train_strings=96", "--set", "valid_strings=16", "--set",
             "test_strings=16"]
    code, out, err = cli(capsys, "data", "--task", "asr", "--data-dir", real_data_dir, *sizes)
    assert code == 0, err
    assert "test transcript lengths in labels" in out and "oracle_segments_minirocket" in out
    code, out, err = cli(capsys, "run", "--task", "asr", "--cell", "lstm", "--epochs", "1",
                         "--hidden-size", "16", "--data-dir", real_data_dir, "--output-dir",
                         tmp_path / "runs", "--quiet", *sizes)
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["primary_metric"] == "test_ler" and metrics["selection_metric"] == \
        "val_ctc_loss"
    assert 0 <= metrics["test_ler"] and 0 <= metrics["test_string_accuracy"] <= 1
    baselines = metrics["baselines"]
    assert baselines["empty_output"]["test_ler"] == 1.0
    assert 0 <= baselines["oracle_segments_minirocket"]["test_ler"] < 0.1
    items = list(csv.DictReader(open(run_dir / "test_items.csv")))
    assert len(items) == 16
    assert sum(float(r["value"]) for r in items) / sum(float(r["weight"]) for r in items) == \
        pytest.approx(metrics["test_ler"])
    recorded = json.loads((run_dir / "split.json").read_text())["items"]
    used = {split: {n for item in items for n in item.split(": ")[1].split()}
            for split, items in recorded.items()}
    assert not (used["train"] & used["test"] or used["valid"] & used["test"]
                or used["train"] & used["valid"])
    code, out, err = cli(capsys, "generate", run_dir, "--data-dir", real_data_dir)
    assert code == 0, err
    rows = list(csv.DictReader(open(out.split()[0])))
    assert len(rows) == 16 and all(r["reference"].isdigit() for r in rows)


@pytest.mark.slow
@pytest.mark.realdata
def test_the_default_lstm_transcribes_fsdd_connected_below_ten_percent_ler(real_data_dir,
                                                                         tmp_path):
    run = sb.run(task="asr", cell="lstm", data_dir=real_data_dir, output_dir=tmp_path,
                 progress=False)
    assert run.metrics["test_ler"] < 0.10
