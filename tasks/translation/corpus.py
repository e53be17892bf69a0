"""Parallel text for translation: Multi30k's canonical files or the user's own pair of files.

Multi30k task 1 (Elliott et al. 2016) is read as published: gzip-compressed UTF-8, one
untokenised sentence a line, line i of every language the same image description; splits
train (29,000), val (1,014) and test_2016_flickr (1,000, "test2016"). The user's own text
is two plain files, line i of one translating line i of the other, split by a stable hash
of each pair (10% valid, 10% test), so a pair keeps its split when others are added and a
pair repeated in the file never sits in two splits.

Sentences stay untokenised here: the subword vocabulary (`vocab.py`) and the metrics
(sacrebleu on detokenised text) work on the text exactly as the files give it.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqbench import DataContext, RemoteFile, SeqbenchError, locate
from seqbench.userdata import decode_text, hash_split, read_user_text, user_path

SPLITS = ("train", "valid", "test")
#: The published file name of each split.
MULTI30K_SPLITS = {"train": "train", "valid": "val", "test": "test_2016_flickr"}
#: Sentences per split, as published; a file with another count is not the canonical one.
MULTI30K_SIZES = {"train": 29_000, "valid": 1_014, "test": 1_000}
#: Pinned to the commit the shared copies come from, so the checksums below stay valid.
MULTI30K_URL = ("https://raw.githubusercontent.com/multi30k/dataset/"
                "a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1/raw/{name}")
MULTI30K_SHA256 = {
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.fr.gz": "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.fr.gz": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.fr.gz": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
}
#: Dataset name -> (source language, target language).
DIRECTIONS = {"multi30k-de-en": ("de", "en"), "multi30k-en-de": ("en", "de"),
              "multi30k-fr-en": ("fr", "en")}
#: The dataset that reads the user's files.
PARALLEL = "parallel"
#: Shares (%) of the user's pairs hashed into validation and test.
VALID_PERCENT, TEST_PERCENT = 10, 10


@dataclass
class Parallel:
    """Source and target sentences per split (line i of one translates line i of the
    other), where they came from, and what was left out on the way."""

    source: dict[str, list[str]]
    target: dict[str, list[str]]
    files: list[Path]
    how: str
    notes: list[str] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        return {split: len(self.source[split]) for split in SPLITS}


def empty_splits() -> dict[str, list]:
    return {split: [] for split in SPLITS}


def multi30k_file(split: str, language: str) -> RemoteFile:
    name = f"{MULTI30K_SPLITS[split]}.{language}.gz"
    return RemoteFile(name, "multi30k", MULTI30K_URL.format(name=name), MULTI30K_SHA256[name])


def text_lines(text: str) -> list[str]:
    """One entry per line, without line ends ("\\r\\n" too). Split on "\\n" only: the
    Unicode separators `str.splitlines` also breaks at would misalign a parallel pair."""
    return [line.removesuffix("\r") for line in text.removesuffix("\n").split("\n")]


def read_multi30k_split(path: Path, split: str) -> list[str]:
    """The sentences of one canonical file, checked against the published count."""
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise SeqbenchError(f"'{path}' is not a gzip file ({exc}); replace it.") from None
    lines = text_lines(decode_text(raw, path))
    if len(lines) != MULTI30K_SIZES[split]:
        raise SeqbenchError(f"'{path}' has {len(lines)} lines, Multi30k's {split} split has "
                            f"{MULTI30K_SIZES[split]}; replace the file.")
    return lines


def multi30k_paths(dataset: str, context: DataContext) -> list[Path]:
    """The canonical files of `dataset`'s language pair (source splits, then target),
    found in the data dir or downloaded and checked."""
    return [locate(multi30k_file(split, language), context.data_dir)
            for language in DIRECTIONS[dataset] for split in SPLITS]


def read_multi30k(dataset: str, paths: list[Path]) -> Parallel:
    """The published splits of `dataset` from its `multi30k_paths`."""
    sides = [{split: read_multi30k_split(path, split) for split, path in zip(SPLITS, part)}
             for part in (paths[:len(SPLITS)], paths[len(SPLITS):])]
    source_language, target_language = DIRECTIONS[dataset]
    return Parallel(*sides, paths, f"Multi30k task 1 as published ({source_language} -> "
                    f"{target_language}): train, val, test_2016_flickr")


def user_paths(params: Mapping[str, Any]) -> list[Path]:
    """`--set source=FILE target=FILE`, checked to be files."""
    return [user_path(params[side], PARALLEL, f"the {side} side, one sentence a line",
                      folder=False) for side in ("source", "target")]


def read_user_pairs(paths: list[Path]) -> Parallel:
    """The user's pairs hashed into splits, blank pairs left out."""
    source, target = (text_lines(read_user_text(path)) for path in paths)
    if len(source) != len(target):
        raise SeqbenchError(f"'{paths[0]}' has {len(source)} lines but '{paths[1]}' has "
                            f"{len(target)}; line i of one must translate line i of the other.")
    pairs = [(s.strip(), t.strip()) for s, t in zip(source, target)]
    kept = [(s, t) for s, t in pairs if s and t]
    parallel = Parallel(empty_splits(), empty_splits(), paths,
                        f"{VALID_PERCENT}% valid and {TEST_PERCENT}% test by a hash of each "
                        "pair")
    for s, t in kept:
        split = hash_split(f"{s}\t{t}", VALID_PERCENT, TEST_PERCENT)
        parallel.source[split].append(s)
        parallel.target[split].append(t)
    if len(kept) < len(pairs):
        parallel.notes.append(f"{len(pairs) - len(kept)} of {len(pairs)} lines left out: one "
                              "side blank")
    empty = [split for split, size in parallel.sizes().items() if size == 0]
    if empty:
        raise SeqbenchError(f"'{paths[0]}' and '{paths[1]}' give {len(kept)} sentence pairs, "
                            f"none of them in the {' and '.join(empty)} split; give more lines "
                            f"(about {100 // min(VALID_PERCENT, TEST_PERCENT)} at least).")
    return parallel
