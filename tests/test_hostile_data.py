"""Data read wrongly or silently, and the small things a user trips on (issue 38).

A test file whose columns come in another order, values near float32's largest, files too
short to use, paths with line breaks or spaces, a cache folder that cannot be written, a
large text corpus, an explicit option given with `--spec`, a report without `--study`, and
the Python API given arguments of the wrong type.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import numpy as np
import pytest
from test_user_data import labelled, write_long_csv, write_midi

import seqbench as sb
from seqbench.cli import main
from seqbench.errors import SeqbenchError
from seqbench_tasks.lm.corpus import vocabulary

FAST = ["--epochs", "1", "--hidden-size", "4", "--quiet"]


def one_error(capsys, argv) -> str:
    """Run `argv`; assert exit 2 and exactly one line on stderr, an `error:` line; return it."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, out, err)
    return lines[0]


# --- columns matched by name ------------------------------------------------------------


def swapped(path: Path, sequences) -> Path:
    """The same sequences with the feature columns written y before x."""
    lines = ["sequence,label,y,x"] + [f"{key},{label},{b},{a}" for key, label, frames in
                                      sequences for a, b in frames]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_test_file_with_its_feature_columns_in_another_order_is_read_by_name(tmp_path):
    from seqbench.datacheck import load

    train = write_long_csv(tmp_path / "train.csv", labelled(30))
    test = labelled(10, seed=1)
    same = write_long_csv(tmp_path / "test.csv", test)
    other_order = swapped(tmp_path / "test-yx.csv", test)
    read = {name: load("speech", "csv", {"path": str(train), "test": str(path)}, None)[1]
            for name, path in (("same", same), ("other order", other_order))}
    for a, b in zip(read["same"].sequences["test"], read["other order"].sequences["test"]):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_a_test_file_with_other_feature_columns_is_one_line(tmp_path, capsys):
    train = write_long_csv(tmp_path / "train.csv", labelled(30))
    test = write_long_csv(tmp_path / "test.csv", labelled(10, seed=1), header="sequence,label,x,z")
    line = one_error(capsys, ["data", "--task", "speech", "--dataset", "csv", "--set",
                              f"path={train}", "--set", f"test={test}"])
    assert f"'{test}' lacks the feature column 'y' of the training file '{train}'" in line


# --- numbers a result can be ------------------------------------------------------------


def test_values_near_the_float32_maximum_give_finite_metrics(tmp_path, capsys):
    path = tmp_path / "huge.csv"
    rng = np.random.default_rng(0)
    values = 1e38 * (1.5 + np.sin(np.arange(200) / 5) + 0.1 * rng.normal(size=200))
    path.write_text("t,target\n" + "".join(f"{i},{float(v)!r}\n" for i, v in enumerate(values)))
    assert main(["run", "--task", "forecasting", "--dataset", "csv", "--cell", "gru",
                 "--set", f"csv={path}", "--set", "target=target", *FAST,
                 "--output-dir", str(tmp_path / "runs")]) == 0, capsys.readouterr().err
    (metrics,) = (tmp_path / "runs").glob("*/metrics.json")
    results = json.loads(metrics.read_text())
    numbers = [v for k, v in results.items() if k.startswith("test_") and isinstance(v, float)]
    assert numbers and all(math.isfinite(v) for v in numbers), results


def test_a_non_finite_test_metric_fails_the_run_in_one_line(tmp_path):
    from seqbench.runs import METRICS, refuse_non_finite

    with pytest.raises(SeqbenchError, match="test_mse is inf, not a number a result can be"):
        refuse_non_finite({"test_mse": math.inf, "test_mae": 1.0}, tmp_path)
    assert json.loads((tmp_path / METRICS).read_text())["status"] == "failed"
    refuse_non_finite({"test_mse": 2.0, "val_mse": math.nan}, tmp_path)  # not a result


# --- files too short, exactly one line ----------------------------------------------------


def test_a_one_row_forecasting_csv_is_one_line_naming_it(tmp_path, capsys):
    path = tmp_path / "one.csv"
    path.write_text("t,target\n1,5\n")
    line = one_error(capsys, ["run", "--task", "forecasting", "--dataset", "csv", "--cell",
                              "gru", "--set", f"csv={path}", "--set", "target=target", *FAST,
                              "--output-dir", tmp_path / "runs"])
    assert f"'{path}'" in line and "do not fit" in line


