"""Single series that ship with aeon, available offline by name beside `airline`.

Each is split as a user's CSV is (chronological 70/10/20, sliding evaluation windows) with
its natural season for MASE and the seasonal-naive baseline, so a cell can be tried on a
few classic shapes (a cycle, a short trend, a seasonal count) without any download.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqbench_tasks.forecasting.series import Series


@dataclass(frozen=True)
class AeonSeries:
    loader: str  # function name in aeon.datasets
    column: str
    season: int
    shape: tuple[int, int]  # default lookback, horizon
    description: str


AEON_SERIES = {
    "lynx": AeonSeries("load_lynx", "trappings", 10, (20, 10),
                       "Canadian lynx trappings 1821-1934, yearly, a ~10-year cycle (ships "
                       "with aeon, offline)"),
    "shampoo-sales": AeonSeries("load_shampoo_sales", "sales", 12, (6, 3),
                                "monthly shampoo sales over 3 years, a short trend (ships with "
                                "aeon, offline)"),
    "pbs": AeonSeries("load_PBS_dataset", "scripts", 12, (24, 12),
                      "monthly Australian PBS prescriptions, 204 months, seasonal (ships with "
                      "aeon, offline)"),
}


def load_aeon_series(name: str) -> Series:
    import aeon.datasets

    spec = AEON_SERIES[name]
    values = np.asarray(getattr(aeon.datasets, spec.loader)(), dtype=np.float64).reshape(-1, 1)
    end = len(values)
    return Series(name, values, [spec.column], spec.column, (int(end * 0.7), int(end * 0.8), end),
                  season=spec.season, dates=[str(i) for i in range(end)],
                  report_scale="original", test_windows="sliding")
