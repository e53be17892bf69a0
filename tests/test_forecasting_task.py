"""The forecasting task: metrics by hand, no leakage, baselines, errors, airline end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seqbench import DataContext, SeqbenchError
from seqbench.cli import main
from seqbench_tasks.forecasting.future import forecast_windows
from seqbench_tasks.forecasting.metrics import error_sums, metrics_from, seasonal_scale
from seqbench_tasks.forecasting.series import Series, load_series
from seqbench_tasks.forecasting.task import ForecastData

BASELINES = {"naive", "seasonal_naive", "linear", "ets", "theta", "auto_arima"}


def toy_series(values, borders, season=2, test_windows="sliding") -> Series:
    values = np.asarray(values, dtype=float).reshape(len(values), -1)
    return Series("toy", values, [f"c{i}" for i in range(values.shape[1])], "c0", borders,
                  season=season, dates=[str(i) for i in range(len(values))],
                  report_scale="original", test_windows=test_windows)


def test_metrics_match_hand_computed_values():
    truth = torch.tensor([[[10.0], [20.0]]])
    predicted = torch.tensor([[[12.0], [15.0]]])
    sums = error_sums(predicted, truth, mean=torch.tensor([0.0]), std=torch.tensor([1.0]),
                      mase_scale=torch.tensor([4.0]), report_standardized=False)
    metrics = metrics_from({k: float(v) for k, v in sums.items()})
    assert metrics["mse"] == pytest.approx((4 + 25) / 2)
    assert metrics["mae"] == pytest.approx(3.5)
    assert metrics["mape"] == pytest.approx(100 * (2 / 10 + 5 / 20) / 2)
    assert metrics["smape"] == pytest.approx(100 * (2 * 2 / 22 + 2 * 5 / 35) / 2)
    assert metrics["mase"] == pytest.approx(3.5 / 4)
    # in-sample seasonal naive MAE with period 2 of 1, 2, 4, 8: |4-1|, |8-2| -> 4.5
    assert seasonal_scale(np.array([[1.0], [2.0], [4.0], [8.0]]), 2).tolist() == [4.5]


def test_no_test_period_value_leaks_into_scaling_or_training_windows():
    values = np.sin(np.arange(60) / 3) + np.arange(60) / 10
    borders = (40, 50, 60)
    base = ForecastData(toy_series(values, borders), lookback=6, horizon=3, features="S")
    changed_values = values.copy()
    changed_values[40:] += 1000.0  # everything from the validation period on
    changed = ForecastData(toy_series(changed_values, borders), lookback=6, horizon=3,
                           features="S")
    assert base.mean == pytest.approx(changed.mean) and base.std == pytest.approx(changed.std)
    assert base.starts["train"].max() + 3 <= 40  # train targets end before validation
    for a, b in zip(base.batches("train", 8), changed.batches("train", 8)):
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert base.fit_linear() == pytest.approx(changed.fit_linear())


def test_baselines_on_a_tiny_series_by_hand():
    # period-2 pattern with a step: naive repeats the last value, seasonal naive last season
    values = [0, 1] * 10 + [5, 6, 5, 6]
    data = ForecastData(toy_series(values, (16, 20, 24), test_windows="one"), lookback=4,
                        horizon=4, features="S")
    baselines = data.baselines()
    # test truth 5, 6, 5, 6; history ends ..., 0, 1 -> naive 1,1,1,1; seasonal 0,1,0,1
    assert baselines["naive"]["mae"] == pytest.approx((4 + 5 + 4 + 5) / 4)
    assert baselines["seasonal_naive"]["mae"] == pytest.approx(5.0)
    assert baselines["seasonal_naive"]["mape"] == pytest.approx(100 * (5 / 5 + 5 / 6) / 2)


def test_windows_that_do_not_fit_are_a_clear_error():
    with pytest.raises(SeqbenchError, match="lookback 30 \\+ horizon 12 do not fit"):
        ForecastData(toy_series(np.arange(50.0), (35, 42, 50)), lookback=30, horizon=12,
                     features="S")


@pytest.mark.parametrize("season", [140, 150, 1000])
def test_a_season_with_no_seasonal_difference_in_training_is_refused(season):
    """Once NaN MASE scales silently became 1.0 and seasonal naive read wrapped indices."""
    with pytest.raises(SeqbenchError, match=f"season {season} leaves no seasonal difference "
                                            "in the 140 training values"):
        ForecastData(toy_series(np.full(200, 5.0), (140, 160, 200), season=season),
                     lookback=12, horizon=4, features="S")


def test_the_longest_season_allowed_scores_with_its_one_seasonal_difference():
    data = ForecastData(toy_series(np.arange(200.0), (140, 160, 200), season=139),
                        lookback=12, horizon=4, features="S")
    assert data.mase_scales["valid"].tolist() == [139.0]  # |139 - 0|, the one difference
    assert all(np.isfinite(m["mase"]) for m in data.baselines().values())


def test_only_a_flat_history_falls_back_to_a_mase_scale_of_one():
    assert seasonal_scale(np.full((6, 1), 3.0), 2).tolist() == [1.0]
    with pytest.warns(RuntimeWarning):  # no seasonal difference: NaN, never a quiet 1.0
        assert np.isnan(seasonal_scale(np.ones((2, 1)), 2)).all()


def write_csv(path: Path, rows) -> Path:
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.mark.parametrize(
    ("rows", "target", "message"),
    [
        ([["t", "a"], ["1", "2"], ["2", ""]], "a", "line 3: a missing or NaN value in column "
                                                  "'a'"),
        ([["t", "a"], ["1", "2"], ["2", "nan"]], "a", "missing or NaN value"),
        ([["t", "a"], ["1", "2"]], "b", "unknown target column 'b' in '.*data.csv'; columns: a"),
        ([["t", "a"], ["1949-05", "1"], ["1949-03", "2"]], "a",
         "line 3: time '1949-03' is not after '1949-05' on line 2; sort the file by time"),
        ([["t", "a"], ["1", "1"], ["2", "2"], ["2", "3"]], "a",
         "line 4: time '2' is not after '2' on line 3; keep one row per time step"),
        ([["t", "a", "a"], ["1", "2", "3"]], "a", "line 1: column 'a' appears twice"),
        ([["t", "a"], ["1", "2"], ["2", "1e308"]], "a",
         "line 3, column 'a': value 1e\\+308 is too large for 32-bit floats"),
        ([["t\ta"], ["1\t2"]], "a", "the header looks tab-separated; seqbench reads "
                                     "comma-separated files"),
        ([["t;a"], ["1;2"]], "a", "looks semicolon-separated"),
        ([["a"], ["1"], ["2"]], "a", "has one column, 'a'; the first column labels time"),
    ],
    ids=["empty", "nan", "unknown-target", "unsorted", "duplicate-time", "duplicate-column",
         "beyond-float32", "tab-separated", "semicolon-separated", "one-column"],
)
def test_bad_user_csvs_are_one_line_errors(tmp_path, rows, target, message):
    path = write_csv(tmp_path / "data.csv", rows)
    with pytest.raises(SeqbenchError, match=message):
        load_series("csv", DataContext(tmp_path, tmp_path), target, str(path), 1)


def test_a_bom_and_blank_lines_read_like_the_plain_file(tmp_path):
    rows = "t,a\n1949-01,1\n1949-02,2\n1949-03,3\n"
    plain = tmp_path / "plain.csv"
    plain.write_text(rows)
    excel = tmp_path / "excel.csv"  # Excel's "CSV UTF-8": a BOM; editors leave blank lines
    excel.write_bytes(b"\xef\xbb\xbf" + rows.replace("2\n", "2\n\n").encode() + b"\n \n\n")
    context = DataContext(tmp_path, tmp_path)
    read = [load_series("csv", context, "a", str(p), 1) for p in (plain, excel)]
    assert read[1].columns == read[0].columns == ["a"]
    assert read[1].dates == read[0].dates == ["1949-01", "1949-02", "1949-03"]
    assert read[1].values.tolist() == read[0].values.tolist() == [[1.0], [2.0], [3.0]]


def test_time_labels_that_are_neither_numbers_nor_dates_keep_file_order(tmp_path):
    path = write_csv(tmp_path / "weeks.csv", [["t", "a"], ["week b", "1"], ["week a", "2"]])
    series = load_series("csv", DataContext(tmp_path, tmp_path), "a", str(path), 1)
    assert series.dates == ["week b", "week a"] and series.values[:, 0].tolist() == [1.0, 2.0]


def test_the_linear_baseline_fits_a_constant_series_without_linalg_errors():
    """A constant series makes the least-squares design rank-deficient; lstsq copes."""
    data = ForecastData(toy_series([7.0] * 40, (28, 34, 40)), lookback=4, horizon=2,
                        features="S")
    assert data.baselines()["linear"]["mse"] == pytest.approx(0.0, abs=1e-9)


def test_a_too_long_horizon_on_the_cli_is_exit_2(capsys, tmp_path):
    code = main(["run", "--cell", "gru", "--task", "forecasting", "--set", "horizon=200",
                 "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "do not fit" in err and len(err.strip().splitlines()) == 1


def test_a_season_longer_than_the_training_rows_on_the_cli_is_exit_2(capsys, tmp_path):
    path = write_csv(tmp_path / "const.csv", [["date", "target"], *[[t, 5] for t in range(200)]])
    code = main(["run", "--cell", "gru", "--task", "forecasting", "--dataset", "csv", "--set",
                 f"path={path}", "--set", "target=target", "--set", "season=150",
                 "--output-dir", str(tmp_path / "runs")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: '{path}': season 150 leaves no seasonal difference"), lines
    assert not (tmp_path / "runs").exists()


def test_airline_end_to_end_forecasts_twelve_future_months_with_intervals(tmp_path, capsys):
    """Issue 40's acceptance: `generate --horizon 12` on airline writes the 12 months after
    the data with prediction intervals and a dated plot; the run itself scores every
    baseline and plots the test period."""
    import seqbench as sb

    code = main(["run", "--cell", "gru", "--task", "forecasting", "--epochs", "3",
                 "--output-dir", str(tmp_path / "runs"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["primary_metric"] == "test_mase"
    assert metrics["baselines"]["seasonal_naive"]["test_mape"] == pytest.approx(13.19, abs=0.01)
    assert set(metrics["baselines"]) == BASELINES
    assert (run_dir / "forecast.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["generate", str(run_dir), "--horizon", "12", "--set", "samples=20",
                 "--output", str(tmp_path / "future")]) == 0
    paths = {Path(p).name: Path(p) for p in capsys.readouterr().out.split()}
    assert set(paths) == {"future.csv", "future.json", "future.png"}
    rows = list(csv.DictReader(open(paths["future.csv"])))
    assert [r["time"] for r in rows] == [f"1961-{m:02d}" for m in range(1, 13)]
    for row in rows:
        assert float(row["lower_95"]) < float(row["forecast"]) < float(row["upper_95"])
    said = json.loads(paths["future.json"].read_text())
    assert said["intervals"]["samples"] == 20 and "MC dropout" in said["intervals"]["method"]
    assert 0 <= said["coverage_on_test"] <= 1 and paths["future.png"].stat().st_size > 0
    frame = sb.load(run_dir).forecast(12, samples=20)  # the same from Python
    assert frame["time"].tolist() == [r["time"] for r in rows]
    assert frame["forecast"].round(4).tolist() == [float(r["forecast"]) for r in rows]
    assert main(["generate", str(run_dir), "--output", str(tmp_path / "test")]) == 0
    paths = [Path(p) for p in capsys.readouterr().out.split()]
    rows = list(csv.reader(open(paths[0])))
    assert rows[0] == ["series", "time", "true", "forecast", "lower_95", "upper_95"]
    assert len(rows) == 37 and rows[1][:2] == ["passengers", "1958-01"]


def test_a_forecast_longer_than_the_models_horizon_is_refused_before_any_work():
    data = ForecastData(toy_series(np.arange(60.0), (40, 50, 60)), lookback=6, horizon=3,
                        features="S")
    with pytest.raises(SeqbenchError, match="forecasts 3 steps at once .* horizon=4"):
        forecast_windows(data, None, "future", steps=4)  # the model is never touched


@pytest.mark.realdata
@pytest.mark.parametrize("dataset", ["etth1", "etth2"])
def test_ett_follows_informers_borders(real_data_dir, tmp_path, dataset):
    series = load_series(dataset, DataContext(real_data_dir, tmp_path), "", "", 1)
    data = ForecastData(series, lookback=96, horizon=24, features="S")
    assert data.split_sizes() == {"train": 8640 - 96 - 24 + 1, "valid": 2880 - 24 + 1,
                                  "test": 2880 - 24 + 1}
    assert data.input_size == 1 and series.target == "OT"
    multi = ForecastData(series, lookback=96, horizon=24, features="M")
    assert multi.input_size == 7 and len(multi.outputs) == 7


def test_lynx_ships_with_aeon_and_shows_in_seqbench_data(capsys):
    """The aeon-file kind end to end: read offline, split 70/10/20, every baseline."""
    import seqbench as sb

    data = sb.data("forecasting", "lynx").data
    assert data.source().items == {"train": ["1821..1899"], "valid": ["1900..1911"],
                                   "test": ["1912..1934"]}
    assert data.split_sizes() == {"train": 55, "valid": 8, "test": 19}  # look-back 20, h 5
    assert main(["data", "--task", "forecasting", "--dataset", "lynx"]) == 0
    out = capsys.readouterr().out
    for name in BASELINES:
        assert f"baseline {name} on test:" in out, out


def test_a_csv_with_one_value_column_needs_no_target(tmp_path):
    context = DataContext(tmp_path, tmp_path)
    one = write_csv(tmp_path / "one.csv", [["month", "sales"], ["2001-01", "3"], ["2001-02", "4"]])
    assert load_series("csv", context, "", str(one), 1).target == "sales"
    two = write_csv(tmp_path / "two.csv", [["month", "sales", "price"], ["2001-01", "3", "1"]])
    with pytest.raises(SeqbenchError, match="has 2 value columns \\(sales, price\\); say which "
                                            "to forecast with --set target=COLUMN"):
        load_series("csv", context, "", str(two), 1)
