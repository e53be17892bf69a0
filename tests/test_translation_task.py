"""The translation task: user text and its errors, subword caching, BLEU as summed
statistics, the baselines, and one small end-to-end run on real Multi30k."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest
import sacrebleu

import seqbench as sb
from seqbench import DataContext
from seqbench.cli import main
from seqbench.params import resolve
from seqbench_tasks.translation import baselines, scoring, vocab
from seqbench_tasks.translation import task as translation
from seqbench_tasks.translation.corpus import MULTI30K_SIZES, SPLITS, text_lines

NUMBERS = ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def params(**given):
    return resolve(translation.params, given, "task 'translation'")


def write_pairs(folder: Path, count: int = 80) -> tuple[Path, Path]:
    """`count` sentence pairs of German and English number words."""
    rng = random.Random(0)
    digits = [[rng.randrange(10) for _ in range(rng.randrange(1, 5))] for _ in range(count)]
    source, target = folder / "src.de", folder / "tgt.en"
    source.write_text("".join(" ".join(NUMBERS[d] for d in ds) + ".\n" for ds in digits))
    target.write_text("".join(" ".join(WORDS[d] for d in ds) + ".\n" for ds in digits))
    return source, target


def prepare(tmp_path, dataset="parallel", **given):
    context = DataContext(data_dir=tmp_path, cache_dir=tmp_path / "cache")
    return translation.prepare(dataset, context, params(**{"bpe_vocab": 60, **given}))


def test_user_pairs_are_split_by_a_hash_of_each_pair_and_blank_pairs_are_left_out(tmp_path):
    source, target = write_pairs(tmp_path)
    source.write_text(source.read_text() + "\nnull.\n")  # a blank pair, a half-blank pair
    target.write_text(target.read_text() + "\n\n")
    data = prepare(tmp_path, source=str(source), target=str(target))
    text = data.encoded.text
    assert sum(data.split_sizes().values()) == 80 and all(data.split_sizes().values())
    pairs = {split: set(zip(text.source[split], text.target[split])) for split in SPLITS}
    assert not (pairs["train"] & pairs["test"]) and not (pairs["train"] & pairs["valid"])
    facts = data.describe()
    assert any("2 of 82 lines left out" in note for note in facts["notes"])
    assert facts["cache"].endswith(".pkl") and set(facts["lengths"]) == set(SPLITS)


def test_crlf_line_ends_and_a_byte_order_mark_read_as_plain_lines(tmp_path):
    source, target = write_pairs(tmp_path)
    source.write_bytes(b"\xef\xbb\xbf" + source.read_text().replace("\n", "\r\n").encode())
    data = prepare(tmp_path, source=str(source), target=str(target))
    sentences = [s for split in SPLITS for s in data.encoded.text.source[split]]
    assert all("\r" not in s and "\ufeff" not in s for s in sentences)


@pytest.mark.parametrize("change, message", [
    (lambda s, t: t.write_text(t.read_text() + "one.\n"), "has 80 lines but"),
    (lambda s, t: s.write_text(""), "is empty"),
    (lambda s, t: s.write_bytes(b"eins\n\xff\xfe zwei\n"), "not UTF-8 text (undecodable byte at"),
    (lambda s, t: t.write_bytes(b"PK\x03\x04\x00\x00"), "a NUL byte at offset 4"),
    (lambda s, t: s.unlink(), "does not exist"),
    (lambda s, t: (s.unlink(), s.mkdir()), "is a folder; give a file"),
    (lambda s, t: (s.write_text("eins.\n"), t.write_text("one.\n")),
     "give 1 sentence pairs, none of them in the"),
])
def test_bad_parallel_files_are_one_line_errors_and_exit_2(tmp_path, capsys, change, message):
    source, target = write_pairs(tmp_path)
    change(source, target)
    code = main(["data", "--task", "translation", "--dataset", "parallel", "--set",
                 f"source={source}", "--set", f"target={target}"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_source_and_target_belong_to_the_parallel_dataset(tmp_path, capsys):
    code = main(["data", "--task", "translation", "--set", "source=a.txt"])
    assert code == 2
    assert "option 'source' applies to dataset 'parallel'" in capsys.readouterr().err


def test_subwords_are_learned_once_per_content_and_options_and_read_back(tmp_path, monkeypatch):
    source, target = write_pairs(tmp_path)
    first = prepare(tmp_path, source=str(source), target=str(target))
    monkeypatch.setattr(vocab, "learn", lambda *a: pytest.fail("learned again"))
    again = prepare(tmp_path, source=str(source), target=str(target))
    assert again.cache == first.cache
    assert [s.tolist() for s in again.encoded.source["train"]] == \
        [s.tolist() for s in first.encoded.source["train"]]
    monkeypatch.undo()
    other = prepare(tmp_path, source=str(source), target=str(target), bpe_vocab=40)
    assert other.cache != first.cache and len(other.target_vocab) <= 40
    target.write_text(target.read_text().replace("one", "uno"))
    changed = prepare(tmp_path, source=str(source), target=str(target))
    assert changed.cache != first.cache


def test_subwords_come_from_training_pairs_only_and_decode_to_the_text(tmp_path):
    source, target = write_pairs(tmp_path)
    data = prepare(tmp_path, source=str(source), target=str(target))
    for split in SPLITS:
        for ids, sentence in zip(data.encoded.target[split], data.encoded.text.target[split]):
            assert ids[-1] == vocab.EOS and data.target_vocab.decode(ids) == sentence
    learned = vocab.learn(["aaa bbb"], 50)
    assert vocab.UNK in learned.encode(["ccc"])[0]  # unseen characters: <unk>, not a crash


def test_summed_sentence_statistics_give_sacrebleu_s_corpus_scores_whatever_the_batches():
    rng = random.Random(1)
    words = "a man dog runs on the grass with red ball".split()
    references = [" ".join(rng.choices(words, k=rng.randrange(3, 9))) + "." for _ in range(30)]
    hypotheses = [" ".join(rng.choices(words, k=rng.randrange(2, 9))) for _ in range(30)]
    totals = {name: 0 for name in scoring.METRICS}
    for start in range(0, 30, 7):  # uneven batches
        for name, value in scoring.summed(hypotheses[start:start + 7],
                                          references[start:start + 7]).items():
            totals[name] = totals[name] + value
    scores = scoring.scores({name: value.tolist() for name, value in totals.items()})
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score)
    assert scores["bleu_lc"] == pytest.approx(
        sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score)
    assert "tok:13a" in scoring.signatures()["bleu"]


def test_the_dice_dictionary_pairs_words_that_occur_together_and_keeps_the_source_layout():
    source = ["der Hund läuft.", "der Mann schläft.", "ein Hund schläft.", "ein Mann läuft.",
              "der Mann läuft."]
    target = ["the dog runs.", "the man sleeps.", "a dog sleeps.", "a man runs.",
              "the man runs."]
    dictionary = baselines.dice_dictionary(source, target)
    # "Hund" is in sentences 1 and 3, as "dog" is: Dice 2 * 2 / (2 + 2) = 1; "the" shares
    # sentence 1 only with it: 2 * 1 / (2 + 3) = 0.4.
    assert {word: dictionary[word] for word in ("der", "ein", "Hund", "Mann", "läuft",
                                                "schläft", ".")} == {
        "der": "the", "ein": "a", "Hund": "dog", "Mann": "man", "läuft": "runs",
        "schläft": "sleeps", ".": "."}
    assert baselines.word_for_word(dictionary, ["ein Hund läuft, Bello!"]) == [
        "a dog runs, Bello!"]  # unknown words and unseen punctuation stay as they were
    assert baselines.copy_source(source) == source


def test_the_baselines_are_scored_on_the_test_pairs_with_the_task_s_metrics(tmp_path):
    source, target = write_pairs(tmp_path, 200)
    data = prepare(tmp_path, source=str(source), target=str(target))
    scores = data.baselines()
    assert set(scores) == {"copy_source", "dictionary"}
    text = data.encoded.text
    assert scores["copy_source"]["bleu"] == pytest.approx(
        sacrebleu.corpus_bleu(text.source["test"], [text.target["test"]]).score)
    # Number words translate one for one: the dictionary baseline is (nearly) perfect here.
    assert scores["dictionary"]["bleu"] > 90 > scores["copy_source"]["bleu"]


def test_a_parameter_budget_gives_each_cell_the_widest_whole_network_that_fits():
    from seqbench.config import build_spec
    from seqbench.sweeps.budget import hidden_size_for, parameter_count

    data = translation.check_case().data
    widths = {}
    for cell in ("lstm", "gru", "rnn"):
        spec = build_spec("translation", cell, settings={"task.emb_size": 16})
        widths[cell] = width = hidden_size_for(spec, data, 50_000)
        assert parameter_count(spec.with_settings({"hidden_size": width}), data) <= 50_000
        assert parameter_count(spec.with_settings({"hidden_size": width + 1}), data) > 50_000
    assert widths["lstm"] < widths["gru"] < widths["rnn"]  # 4, 3 and 1 weight blocks


def test_missing_multi30k_offline_names_the_file_the_folder_and_the_source(tmp_path, capsys,
                                                                           monkeypatch):
    monkeypatch.setenv("SEQBENCH_OFFLINE", "1")
    code = main(["data", "--task", "translation", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "'train.de.gz' not found in" in err and "raw.githubusercontent.com/multi30k" in err


@pytest.mark.parametrize("content, message", [
    (b"not gzip", "is not a gzip file"),
    (gzip.compress("Ein Satz.\n".encode()), "has 1 lines, Multi30k's train "
     "split has 29000"),
])
def test_a_damaged_multi30k_file_is_refused_in_one_line(tmp_path, capsys, content, message):
    folder = tmp_path / "multi30k"
    folder.mkdir()
    for split in ("train", "val", "test_2016_flickr"):
        for language in ("de", "en"):
            (folder / f"{split}.{language}.gz").write_bytes(content)
    code = main(["data", "--task", "translation", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "train.de.gz" in err, err


def test_multi30k_sizes_and_round_trips_are_the_published_ones(real_data_dir, tmp_path):
    context = DataContext(data_dir=real_data_dir, cache_dir=tmp_path)
    data = translation.prepare("multi30k-fr-en", context, params(max_train_sentences=500,
                                                                 bpe_vocab=1000))
    text = data.encoded.text
    assert {split: len(text.source[split]) for split in SPLITS} == {
        **MULTI30K_SIZES, "train": 500}
    assert text.source["test"][0].startswith("Un homme avec un chapeau orange")
    assert data.describe()["notes"][0].startswith("split: Multi30k task 1 as published (fr -> en)")
    assert text.target["test"][0] == "A man in an orange hat starring at something."
    # Subwords decode to the text (a stray leading space aside, which BLEU ignores too).
    assert all(data.source_vocab.decode(ids) == sentence.strip() for ids, sentence in
               zip(data.encoded.source["train"], text.source["train"]))


def test_a_small_real_run_translates_scores_and_generates(real_data_dir, tmp_path, capsys):
    """Seconds, not minutes: 300 training pairs, a 16-unit GRU, one epoch. The whole
    validation and test sets are still decoded and scored, with the baselines."""
    code = main(["run", "--cell", "gru", "--task", "translation", "--epochs", "1",
                 "--hidden-size", "16", "--data-dir", str(real_data_dir), "--output-dir",
                 str(tmp_path / "runs"), "--set", "max_train_sentences=300", "--set",
                 "bpe_vocab=500", "--set", "emb_size=16", "--set", "beam=2", "--quiet"])
    assert code == 0, capsys.readouterr().err
    [run_dir] = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["primary_metric"] == "test_bleu" and metrics["direction"] == "maximize"
    assert metrics["selection_metric"] == "val_ppl"
    for name in ("test_bleu", "test_bleu_lc", "test_chrf", "test_ppl", "val_bleu"):
        assert np.isfinite(metrics[name])
    assert set(metrics["baselines"]) == {"copy_source", "dictionary"}
    assert "test_items" not in metrics  # corpus BLEU has no per-sentence parts that add up
    translations = (run_dir / "test_translations.txt").read_text().split("\n")[:-1]
    references = text_lines(gzip.decompress(
        (real_data_dir / "multi30k" / "test_2016_flickr.en.gz").read_bytes()).decode())
    assert len(translations) == 1000
    assert sacrebleu.corpus_bleu(translations, [references]).score == pytest.approx(
        metrics["test_bleu"])  # the file is exactly what was scored
    assert json.loads((run_dir / "sacrebleu.json").read_text())["bleu"].startswith("nrefs:1")

    sentences = tmp_path / "in.de"
    sentences.write_text("Ein Hund läuft.\n\nZwei Männer spielen Fußball.\n")
    capsys.readouterr()
    code = main(["generate", str(run_dir), "--data-dir", str(real_data_dir), "--input",
                 str(sentences), "--set", "beam=3", "--output", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    lines = (tmp_path / "out" / "translations.txt").read_text().split("\n")
    assert len(lines) == 4 and lines[1] == ""  # one line per input line, blank kept blank

    run = sb.load(run_dir, data_dir=real_data_dir)  # the same from Python, test sentences
    [written] = run.generate(tmp_path / "py", num=2, beam=1)
    assert len(written.read_text().splitlines()) == 2


def test_a_run_on_your_parallel_text_translates_from_its_folder_alone(tmp_path, capsys):
    source, target = write_pairs(tmp_path, 120)
    code = main(["run", "--cell", "rnn", "--task", "translation", "--dataset", "parallel",
                 "--epochs", "1", "--hidden-size", "8", "--output-dir", str(tmp_path / "runs"),
                 "--set", f"source={source}", "--set", f"target={target}", "--set",
                 "bpe_vocab=60", "--set", "emb_size=8", "--quiet"])
    assert code == 0, capsys.readouterr().err
    [run_dir] = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "split.json").read_text())
    assert sum(map(len, record["items"].values())) == 120
    source.rename(tmp_path / "moved.de")  # the tokenizers in the run folder are enough
    sentences = tmp_path / "in.de"
    sentences.write_text("eins zwei.\n")
    capsys.readouterr()
    assert main(["generate", str(run_dir), "--input", str(sentences)]) == 0
    assert len((run_dir / "generated" / "translations.txt").read_text().splitlines()) == 1
    capsys.readouterr()
    assert main(["generate", str(run_dir), "--output", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert "holds no test sentences; give a file to translate (--input FILE)" in err
