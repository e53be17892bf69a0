"""What every user-data dataset shares: the `path` option, option checks, the split record.

A practitioner's files go through the same few steps in every task (name the location,
refuse options that belong to another dataset, split deterministically and write down
which item went where), so each step lives here once and the tasks only read their format.
"""

from __future__ import annotations

import csv
import hashlib
import json
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqbench.errors import SeqbenchError
from seqbench.params import Param

#: File written into a run folder with the items of every split, so a result can be traced
#: to exactly the pieces, sequences or series it was trained and tested on.
SPLIT_RECORD = "split.json"
#: The largest magnitude a float32 holds: the models compute in float32, so a larger finite
#: value would become infinite on the way in (and break least squares before that).
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Separators a spreadsheet may have used instead of commas, as the header then shows them.
OTHER_SEPARATORS = {"\t": "tab", ";": "semicolon"}


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


def decode_text(raw: bytes, path: Path) -> str:
    """`raw` (the bytes of `path`) as text, or a one-line error for what a broken copy leaves
    behind: an empty file, or an archive or other binary saved under the text file's name
    (with the byte offset of the first bad byte, so a mostly good file can be fixed where
    it breaks)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SeqbenchError(f"'{path}' is not UTF-8 text (undecodable byte at offset "
                            f"{exc.start}); replace the file.") from None
    if "\0" in text:
        raise SeqbenchError(f"'{path}' is not UTF-8 text (a NUL byte at offset "
                            f"{raw.index(0)}: binary data); replace the file.")
    if not text.strip():
        raise SeqbenchError(f"'{path}' is empty; replace the file.")
    return text


def read_text(path: Path) -> str:
    """The text of the file at `path`, checked as `decode_text` checks it."""
    return decode_text(path.read_bytes(), path)


def read_user_text(path: Path) -> str:
    """`read_text` without a leading byte-order mark (as "utf-8-sig" decodes): Windows
    editors write one, and it would otherwise become a token of the vocabulary. Only the
    user's text: canonical corpora keep `read_text`'s exact reading."""
    return read_text(path).removeprefix("\ufeff")


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


def read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """A CSV's header (names stripped) and `(line, fields)` of every data row, or one error
    line naming what is wrong and where.

    Decoded as UTF-8 with an optional byte-order mark (Excel's "CSV UTF-8" writes one, which
    would otherwise stick to the first column's name). Blank lines are skipped, as csv
    readers commonly do, so a file ending in empty lines reads. Quoting is strict, so an
    unclosed quote is named with its line instead of swallowing the rest of the file into
    one field. A header naming a column twice is refused (a reader would silently pick
    one), and so is a tab- or semicolon-separated header, which reads as one column.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, strict=True)
            rows = [(reader.line_num, row) for row in reader if "".join(row).strip()
                    or len(row) > 1]
    except UnicodeDecodeError as exc:
        raise SeqbenchError(f"'{path}' is not UTF-8 text (byte {exc.start}: "
                            f"{exc.object[exc.start:exc.start + 1]!r}); save it as UTF-8 "
                            "CSV.") from None
    except csv.Error as exc:
        raise SeqbenchError(f"'{path}' line {reader.line_num}: {exc} (an unclosed quote?)."
                            ) from None
    if len(rows) < 2:
        raise SeqbenchError(f"'{path}' has no data rows.")
    (_, raw), body = rows[0], rows[1:]
    header = [name.strip() for name in raw]
    check_header(path, header)
    for line, row in body:
        if len(row) != len(header):
            raise SeqbenchError(f"'{path}' line {line} has {len(row)} fields, the header has "
                                f"{len(header)}.")
    return header, body


