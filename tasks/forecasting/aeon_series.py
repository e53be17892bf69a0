"""Forecasting series that ship with aeon (beside `airline` and M1), available offline.

Each is read from the CSV file aeon keeps in its package (`aeon/datasets/data`), and split
as a user's CSV is (chronological 70/10/20, sliding evaluation windows), with its natural
season for MASE and the seasonal baselines. The files are read directly rather than
through aeon's loaders: `load_lynx` is deprecated (aeon 1.7 drops it with its file) and
`load_uschange` drops the quarter labels that date the plots. Where an aeon release no
longer ships a file, it is looked up in the data dir and otherwise downloaded from aeon's
repository at the 1.6.0 tag, checked against its sha256.

Which of aeon's series are benchmarks here, and why:

* `uschange` (kept): quarterly % changes of US consumption, income, production, savings and
  unemployment, 1970-2016 (187 quarters), the multivariate example of Hyndman &
  Athanasopoulos' *Forecasting: Principles and Practice*; with `features=MS` the other four
  series are inputs.
* `lynx` (added): Canadian lynx trappings 1821-1934 (114 years), the classic benchmark of
  non-linear forecasting (Moran 1953; Tong & Lim 1980; Zhang 2003's ARIMA/neural
  comparison). Its roughly ten-year cycle is not a calendar season (FPP calls it cyclic),
  so MASE and the statistical models use season 1, and a model must find the cycle itself.

Left out: ShampooSales (36 months: after a validation and a test year, less than one
look-back and horizon remains for training), PBS_dataset (intermittent counts whose last
four years, the test period under any chronological split, are all zero, so "repeat the
last value" is perfect; intermittent demand needs Croston-type methods and other metrics),
solar (six days of half-hourly estimates, not a published benchmark), Longley (16 rows),
and the regression, anomaly and segmentation sets.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqbench import DataContext, RemoteFile, locate
from seqbench.userdata import read_csv_rows
from seqbench_tasks.forecasting.series import Series

AEON_TAG = "v1.6.0"


@dataclass(frozen=True)
class AeonSeries:
    file: str  # under aeon/datasets/data
    sha256: str
    time_column: int  # the column labelling time
    columns: tuple[str, ...]  # value columns, the first is the default target
    names: tuple[str, ...]  # what seqbench calls them (the file may leave them unnamed)
    season: int
    shape: tuple[int, int]  # default lookback, horizon
    description: str


AEON_SERIES = {
    "uschange": AeonSeries(
        "Uschange/Uschange.csv", "ab70b9bf82f99c962041bfd38dc9644f7a17930df71f24345bb71180f68809fe",
        1, ("Consumption", "Income", "Production", "Savings", "Unemployment"),
        ("Consumption", "Income", "Production", "Savings", "Unemployment"), 4, (16, 4),
        "quarterly % changes of US consumption (target) and 4 related series, 1970-2016 "
        "(Hyndman's FPP; ships with aeon, offline; features=MS uses all five)"),
    "lynx": AeonSeries(
        "Lynx/Lynx.csv", "aa531751f1570541924e78c53fa9ef56422c9593a89faeb01513bba7b2015c77",
        0, ("0",), ("trappings",), 1, (20, 5),
        "Canadian lynx trappings 1821-1934, the classic non-linear benchmark with a ~10-year "
        "cycle (ships with aeon, offline); 5-year forecasts from 20-year windows"),
}


def aeon_file(spec: AeonSeries, context: DataContext) -> Path:
    """aeon's own copy of the file, else the data dir's, else a checked download."""
    package = Path(importlib.util.find_spec("aeon").origin).parent / "datasets" / "data"
    if (package / spec.file).is_file():
        return package / spec.file
    name = spec.file.split("/")[-1]
    return locate(RemoteFile(name, "aeon", "https://raw.githubusercontent.com/aeon-toolkit/"
                             f"aeon/{AEON_TAG}/aeon/datasets/data/{spec.file}", spec.sha256),
                  context.data_dir)


def load_aeon_series(name: str, context: DataContext) -> Series:
    spec = AEON_SERIES[name]
    header, body = read_csv_rows(aeon_file(spec, context))
    at = [header.index(column) for column in spec.columns]
    values = np.array([[float(row[i]) for i in at] for _, row in body])
    # "1970 Q1" -> "1970Q1", which pandas reads as a date (so plots and forecasts are dated)
    dates = [row[spec.time_column].replace(" ", "") for _, row in body]
    end = len(values)
    return Series(name, values, list(spec.names), spec.names[0],
                  (int(end * 0.7), int(end * 0.8), end), season=spec.season, dates=dates,
                  report_scale="original", test_windows="sliding")
