"""Direct multi-horizon forecasting: a look-back window in, the whole horizon out.

Scaling is fitted on the training rows only. Each window is then expressed relative to its
own last observed value (as NLinear does), which lets a small recurrent model follow a
trend it never saw in training (the airline series grows out of its training range). The
head reads the cell's last state and emits all `horizon x channels` values at once.
"""

from __future__ import annotations

import copy
import csv
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from seqbench import Batch, DataContext, IndexedData, Param, SeqbenchError, Task
from seqbench.userdata import UserSource, refuse_foreign_options
from seqbench_tasks.forecasting.aeon_series import AEON_SERIES, load_aeon_series
from seqbench_tasks.forecasting.metrics import (
    check_season,
    error_sums,
    metrics_from,
    seasonal_scale,
)
from seqbench_tasks.forecasting.series import Series, load_series

DEFAULT_SHAPES = {"airline": (12, 36), "etth1": (96, 24), "csv": (48, 12),  # lookback, horizon
                  "m1-yearly": (12, 6), **{n: s.shape for n, s in AEON_SERIES.items()}}


def window_starts(series: Series, split: str, lookback: int, horizon: int) -> np.ndarray:
    """First target index of every window whose targets lie inside `split`."""
    valid_start, test_start, end = series.borders
    low, high = {"train": (0, valid_start), "valid": (valid_start, test_start),
                 "test": (test_start, end)}[split]
    first, last = max(low, lookback), high - horizon
    if last < first:
        raise SeqbenchError(
            f"{series.name}: lookback {lookback} + horizon {horizon} do not fit in the {split} "
            f"period ({high - low} rows from row {low}); shorten them."
        )
    if split != "train" and series.test_windows == "one":
        return np.array([low])
    return np.arange(first, last + 1)


#: Item value of each primary metric: the per-window sum whose total over windows, divided
#: by the number of forecast values, gives the metric.
ITEM_SUMS = {"mase": "scaled_ae", "mse": "se", "mae": "ae"}


