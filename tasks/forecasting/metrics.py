"""Forecast errors as additive sums, shared by the model and the baselines.

Everything is computed from standardised predictions and truths `[N, H, C]` so the model
and every baseline are scored by the same code on the same windows. MSE and MAE are on the
scale the literature reports for the dataset; MAPE and sMAPE on the original scale (they
are meaningless around a standardised zero); MASE divides each absolute error by the
series' in-sample seasonal-naive MAE over the whole history before the forecast origin
(Hyndman & Koehler 2006), so it is scale-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from seqbench import SeqbenchError


def check_season(season: int, rows: int, what: str) -> None:
    """Refuse a season as long as the training history: MASE's scale averages its
    `rows - season` seasonal differences (none: NaN) and the seasonal-naive forecast reads
    `season` steps back from the forecast origin (before the first row: a wrapped index)."""
    if season >= rows:
        raise SeqbenchError(f"{what}: season {season} leaves no seasonal difference in the "
                            f"{rows} training values (MASE and the seasonal-naive baseline "
                            f"need season below {rows}); give a shorter --set season=N.")


def seasonal_scale(train: np.ndarray, season: int) -> np.ndarray:
    """Per-column mean absolute error of the in-sample seasonal naive forecast.

    A column that repeats exactly every season (a constant one) has no such error; its
    scale is 1, so MASE is the plain MAE there instead of a division by zero.
    """
    scale = np.abs(train[season:] - train[:-season]).mean(axis=0)
    return np.where(scale == 0, 1.0, scale)


def error_sums(predicted, truth, mean, std, mase_scale, report_standardized: bool,
               per_window: bool = False) -> dict:
    """Sums of squared/absolute/percentage errors over every window, step and channel
    (over steps and channels only, one value per window, with `per_window`).

    In float64: the models compute in float32, but a series near float32's largest value
    (any value up to 3.4e38 is accepted) squares to infinity there, and the metrics would be
    reported as inf."""
    import torch

    dims = (1, 2) if per_window else None
    predicted, truth, mean, std = (x.double() for x in (predicted, truth, mean, std))
    original_p, original_t = predicted * std + mean, truth * std + mean
    report_error = (predicted - truth) if report_standardized else (original_p - original_t)
    error = (original_p - original_t).abs()
    nonzero = original_t.abs() > 1e-8
    denominator = original_p.abs() + original_t.abs()
    def total(values):
        return values.sum() if dims is None else values.sum(dims)

    return {
        "se": total(report_error**2),
        "ae": total(report_error.abs()),
        "ape": total(torch.where(nonzero, error / original_t.abs().clamp_min(1e-8), 0.0)),
        "ape_count": total(nonzero),
        "smape": total(torch.where(denominator > 0, 2 * error / denominator.clamp_min(1e-8),
                                   0.0)),
        "scaled_ae": total(error / mase_scale),
        "count": total(torch.ones_like(error)),
    }


def metrics_from(totals: Mapping[str, Any]) -> dict[str, float]:
    count = totals["count"]
    return {
        "mse": totals["se"] / count,
        "mae": totals["ae"] / count,
        "mape": 100 * totals["ape"] / max(totals["ape_count"], 1),
        "smape": 100 * totals["smape"] / count,
        "mase": totals["scaled_ae"] / count,
    }