@pytest.mark.parametrize("case", ["one file", "every file bad", "every file bad, skipped"])
def test_a_midi_folder_with_one_file_or_none_usable_is_one_line(case, tmp_path, capsys):
    folder = tmp_path / "midi"
    if case == "one file":
        write_midi(folder / "only.mid", [60, 62, 64, 65, 67] * 4)
    else:
        folder.mkdir()
        for name in ("a.mid", "b.mid"):
            (folder / name).write_bytes(b"not a midi file")
    skip = ["--set", "skip_bad=true"] if case.endswith("skipped") else []
    line = one_error(capsys, ["run", "--task", "music", "--dataset", "midi", "--cell", "gru",
                              "--set", f"path={folder}", *skip, *FAST,
                              "--output-dir", tmp_path / "runs"])
    assert str(folder) in line


def test_a_path_with_a_line_break_is_named_in_the_one_error_line(tmp_path, capsys):
    folder = tmp_path / "new\nline"
    folder.mkdir()
    path = folder / "one.csv"
    path.write_text("t,target\n1,5\n")
    line = one_error(capsys, ["run", "--task", "forecasting", "--dataset", "csv", "--cell",
                              "gru", "--set", f"csv={path}", "--set", "target=target", *FAST,
                              "--output-dir", tmp_path / "runs"])
    assert str(path).replace("\n", "\\n") in line


# --- paths with spaces: the recorded commands run as printed ------------------------------


def test_recorded_and_suggested_commands_quote_paths_with_spaces(tmp_path, capsys):
    folder = tmp_path / "my data"
    folder.mkdir()
    path = folder / "air line.csv"
    rows = "".join(f"{i},{100 + 10 * math.sin(i / 3) + i}\n" for i in range(120))
    path.write_text("t,target\n" + rows)
    out = tmp_path / "run records"
    assert main(["run", "--task", "forecasting", "--dataset", "csv", "--cell", "gru",
                 "--set", f"csv={path}", "--set", "target=target", *FAST,
                 "--output-dir", str(out)]) == 0
    (run_dir,) = out.iterdir()
    command = shlex.split(json.loads((run_dir / "config.json").read_text())["command"])
    assert command[:2] == ["seqbench", "run"]
    again = tmp_path / "again"
    assert main([*command[1:], "--epochs", "1", "--quiet", "--output-dir", str(again)]) == 0
    assert json.loads(next(again.glob("*/config.json")).read_text())["spec"]["task_params"][
        "csv"] == str(path)


# --- a large text corpus: bounded memory, the same tokens ---------------------------------


def corpus_text(characters: int, seed: int = 0) -> str:
    """Words of a made-up language (one accented letter, so byte-level BPE meets two-byte
    characters) between every kind of gap a real corpus has: single and double spaces,
    tabs, line breaks, blank lines, trailing spaces."""
    import random

    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz\u00e9"
    words = ["".join(rng.choices(letters, k=rng.randint(1, 9))) for _ in range(3000)]
    gaps = [" "] * 12 + ["\n", "  ", "\n\n", "\t", " \n"]
    parts, size = [], 0
    while size < characters:
        parts.append(rng.choice(words) + rng.choice(gaps))
        size += len(parts[-1])
    return "".join(parts)


def whole_text_tokens(tokenizer, trainer, parts: dict) -> tuple[list, dict]:
    """What the tokenizer learns and encodes given each split whole, in one call: the
    reference the streamed tokenizing must equal."""
    tokenizer.train_from_iterator([parts["train"]], trainer=trainer)
    return vocabulary(tokenizer), {s: tokenizer.encode(t).ids for s, t in parts.items()}


