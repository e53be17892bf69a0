"""The language-modelling task on a tiny corpus: streams, windows, exact metrics, CLI, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from seqbench import DataContext, SeqbenchError
from seqbench.cli import main

from seqbench_tasks.lm.corpus import Streams, load_streams
from seqbench_tasks.lm.task import LanguageData, LanguageModelTask, batchify

PARAMS = {"bptt": 3, "emb_size": 8, "tie_weights": False, "emb_dropout": 0.0,
          "out_dropout": 0.0, "init_range": 0.1}
TEXT = "the cat sat on the mat\nthe dog sat on the log\n" * 20


def tiny_data(ids, vocab_size=10, **params) -> LanguageData:
    streams = Streams({s: np.asarray(ids) for s in ("train", "valid", "test")},
                      [f"w{i}" for i in range(vocab_size)], "word")
    return LanguageData("tiny", streams, {**PARAMS, **params})


def test_streams_are_contiguous_rows_and_windows_follow_them_in_order():
    assert batchify(np.arange(11), 2).tolist() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    data = tiny_data(np.arange(11))
    windows = list(data.batches("train", 2, seed=123))  # a seed must not shuffle a stream
    assert len(windows) == data.num_batches("train", 2) == 2
    assert windows[0].inputs.tolist() == [[0, 1, 2], [5, 6, 7]]
    assert windows[0].targets.tolist() == [[1, 2, 3], [6, 7, 8]]
    assert windows[1].inputs.tolist() == [[3], [8]] and windows[1].targets.tolist() == [[4], [9]]
    # every token but each row's first is predicted exactly once
    assert sum(w.targets.numel() for w in windows) == 2 * (5 - 1)


def test_uniform_predictions_give_perplexity_equal_to_the_vocabulary_size():
    data = tiny_data(np.arange(40) % 10)
    totals = {}
    for batch in data.batches("test", 4):
        outputs = torch.zeros(*batch.targets.shape, 10)  # uniform over 10 words
        for key, value in data.statistics(outputs, batch).items():
            totals[key] = totals.get(key, 0.0) + float(value)
    metrics = data.metrics(totals)
    assert totals["tokens"] == 4 * (10 - 1)
    assert metrics["nll"] == pytest.approx(math.log(10)) and metrics["ppl"] == pytest.approx(10)


def test_carrying_state_across_windows_equals_one_pass_over_the_stream():
    data = tiny_data(np.arange(31) % 10)
    torch.manual_seed(0)
    embed, cell = data.encoder(PARAMS), torch.nn.LSTM(8, 6, batch_first=True)
    state, pieces = None, []
    for batch in data.batches("valid", 3):
        out, state = cell(embed(batch.inputs), state)
        state = tuple(s.detach() for s in state)
        pieces.append(out)
    whole = torch.from_numpy(batchify(np.arange(31) % 10, 3))[:, :-1]
    assert torch.allclose(torch.cat(pieces, 1), cell(embed(whole))[0], atol=1e-6)


def test_tied_weights_share_one_matrix_and_need_equal_sizes():
    data = tiny_data(np.arange(20) % 10, tie_weights=True)
    params = {**PARAMS, "tie_weights": True}
    encoder = data.encoder(params)
    head = data.head(8, params)
    assert head[1].weight is encoder[0].weight
    with pytest.raises(SeqbenchError, match="tie_weights needs emb_size == hidden_size"):
        data.head(16, params)


@pytest.fixture
def tiny_ptb(tmp_path):
    """A data dir holding a tiny corpus under PTB's canonical names."""
    folder = tmp_path / "data" / "ptb"
    folder.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (folder / f"ptb.{split}.txt").write_text(TEXT)
    return tmp_path / "data"


def test_word_streams_append_eos_to_every_line(tiny_ptb, tmp_path):
    streams = load_streams("ptb", DataContext(tiny_ptb, tmp_path / "cache"))
    assert len(streams.ids["train"]) == len(TEXT.split()) + TEXT.count("\n")
    assert sorted(streams.vocab) == sorted({*TEXT.split(), "<eos>"})


def test_a_tiny_corpus_end_to_end_with_text_generation(tiny_ptb, tmp_path, capsys):
    code = main(["run", "--cell", "gru", "--task", "lm", "--epochs", "6", "--hidden-size", "16",
                 "--batch-size", "4", "--set", "bptt=5", "--set", "emb_size=16",
                 "--set", "optimizer=adam", "--lr", "0.02", "--set", "clip=1",
                 "--data-dir", str(tiny_ptb), "--output-dir", str(tmp_path / "runs"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["primary_metric"] == "test_ppl" and metrics["test_ppl"] < 9  # vocab is 9
    assert metrics["train_timesteps_per_second"] > 0
    capsys.readouterr()
    code = main(["generate", str(run_dir), "--data-dir", str(tiny_ptb), "--steps", "12",
                 "--set", "prompt=the cat", "--set", "top_k=3", "--output", str(tmp_path / "g")])
    out = capsys.readouterr().out
    assert code == 0
    text = (tmp_path / "g" / "sample-1.txt").read_text()
    assert text.startswith("the cat") and len(text.split()) >= 12 and text.strip() in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "100000"], "too few for batch_size=100000"),
        (["--dataset", "ptbb"], "Did you mean 'ptb'?"),
        (["--set", "tie_weights=true", "--set", "emb_size=8"], "tie_weights needs emb_size"),
    ],
)
def test_bad_lm_input_is_one_line_and_exit_2(tiny_ptb, tmp_path, capsys, args, message):
    code = main(["run", "--cell", "rnn", "--task", "lm", "--epochs", "1", "--hidden-size", "16",
                 "--data-dir", str(tiny_ptb), "--output-dir", str(tmp_path / "r"), "--quiet",
                 *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_an_empty_corpus_file_is_a_clear_error(tiny_ptb, tmp_path):
    (tiny_ptb / "ptb" / "ptb.valid.txt").write_text("")
    with pytest.raises(SeqbenchError, match="ptb.valid.txt' is empty"):
        load_streams("ptb", DataContext(tiny_ptb, tmp_path / "cache"))


@pytest.mark.realdata
def test_ptb_token_counts_are_the_canonical_ones(real_data_dir, tmp_path):
    streams = load_streams("ptb", DataContext(real_data_dir, tmp_path))
    # we count <eos>: 887,521 words + 42,068 line ends = 929,589 tokens
    assert len(streams.ids["train"]) == 929_589 and len(streams.vocab) == 10_000
    eos = streams.vocab.index("<eos>")
    assert int((streams.ids["train"] != eos).sum()) == 887_521
    assert (len(streams.ids["valid"]), len(streams.ids["test"])) == (73_760, 82_430)


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("dataset", sorted(LanguageModelTask.datasets))
def test_one_epoch_on_each_corpus(real_data_dir, tmp_path, capsys, dataset):
    code = main(["run", "--cell", "lstm", "--task", "lm", "--dataset", dataset, "--epochs", "1",
                 "--data-dir", str(real_data_dir), "--output-dir", str(tmp_path), "--quiet"])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = [p for p in Path(tmp_path).iterdir() if p.is_dir()]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert math.isfinite(metrics[metrics["primary_metric"]])
