"""The forecasters' baselines (ETS, Theta, AutoARIMA from statsforecast) on the model's test
windows: by hand against statsforecast, rolled forward on sliding windows, cached, and a
failing model falling back to naive, counted."""

from __future__ import annotations

import numpy as np
import pytest

from seqbench_tasks.forecasting import statistical
from seqbench_tasks.forecasting.series import Series
from seqbench_tasks.forecasting.statistical import _forward_start, statistical_forecasts
from seqbench_tasks.forecasting.task import ForecastData


def series(values, borders, season=1) -> Series:
    values = np.asarray(values, dtype=float).reshape(-1, 1)
    return Series("toy", values, ["y"], "y", borders, season=season,
                  dates=[str(i) for i in range(len(values))], report_scale="original",
                  test_windows="sliding")


def test_airline_auto_arima_is_statsforecasts_own_fit_on_the_108_months_before_the_test():
    import warnings

    from aeon.datasets import load_airline
    from statsforecast.models import AutoARIMA

    from seqbench.config import build_spec
    from seqbench_tasks.forecasting.task import ForecastingTask

    y = np.asarray(load_airline(), dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forecast = AutoARIMA(season_length=12).fit(y[:108]).predict(36)["mean"]
    scale = np.mean(np.abs(y[12:108] - y[:96]))  # MASE's: seasonal naive before the origin
    data = ForecastingTask().prepare("airline", None, build_spec("forecasting", "lstm")
                                     .task_params)
    baselines = data.baselines()
    assert baselines["auto_arima"]["mase"] == pytest.approx(
        np.mean(np.abs(y[108:] - forecast)) / scale, rel=1e-5)
    assert baselines["auto_arima"]["mase"] < baselines["seasonal_naive"]["mase"]
    assert all("fallbacks" not in b for b in baselines.values())


def test_the_forward_stretch_keeps_the_seasonal_phase_of_the_fit():
    assert _forward_start(1000, 0, 24) == 264  # 280 moved back to a whole number of days
    assert (_forward_start(1000, 17, 24) - 17) % 24 == 0
    assert _forward_start(100, 40, 1) == 40  # never before the fit's first value


def test_a_fitted_model_rolled_forward_follows_the_data_up_to_each_origin():
    """One fit before the test period; a jump inside the test period shows up in the
    forecasts from later origins, as rolling the fitted state forward promises (a random
    walk, so every model's forecast is near the last value it has seen)."""
    rng = np.random.default_rng(0)
    values = 100 + np.cumsum(rng.normal(0, 1, 360)) + 40 * (np.arange(360) >= 300)
    origins = np.arange(290, 356)
    forecasts = statistical_forecasts([(values, origins)], 4, 1)
    for name, ([out], fallbacks) in forecasts.items():
        assert fallbacks == 0 and out.shape == (66, 4), name
        for row in (0, -1):  # before the jump (the fit's own forecast) and 55 values after
            assert abs(out[row, 0] - values[origins[row] - 1]) < 5, name


def test_statistical_forecasts_are_cached_by_the_series_content(tmp_path, monkeypatch):
    values, origins = np.sin(np.arange(80) / 2) + 5, np.array([60, 61])
    first = statistical_forecasts([(values, origins)], 3, 1, tmp_path)
    monkeypatch.setattr(statistical, "_one_series", lambda *a: pytest.fail("computed again"))
    again = statistical_forecasts([(values, origins)], 3, 1, tmp_path)
    assert all(np.array_equal(first[n][0][0], again[n][0][0]) for n in statistical.NAMES)
    with pytest.raises(pytest.fail.Exception, match="computed again"):
        statistical_forecasts([(values + 1, origins)], 3, 1, tmp_path)  # new content


def test_a_model_that_fails_falls_back_to_naive_and_the_baseline_says_how_often(monkeypatch):
    class Broken:
        def fit(self, y):
            raise ValueError("no convergence")

    monkeypatch.setattr(statistical, "_models", lambda *a: dict.fromkeys(statistical.NAMES,
                                                                         Broken()))
    values = np.arange(40.0) + np.tile([0.0, 3.0], 20)
    data = ForecastData(series(values, (24, 32, 40), season=2), lookback=4, horizon=2,
                        features="S")
    baselines = data.baselines()
    for name in statistical.NAMES:
        assert baselines[name]["fallbacks"] == 1  # the one series
        assert baselines[name]["mae"] == pytest.approx(baselines["naive"]["mae"])
    assert "fallbacks" not in baselines["naive"]
