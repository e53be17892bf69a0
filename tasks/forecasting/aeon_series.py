"""Series that ship with aeon (beside `airline`), available offline by name.

Each is split as a user's CSV is (chronological 70/10/20, sliding evaluation windows) with
its natural season for MASE and the seasonal-naive baseline. Only loaders aeon keeps are
used: its Lynx, ShampooSales and PBS loaders are deprecated (removed in aeon 1.7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqbench_tasks.forecasting.series import Series


@dataclass(frozen=True)
class AeonSeries:
    loader: str  # function name in aeon.datasets; returns channels x time
    columns: tuple[str, ...]
    season: int
    shape: tuple[int, int]  # default lookback, horizon
    description: str


AEON_SERIES = {
    "uschange": AeonSeries(
        "load_uschange", ("Consumption", "Income", "Production", "Savings", "Unemployment"), 4,
        (16, 4), "quarterly % changes of US consumption (target) and 4 related series, "
        "1960-2016 (Hyndman's FPP; ships with aeon, offline; features=MS uses all five)"),
}


def load_aeon_series(name: str) -> Series:
    import aeon.datasets

    spec = AEON_SERIES[name]
    values = np.asarray(getattr(aeon.datasets, spec.loader)(), dtype=np.float64)
    values = values.reshape(len(spec.columns), -1).T
    end = len(values)
    return Series(name, values, list(spec.columns), spec.columns[0],
                  (int(end * 0.7), int(end * 0.8), end), season=spec.season,
                  dates=[str(i) for i in range(end)], report_scale="original",
                  test_windows="sliding")
