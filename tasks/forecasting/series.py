"""The forecasting datasets as plain arrays with their protocol: borders, season, scale.

* `airline`: monthly passengers 1949-1960 (Box & Jenkins), shipped with aeon. Darts' RNN
  examples hold out the last 36 months; we forecast them in one 36-month shot from the end
  of the training period, which is where "repeat last year" scores MAPE 13.2%. The 36
  months before them validate; the rest trains.
* `etth1`, `etth2`: ETT-small hourly transformers 1 and 2 (Zhou et al. 2021, Informer):
  12/4/4 months train/valid/test by row borders 8640/11520/14400, evaluation windows
  sliding by one hour, metrics on the scale standardised with training statistics, as the
  paper reports them. ETTh2's oil temperature is the harder of the two (larger shifts
  between the years), which is why the literature reports both.
* `csv`: a user file with a numeric `target` column (and any other numeric columns),
  split chronologically 70/10/20; a file with one value column needs no `target`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqbench import DataContext, RemoteFile, SeqbenchError, locate
from seqbench.userdata import (
    check_time_order,
    read_csv_rows,
    refuse_float32_overflow,
    user_path,
)


@dataclass
class Series:
    """Values `[T, C]` with column names, split borders and the protocol's choices.

    `borders = (valid_start, test_start, end)`: training targets lie before `valid_start`,
    validation targets in `[valid_start, test_start)`, test targets in `[test_start, end)`.
    Windows may look back across a border (history is known), never forward.
    """

    name: str
    values: np.ndarray
    columns: list[str]
    target: str
    borders: tuple[int, int, int]
    season: int
    dates: list[str]
    #: "original" or "standardized": the scale the literature reports MSE/MAE on.
    report_scale: str
    #: Test windows: "one" forecast from the start of the test period, or "sliding" by one.
    test_windows: str
    #: Rows between the origins of rolling-origin validation folds.
    fold_step: int = 1


#: The ETT-small hourly files by dataset name, with their sha256.
ETT_HOURLY = {
    name: RemoteFile(f"{file}.csv", "ett", "https://raw.githubusercontent.com/zhouhaoyi/"
                     f"ETDataset/main/ETT-small/{file}.csv", sha256)
    for name, file, sha256 in (
        ("etth1", "ETTh1", "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"),
        ("etth2", "ETTh2", "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b"))
}


def load_airline() -> Series:
    from aeon.datasets import load_airline as aeon_airline

    values = np.asarray(aeon_airline(), dtype=np.float64).reshape(-1, 1)
    dates = [f"{1949 + m // 12}-{m % 12 + 1:02d}" for m in range(len(values))]
    end = len(values)
    return Series("airline", values, ["passengers"], "passengers", (end - 72, end - 36, end),
                  season=12, dates=dates, report_scale="original", test_windows="one",
                  fold_step=6)


def read_table(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """A CSV with a header: (first column as text, other column names, float values).

    Every way a file can be wrong is named with its line: what `read_csv_rows` refuses
    (not UTF-8, an unclosed quote, a repeated column name, rows of the wrong width),
    non-numeric, missing, infinite or beyond-float32 values, and time labels that do not
    strictly increase (`check_time_order`; labels that are neither numbers nor dates are
    taken in file order).
    """
    header, body = read_csv_rows(path)
    if len(header) < 2:
        raise SeqbenchError(f"'{path}' has one column, '{header[0]}'; the first column labels "
                            "time and the values follow it.")
    lines, columns = [line for line, _ in body], header[1:]
    try:
        values = np.array([[float(v) if v.strip() else np.nan for v in row[1:]]
                           for _, row in body])
    except ValueError as exc:
        raise SeqbenchError(f"'{path}': non-numeric value ({exc}).") from None
    for problem, where in (("an infinite value", np.isinf(values)),
                           ("a missing or NaN value", np.isnan(values))):
        if where.any():
            row, column = np.argwhere(where)[0]
            raise SeqbenchError(f"'{path}' line {lines[row]}: {problem} in column "
                                f"'{columns[column]}'; fill or drop it.")
    refuse_float32_overflow(values, lambda at: f"'{path}' line {lines[at[0]]}, column "
                                               f"'{columns[at[1]]}'")
    times = [row[0] for _, row in body]
    check_time_order(path, times, lines)
    return times, columns, values


def load_ett(dataset: str, context: DataContext, target: str) -> Series:
    file = ETT_HOURLY[dataset]
    dates, columns, values = read_table(locate(file, context.data_dir))
    if values.shape != (17420, 7):
        raise SeqbenchError(f"{file.name} has shape {values.shape}, expected (17420, 7); "
                            "replace the file.")
    return Series(dataset, values, columns, target or "OT", (8640, 11520, 14400), season=24,
                  dates=dates, report_scale="standardized", test_windows="sliding")


def load_user_csv(path_text: str, target: str, season: int) -> Series:
    path = user_path(path_text, "csv", "a CSV file", folder=False)  # as the many-series CSV
    dates, columns, values = read_table(path)
    end = len(values)
    return Series(f"'{path}'", values, columns, target or only_column(path, columns),
                  (int(end * 0.7), int(end * 0.8), end), season=season, dates=dates,
                  report_scale="original", test_windows="sliding")


def only_column(path: Path, candidates: list[str]) -> str:
    """The target when `--set target=` is not given: the file's one value column."""
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise SeqbenchError(f"'{path}' has no column of numbers to forecast (besides the time "
                            "in the first column, the id and the covariates).")
    raise SeqbenchError(f"'{path}' has {len(candidates)} value columns "
                        f"({', '.join(candidates)}); say which to forecast with --set "
                        "target=COLUMN.")


def load_series(dataset: str, context: DataContext, target: str, csv_path: str,
                season: int) -> Series:
    if dataset == "airline":
        series = load_airline()
        target = target or series.target
    elif dataset in ETT_HOURLY:
        series = load_ett(dataset, context, target)
        target = series.target
    else:
        series = load_user_csv(csv_path, target, season)
        target = series.target
    series.target = check_target(series, target)
    return series


def check_target(series: Series, target: str) -> str:
    """`target`, if it names one of the series' columns."""
    if target not in series.columns:
        raise SeqbenchError(f"unknown target column '{target}' in {series.name}; columns: "
                            f"{', '.join(series.columns)}.")
    return target
