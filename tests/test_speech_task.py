"""The speech task: splits, scaling, padding invariance, metrics, artifacts, generate, errors."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from seqbench import SeqbenchError
from seqbench.cli import main
from seqbench_tasks.speech.datasets import Sequences
from seqbench_tasks.speech.task import (
    SpeechData,
    collate,
    macro_f1,
    read_user_sequences,
    stratified_fold,
    stratified_split,
)


def synthetic(count: int, classes: int = 3, features: int = 4, seed: int = 0) -> Sequences:
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % classes
    return Sequences(
        features=[(rng.normal(size=(int(rng.integers(3, 9)), features)) + 3 * label)
                  .astype(np.float32) for label in labels],
        labels=labels,
        classes=[f"c{i}" for i in range(classes)],
    )


def make_data(pooling: str = "last") -> SpeechData:
    return SpeechData("tiny", {"train": synthetic(30), "test": synthetic(12, seed=1)},
                      valid_fraction=0.2, valid_seed=0, pooling=pooling)


def test_the_validation_split_is_stratified_seeded_and_disjoint():
    labels = np.repeat([0, 1, 2], [10, 20, 30])
    train, valid = stratified_split(labels, 0.1, seed=3)
    assert sorted(np.bincount(labels[valid])) == [1, 2, 3]
    assert set(train).isdisjoint(valid) and len(train) + len(valid) == 60
    assert np.array_equal(valid, stratified_split(labels, 0.1, seed=3)[1])
    assert not np.array_equal(valid, stratified_split(labels, 0.1, seed=4)[1])


def test_standardisation_is_fitted_on_training_frames_only():
    data = make_data()
    train_frames = torch.cat(data.sequences["train"])
    assert torch.allclose(train_frames.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(train_frames.std(0, unbiased=False), torch.ones(4), atol=1e-4)
    assert not torch.allclose(torch.cat(data.sequences["test"]).mean(0), torch.zeros(4), atol=0.05)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_padding_does_not_change_predictions(pooling):
    data = make_data(pooling)
    torch.manual_seed(0)
    cell, head = torch.nn.LSTM(4, 8, batch_first=True), data.head(8, {})
    short = torch.randn(3, 4)
    longer = [torch.randn(9, 4), torch.randn(6, 4)]

    def logits(sequences):
        batch = collate(sequences, torch.zeros(len(sequences), dtype=torch.long))
        return data.logits(head(cell(batch.inputs)[0]), batch)

    alone = logits([short])[0]
    padded = logits([longer[0], short, longer[1]])[1]
    assert torch.allclose(alone, padded, atol=1e-6)


def test_metrics_match_a_hand_computed_confusion_matrix():
    data = make_data()
    # true class 0: 3 right, 1 called c1; class 1: 2 right; class 2: 1 right, 1 called c0
    confusion = np.array([[3, 1, 0], [0, 2, 0], [1, 0, 1]])
    metrics = data.metrics({"confusion": confusion.flatten().tolist(), "nll": 4.0})
    f1 = [2 * 3 / (6 + 1 + 1), 2 * 2 / (4 + 1 + 0), 2 * 1 / (2 + 0 + 1)]
    assert metrics["accuracy"] == pytest.approx(6 / 8)
    assert metrics["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert metrics["nll"] == pytest.approx(0.5)
    assert macro_f1(np.zeros((2, 2))) == 0.0


def test_statistics_sum_to_exact_split_metrics():
    data = make_data()
    outputs_for = lambda batch: torch.randn(*batch.inputs.shape[:2], 3,  # noqa: E731
                                            generator=torch.Generator().manual_seed(0))
    totals = {}
    for batch in data.batches("test", 5):
        for key, value in data.statistics(outputs_for(batch), batch).items():
            totals[key] = totals.get(key, 0) + value
    confusion = totals["confusion"].reshape(3, 3)
    assert int(confusion.sum()) == 12 and confusion.sum(1).tolist() == [4, 4, 4]


def test_a_class_rarer_than_the_folds_still_folds_and_too_few_sequences_are_refused():
    """scikit-learn warns when a class cannot be in every fold; each sequence is still
    validated exactly once. More folds than sequences is one clear error."""
    labels = np.array([0] * 3 + [1] * 10)
    with pytest.warns(UserWarning, match="least populated class"):
        validated = np.concatenate([stratified_fold(labels, i, 5, seed=0)[1] for i in range(5)])
    assert sorted(validated.tolist()) == list(range(len(labels)))
    with pytest.raises(SeqbenchError, match="cannot make 5 stratified folds"):
        stratified_fold(np.array([0, 0, 1, 1]), 0, 5, seed=0)


def write_user_csv(path: Path, rows: list[list]) -> Path:
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["sequence", "a", "b"], ["s1", 1, 2]], "has 2 feature columns, the model expects 4"),
        ([["sequence", "a", "b", "c", "d"], ["s1", 1, 2, "nan", 4]], "contains NaN"),
        ([["id", "a", "b", "c", "d"]], "first column must be 'sequence'"),
        ([["sequence", "a", "b", "c", "d"], ["s1", 1, 2, "x", 4]], "line 2: not a number"),
        ([["sequence", "a", "b", "c", "d"], ["s1", 1, 2, 3, 4], ["s1", 1, 1e308, 3, 4]],
         "line 3, column 'b': value 1e\\+308 is too large for 32-bit floats"),
    ],
)
def test_bad_user_files_are_one_line_errors(tmp_path, rows, message):
    with pytest.raises(SeqbenchError, match=message):
        read_user_sequences(write_user_csv(tmp_path / "in.csv", rows), features=4)


def test_user_sequences_are_grouped_by_id(tmp_path):
    rows = [["sequence", "a", "b"], ["x", 1, 2], ["y", 5, 6], ["x", 3, 4]]
    ids, sequences = read_user_sequences(write_user_csv(tmp_path / "in.csv", rows), features=2)
    assert ids == ["x", "y"] and sequences[0].tolist() == [[1, 2], [3, 4]]


def test_japanese_vowels_end_to_end_with_artifacts_and_generate(tmp_path, capsys):
    code = main(["run", "--cell", "gru", "--task", "speech", "--epochs", "2", "--output-dir",
                 str(tmp_path / "runs"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["split_sizes"]["test"] == 370
    assert metrics["split_sizes"]["train"] + metrics["split_sizes"]["valid"] == 270
    assert metrics["selection_metric"] == "val_nll" and 0 <= metrics["test_accuracy"] <= 1
    assert (run_dir / "confusion_matrix.png").stat().st_size > 0
    table = list(csv.reader(open(run_dir / "confusion_matrix.csv")))
    assert len(table) == 10 and sum(int(v) for row in table[1:] for v in row[1:]) == 370

    capsys.readouterr()
    user = write_user_csv(tmp_path / "mine.csv",
                          [["sequence", *[f"c{i}" for i in range(12)]],
                           *[["a", *np.linspace(0, 1, 12)]] * 5])
    code = main(["generate", str(run_dir), "--set", f"input={user}",
                 "--output", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    (path,) = [Path(p) for p in capsys.readouterr().out.split()]
    rows = list(csv.reader(open(path)))
    assert rows[0][:2] == ["sequence", "predicted"] and rows[1][0] == "a" and len(rows) == 2


def test_a_wrong_width_user_file_is_exit_2(tmp_path, capsys):
    code = main(["run", "--cell", "rnn", "--task", "speech", "--epochs", "1", "--output-dir",
                 str(tmp_path / "runs"), "--quiet"])
    assert code == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    user = write_user_csv(tmp_path / "bad.csv", [["sequence", "a"], ["s", 1]])
    capsys.readouterr()
    code = main(["generate", str(run_dir), "--set", f"input={user}"])
    err = capsys.readouterr().err
    assert code == 2 and "has 1 feature columns, the model expects 12" in err


def silent_wav(path: Path) -> None:
    """A well-formed wav file with no samples."""
    import soundfile

    soundfile.write(path, np.zeros(0), 8000)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(500)),
         "is not a readable audio file (Format not recognised)"),
        (lambda p: p.write_bytes(b""), "is not a readable audio file"),
        (silent_wav, "has no audio samples"),
    ],
)
def test_a_damaged_recording_is_one_line_naming_it(tmp_path, build, message):
    from seqbench_tasks.speech.audio import mfcc

    path = tmp_path / "0_george_0.wav"
    build(path)
    with pytest.raises(SeqbenchError, match=re.escape(f"'{path}' {message}")):
        mfcc(path)


def test_a_corrupt_fsdd_folder_is_exit_2_naming_the_first_bad_file(tmp_path, capsys):
    folder = tmp_path / "data" / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    speakers = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
    for digit in range(10):
        for speaker in speakers:
            for index in range(50):
                (folder / f"{digit}_{speaker}_{index}.wav").write_bytes(b"not audio")
    code = main(["data", "--task", "speech", "--dataset", "fsdd", "--data-dir",
                 str(tmp_path / "data")])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert f"'{folder / '0_george_0.wav'}' is not a readable audio file" in errors[0]


@pytest.mark.realdata
def test_fsdd_has_the_official_split(real_data_dir, tmp_path):
    from seqbench import DataContext
    from seqbench_tasks.speech.datasets import load_fsdd

    splits = load_fsdd(DataContext(data_dir=real_data_dir, cache_dir=tmp_path))
    assert len(splits["train"].features) == 2700 and len(splits["test"].features) == 300
    assert np.bincount(splits["test"].labels).tolist() == [30] * 10
    assert splits["train"].features[0].shape[1] == 13


def test_sequential_digits_read_each_image_pixel_by_pixel_with_a_fixed_stratified_split():
    from sklearn.datasets import load_digits as sklearn_digits

    from seqbench_tasks.speech.datasets import load_digits

    splits = load_digits()
    images, labels = sklearn_digits(return_X_y=True)
    assert [len(splits[s].labels) for s in ("train", "test")] == [1437, 360]
    train_ids = {int(i.removeprefix("digit-")) for i in splits["train"].ids}
    test_ids = [int(i.removeprefix("digit-")) for i in splits["test"].ids]
    assert not train_ids & set(test_ids) and len(train_ids) + len(test_ids) == 1797
    assert np.bincount(splits["test"].labels).tolist() == np.bincount(
        labels[test_ids]).tolist() and min(np.bincount(splits["test"].labels)) >= 35
    first = splits["test"].features[0]
    assert first.shape == (64, 1)  # 64 steps of one intensity, row by row
    np.testing.assert_array_equal(first[:, 0], images[test_ids[0]])
    assert splits["test"].labels[0] == labels[test_ids[0]]
    assert load_digits()["test"].ids == splits["test"].ids  # the same split every time
