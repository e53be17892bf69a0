"""Direct multi-horizon forecasting: a look-back window in, the whole horizon out.

Scaling is fitted on the training rows only. Each input window is then normalised on its
own (RevIN, `normalize.py`), which lets a small recurrent model follow a series that grows
out of its training range (airline's passengers, and their seasonal swing). The head reads
the cell's last state and emits all `horizon x channels` values at once (direct
multi-horizon: no forecast is fed back as input), the same for every cell.
"""

from __future__ import annotations

import copy
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
from seqbench_tasks.forecasting.normalize import NORMS, window_statistics
from seqbench_tasks.forecasting.series import ETT_HOURLY, Series, check_target, load_series
from seqbench_tasks.forecasting.statistical import statistical_forecasts

DEFAULT_SHAPES = {"airline": (12, 36), "csv": (48, 12),  # lookback, horizon
                  "m1-yearly": (12, 6), **{n: (96, 24) for n in ETT_HOURLY},
                  **{n: s.shape for n, s in AEON_SERIES.items()}}


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


def _tensor(values: np.ndarray):
    import torch

    return torch.tensor(values, dtype=torch.float32)


class ForecastData(IndexedData):
    """One series (one or more channels) as windows: a look-back in, the horizon out.

    Values are standardised with the training rows' statistics (the "z-scale", on which
    the loss is taken and ETTh1's metrics are reported); each input window is then
    normalised on its own (`normalize.py`: RevIN by default) and the model's output is
    mapped back with the window's statistics before the loss and every metric.
    """

    def __init__(self, series: Series, lookback: int, horizon: int, features: str,
                 primary: str = "mase", norm: str = "revin",
                 cache_dir: Path | None = None) -> None:
        self.series, self.lookback, self.horizon = series, lookback, horizon
        self.features, self.primary, self.norm, self.cache_dir = features, primary, norm, cache_dir
        self.name, self.season = series.name, series.season
        self.report_standardized = series.report_scale == "standardized"
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
        self.constants = {"mean": _tensor(self.mean[out]), "std": _tensor(self.std[out])}
        # MASE's scale: the seasonal-naive error over all history before the forecast origin
        # (validation: the training rows; test: training and validation rows).
        self.mase_scales = {
            split: _tensor(seasonal_scale(series.values[:rows], series.season)[out])
            for split, rows in (("train", series.borders[0]), ("valid", series.borders[0]),
                                ("test", series.borders[1]))
        }
        self._out_in_inputs = [self.inputs.index(c) for c in out]

    # ---- windows ----
    def history(self, starts: np.ndarray, steps: int) -> np.ndarray:
        """The `steps` input-channel values before each origin, on the z-scale `[N, steps, C]`."""
        return np.stack([self.z[t - steps : t, self.inputs] for t in starts])

    def truth(self, starts: np.ndarray) -> np.ndarray:
        """The horizon's output-channel values from each origin, on the z-scale."""
        return np.stack([self.z[t : t + self.horizon, self.outputs] for t in starts])

    def model_inputs(self, starts: np.ndarray, x: np.ndarray) -> np.ndarray:
        """What the model reads besides the normalised target windows (a panel adds its
        covariates); one series with `features=MS|M` has every channel in `x` already."""
        return x

    def encode(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(model inputs, level and scale of the output channels) for windows ending at
        each origin: the input windows normalised (`normalize.py`)."""
        x = self.history(starts, self.lookback)
        level, scale = window_statistics(x, self.norm, self.season)
        inputs = self.model_inputs(starts, (x - level) / scale)
        return inputs, level[:, :, self._out_in_inputs], scale[:, :, self._out_in_inputs]

    def scoring(self, split: str, starts: np.ndarray) -> dict[str, Any]:
        """What `error_sums` needs besides predictions and truth: the z-scale's mean and
        std, and MASE's scale, per output channel (a panel's differ per window)."""
        return {**self.constants, "mase_scale": self.mase_scales[split]}

    def split_sizes(self) -> dict[str, int]:
        return {split: len(starts) for split, starts in self.starts.items()}

    def items(self, split: str) -> int:
        return len(self.starts[split])

    def collate(self, split: str, rows: np.ndarray) -> Batch:
        starts = self.starts[split][rows]
        inputs, level, scale = self.encode(starts)
        return Batch(inputs=_tensor(inputs), targets=_tensor(self.truth(starts)),
                     extra={"level": _tensor(level), "scale": _tensor(scale),
                            **self.scoring(split, starts)})

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
        return ForecastData(series, self.lookback, self.horizon, self.features, self.primary,
                            self.norm, self.cache_dir)

    def refit(self) -> ForecastData:
        """Training windows up to the test origin (the validation period's included); the
        scaling stays the training period's, and validation is kept for the record."""
        _, test_start, end = self.series.borders
        refit = copy.copy(self)
        everything_before_test = replace(self.series, borders=(test_start, test_start, end))
        refit.starts = {**self.starts, "train": window_starts(
            everything_before_test, "train", self.lookback, self.horizon)}
        return refit

    # ---- model, loss, metrics ----
    def modules(self, hidden_size: int, params: Mapping[str, Any]):
        from torch import nn

        return nn.Identity(), self.head(hidden_size, params)

    def head(self, hidden_size: int, params: Mapping[str, Any]):
        from seqbench_tasks.forecasting.head import HorizonHead

        return HorizonHead(hidden_size, self.horizon, len(self.outputs),
                           params.get("head_dropout", 0.0))

    @staticmethod
    def denormalize(outputs, extra: Mapping[str, Any]):
        """The model's outputs on the z-scale: mapped back with each window's statistics."""
        return outputs * extra["scale"] + extra["level"]

    def loss(self, outputs, batch: Batch):
        import torch.nn.functional as F

        return F.mse_loss(self.denormalize(outputs, batch.extra), batch.targets)

    def _sums(self, predicted, truth, extra: Mapping[str, Any], per_window: bool = False):
        return error_sums(predicted, truth, extra["mean"], extra["std"], extra["mase_scale"],
                          report_standardized=self.report_standardized, per_window=per_window)

    def statistics(self, outputs, batch: Batch):
        return self._sums(self.denormalize(outputs, batch.extra), batch.targets, batch.extra)

    def item_scores(self, outputs, batch: Batch):
        if self.primary not in ITEM_SUMS:
            return None
        sums = self._sums(self.denormalize(outputs, batch.extra), batch.targets, batch.extra,
                          per_window=True)
        return sums[ITEM_SUMS[self.primary]], sums["count"]

    def metrics(self, totals: Mapping[str, Any]) -> dict[str, float]:
        return metrics_from(totals)

    # ---- baselines ----
    def baselines(self) -> dict[str, dict[str, float]]:
        """Naive, seasonal naive, a least-squares linear model and statsforecast's ETS,
        Theta and AutoARIMA (`statistical.py`), on exactly the test windows."""
        starts = self.starts["test"]
        last = self.history(starts, 1)[:, :, self._out_in_inputs]
        season = self.history(starts, self.season)[:, :, self._out_in_inputs]
        steps = np.arange(self.horizon)
        x = self.history(starts, self.lookback)[:, :, self._out_in_inputs] - last
        weights = self.fit_linear()
        linear = np.einsum("nlc,lh->nhc", x, weights[:-1]) + weights[-1][None, :, None]
        predictions = {"naive": np.repeat(last, self.horizon, axis=1),
                       "seasonal_naive": season[:, steps % self.season],
                       "linear": linear + last}
        fallbacks = {}
        for name, (forecasts, failed) in statistical_forecasts(
                self.statistical_jobs(starts), self.horizon, self.season,
                self.cache_dir).items():
            predictions[name] = self.from_original(starts, forecasts)
            fallbacks[name] = failed
        truth, extra = _tensor(self.truth(starts)), self.scoring("test", starts)
        return {name: {**metrics_from({k: float(v) for k, v in self._sums(
                    _tensor(p), truth, extra).items()}),
                       **({"fallbacks": fallbacks[name]} if fallbacks.get(name) else {})}
                for name, p in predictions.items()}

    def statistical_jobs(self, starts: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per output channel: its values on the original scale and the forecast origins."""
        return [(self.series.values[:, c], starts) for c in self.outputs]

    def from_original(self, starts: np.ndarray, forecasts: list[np.ndarray]) -> np.ndarray:
        """`statistical_jobs`' forecasts (`[N, H]` per channel) on the z-scale `[N, H, C]`."""
        return np.stack([(f - self.mean[c]) / self.std[c]
                         for f, c in zip(forecasts, self.outputs)], axis=2)

    def fit_linear(self) -> np.ndarray:
        """Least squares from a (last-value relative) look-back window to the horizon, one
        weight matrix shared by all channels, fitted on the training windows (NLinear,
        Zeng et al. 2023); it reads the target channels alone, as the cell does with S."""
        starts = self.starts["train"]
        x = self.history(starts, self.lookback)[:, :, self._out_in_inputs]
        last = x[:, -1:, :]
        x, y = x - last, self.truth(starts) - last
        design = np.concatenate([x.transpose(0, 2, 1).reshape(-1, self.lookback),
                                 np.ones((x.shape[0] * x.shape[2], 1))], axis=1)
        goal = y.transpose(0, 2, 1).reshape(-1, self.horizon)
        return np.linalg.lstsq(design, goal, rcond=None)[0]

    # ---- using a trained model ----
    def origins(self, split: str) -> np.ndarray:
        """Origins of the forecasts a person reads: the test period in consecutive
        non-overlapping windows ("test"), or the end of the data ("future")."""
        if split == "future":
            return np.array([len(self.series.values)])
        return self.starts["test"][:: self.horizon]

    def track(self, origin) -> tuple[str, list[str], np.ndarray, int]:
        """(name, time labels, original values, row of `origin`) of the series a forecast
        from `origin` continues: what its CSV rows and its plot are made of."""
        target = self.series.columns.index(self.series.target)
        return self.series.target, self.series.dates, self.series.values[:, target], int(origin)

    def target_output(self) -> int:
        """Which output channel is the target (the one forecasts are written for)."""
        return self.outputs.index(self.series.columns.index(self.series.target))

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
        from seqbench_tasks.forecasting.future import write_forecast

        return [*write_forecast(self, model, run_dir, "test"), *self.source().write(run_dir)]


class ForecastingTask(Task):
    name = "forecasting"
    summary = ("Time series: forecast a horizon from a look-back window, beside naive, linear, "
               "ETS, Theta and AutoARIMA baselines")
    datasets = {
        "airline": "monthly airline passengers 1949-1960 (ships with aeon, offline); last 36 "
                   "months forecast in one shot",
        "etth1": "ETTh1 hourly transformer data, Informer's 12/4/4-month protocol",
        "etth2": "ETTh2, the second transformer of ETT (same protocol as etth1; larger shifts "
                 "between years)",
        "csv": "your own CSV (--set path=PATH [--set target=COLUMN] [--set season=N]); many "
               "series in one long file with --set id=COLUMN",
        "m1-yearly": "M1 competition, 181 yearly series, 6-year horizon (ships with aeon, "
                     "offline); one global model, errors averaged over series",
        **{name: spec.description for name, spec in AEON_SERIES.items()},
    }
    default_dataset = "airline"
    primary_metric = "mase"
    primary_metrics = {name: "mse" for name in ETT_HOURLY}
    direction = "minimize"
    defaults = {"epochs": 300, "hidden_size": 32, "batch_size": 16, "lr": 3e-3, "patience": 30}
    #: Airline has 25 training windows: small batches, and patience that waits for updates.
    #: ETTh1 has 8,521 training windows: Informer's schedule (batch 32, patience 3, at most
    #: a few epochs; Zhou et al. 2021 train 6 with patience 3), not airline's 300 epochs.
    dataset_defaults = {"airline": {"batch_size": 4, "min_steps": 200},
                        **{name: {"batch_size": 32, "patience": 3, "epochs": 10}
                           for name in ETT_HOURLY}}
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
        Param("target", str, "", "target column (default: OT for etth1; the one value "
              "column of your CSV)", tune=False),
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
        #: Searched: RevIN lowers M1's MASE from 4.6-6.1 to 3.7-3.8 with the published
        #: configurations and raises airline's from 0.9-1.5 to 3.0-3.4 (its 1958 dip follows
        #: years of growth), so each cell's sweep chooses on validation, RevIN first. Run
        #: records from before these two options (no norm, no head dropout) re-run as such.
        Param("norm", str, "revin", "per-window normalisation: revin (each window's mean and "
              "std over its whole seasons, Kim et al. 2022) or last (relative to the last "
              "value, NLinear)", choices=NORMS, before="last"),
        Param("head_dropout", float, 0.1, "dropout on the state the horizon head reads; "
              "generate samples it (MC dropout) for prediction intervals", low=0.0,
              high=0.9, tune=False, before=0.0),
    )
    generate_params = (
        Param("horizon", int, 0, "steps to forecast past the end of the data (at most the "
              "model's horizon; 0 = replay the test period)", low=0, high=100_000),
        Param("samples", int, 100, "MC dropout samples for the prediction intervals",
              low=2, high=100_000),
        Param("level", float, 95.0, "coverage of the prediction intervals, in percent",
              low=1.0, high=99.9),
    )

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
        cache_dir = None if context is None else context.cache_dir  # None: compute, keep none
        shape = (lookback, horizon, self.primary(dataset), params["norm"], cache_dir)
        if dataset == "m1-yearly" or params["id"]:
            return PanelData(load_panel(dataset, params, context), *shape)
        path = params["path"] or params["csv"]
        series = load_aeon_series(dataset, context) if dataset in AEON_SERIES else \
            load_series(dataset, context, params["target"], path, params["season"])
        if dataset in AEON_SERIES and params["target"]:
            series.target = check_target(series, params["target"])
        return ForecastData(series, lookback, horizon, params["features"], *shape[2:])

    def check_case(self):
        """A hand-checkable series for the conformance kit (see `check.py`)."""
        from seqbench_tasks.forecasting.check import forecasting_check_case

        return forecasting_check_case()

    def generate(self, model, data: ForecastData, out_dir: Path, options: Mapping[str, Any]):
        """`forecast.csv` and `.png` of the test period, or with `horizon` the future's."""
        from seqbench_tasks.forecasting.future import write_forecast

        split = "future" if options["horizon"] else "test"
        return write_forecast(data, model, out_dir, split, **options)

    def forecast(self, model, data: ForecastData, options: Mapping[str, Any]):
        """The next `horizon` steps of every series with their intervals, as a DataFrame."""
        from seqbench_tasks.forecasting.future import future_frame

        return future_frame(data, model, **options)

