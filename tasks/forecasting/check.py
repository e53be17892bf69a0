"""The forecasting task's check case: a 15-step series scored for "repeat the last value".

Look-back 2, horizon 2, season 1. Rows 0-7 train (values 3 5 4 8 6 7 10 9, so the
in-sample naive MAE, MASE's scale, is (2+1+4+2+1+3+1) / 7 = 2), rows 8-10 validate
(12 11 13), rows 11-14 test (15 14 16 18). The prediction is zero relative to each window's
last value, i.e. the last value repeated. Test windows start at rows 11, 12, 13:
last 13 -> (15, 14), last 15 -> (14, 16), last 14 -> (16, 18); absolute errors
2 1 | 1 1 | 2 4: MAE 11/6, MSE 27/6, MASE 11/12 on the original scale. With batches of two
windows an average of batch averages would give MAE (5/4 + 3) / 2 instead.
"""

from __future__ import annotations

import numpy as np

from seqbench import CheckCase

VALUES = [3, 5, 4, 8, 6, 7, 10, 9, 12, 11, 13, 15, 14, 16, 18]
#: (last value, truth) per predicted test value, for MAPE and sMAPE.
PAIRS = [(13, 15), (13, 14), (15, 14), (15, 16), (14, 16), (14, 18)]


def _repeat_last(batch):
    import torch

    return torch.zeros_like(batch.targets)


def forecasting_check_case() -> CheckCase:
    from seqbench_tasks.forecasting.series import Series
    from seqbench_tasks.forecasting.task import ForecastData

    series = Series("check", np.array(VALUES, dtype=np.float64).reshape(-1, 1), ["y"], "y",
                    borders=(8, 11, 15), season=1, dates=[str(i) for i in range(len(VALUES))],
                    report_scale="original", test_windows="sliding")
    return CheckCase(
        data=ForecastData(series, lookback=2, horizon=2, features="S", norm="last"),
        predict=_repeat_last,
        expected={"mae": 11 / 6, "mse": 27 / 6, "mase": 11 / 12,
                  "mape": 100 * np.mean([abs(t - p) / t for p, t in PAIRS]),
                  "smape": 100 * np.mean([2 * abs(t - p) / (p + t) for p, t in PAIRS])},
        batch_size=2,
    )
