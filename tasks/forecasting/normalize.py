"""Per-window normalisation: what a cell sees of each look-back window, and the way back.

The default is RevIN (Kim et al. 2022, "Reversible instance normalization for accurate
time-series forecasting against distribution shift"): every input window is shifted by its
own mean and divided by its own standard deviation, per channel, and the model's output is
mapped back with the same two numbers before the loss and every metric. The cell therefore
learns the *shape* of a window, not its level or scale: airline's passengers grow out of
their training range and their seasonal swing grows with them (multiplicative seasonality),
and a window of 1959 normalised this way looks like a window of 1952. No learnable affine
(PatchTST's default too): the two statistics are exactly reversible and the same for every
cell.

Seasonality: the statistics are taken over the window's last whole seasons (all of it when
the look-back is shorter than one season), so the level is a deseasonalised level, as
classical decomposition's moving average over a full period is, and the seasonal shape stays
in the normalised window for the cell to carry over the horizon. We do not divide by
seasonal indices as ES-RNN (Smyl 2020) does: its multiplicative indices need positive data
(ETTh1's oil temperature goes below zero) and per-series learned smoothing parameters that a
global model over sliding windows and users' panels does not have, and indices fixed on the
training years would understate a seasonal swing that keeps growing.

`last` is the earlier choice (NLinear, Zeng et al. 2023): each window relative to its last
value, unscaled; it is kept as an option for comparisons.
"""

from __future__ import annotations

import numpy as np

#: Added to each window's variance (RevIN's epsilon): a flat window gets a tiny scale, so
#: the model's output barely moves the forecast off the window's level.
EPSILON = 1e-5
NORMS = ("revin", "last")


def whole_seasons(lookback: int, season: int) -> int:
    """How many of the window's last steps make whole seasons (the whole window when it is
    shorter than a season or the data has none)."""
    if season <= 1 or lookback < season:
        return lookback
    return lookback // season * season


def window_statistics(x: np.ndarray, norm: str, season: int) -> tuple[np.ndarray, np.ndarray]:
    """`(level, scale)`, each `[N, 1, C]`, of windows `x[N, L, C]`: normalised input is
    `(x - level) / scale`, and a forecast `f` in that space means `f * scale + level`."""
    if norm == "last":
        level = x[:, -1:, :]
        return level, np.ones_like(level)
    recent = x[:, -whole_seasons(x.shape[1], season):, :]
    return recent.mean(axis=1, keepdims=True), np.sqrt(recent.var(axis=1, keepdims=True)
                                                       + EPSILON)
