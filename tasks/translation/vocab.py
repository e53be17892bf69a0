"""Subword vocabularies: BPE with HuggingFace `tokenizers`, learned on the training split only.

One vocabulary per side (source and target language), each learned on that side of the
training pairs, so nothing of the validation or test text shapes the subwords. Sentences
are split at spaces (SentencePiece's "metaspace" marker keeps where the spaces were) and
at punctuation before the merges are learned, so decoding a sequence of subwords gives the
original text back (leading and trailing spaces aside; tested on Multi30k): the metrics
score the model's output as text, as a reader would see it, against the untouched
references.

The encoded splits are cached by the checksums of the files they were read from and by
the options that change them (vocabulary size, training subset).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqbench import DataContext, cached, content_key, sha256_of
from seqbench_tasks.translation.corpus import (
    PARALLEL,
    SPLITS,
    Parallel,
    multi30k_paths,
    read_multi30k,
    read_user_pairs,
    user_paths,
)

SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
PAD, UNK, BOS, EOS = range(len(SPECIALS))
#: Bump when the encoding changes so stale caches are rebuilt.
ENCODING_VERSION = 1


class Vocabulary:
    """One side's trained BPE tokenizer, kept as its JSON so it pickles into the cache and
    is written into a run folder as it is."""

    def __init__(self, json: str) -> None:
        self.json = json
        self._tokenizer = None

    def __getstate__(self) -> dict[str, Any]:
        return {"json": self.json}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["json"])

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_str(self.json)
        return self._tokenizer

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, sentences: Sequence[str]) -> list[np.ndarray]:
        """Subword ids of each sentence, `</s>` appended."""
        return [np.asarray([*encoding.ids, EOS], dtype=np.int64)
                for encoding in self.tokenizer.encode_batch(list(sentences))]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids` up to the first `</s>` (special tokens dropped)."""
        ids = list(ids)
        return self.tokenizer.decode(ids[: ids.index(EOS)] if EOS in ids else ids)


def learn(sentences: Sequence[str], vocab_size: int) -> Vocabulary:
    """A BPE vocabulary of at most `vocab_size` subwords (the specials included)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=SPECIALS[UNK]))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(),
                                                       pre_tokenizers.Punctuation()])
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS),
                                  show_progress=False)
    tokenizer.train_from_iterator(sentences, trainer=trainer)
    return Vocabulary(tokenizer.to_str())


@dataclass
class Encoded:
    """The text, both vocabularies and every split's subword ids (`</s>`-terminated)."""

    text: Parallel
    source_vocab: Vocabulary
    target_vocab: Vocabulary
    source: dict[str, list[np.ndarray]]
    target: dict[str, list[np.ndarray]]


def encode(text: Parallel, vocab_size: int, max_train_sentences: int) -> Encoded:
    """Learn both vocabularies on the training split (its first `max_train_sentences`
    pairs when that is set: the subset is then the training split) and encode every split."""
    if max_train_sentences and max_train_sentences < len(text.source["train"]):
        text.source["train"] = text.source["train"][:max_train_sentences]
        text.target["train"] = text.target["train"][:max_train_sentences]
        text.notes.append(f"training on the first {max_train_sentences} pairs "
                          "(max_train_sentences)")
    source_vocab, target_vocab = (learn(side["train"], vocab_size)
                                  for side in (text.source, text.target))
    return Encoded(text, source_vocab, target_vocab,
                   {split: source_vocab.encode(text.source[split]) for split in SPLITS},
                   {split: target_vocab.encode(text.target[split]) for split in SPLITS})


def load(dataset: str, params: Mapping[str, Any], context: DataContext) -> tuple[Encoded, Path]:
    """`dataset` read, its vocabularies learned and every split encoded (from the cache when
    the same files were encoded with the same options before); and the cache file."""
    if dataset == PARALLEL:
        paths = user_paths(params)
        read = lambda: read_user_pairs(paths)  # noqa: E731
    else:
        paths = multi30k_paths(dataset, context)
        read = lambda: read_multi30k(dataset, paths)  # noqa: E731
    key = content_key("translation", ENCODING_VERSION, dataset, [sha256_of(p) for p in paths],
                      params["bpe_vocab"], params["max_train_sentences"])
    path = context.cache_dir / f"translation-{dataset}-{key}.pkl"
    return cached(path, lambda: encode(read(), params["bpe_vocab"],
                                       params["max_train_sentences"])), path
