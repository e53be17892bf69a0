"""Your own labelled sequences: a long-format CSV, a UCR/UEA `.ts` file, or aeon's sets.

* `csv`: one row per frame; a sequence id column (default `sequence`, `--set id=`), a label
  column (default `label`, `--set label=`), and every other column a numeric feature.
  Rows of a sequence are taken in file order.
* `ts`: the UCR/UEA time-series-classification format, read with aeon's own loader, so any
  univariate or multivariate archive a user downloads works, equal length or not.
* Every classification set aeon ships with its install (BasicMotions, GunPoint,
  PickupGestureWiimoteZ, ...) is available by a kebab-case name, found by scanning aeon's
  data folder without importing aeon (so `seqbench list` stays fast).

The test split is a second file (`--set test=`) or, without one, a stable hash of each
sequence id (80/20); validation is then carved from training as for every speech set.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from seqbench import DataContext, SeqbenchError, cached, content_key, sha256_of
from seqbench.userdata import (
    UserSource,
    hash_split,
    is_number,
    read_header,
    read_long_table,
    refuse_float32_overflow,
    user_path,
)
from seqbench_tasks.speech.datasets import Sequences

#: Bump when the reading changes so stale caches are rebuilt.
ENCODING_VERSION = 2
#: Share of sequence ids hashed into the test split when there is no test file.
TEST_PERCENT = 20
#: aeon's copy of Japanese Vowels has its own loader and name here already.
OWN_NAMES = {"JapaneseVowels"}

Labelled = tuple[list[str], list[np.ndarray], list[str]]  # ids, [T, F] sequences, labels


def kebab(name: str) -> str:
    """aeon's CamelCase problem names as seqbench dataset names: OSULeaf -> osu-leaf."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name).lower()


