"""One translation dataset bound to the task: batches, the network, loss, metrics, baselines.

Batches pair padded source subword ids (`inputs [B, S]`) with padded target ids ending in
`</s>` (`targets [B, T]`, `mask` marking the real target positions). Training reads
length-bucketed shuffled batches of the pairs within `max_length` subwords; validation and
test read every pair, shortest first, and ask the network to decode (`extra["beam"]`:
greedy for validation, the task's `beam` for test). `extra["rows"]` names each row's
sentence, whose untouched reference the metrics score the detokenised output against.

Metrics over a split: per-subword NLL and perplexity under teacher forcing (what early
stopping selects on), and corpus BLEU, lowercased BLEU and chrF of the decoded text
(`scoring.py`). Per-item scores are not given: corpus BLEU is no ratio of per-sentence
sums, so sentence-level numbers would not add up to the reported metric; the test
translations are written to the run folder instead (`test_translations.txt`), which is
what sacrebleu's paired bootstrap test (`--paired-bs`, Koehn 2004) compares.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqbench import Batch, IndexedData
from seqbench.userdata import UserSource
from seqbench_tasks.translation import baselines, scoring
from seqbench_tasks.translation.corpus import PARALLEL, SPLITS
from seqbench_tasks.translation.vocab import PAD, Encoded, Vocabulary

#: Tokenizers written into a run folder, so its model translates without the dataset.
TOKENIZERS = ("source_tokenizer.json", "target_tokenizer.json")
TRANSLATIONS = "test_translations.txt"
SIGNATURES = "sacrebleu.json"
#: Batches' worth of training pairs sorted by length together before batches are cut.
BUCKET = 20
#: Sentences decoded at once by `translate` (generate).
DECODE_BATCH = 64


def pad(sequences: Sequence[np.ndarray]):
    """`[B, L]` int64 tensor of the sequences, padded with `<pad>`."""
    import torch

    padded = np.full((len(sequences), max(len(s) for s in sequences)), PAD, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        padded[row, : len(sequence)] = sequence
    return torch.from_numpy(padded)


class TranslationData(IndexedData):
    bucket = BUCKET

    def __init__(self, dataset: str, encoded: Encoded, params: Mapping[str, Any],
                 cache: Path | None = None) -> None:
        """`dataset` names the data in messages and the user's split record; `cache` is
        the preprocessed file (None: built in memory, as the check case is)."""
        self.dataset, self.encoded, self.params, self.cache = dataset, encoded, params, cache
        self.input_size = params["emb_size"]
        within = [max(len(s), len(t)) <= params["max_length"] for s, t in
                  zip(encoded.source["train"], encoded.target["train"])]
        self.rows_of = {"train": np.flatnonzero(within),
                        **{split: np.arange(len(encoded.source[split])) for split in SPLITS[1:]}}
        self._baselines: dict[str, dict[str, float]] | None = None

    @property
    def source_vocab(self) -> Vocabulary:
        return self.encoded.source_vocab

    @property
    def target_vocab(self) -> Vocabulary:
        return self.encoded.target_vocab

    # ---- batches ----
    def items(self, split: str) -> int:
        return len(self.rows_of[split])

    def lengths(self, split: str) -> list[int]:
        return [len(self.encoded.source[split][i]) + len(self.encoded.target[split][i])
                for i in self.rows_of[split]]

    def collate(self, split: str, rows: np.ndarray) -> Batch:
        sentences = self.rows_of[split][rows]
        targets = pad([self.encoded.target[split][i] for i in sentences])
        extra: dict[str, Any] = {"split": split, "rows": sentences.tolist()}
        if split != "train":
            extra["beam"] = 1 if split == "valid" else self.params["beam"]
        return Batch(inputs=pad([self.encoded.source[split][i] for i in sentences]),
                     targets=targets, mask=targets != PAD, extra=extra)

    # ---- the model ----
    def network(self, cells, hidden_size: int, params: Mapping[str, Any]):
        from seqbench_tasks.translation.network import Translator

        return Translator(cells, hidden_size, len(self.source_vocab), len(self.target_vocab),
                          params["emb_size"], params["attention"], params["io_dropout"],
                          params["length_penalty"])

    def loss(self, outputs, batch: Batch):
        import torch.nn.functional as F

        logits = getattr(outputs, "logits", outputs)
        return F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), ignore_index=PAD)

    def statistics(self, outputs, batch: Batch):
        import torch
        import torch.nn.functional as F

        logits = getattr(outputs, "logits", outputs)
        totals = {"nll": F.cross_entropy(logits.flatten(0, 1).float(), batch.targets.flatten(),
                                         ignore_index=PAD, reduction="sum"),
                  "tokens": batch.mask.sum()}
        tokens = getattr(outputs, "tokens", None)
        if tokens is not None:
            split = batch.extra["split"]
            references = [self.encoded.text.target[split][i] for i in batch.extra["rows"]]
            hypotheses = [self.target_vocab.decode(t) for t in tokens]
            totals.update({name: torch.from_numpy(values) for name, values in
                           scoring.summed(hypotheses, references).items()})
        return totals

    def metrics(self, totals: Mapping[str, Any]) -> dict[str, float]:
        per_token = totals["nll"] / max(totals["tokens"], 1)
        decoded = scoring.scores(totals) if "bleu" in totals else {}
        return {"nll": per_token, "ppl": math.exp(min(per_token, 700.0)), **decoded}

    # ---- references ----
    def baselines(self) -> dict[str, dict[str, float]]:
        """Copy-the-source and the word-for-word Dice dictionary, on the test split."""
        if self._baselines is None:
            text = self.encoded.text
            train = self.rows_of["train"]
            dictionary = baselines.dice_dictionary([text.source["train"][i] for i in train],
                                                   [text.target["train"][i] for i in train])
            outputs = {"copy_source": baselines.copy_source(text.source["test"]),
                       "dictionary": baselines.word_for_word(dictionary, text.source["test"])}
            self._baselines = {name: scoring.corpus_scores(hypotheses, text.target["test"])
                               for name, hypotheses in outputs.items()}
        return self._baselines

    def split_sizes(self) -> dict[str, int]:
        return {split: self.items(split) for split in SPLITS}

    def describe(self) -> dict[str, Any]:
        text = self.encoded.text
        dropped = len(self.encoded.source["train"]) - self.items("train")
        notes = [f"split: {text.how}", *text.notes,
                 f"subword vocabularies (BPE, learned on train): source {len(self.source_vocab)}"
                 f", target {len(self.target_vocab)}; lengths are source subwords with </s>",
                 f"{dropped} training pairs longer than max_length={self.params['max_length']} "
                 "subwords left out",
                 *(f"{name}: sacrebleu {signature}"
                   for name, signature in scoring.signatures().items())]
        return {"lengths": {split: [len(self.encoded.source[split][i]) for i in self.rows_of[split]]
                            for split in SPLITS},
                "notes": notes, **({"cache": str(self.cache)} if self.cache else {})}

    # ---- using a trained model ----
    def translate(self, network, sentences: Sequence[str], beam: int) -> list[str]:
        """Detokenised translations of `sentences` (blank ones stay blank), shortest first
        in batches of `DECODE_BATCH`."""
        device = next(network.parameters()).device
        real = [i for i, sentence in enumerate(sentences) if sentence.strip()]
        ids = self.source_vocab.encode([sentences[i] for i in real])
        order = sorted(range(len(real)), key=lambda i: len(ids[i]))
        output = [""] * len(sentences)
        for start in range(0, len(order), DECODE_BATCH):
            chunk = order[start:start + DECODE_BATCH]
            decoded = network.translate(pad([ids[i] for i in chunk]).to(device), beam)
            for i, tokens in zip(chunk, decoded):
                output[real[i]] = self.target_vocab.decode(tokens)
        return output

    def test_translations(self, network, batch_size: int) -> list[str]:
        """The test split decoded in exactly the batches the test evaluation read, so the
        written file is what was scored."""
        output = [""] * self.items("test")
        device = next(network.parameters()).device
        for batch in self.batches("test", batch_size):
            decoded = network.translate(batch.inputs.to(device), batch.extra["beam"])
            for row, tokens in zip(batch.extra["rows"], decoded):
                output[row] = self.target_vocab.decode(tokens)
        return output

    def artifacts(self, model, run_dir: Path) -> list[Path]:
        """The tokenizers (to translate later without the dataset), the test translations
        one per line in the test file's order, sacrebleu's signatures and, for the user's
        own text, the split record."""
        written = []
        for name, vocab in zip(TOKENIZERS, (self.source_vocab, self.target_vocab)):
            (run_dir / name).write_text(vocab.json)
            written.append(run_dir / name)
        translations = self.test_translations(model.network, model.spec.hparams["batch_size"])
        (run_dir / TRANSLATIONS).write_text("\n".join(translations) + "\n")
        (run_dir / SIGNATURES).write_text(json.dumps(scoring.signatures(), indent=1) + "\n")
        written += [run_dir / TRANSLATIONS, run_dir / SIGNATURES]
        text = self.encoded.text
        if self.dataset == PARALLEL:
            record = UserSource({split: [f"{text.source[split][i]}\t{text.target[split][i]}"
                                         for i in self.rows_of[split]] for split in SPLITS},
                                text.how, self.cache, tuple(text.notes))
            written += record.write(run_dir)
        return written
