"""Forecasting past the end of the data: time labels, MC dropout intervals, panels, and
the normalisation every cell's windows go through."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from seqbench.cli import main
from seqbench_tasks.forecasting.future import (
    _axis,
    future_labels,
    mc_dropout_variance,
    validation_noise,
)
from seqbench_tasks.forecasting.head import HorizonHead
from seqbench_tasks.forecasting.normalize import window_statistics
from seqbench_tasks.forecasting.series import Series
from seqbench_tasks.forecasting.task import ForecastData


def series(values, borders, season=1) -> Series:
    values = np.asarray(values, dtype=float).reshape(-1, 1)
    return Series("toy", values, ["y"], "y", borders, season=season,
                  dates=[str(i) for i in range(len(values))], report_scale="original",
                  test_windows="sliding")


@pytest.mark.parametrize(("labels", "expected"), [
    (["1960-10", "1960-11", "1960-12"], ["1961-01", "1961-02"]),
    (["2018-06-26 17:00:00", "2018-06-26 18:00:00", "2018-06-26 19:00:00"],
     ["2018-06-26 20:00:00", "2018-06-26 21:00:00"]),
    (["1932", "1933", "1934"], ["1935", "1936"]),
    (["2016Q1", "2016Q2", "2016Q3"], ["2016Q4", "2017Q1"]),
    (["2021-01-29", "2021-02-01", "2021-02-02", "2021-02-03"], ["2021-02-04", "2021-02-05"]),
    (["0.5", "1.0"], ["1.5", "2"]),
    (["week a", "week b"], ["+1", "+2"]),
], ids=["months", "hours", "years", "quarters", "days", "numbers", "other"])
def test_future_time_labels_continue_the_datas_own(labels, expected):
    assert future_labels(labels, 2) == expected


def test_plots_put_dates_on_the_time_axis_where_the_labels_are_dates():
    assert _axis(["1960-12", "1961-01"]).dtype.kind == "M"
    assert _axis(["1933", "1934"]).tolist() == [1933.0, 1934.0]
    assert _axis(["a", "b"]).tolist() == [0, 1]


def test_revin_normalises_each_window_over_its_whole_seasons_and_last_is_nlinear():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0]).reshape(1, 5, 1)
    level, scale = window_statistics(x, "revin", 2)  # the last 4 steps: two whole seasons
    assert level.item() == 3.5 and scale.item() == pytest.approx(np.sqrt(1.25 + 1e-5))
    level, scale = window_statistics(x, "revin", 1)
    assert level.item() == 3.0
    level, scale = window_statistics(x, "last", 2)
    assert (level.item(), scale.item()) == (5.0, 1.0)


def test_sweeps_choose_the_normalisation_on_validation_revin_first():
    from seqbench.sweeps import space

    norm = space.tunable("forecasting", "gru", "airline")["task.norm"]
    assert norm.default == "revin" and norm.search_choices == ("revin", "last")


def test_a_record_from_before_revin_re_runs_as_it_was_trained_and_new_specs_get_revin():
    """A published final (no norm, no head_dropout in its spec) means last-value windows and
    no head dropout, so `run --spec` reproduces it and a sweep's cache never takes it for a
    RevIN run; a spec made now keeps RevIN and round-trips unchanged."""
    from seqbench.config import RunSpec, build_spec
    from seqbench.runs import read_run_config

    record = Path(__file__).parents[1] / "results/finals/airline/forecasting-airline/gru/seed1000"
    stored = read_run_config(record / "config.json")["spec"]
    assert "norm" not in stored["task_params"]
    old = RunSpec.from_dict(stored)
    assert (old.task_params["norm"], old.task_params["head_dropout"]) == ("last", 0.0)
    assert {key: old.hparams[key] for key in stored["hparams"]} == stored["hparams"]
    new = build_spec("forecasting", "gru", "airline", dict(old.hparams), seed=1000)
    assert (new.task_params["norm"], new.task_params["head_dropout"]) == ("revin", 0.1)
    assert new != old and RunSpec.from_dict(new.to_dict()) == new


def test_a_window_and_a_shifted_rescaled_copy_look_the_same_to_the_cell():
    """RevIN's point: a window of a grown series (10x the swing, +5) reads as the same input,
    and the same output maps back onto each window's own level and scale."""
    pattern = np.sin(np.arange(8) / 8 * 2 * np.pi) + np.arange(8) / 4
    values = np.concatenate([np.tile(pattern, 5), 10 * np.tile(pattern, 5) + 5])
    data = ForecastData(series(values, (48, 64, 80), season=8), lookback=8, horizon=4,
                        features="S")
    inputs, level, scale = data.encode(np.array([16, 56]))
    assert np.allclose(inputs[0], inputs[1], atol=5e-3)  # up to RevIN's epsilon
    assert scale[1].item() == pytest.approx(10 * scale[0].item(), rel=1e-3)
    batch = data.collate("train", np.arange(4))
    perfect = (batch.targets - batch.extra["level"]) / batch.extra["scale"]
    assert data.loss(perfect, batch).item() == pytest.approx(0.0, abs=1e-10)