class ForecastData(IndexedData):
    def __init__(self, series: Series, lookback: int, horizon: int, features: str,
                 primary: str = "mase") -> None:
        import torch

        self.series, self.lookback, self.horizon = series, lookback, horizon
        self.features, self.primary = features, primary
        target = series.columns.index(series.target)
        self.inputs = [target] if features == "S" else list(range(len(series.columns)))
        self.outputs = list(range(len(series.columns))) if features == "M" else [target]
        self.input_size = len(self.inputs)
        # Windows first: a series too short for them (a one-row file) is one error line,
        # not numpy's warnings about the mean of no training rows before it.
        self.starts = {split: window_starts(series, split, lookback, horizon)
                       for split in ("train", "valid", "test")}
        check_season(series.season, series.borders[0], series.name)
        train_rows = series.values[: series.borders[0]]
        self.mean, self.std = train_rows.mean(axis=0), train_rows.std(axis=0)
        self.std = np.where(self.std > 0, self.std, 1.0)
        self.z = (series.values - self.mean) / self.std
        out = self.outputs
        self.constants = {
            "mean": torch.tensor(self.mean[out], dtype=torch.float32),
            "std": torch.tensor(self.std[out], dtype=torch.float32),
        }
        # MASE's scale: the seasonal-naive error over all history before the forecast origin
        # (validation: the training rows; test: training and validation rows).
        self.mase_scales = {
            split: torch.tensor(seasonal_scale(series.values[:rows], series.season)[out],
                                dtype=torch.float32)
            for split, rows in (("train", series.borders[0]), ("valid", series.borders[0]),
                                ("test", series.borders[1]))
        }
        self._out_in_inputs = [self.inputs.index(c) for c in out]

    def windows(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(inputs relative to the last value, targets relative to it, the last values)."""
        x = np.stack([self.z[t - self.lookback : t, self.inputs] for t in starts])
        y = np.stack([self.z[t : t + self.horizon, self.outputs] for t in starts])
        last = x[:, -1:, :]
        return x - last, y - last[:, :, self._out_in_inputs], last[:, 0, self._out_in_inputs]

    def split_sizes(self) -> dict[str, int]:
        return {split: len(starts) for split, starts in self.starts.items()}

    def items(self, split: str) -> int:
        return len(self.starts[split])

    def collate(self, split: str, rows: np.ndarray) -> Batch:
        import torch

        x, y, last = self.windows(self.starts[split][rows])
        return Batch(inputs=torch.tensor(x, dtype=torch.float32),
                     targets=torch.tensor(y, dtype=torch.float32),
                     extra={"last": torch.tensor(last, dtype=torch.float32),
                            "mase_scale": self.mase_scales[split]})

    def fold(self, index: int, folds: int) -> ForecastData:
        """Rolling-origin validation: fold `index` of `folds` validates from an origin
        `fold_step` rows earlier per fold before the last, training on what precedes it."""
        valid_start, test_start, end = self.series.borders
        origin = valid_start - (folds - 1 - index) * self.series.fold_step
        if origin - self.horizon < self.lookback:
            raise SeqbenchError(
                f"{self.series.name}: {folds} rolling-origin folds leave fold {index} no "
                f"training window (origin row {origin}); use fewer folds or a shorter lookback.")
        series = replace(self.series, borders=(origin, test_start, end))
        return ForecastData(series, self.lookback, self.horizon, self.features, self.primary)

    def refit(self) -> ForecastData:
        """Training windows up to the test origin (the validation period's included); the
        scaling stays the training period's, and validation is kept for the record."""
        _, test_start, end = self.series.borders
        refit = copy.copy(self)
        everything_before_test = replace(self.series, borders=(test_start, test_start, end))
        refit.starts = {**self.starts, "train": window_starts(
            everything_before_test, "train", self.lookback, self.horizon)}
        return refit

    def modules(self, hidden_size: int, params: Mapping[str, Any]):
        from torch import nn

        return nn.Identity(), self.head(hidden_size, params)

    def head(self, hidden_size: int, params: Mapping[str, Any]):
        from seqbench_tasks.forecasting.head import HorizonHead

        return HorizonHead(hidden_size, self.horizon, len(self.outputs))

    def loss(self, outputs, batch: Batch):
        import torch.nn.functional as F

        return F.mse_loss(outputs, batch.targets)

    def _sums(self, predicted, truth, mase_scale, per_window: bool = False):
        constants = {k: v.to(predicted.device) for k, v in self.constants.items()}
        return error_sums(predicted, truth, **constants, mase_scale=mase_scale.to(predicted.device),
                          report_standardized=self.series.report_scale == "standardized",
                          per_window=per_window)

    def statistics(self, outputs, batch: Batch):
        last = batch.extra["last"].unsqueeze(1)
        return self._sums(outputs + last, batch.targets + last, batch.extra["mase_scale"])

    def item_scores(self, outputs, batch: Batch):
        if self.primary not in ITEM_SUMS:
            return None
        last = batch.extra["last"].unsqueeze(1)
        sums = self._sums(outputs + last, batch.targets + last, batch.extra["mase_scale"],
                          per_window=True)
        return sums[ITEM_SUMS[self.primary]], sums["count"]

    def metrics(self, totals: Mapping[str, Any]) -> dict[str, float]:
        return metrics_from(totals)

    def baselines(self) -> dict[str, dict[str, float]]:
        """Naive, seasonal naive and a least-squares linear model on the test windows."""
        import torch

        starts = self.starts["test"]
        x, y, last = self.windows(starts)
        truth = torch.tensor(y + last[:, None, :], dtype=torch.float32)
        season = self.series.season
        seasonal = np.stack([
            self.z[[t - season + (h % season) for h in range(self.horizon)]][:, self.outputs]
            for t in starts
        ])
        weights = self.fit_linear()
        linear = np.einsum("nlc,lh->nhc", x[:, :, self._out_in_inputs], weights[:-1]) \
            + weights[-1][None, :, None]
        predictions = {"naive": np.repeat(last[:, None, :], self.horizon, axis=1),
                       "seasonal_naive": seasonal,
                       "linear": linear + last[:, None, :]}
        return {name: metrics_from({k: float(v) for k, v in self._sums(
                    torch.tensor(p, dtype=torch.float32), truth, self.mase_scales["test"]).items()})
                for name, p in predictions.items()}

    def fit_linear(self) -> np.ndarray:
        """Least squares from a (last-value relative) look-back window to the horizon, one
        weight matrix shared by all channels, fitted on the training windows (DLinear-style)."""
        x, y, _ = self.windows(self.starts["train"])
        channels = self._out_in_inputs
        design = np.concatenate([x[:, :, channels].transpose(0, 2, 1).reshape(-1, self.lookback),
                                 np.ones((x.shape[0] * len(channels), 1))], axis=1)
        goal = y.transpose(0, 2, 1).reshape(-1, self.horizon)
        return np.linalg.lstsq(design, goal, rcond=None)[0]

    def forecast(self, model) -> tuple[np.ndarray, np.ndarray]:
        """Target-channel forecast and truth over the test period, on the original scale,
        from consecutive non-overlapping windows."""
        import torch

        starts = self.starts["test"][:: self.horizon]
        x, y, last = self.windows(starts)
        with torch.no_grad():
            device = next(model.parameters()).device
            out = model(torch.tensor(x, dtype=torch.float32, device=device))[0].cpu().numpy()
        column = self.outputs.index(self.series.columns.index(self.series.target))
        scale = (self.std[self.outputs][column], self.mean[self.outputs][column])
        predicted = (out + last[:, None, :])[:, :, column].reshape(-1) * scale[0] + scale[1]
        truth = (y + last[:, None, :])[:, :, column].reshape(-1) * scale[0] + scale[1]
        return predicted, truth

    def source(self) -> UserSource:
        """The chronological split as date ranges, for `seqbench data` and `split.json`."""
        dates, (valid_start, test_start, end) = self.series.dates, self.series.borders
        spans = {"train": (0, valid_start), "valid": (valid_start, test_start),
                 "test": (test_start, end)}
        return UserSource({split: [f"{dates[a]}..{dates[b - 1]}"] for split, (a, b) in
                           spans.items()}, "chronological: rows of each period are its "
                           "forecast targets, windows look back across borders")

    def describe(self) -> dict[str, Any]:
        return self.source().facts()

    def artifacts(self, model, run_dir: Path) -> list[Path]:
        return [*write_forecast(self, model, run_dir), *self.source().write(run_dir)]


def write_forecast(data: ForecastData, model, out_dir: Path) -> list[Path]:
    """The test-period forecast as CSV and a PNG of history, truth and forecast."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    predicted, truth = data.forecast(model)
    series = data.series
    begin = series.borders[1]
    dates = series.dates[begin : begin + len(predicted)]
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "forecast.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", f"{series.target}_true", f"{series.target}_forecast"])
        writer.writerows(zip(dates, truth.round(4), predicted.round(4)))
    target = series.columns.index(series.target)
    history = max(0, begin - 3 * len(predicted))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(range(history, begin), series.values[history:begin, target], color="gray",
            label="history")
    span = range(begin, begin + len(predicted))
    ax.plot(span, truth, color="black", label="truth")
    ax.plot(span, predicted, color="C1", label="forecast")
    ax.set_title(f"{series.name}: {series.target}, {data.horizon}-step forecasts")
    ax.legend()
    fig.tight_layout()
    png_path = out_dir / "forecast.png"
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return [csv_path, png_path]


class ForecastingTask(Task):
    name = "forecasting"
    summary = "Time series: forecast a horizon from a look-back window, beside naive baselines"
    datasets = {
        "airline": "monthly airline passengers 1949-1960 (ships with aeon, offline); last 36 "
                   "months forecast in one shot",
        "etth1": "ETTh1 hourly transformer data, Informer's 12/4/4-month protocol",
        "csv": "your own CSV (--set path=PATH --set target=COLUMN [--set season=N]); many "
               "series in one long file with --set id=COLUMN",
        "m1-yearly": "M1 competition, 181 yearly series, 6-year horizon (ships with aeon, "
                     "offline); one global model, errors averaged over series",
        **{name: spec.description for name, spec in AEON_SERIES.items()},
    }
    default_dataset = "airline"
    primary_metric = "mase"
    primary_metrics = {"etth1": "mse"}
    direction = "minimize"
    defaults = {"epochs": 300, "hidden_size": 32, "batch_size": 16, "lr": 3e-3, "patience": 30}
    #: Airline has 25 training windows: small batches, and patience that waits for updates.
    #: ETTh1 has 8,521 training windows: Informer's schedule (batch 32, patience 3, at most
    #: a few epochs; Zhou et al. 2021 train 6 with patience 3), not airline's 300 epochs.
    dataset_defaults = {"airline": {"batch_size": 4, "min_steps": 200},
                        "etth1": {"batch_size": 32, "patience": 3, "epochs": 10}}
    search = {"hidden_size": (8, 128), "layers": (1, 2)}
    dataset_search = {"airline": {"batch_size": (2, 8)}}
    #: One 36-month validation window selects noisily: validate from three origins.
    selection_folds = {"airline": 3}
    params = (
        Param("lookback", int, 0, "input window length (0 = the dataset's default: airline "
              "12, etth1 96)", low=0, high=100_000, tune=False),
        Param("horizon", int, 0, "steps forecast at once (0 = default: airline 36, etth1 24)",
              low=0, high=100_000, tune=False),
        Param("features", str, "S", "S: target only; MS: all columns in, target out; M: all "
              "in, all out", choices=("S", "MS", "M"), tune=False),
        Param("target", str, "", "target column (default: OT for etth1)", tune=False),
        Param("path", str, "", "path of your CSV for dataset 'csv'", tune=False),
        Param("csv", str, "", "the same as path (kept for older commands)", tune=False),
        Param("id", str, "", "series id column: your CSV holds many series, one row per time "
              "step, and one global model is trained across them", tune=False),
        Param("covariates", str, "", "comma-separated exogenous columns of your many-series "
              "CSV, fed to the model with the target's past", tune=False),
        Param("future_covariates", str, "", "those covariates that are also known over the "
              "horizon (prices, holidays): their future values go in too", tune=False),
        Param("season", int, 1, "seasonal period of your CSV (for MASE and seasonal naive)",
              low=1, high=100_000, tune=False),
    )
    generate_params = ()

    def test_item_span(self, dataset: str, params: Mapping[str, Any]) -> int:
        """Test windows slide one step over a series: two windows closer than lookback +
        horizon share observations. Many series (M1, a CSV with an id column) give one test
        window per series, which are independent."""
        if dataset == "m1-yearly" or params.get("id"):
            return 1
        lookback, horizon = DEFAULT_SHAPES[dataset]
        return (params.get("lookback") or lookback) + (params.get("horizon") or horizon)

    def prepare(self, dataset: str, context: DataContext, params: Mapping[str, Any]) -> ForecastData:
        from seqbench_tasks.forecasting.panel import PanelData, load_panel

        refuse_foreign_options(dataset, params, self.params,
                               {"path": ("csv",), "csv": ("csv",), "id": ("csv",),
                                "covariates": ("csv",), "future_covariates": ("csv",)})
        if params["covariates"] and not params["id"]:
            raise SeqbenchError("covariates apply to many series (--set id=COLUMN); for one "
                                "series, features=MS feeds every column's past to the model.")
        lookback, horizon = DEFAULT_SHAPES[dataset]
        lookback, horizon = params["lookback"] or lookback, params["horizon"] or horizon
        if dataset == "m1-yearly" or params["id"]:
            return PanelData(load_panel(dataset, params, context), lookback, horizon,
                             self.primary(dataset))
        path = params["path"] or params["csv"]
        series = load_aeon_series(dataset) if dataset in AEON_SERIES else \
            load_series(dataset, context, params["target"], path, params["season"])
        return ForecastData(series, lookback, horizon, params["features"], self.primary(dataset))

    def check_case(self):
        """A hand-checkable series for the conformance kit (see `check.py`)."""
        from seqbench_tasks.forecasting.check import forecasting_check_case

        return forecasting_check_case()

    def generate(self, model, data: ForecastData, out_dir: Path, options: Mapping[str, Any]):
        return data.artifacts(model, out_dir)
