"""Your own text (dataset `text`): a plain-text file or folder, at char, word or BPE level.

The split is the user's own `train.txt valid.txt test.txt` when the folder has them, else
contiguous 90/5/5 stretches of the text (a folder's `.txt` files joined in name order), so
validation and test are later text the model never saw rather than shuffled lines.
Vocabularies are learned on the training split only, with HuggingFace `tokenizers`
(byte-level BPE with `vocab_size` merges, or the `vocab_size` most frequent words), and
the streams are cached by the files' contents and the options.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqbench import DataContext, SeqbenchError, cached, content_key, sha256_of
from seqbench.userdata import UserSource, read_user_text, user_path
from seqbench_tasks.lm.corpus import (
    SPLITS,
    Streams,
    bpe_streams,
    char_streams,
    contiguous_parts,
    word_streams,
)

LEVELS = ("char", "word", "bpe")
#: BPE vocabulary when `vocab_size` is left at 0: small enough for a small corpus.
DEFAULT_BPE_VOCAB = 1000
#: Bump when the reading changes so stale caches are rebuilt.
ENCODING_VERSION = 2


def text_files(path: Path) -> tuple[list[Path], dict[str, list[str]], str]:
    """The files to read, the split record and how the split is made."""
    if path.is_file():
        return [path], {"train": ["first 90%"], "valid": ["next 5%"], "test": ["last 5%"]}, \
            f"contiguous 90/5/5 of {path.name}"
    if not path.is_dir():  # a device or a pipe (/dev/null): no text to read, no folder
        raise SeqbenchError(f"'{path}' is neither a file nor a folder; give a text file or a "
                            "folder of .txt files.")
    own = [path / f"{split}.txt" for split in SPLITS]
    present = [p.name for p in own if p.is_file()]
    if present:
        if len(present) < len(SPLITS):
            missing = ", ".join(p.name for p in own if not p.is_file())
            raise SeqbenchError(f"'{path}' has {', '.join(present)} but no {missing}; give all "
                                "three files or none.")
        return own, {split: [f"{split}.txt"] for split in SPLITS}, \
            "your train.txt / valid.txt / test.txt"
    files = sorted(p for p in path.glob("*.txt") if p.is_file())
    if not files:
        raise SeqbenchError(f"no .txt files in '{path}'.")
    names = [p.name for p in files]
    return files, {"train": names, "valid": names, "test": names}, \
        f"contiguous 90/5/5 of {len(files)} .txt files joined in name order"


def build(files: list[Path], own_split: bool, level: str, vocab_size: int) -> Streams:
    texts = [read_user_text(p) for p in files]
    parts = dict(zip(SPLITS, texts)) if own_split else contiguous_parts("\n".join(texts))
    if level == "char":
        return char_streams(parts)
    if level == "word":
        return word_streams(parts, vocab_size, add_unk=True)
    return bpe_streams(parts, vocab_size or DEFAULT_BPE_VOCAB)


def load_text(params: Mapping[str, Any], context: DataContext) -> tuple[Streams, UserSource]:
    """The token streams of `--set path=...` and where they came from."""
    path = user_path(params["path"], "text", "a text file or a folder of .txt files")
    files, record, how = text_files(path)
    own_split = how.startswith("your")
    key = content_key("text", ENCODING_VERSION, params["level"], params["vocab_size"],
                      own_split, [sha256_of(p) for p in files])
    cache = context.cache_dir / f"text-{key}.pkl"
    streams = cached(cache, lambda: build(files, own_split, params["level"],
                                          params["vocab_size"]))
    notes = (f"{params['level']} level, {len(streams.vocab)} tokens in the vocabulary "
             "(learned on the training split)",)
    return streams, UserSource(record, how, cache, notes)