class Head(nn.Module):
    """A stand-in model: the horizon head on the input itself (`(predictions, state)`)."""

    def __init__(self, channels: int, horizon: int, dropout: float) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head = HorizonHead(channels, horizon, 1, dropout)

    def forward(self, inputs):
        return self.head(inputs), None


def test_mc_dropout_spread_is_seeded_zero_without_dropout_and_leaves_the_rng_alone():
    inputs = np.random.default_rng(0).normal(size=(5, 8, 3))
    assert not mc_dropout_variance(Head(3, 4, 0.0).eval(), inputs, 10).any()
    model = Head(3, 4, 0.5).eval()
    state = torch.get_rng_state()
    spread = mc_dropout_variance(model, inputs, 30)
    assert spread.shape == (5, 4, 1) and (spread > 0).all()
    assert torch.equal(torch.get_rng_state(), state)
    assert np.array_equal(spread, mc_dropout_variance(model, inputs, 30))
    assert not model.head.dropout.training  # back in eval mode


def test_validation_noise_is_the_models_squared_error_per_step_in_window_units():
    values = np.sin(np.arange(60) / 3) * (1 + np.arange(60) / 30)
    data = ForecastData(series(values, (40, 50, 60)), lookback=6, horizon=3, features="S")

    class Zero(nn.Module):  # forecasts every window's level
        def __init__(self):
            super().__init__()
            self.unused = nn.Linear(1, 1)

        def forward(self, inputs):
            return torch.zeros(len(inputs), 3, 1), None

    starts = data.starts["valid"]
    _, level, scale = data.encode(starts)
    by_hand = (((data.truth(starts) - level) / scale) ** 2).mean(axis=0)
    assert np.allclose(validation_noise(data, Zero()), by_hand)


def test_a_many_series_csv_infers_its_target_and_forecasts_every_series(tmp_path, capsys):
    """A long CSV with one value column needs no target=; its run plots the test period of
    every series, and `generate --horizon` forecasts past the end of each."""
    rng = np.random.default_rng(0)
    lines = ["week,store,sales"]
    for store in range(3):
        lines += [f"{t},s{store},{10 * (store + 1) + 0.2 * t + rng.normal(0, 0.3):.3f}"
                  for t in range(30)]
    path = tmp_path / "sales.csv"
    path.write_text("\n".join(lines) + "\n")
    code = main(["run", "--cell", "gru", "--task", "forecasting", "--dataset", "csv",
                 "--epochs", "1", "--hidden-size", "4", "--quiet", "--output-dir",
                 str(tmp_path / "runs"), "--set", f"path={path}", "--set", "id=store",
                 "--set", "lookback=6", "--set", "horizon=3"])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "forecast.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["generate", str(run_dir), "--horizon", "2", "--set", "samples=5"]) == 0
    future = Path(capsys.readouterr().out.split()[0])
    rows = list(csv.DictReader(open(future)))
    assert [(r["series"], r["time"]) for r in rows] == [
        (s, t) for s in ("s0", "s1", "s2") for t in ("30", "31")]
    assert json.loads(future.with_suffix(".json").read_text())["intervals"]["samples"] == 5
