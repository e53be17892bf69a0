"""What every user-data dataset shares: the `path` option, option checks, the split record.

A practitioner's files go through the same few steps in every task (name the location,
refuse options that belong to another dataset, split deterministically and write down
which item went where), so each step lives here once and the tasks only read their format.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqbench.errors import SeqbenchError
from seqbench.params import Param

#: File written into a run folder with the items of every split, so a result can be traced
#: to exactly the pieces, sequences or series it was trained and tested on.
SPLIT_RECORD = "split.json"


def user_path(value: str, dataset: str, what: str, *, folder: bool | None = None) -> Path:
    """The location given with `--set path=...`, checked to exist (and to be a folder or a
    file when `folder` says so)."""
    if not value:
        raise SeqbenchError(f"dataset '{dataset}' needs --set path=... ({what}).")
    path = Path(value).expanduser()
    if not path.exists():
        raise SeqbenchError(f"'{path}' does not exist (dataset '{dataset}' reads {what}).")
    if folder is True and not path.is_dir():
        raise SeqbenchError(f"'{path}' is not a folder (dataset '{dataset}' reads {what}).")
    if folder is False and path.is_dir():
        raise SeqbenchError(f"'{path}' is a folder; give a file (dataset '{dataset}' reads "
                            f"{what}).")
    if folder is False and not path.is_file():
        raise SeqbenchError(f"'{path}' is not a file (dataset '{dataset}' reads {what}).")
    return path


def existing_file(value: str | Path, what: str) -> Path:
    """`value` as a path to an existing file; one line naming `what` when it is missing or
    a folder (a folder otherwise surfaces later as a misleading "does not exist")."""
    path = Path(value).expanduser()
    if path.is_dir():
        raise SeqbenchError(f"{what} '{path}' is a folder; give a file.")
    if not path.is_file():
        raise SeqbenchError(f"{what} '{path}' does not exist.")
    return path


def refuse_foreign_options(dataset: str, params: Mapping[str, Any], declared: Iterable[Param],
                           options: Mapping[str, Iterable[str]]) -> None:
    """Refuse an option set away from its default on a dataset that would ignore it.

    `options` maps an option name to the datasets that read it; silently ignoring
    `--set path=...` on the wrong dataset would train on data the user did not mean.
    """
    defaults = {p.name: p.default for p in declared}
    for name, readers in options.items():
        readers = tuple(readers)
        if dataset not in readers and params.get(name, defaults[name]) != defaults[name]:
            raise SeqbenchError(f"option '{name}' applies to dataset "
                                f"{' or '.join(repr(r) for r in readers)}, not '{dataset}'.")


def hash_split(name: str, valid: int = 10, test: int = 10) -> str:
    """train/valid/test by a stable hash of an item's name: `valid`% and `test`% of names.

    Stable across machines and Python runs (unlike `hash`), and an item keeps its split when
    others are added or removed.
    """
    bucket = int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "big") % 100
    return "test" if bucket < test else "valid" if bucket < test + valid else "train"


def is_number(text: str) -> bool:
    """Whether a CSV field parses as a float (to name the bad column in an error)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_long_table(path: Path, roles: Sequence[tuple[str, str]]) -> tuple[
        list[str], list[int], list[tuple[int, list[str]]]]:
    """A long-format CSV: its header, the index of each role's column, and `(line, fields)`
    of every data row. `roles` are `(option, column)` pairs, the `--set` option that names
    each column, so a missing column's error says how to point at the right one. A column
    named for two roles is refused: it would merge them and shift every later column."""
    columns: dict[str, str] = {}
    for option, column in roles:
        if column in columns:
            raise SeqbenchError(f"'{path}': column '{column}' is named twice (as "
                                f"{columns[column]} and as {option}); each role needs its own "
                                "column.")
        columns[column] = option
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SeqbenchError(f"'{path}' is not a readable CSV file ({exc}).") from None
    if len(rows) < 2:
        raise SeqbenchError(f"'{path}' has no data rows.")
    header = [name.strip() for name in rows[0]]
    for name, option in columns.items():
        if name not in header:
            raise SeqbenchError(f"'{path}' has no column '{name}' (--set {option}=COLUMN "
                                f"names it); columns: {', '.join(header)}.")
    body = list(enumerate(rows[1:], start=2))
    for line, row in body:
        if len(row) != len(header):
            raise SeqbenchError(f"'{path}' line {line}: {len(row)} fields, the header has "
                                f"{len(header)}.")
    return header, [header.index(name) for name in columns], body


@dataclass(frozen=True)
class UserSource:
    """Where a user dataset came from: what `seqbench data` shows and the run records.

    `items` names what went into each split (files, sequence ids, series ids, stretches of
    text), `how` says how the split was made, `notes` what was skipped or dropped on the
    way, `cache` where the preprocessed data went (None: the files are read directly).
    """

    items: Mapping[str, list[str]]
    how: str
    cache: Path | None = None
    notes: tuple[str, ...] = ()

    def facts(self) -> dict[str, Any]:
        """The `notes` and `cache` entries of `TaskData.describe`."""
        return {"notes": [f"split: {self.how}", *self.notes],
                **({"cache": str(self.cache)} if self.cache else {})}

    def write(self, run_dir: Path) -> list[Path]:
        """`split.json` in the run folder: how the split was made, what was skipped or
        dropped on the way, and every split's items."""
        path = run_dir / SPLIT_RECORD
        record = {"how": self.how, "notes": list(self.notes), "items": self.items}
        path.write_text(json.dumps(record, indent=1) + "\n")
        return [path]
