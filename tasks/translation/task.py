"""Translation: an attentional encoder-decoder built from the run's cell, scored by BLEU.

Machine translation is where LSTMs (Sutskever et al. 2014) and GRUs (Cho et al. 2014) made
their name, with attention (Bahdanau et al. 2015). The task composes its model from the
core's cell factory (`Task.composes_cells`): a bidirectional encoder, a decoder and
attention, every recurrent part the run's cell (`network.py`).

Protocol: teacher-forced training on subword cross-entropy; early stopping and model
selection on validation perplexity (`select_by`), which is smooth and cheap; the reported
metric is test BLEU (higher is better) with sacrebleu on detokenised output against the
untouched references, decoded with beam search, beside chrF, lowercased BLEU and the
copy-the-source and word-for-word dictionary baselines. Validation is decoded greedily
every epoch, so the history shows BLEU climbing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqbench import DataContext, Param, SeqbenchError, Task
from seqbench.userdata import existing_file, read_user_text, refuse_foreign_options
from seqbench_tasks.translation import vocab
from seqbench_tasks.translation.corpus import PARALLEL, Parallel, empty_splits, text_lines
from seqbench_tasks.translation.data import TOKENIZERS, TranslationData


#: The attention scores `network.Translator` offers (declared here: the network imports torch).
ATTENTIONS = ("bahdanau", "luong")


class TranslationTask(Task):
    name = "translation"
    summary = "Translation (Multi30k): attentional encoder-decoder of the cell, test BLEU"
    datasets = {
        "multi30k-de-en": "Multi30k task 1, German -> English (test2016)",
        "multi30k-en-de": "Multi30k task 1, English -> German (test2016)",
        "multi30k-fr-en": "Multi30k task 1, French -> English (test2016)",
        PARALLEL: "your parallel text (--set source=SRC.txt target=TGT.txt, one sentence a "
                  "line)",
    }
    default_dataset = "multi30k-de-en"
    primary_metric = "bleu"
    direction = "maximize"
    select_by = ("ppl", "minimize")
    composes_cells = True
    #: Sized for a CPU: a GRU epoch on Multi30k takes about 2.6 minutes on 2 cores, so the
    #: default run is at most 15 epochs (about 40 minutes; early stopping usually ends it
    #: sooner). 8.1M parameters with a GRU (BPE 8000 per side, 256 wide, one layer).
    defaults = {"epochs": 15, "hidden_size": 256, "layers": 1, "batch_size": 64, "lr": 2e-3,
                "clip": 1.0, "patience": 3}
    #: Batches below 32 pairs make a CPU epoch several times longer for no known gain.
    search = {"hidden_size": (64, 512), "layers": (1, 2), "batch_size": (32, 128)}
    params = (
        Param("emb_size", int, 256, "subword embedding width (source and target)", low=1,
              high=4096, log=True, search=(64, 512)),
        Param("attention", str, "bahdanau", "attention score: additive (Bahdanau et al. 2015) "
              "or general (Luong et al. 2015)", choices=ATTENTIONS, tune=False),
        Param("io_dropout", float, 0.2, "dropout on the embeddings and before the softmax",
              low=0.0, high=0.9, search=(0.0, 0.5)),
        Param("bpe_vocab", int, 8000, "BPE subwords per language, learned on the training "
              "split", low=len(vocab.SPECIALS) + 1, high=200_000, tune=False),
        Param("max_length", int, 50, "training pairs longer than this many subwords (either "
              "side) are left out; validation and test keep every pair", low=1, tune=False),
        Param("max_train_sentences", int, 0, "train on the first N pairs only (0 = all): for "
              "quick checks; the vocabulary is learned on them too", low=0, tune=False),
        Param("beam", int, 5, "beam width of the test translations (1 = greedy)", low=1,
              high=100, tune=False),
        Param("length_penalty", float, 0.6, "GNMT length penalty alpha of beam search (0 = "
              "plain log-probability)", low=0.0, high=5.0, tune=False),
        Param("source", str, "", "dataset 'parallel': your source-language file", tune=False),
        Param("target", str, "", "dataset 'parallel': its translations, line by line",
              tune=False),
    )
    generate_params = (
        Param("input", str, "", "text file to translate, one sentence a line (--input FILE; "
              "default: the first `num` test sentences)"),
        Param("beam", int, 0, "beam width (0 = the run's)", low=0, high=100),
        Param("num", int, 5, "test sentences translated when no input is given", low=1),
    )

    def prepare(self, dataset: str, context: DataContext, params: Mapping[str, Any]):
        refuse_foreign_options(dataset, params, self.params,
                               {"source": (PARALLEL,), "target": (PARALLEL,)})
        encoded, cache = vocab.load(dataset, params, context)
        data = TranslationData(dataset, encoded, params, cache)
        if not data.items("train"):
            raise SeqbenchError(f"no training pair of {dataset} is within max_length="
                                f"{params['max_length']} subwords; raise max_length.")
        return data

    def restore(self, dataset: str, params: Mapping[str, Any], run_dir: Path):
        """The vocabularies of your parallel text from the run folder, so `generate
        --input FILE` needs no corpus (Multi30k is loaded as for training)."""
        paths = [run_dir / name for name in TOKENIZERS]
        if dataset != PARALLEL or not all(path.is_file() for path in paths):
            return None
        source_vocab, target_vocab = (vocab.Vocabulary(path.read_text()) for path in paths)
        text = Parallel(empty_splits(), empty_splits(), [], f"the vocabularies of {run_dir}")
        return TranslationData(f"the vocabularies of {run_dir}", vocab.Encoded(
            text, source_vocab, target_vocab, empty_splits(), empty_splits()), params)

    def check_case(self):
        """Hand-checkable translations for the conformance kit (see `check.py`)."""
        from seqbench_tasks.translation.check import translation_check_case

        return translation_check_case()

    def generate(self, model, data: TranslationData, out_dir: Path,
                 options: Mapping[str, Any]) -> list[Path]:
        """Translate a file (`--set input=FILE`), or the first `num` test sentences with
        their references; writes translations.txt, one line per input line."""
        beam = options["beam"] or data.params["beam"]
        if options["input"]:
            sentences = text_lines(read_user_text(existing_file(options["input"],
                                                                "input file")))
            references = None
        else:
            text = data.encoded.text
            if not text.source["test"]:
                raise SeqbenchError(f"{data.dataset} holds no test sentences; give a file "
                                    "to translate (--input FILE).")
            sentences = text.source["test"][: options["num"]]
            references = text.target["test"][: options["num"]]
        translations = data.translate(model.network, sentences, beam)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "translations.txt"
        path.write_text("\n".join(translations) + "\n")
        for number, (sentence, translation) in enumerate(zip(sentences, translations)):
            reference = f"\n  reference:   {references[number]}" if references else ""
            print(f"source:      {sentence}\n  translation: {translation}{reference}")
        return [path]