@lru_cache(maxsize=1)
def aeon_sets() -> dict[str, Path]:
    """Classification problems in aeon's data folder with both `_TRAIN.ts` and `_TEST.ts`
    and class labels in the header: {dataset name: folder}."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or spec.origin is None:
        return {}
    found = {}
    for folder in sorted((Path(spec.origin).parent / "datasets" / "data").iterdir()):
        train = folder / f"{folder.name}_TRAIN.ts"
        if folder.name in OWN_NAMES or not (folder / f"{folder.name}_TEST.ts").is_file() \
                or not train.is_file():
            continue
        with open(train, encoding="utf-8", errors="replace") as handle:
            header = [line.lower() for line in handle if line.startswith("@")][:12]
        if any(line.startswith("@classlabel true") for line in header):
            found[kebab(folder.name)] = folder
    return found


def read_ts(path: Path) -> Labelled:
    """A `.ts` file through aeon's loader: ids are case numbers, frames are rows."""
    from aeon.datasets import load_from_ts_file

    try:
        X, y, meta = load_from_ts_file(str(path), return_meta_data=True)
    except (OSError, ValueError, IndexError, TypeError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SeqbenchError(f"aeon cannot read '{path}' as a .ts file ({first}).") from None
    if not meta.get("classlabel") or y is None or len(y) != len(X):
        raise SeqbenchError(f"'{path}' has unlabelled sequences (its header needs "
                            "'@classLabel true' and each case a label after the last ':').")
    ids = [f"case {i + 1}" for i in range(len(X))]
    for key, x in zip(ids, X):
        refuse_float32_overflow(x, lambda at: f"'{path}': {key}, channel {at[0] + 1}, "
                                            f"step {at[1] + 1}")
    sequences = [np.ascontiguousarray(np.asarray(x, dtype=np.float32).T) for x in X]
    return ids, sequences, [str(label) for label in y]


def read_long_csv(path: Path, id_column: str, label_column: str,
                  match: Path | None = None) -> Labelled:
    """One row per frame; rows grouped by the id column in order of first appearance.

    With `match` (the training file, when this is the test file) the feature columns are
    taken by the names in `match`'s header, in its order: a test file whose columns come in
    another order reads correctly, and one with other columns is refused, instead of
    feeding the model each feature in another's place.
    """
    header, (where, label_at), body = read_long_table(path, [("id", id_column),
                                                             ("label", label_column)])
    features = [i for i in range(len(header)) if i not in (where, label_at)]
    if match is not None:
        wanted = [name for name in read_header(match) if name not in (id_column, label_column)]
        missing = [name for name in wanted if name not in header]
        extra = [header[i] for i in features if header[i] not in wanted]
        if missing or extra:
            what = (f"lacks the feature column '{missing[0]}' of" if missing else
                    f"has a feature column '{extra[0]}' that is not in")
            raise SeqbenchError(f"'{path}' {what} the training file '{match}'; a test file "
                                "needs the training file's feature columns (in any order).")
        features = [header.index(name) for name in wanted]
    if not features:
        raise SeqbenchError(f"'{path}' has no feature columns besides '{id_column}' and "
                            f"'{label_column}'.")
    frames: dict[str, list[list[float]]] = {}
    labels: dict[str, str] = {}
    every: list[list[float]] = []  # the same rows in file order, checked in one pass below
    for line, row in body:
        key, label = row[where].strip(), row[label_at].strip()
        if not label:
            raise SeqbenchError(f"'{path}' line {line}: sequence '{key}' has no label.")
        if labels.setdefault(key, label) != label:
            raise SeqbenchError(f"'{path}' line {line}: sequence '{key}' has label '{label}' "
                                f"here but '{labels[key]}' above; one label per sequence.")
        try:
            every.append([float(row[i]) for i in features])
        except ValueError:
            column = next(header[i] for i in features if not is_number(row[i]))
            raise SeqbenchError(f"'{path}' line {line}: column '{column}' is not a number "
                                f"('{row[header.index(column)]}').") from None
        frames.setdefault(key, []).append(every[-1])
    refuse_float32_overflow(every, lambda at: f"'{path}' line {body[at[0]][0]}, column "
                                              f"'{header[features[at[1]]]}'")
    ids = list(frames)
    return ids, [np.asarray(frames[i], dtype=np.float32) for i in ids], [labels[i] for i in ids]


def check_finite(data: Labelled, path: Path) -> None:
    """NaN or inf (a `?` in a .ts file, an `inf` in a CSV) named with the sequence id."""
    for key, sequence in zip(data[0], data[1]):
        if not np.isfinite(sequence).all():
            raise SeqbenchError(f"'{path}': sequence '{key}' contains NaN or infinite values; "
                                "fill or drop them.")


def to_splits(train: Labelled, test: Labelled, source: str) -> dict[str, Sequences]:
    """Integer labels over the training classes; a test-only label is refused."""
    classes = sorted(set(train[2]))
    unseen = sorted(set(test[2]) - set(classes))
    if unseen:
        raise SeqbenchError(f"{source}: label '{unseen[0]}' occurs only in the test split; a "
                            "model cannot learn a class it never sees in training.")
    if not test[0]:
        raise SeqbenchError(f"{source}: no sequence went to the test split; give more "
                            "sequences or a test file (--set test=...).")
    if len(classes) < 2:
        raise SeqbenchError(f"{source}: the training split has {len(classes)} class; "
                            "classification needs at least 2.")
    return {name: Sequences(part[1], np.array([classes.index(c) for c in part[2]]), classes,
                            part[0])
            for name, part in (("train", train), ("test", test))}


def hashed(data: Labelled) -> tuple[Labelled, Labelled]:
    """(train, test) by a stable hash of each sequence id."""
    test = [hash_split(key, valid=0, test=TEST_PERCENT) == "test" for key in data[0]]
    pick = [[i for i, t in enumerate(test) if t == want] for want in (False, True)]
    return tuple(tuple([part[i] for i in rows] for part in data) for rows in pick)


def read_user_file(dataset: str, path: Path, params: Mapping[str, Any],
                   match: Path | None = None) -> Labelled:
    """One file's sequences; `match`: the training file whose CSV columns a test file's
    are matched to by name."""
    data = read_ts(path) if dataset != "csv" else \
        read_long_csv(path, params["id"], params["label"], match)
    if not data[0]:
        raise SeqbenchError(f"'{path}' has no sequences.")
    widths = {s.shape[1] for s in data[1]}
    if len(widths) > 1:
        raise SeqbenchError(f"'{path}': sequences have different feature counts "
                            f"({', '.join(map(str, sorted(widths)))}).")
    check_finite(data, path)
    return data


def load_user_sequences(dataset: str, params: Mapping[str, Any],
                        context: DataContext) -> tuple[dict[str, Sequences], UserSource]:
    """Train and test `Sequences` of `csv`, `ts` or an aeon set, and where they came from."""
    if dataset in ("csv", "ts"):
        what = "a long-format CSV file" if dataset == "csv" else "a UCR/UEA .ts file"
        path = user_path(params["path"], dataset, what, folder=False)
        test_path = user_path(params["test"], dataset, what, folder=False) \
            if params["test"] else None
    else:
        folder = aeon_sets()[dataset]
        path, test_path = (folder / f"{folder.name}_{part}.ts" for part in ("TRAIN", "TEST"))
    files = [p for p in (path, test_path) if p is not None]
    key = content_key(dataset, ENCODING_VERSION, params["id"], params["label"],
                      [sha256_of(p) for p in files])

    def build() -> tuple[Labelled, Labelled]:
        train = read_user_file(dataset, path, params)
        if test_path is None:
            return hashed(train)
        test = read_user_file(dataset, test_path, params, match=path)
        if test[1][0].shape[1] != train[1][0].shape[1]:
            raise SeqbenchError(f"'{test_path}' has {test[1][0].shape[1]} features per frame, "
                                f"'{path}' has {train[1][0].shape[1]}.")
        return train, test

    cache = context.cache_dir / f"speech-{dataset}-{key}.pkl"
    train, test = cached(cache, build)
    how = f"{path.name} / {test_path.name}" if test_path else \
        f"stable hash of each sequence id ({100 - TEST_PERCENT}/{TEST_PERCENT} train/test)"
    source = UserSource({}, f"{how}; validation carved from train, stratified by class",
                        cache)
    return to_splits(train, test, str(path)), source
