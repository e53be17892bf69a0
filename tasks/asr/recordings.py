"""`wav`: your recordings and their transcripts, read with the speech task's front end.

A folder holds WAV files and `transcripts.csv` with columns `file` (a path relative to the
folder) and `text`, and optionally `split` (train, valid or test); without it, each file's
split comes from a stable hash of its name (80/10/10), so a recording keeps its split when
others are added. The alphabet is every character of the training transcripts: a
validation or test transcript with a character the model was never trained to emit is
refused, naming the file, as are a listed file that is missing, a damaged WAV and an empty
transcript. WAVs the table does not list are left out and counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqbench import DataContext, SeqbenchError, cached, content_key, sha256_of
from seqbench.userdata import UserSource, hash_split, read_csv_rows, user_path
from seqbench_tasks.asr.utterances import SPLITS, Utterances
from seqbench_tasks.speech.audio import mfcc

#: Bump when the reading changes so stale caches are rebuilt.
ENCODING_VERSION = 1
TABLE = "transcripts.csv"
WHAT = f"a folder of WAV files with {TABLE} (columns file,text)"


def read_table(folder: Path) -> tuple[list[tuple[str, str, str]], str]:
    """`(file, text, split)` of every row of the folder's transcripts.csv, checked, and how
    the split was made."""
    table = folder / TABLE
    if not table.is_file():
        raise SeqbenchError(f"'{folder}' has no {TABLE} (columns file,text: one row per "
                            "recording).")
    header, body = read_csv_rows(table)
    missing = [name for name in ("file", "text") if name not in header]
    if missing:
        raise SeqbenchError(f"'{table}' has no column '{missing[0]}'; columns: "
                            f"{', '.join(header)} (needed: file,text[,split]).")
    where = {name: header.index(name) for name in ("file", "text", "split") if name in header}
    rows, seen = [], {}
    for line, fields in body:
        file, text = fields[where["file"]].strip(), fields[where["text"]].strip()
        split = fields[where["split"]].strip() if "split" in where else hash_split(file)
        if not file:
            raise SeqbenchError(f"'{table}' line {line}: no file name.")
        if file in seen:
            raise SeqbenchError(f"'{table}' line {line}: '{file}' is listed again (first on "
                                f"line {seen[file]}); one transcript per recording.")
        seen[file] = line
        if not (folder / file).is_file():
            raise SeqbenchError(f"'{folder / file}' (line {line} of {TABLE}) does not exist.")
        if not text:
            raise SeqbenchError(f"'{folder / file}' has an empty transcript (line {line} of "
                                f"{TABLE}); give its text or remove the row.")
        if split not in SPLITS:
            raise SeqbenchError(f"'{table}' line {line}: split '{split}' is not one of "
                                f"{', '.join(SPLITS)}.")
        rows.append((file, text, split))
    how = (f"the split column of {TABLE}" if "split" in where else
           "stable hash of each file name (80/10/10 train/valid/test)")
    return rows, how


def check_alphabet(rows: list[tuple[str, str, str]], folder: Path) -> str:
    """The training transcripts' characters, sorted; a file of another split whose
    transcript has another character is refused, naming it."""
    alphabet = "".join(sorted({c for _, text, split in rows if split == "train" for c in text}))
    for split in SPLITS:
        if not any(row[2] == split for row in rows):
            raise SeqbenchError(f"'{folder / TABLE}': no recording is in the {split} split; "
                                "give more recordings or a split column (train/valid/test).")
    for file, text, split in rows:
        unseen = sorted(set(text) - set(alphabet))
        if unseen:
            raise SeqbenchError(f"'{folder / file}' ({split}): its transcript has "
                                f"{unseen[0]!r}, which no training transcript has; the "
                                f"alphabet is {alphabet!r}.")
    return alphabet


def load_recordings(params: Mapping[str, Any], context: DataContext
                    ) -> tuple[dict[str, Utterances], str, UserSource]:
    """Your folder's splits, the training alphabet and where it all came from."""
    folder = user_path(params["path"], "wav", WHAT, folder=True)
    rows, how = read_table(folder)
    alphabet = check_alphabet(rows, folder)
    key = content_key("wav", ENCODING_VERSION, sha256_of(folder / TABLE),
                      [sha256_of(folder / file) for file, _, _ in rows])

    def build() -> dict[str, Utterances]:
        features = {file: mfcc(folder / file) for file, _, _ in context.progress(
            "Computing MFCCs of your recordings", rows, len(rows))}
        return {split: Utterances([features[f] for f, _, s in rows if s == split],
                                  [t for _, t, s in rows if s == split],
                                  [f for f, _, s in rows if s == split]) for split in SPLITS}

    cache = context.cache_dir / f"asr-wav-{key}.pkl"
    splits = cached(cache, build)
    listed = {(folder / file).resolve() for file, _, _ in rows}
    unlisted = sum(1 for p in folder.rglob("*") if p.suffix.lower() == ".wav"
                   and p.resolve() not in listed)
    source = UserSource({split: list(u.names) for split, u in splits.items()},
                        how, cache, (f"{unlisted} WAV file(s) in the folder are not in "
                                     f"{TABLE} and were not used",) if unlisted else ())
    return splits, alphabet, source