def test_a_corpus_tokenized_a_piece_at_a_time_gives_the_tokens_of_the_whole_text():
    """Longer than several pieces (corpus.PIECE), at every level: the vocabulary and every
    split's ids are those of the whole text given to the tokenizer at once."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    from seqbench_tasks.lm import corpus

    text = corpus_text(6 * corpus.PIECE)
    parts = corpus.contiguous_parts(text, train=0.6, valid=0.2)
    assert len(parts["valid"]) > corpus.PIECE  # every split is cut into pieces

    char = Tokenizer(models.WordLevel(unk_token=corpus.UNK))
    char.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    references = {
        "char": (corpus.char_streams(parts), whole_text_tokens(
            char, trainers.WordLevelTrainer(special_tokens=[corpus.UNK], vocab_size=10_000),
            parts)),
        "bpe": (corpus.bpe_streams(parts, 600), whole_text_tokens(
            bpe, trainers.BpeTrainer(vocab_size=600,
                                     initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
            parts)),
    }
    for level, (streams, (vocab, ids)) in references.items():
        assert streams.vocab == vocab, level
        for split in corpus.SPLITS:
            assert streams.ids[split].tolist() == ids[split], (level, split)

    words = corpus.word_streams(parts, add_unk=True)  # words unseen in training
    tokenizer = Tokenizer.from_str(words.tokenizer)
    for split, split_text in parts.items():
        lines = [f"{line} {corpus.EOS}" for line in split_text.splitlines()]
        assert list(corpus.lines_of(split_text)) == split_text.splitlines()
        expected = [i for encoding in tokenizer.encode_batch(lines) for i in encoding.ids]
        assert words.ids[split].tolist() == expected, split


#: Peak memory a character of corpus may add while it is tokenized. Encoded at once, HF
#: tokenizers hold about 450 bytes a token (a 200 MB corpus aborted, issue 38; this test's
#: 2 MB took 430-545); a piece at a time about 75, mostly one batch's Encodings.
BYTES_PER_CHARACTER = 200


def test_tokenizing_a_large_corpus_takes_bounded_memory(tmp_path):
    """In a fresh process, so its peak is this corpus's alone."""
    import subprocess
    import sys

    script = f"""
import resource, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_hostile_data import corpus_text
from seqbench_tasks.lm import corpus
text = corpus_text(1 << 21)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
corpus.char_streams(corpus.contiguous_parts(text))
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024 / len(text))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    assert float(done.stdout) < BYTES_PER_CHARACTER, done.stdout


# --- a cache folder that cannot be written ------------------------------------------------


def test_a_cache_that_cannot_be_written_is_a_note_and_leaves_no_partial_file(tmp_path,
                                                                              capsys):
    from seqbench.datafiles import cached

    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    assert cached(blocker / "sub" / "x.pkl", lambda: {"value": 1}) == {"value": 1}
    assert "could not write the cache" in capsys.readouterr().err
    assert not list(tmp_path.rglob(".partial-*"))


# --- small things -------------------------------------------------------------------------


def test_an_explicit_seed_or_device_overrides_the_spec_even_when_zero(tmp_path, capsys):
    from seqbench.runs import read_spec

    first = tmp_path / "first"
    assert main(["run", "--task", "speech", "--cell", "gru", "--seed", "5", "--device", "cpu",
                 *FAST, "--output-dir", str(first)]) == 0
    (recorded,) = first.iterdir()
    again = tmp_path / "again"
    assert main(["run", "--spec", str(recorded), "--seed", "0", "--quiet",
                 "--output-dir", str(again)]) == 0
    spec = read_spec(next(again.iterdir()))
    assert spec.seed == 0 and spec.device == "cpu"  # seed overridden, device kept


@pytest.mark.parametrize("call, fragment", [
    (lambda t: sb.sweep("speech", ["gru"], storage=5, output_dir=t), "storage must be a path"),
    (lambda t: sb.sweep("speech", ["gru"], jobs="2", output_dir=t),
     "jobs must be a whole number (got '2')"),
    (lambda t: sb.sweep("speech", ["gru"], output_dir=None), "output_dir must be a path"),
    (lambda t: sb.sweep("speech", ["gru"], output_dir=t, data_dir=3), "data_dir must be a path"),
    (lambda t: sb.run("speech", "gru", output_dir=None, epochs=1), "output_dir must be a path"),
    (lambda t: sb.run("speech", "gru", data_dir=3, output_dir=t), "data_dir must be a path"),
    (lambda t: sb.load(5), "run_dir must be a path"),
])
def test_the_python_api_checks_its_arguments_at_the_boundary(call, fragment, tmp_path):
    with pytest.raises(SeqbenchError) as error:
        call(tmp_path)
    assert fragment in str(error.value)