def read_header(path: Path) -> list[str]:
    """The column names of a CSV that `read_csv_rows` has already read without complaint."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        first = next((row for row in csv.reader(handle) if "".join(row).strip()), [])
    return [name.strip() for name in first]


def check_header(path: Path, header: list[str]) -> None:
    """Refuse a column named twice, and a one-column header holding another separator."""
    if len(header) == 1:
        for separator, name in OTHER_SEPARATORS.items():
            if separator in header[0]:
                raise SeqbenchError(f"'{path}' line 1: the header looks {name}-separated; "
                                    "seqbench reads comma-separated files.")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise SeqbenchError(f"'{path}' line 1: column '{name}' appears twice in the "
                                "header; give each column its own name.")
        seen.add(name)


def read_long_table(path: Path, roles: Sequence[tuple[str, str]]) -> tuple[
        list[str], list[int], list[tuple[int, list[str]]]]:
    """A long-format CSV: its header, the index of each role's column, and `(line, fields)`
    of every data row (as `read_csv_rows` reads them). `roles` are `(option, column)` pairs,
    the `--set` option that names each column, so a missing column's error says how to point
    at the right one. A column named for two roles is refused: it would merge them and shift
    every later column."""
    columns: dict[str, str] = {}
    for option, column in roles:
        if column in columns:
            raise SeqbenchError(f"'{path}': column '{column}' is named twice (as "
                                f"{columns[column]} and as {option}); each role needs its own "
                                "column.")
        columns[column] = option
    header, body = read_csv_rows(path)
    for name, option in columns.items():
        if name not in header:
            raise SeqbenchError(f"'{path}' has no column '{name}' (--set {option}=COLUMN "
                                f"names it); columns: {', '.join(header)}.")
    return header, [header.index(name) for name in columns], body


def refuse_float32_overflow(values: Any, place: Callable[[tuple[int, ...]], str]) -> None:
    """Refuse a finite value beyond float32's range, `place(index)` naming where it is.

    Checked before the cast to float32: after it, 1e308 is infinite and would be reported
    as an infinity the file does not hold (or break a float64 baseline's least squares).
    """
    values = np.asarray(values, dtype=np.float64)
    beyond = np.argwhere(np.isfinite(values) & (np.abs(values) > FLOAT32_MAX))
    if len(beyond):
        index = tuple(int(i) for i in beyond[0])
        raise SeqbenchError(f"{place(index)}: value {values[index]:g} is too large for 32-bit "
                            f"floats (the models compute in float32, up to {FLOAT32_MAX:.4g}); "
                            "rescale it.")


def check_time_order(path: Path, times: Sequence[str], lines: Sequence[int]) -> None:
    """Refuse time labels that do not strictly increase, naming the first line out of order.

    Rows are used in file order, so a shuffled file or a repeated time step would silently
    train and score on a scrambled series. Labels are compared as numbers, else as dates
    (as pandas parses them); labels that are neither (say 'week 3') cannot be ordered, so
    their file order is taken as the time order.
    """
    keys = time_keys(times)
    if keys is None:
        return
    behind = np.flatnonzero(keys[1:] <= keys[:-1])
    if len(behind):
        at = int(behind[0]) + 1
        fix = "keep one row per time step" if keys[at] == keys[at - 1] else \
            "sort the file by time"
        raise SeqbenchError(f"'{path}' line {lines[at]}: time '{times[at]}' is not after "
                            f"'{times[at - 1]}' on line {lines[at - 1]}; {fix}.")


def time_keys(times: Sequence[str]) -> np.ndarray | None:
    """The labels as numbers, else as dates (UTC, so mixed offsets compare), else None."""
    import pandas as pd  # imported here to keep `seqbench --help` fast

    try:
        numbers = np.array([t.strip() for t in times], dtype=np.float64)
    except ValueError:
        with warnings.catch_warnings():  # "could not infer format": labels that are not dates
            warnings.simplefilter("ignore", UserWarning)
            if pd.isna(pd.to_datetime(times[:1], errors="coerce", utc=True))[0]:
                return None  # not a date: skip parsing the rest one by one
            dates = pd.to_datetime(pd.Series(times), errors="coerce", utc=True)
        return None if dates.isna().any() else dates.dt.tz_localize(None).to_numpy()
    return None if np.isnan(numbers).any() else numbers


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
