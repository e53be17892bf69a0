"""Forecasts a person reads: the test period replayed, or the steps past the end of the data,
with prediction intervals, as CSV, JSON and dated plots.

Intervals. A trained network gives one forecast; its uncertainty is estimated as Zhu &
Laptev (2017, Uber) do for recurrent forecasters: the *model* spread from Monte Carlo
dropout (Gal & Ghahramani 2016: the head's dropout, and a cell's own between layers, kept
on at prediction time; `samples` forward passes, 100 by default), plus the *inherent
noise*, the mean squared error of the model on the validation windows at each step of the
horizon (dropout alone covers only what the weights do not know, and gives intervals far
too narrow). Both are measured in each window's normalised units and scaled back with the
window's scale, so an interval widens with the series' level and swing. The interval is
the forecast plus and minus the normal quantile of `level` times the square root of their
sum. The coverage this reaches on the test period is written beside every forecast
(`coverage_on_test`), so a reader sees whether the intervals can be trusted.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqbench import SeqbenchError
from seqbench.userdata import time_keys

#: Forward passes per chunk of MC dropout samples (windows x samples), to bound memory.
CHUNK = 20_000
#: Series drawn in one plot of a panel (the CSV has every series).
GRID = 16
#: Time formats a forecast's labels are written back in, tried on the data's last label.
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d",
                "%Y-%m", "%Y/%m/%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y")


@dataclass
class Forecast:
    """Forecast windows on the original scale, with their series and time labels."""

    names: list[str]  # per window: the series (or target column) it forecasts
    labels: list[list[str]]  # per window: the time label of each step
    point: np.ndarray  # [N, H]
    lower: np.ndarray
    upper: np.ndarray
    truth: np.ndarray | None  # [N, H], None past the end of the data
    level: float
    method: dict[str, Any]

    def rows(self) -> list[list[Any]]:
        """One CSV row per window and step."""
        rows = []
        for i, (name, labels) in enumerate(zip(self.names, self.labels)):
            for h, label in enumerate(labels):
                truth = [] if self.truth is None else [round(float(self.truth[i, h]), 4)]
                rows.append([name, label, *truth, *(round(float(a[i, h]), 4) for a in
                                                     (self.point, self.lower, self.upper))])
        return rows

    def header(self) -> list[str]:
        level = f"{self.level:g}"
        return ["series", "time", *([] if self.truth is None else ["true"]), "forecast",
                f"lower_{level}", f"upper_{level}"]


def future_labels(labels: list[str], steps: int) -> list[str]:
    """The `steps` time labels after the last: dates continued at the data's frequency and
    written as the data writes them, numbers (years, indices) continued at their last step,
    anything else counted on (`+1`, `+2`, ...)."""
    import pandas as pd

    keys = time_keys(labels) if len(labels) >= 2 else None
    if keys is None:
        return [f"+{i}" for i in range(1, steps + 1)]
    if keys.dtype.kind == "f":
        values = keys[-1] + (keys[-1] - keys[-2]) * np.arange(1, steps + 1)
        whole = all(label.strip().lstrip("-").isdigit() for label in labels[-2:])
        return [str(int(round(v))) if whole else f"{v:g}" for v in values]
    dates = pd.DatetimeIndex(keys)
    frequency = pd.infer_freq(dates[-50:]) if len(dates) >= 3 else None
    ahead = pd.date_range(dates[-1], periods=steps + 1, freq=frequency)[1:] if frequency else \
        dates[-1] + (dates[-1] - dates[-2]) * np.arange(1, steps + 1)
    last, label = dates[-1], labels[-1].strip()
    written = next((f for f in DATE_FORMATS if last.strftime(f) == label), None)
    if written:
        return [d.strftime(written) for d in ahead]
    if label.replace(" ", "") == f"{last.year}Q{last.quarter}":
        return [f"{d.year}Q{d.quarter}" for d in ahead]
    return [d.isoformat() for d in ahead]


def _dropout_modules(model) -> list:
    """The modules whose dropout MC sampling turns on: dropout layers and recurrent layers
    that drop between stacked layers (a cell's own)."""
    from torch import nn

    return [m for m in model.modules()
            if (isinstance(m, (nn.Dropout, nn.Dropout1d, nn.AlphaDropout)) and m.p > 0)
            or (isinstance(m, nn.RNNBase) and m.dropout > 0)]


def _run(model, inputs: np.ndarray) -> np.ndarray:
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        return model(torch.tensor(inputs, dtype=torch.float32, device=device))[0].cpu().numpy()


def mc_dropout_variance(model, inputs: np.ndarray, samples: int, seed: int = 0) -> np.ndarray:
    """Variance over `samples` MC dropout forward passes of each output `[N, H, C]` (zero
    where the model has no dropout). Seeded, and leaves the global RNG untouched."""
    import torch

    modules = _dropout_modules(model)
    if not modules:
        return np.zeros_like(_run(model, inputs))
    per_chunk = max(1, CHUNK // len(inputs))
    outputs = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in modules:
            module.train()
        try:
            for done in range(0, samples, per_chunk):
                count = min(per_chunk, samples - done)
                drawn = _run(model, np.concatenate([inputs] * count))
                outputs.append(drawn.reshape(count, len(inputs), *drawn.shape[1:]))
        finally:
            for module in modules:
                module.eval()
    return np.concatenate(outputs).var(axis=0)


def validation_noise(data, model) -> np.ndarray:
    """Mean squared error `[H, C]` of the model on the validation windows at each step of the
    horizon, in the windows' normalised units (the inherent noise of Zhu & Laptev)."""
    starts = data.starts["valid"]
    inputs, level, scale = data.encode(starts)
    residual = (data.truth(starts) - level) / scale - _run(model, inputs)
    return (residual ** 2).mean(axis=0)


def forecast_windows(data, model, split: str, samples: int = 100, level: float = 95.0,
                     steps: int | None = None) -> Forecast:
    """The forecasts from `data.origins(split)` ("test" or "future") of the target, with
    their `level`% intervals, on the original scale; `steps` keeps the first steps only."""
    from scipy.stats import norm

    steps = steps or data.horizon
    if steps > data.horizon:
        raise SeqbenchError(f"this model forecasts {data.horizon} steps at once (direct "
                            f"multi-horizon); for {steps}, train one with --set "
                            f"horizon={steps}.")
    origins = data.origins(split)
    inputs, window_level, scale = data.encode(origins)
    spread = mc_dropout_variance(model, inputs, samples) + validation_noise(data, model)
    point = _run(model, inputs) * scale + window_level
    half = norm.ppf(0.5 + level / 200) * np.sqrt(spread) * scale
    constants = {k: np.asarray(v) for k, v in data.scoring("test", origins).items()}
    column = data.target_output()

    def original(z: np.ndarray) -> np.ndarray:
        return (z * constants["std"] + constants["mean"])[:, :steps, column]

    tracks = [data.track(origin) for origin in origins]
    labels = [future_labels(times, steps) if split == "future" else times[row : row + steps]
              for _, times, _, row in tracks]
    dropout = sorted({float(getattr(m, "p", getattr(m, "dropout", 0))) for m in
                      _dropout_modules(model)})
    method = {"level": level, "samples": samples, "dropout": dropout,
              "method": "MC dropout spread (Gal & Ghahramani 2016) plus the validation "
                        "windows' squared error per step (Zhu & Laptev 2017)"}
    return Forecast([name for name, *_ in tracks], labels, original(point),
                    original(point - half), original(point + half),
                    None if split == "future" else original(data.truth(origins)), level, method)


def coverage_on_test(data, model, samples: int, level: float) -> float:
    """Share of the test period's true values inside the intervals."""
    test = forecast_windows(data, model, "test", samples, level)
    return float(((test.truth >= test.lower) & (test.truth <= test.upper)).mean())


def future_frame(data, model, horizon: int, samples: int = 100, level: float = 95.0):
    """`Run.forecast(n)`: the next `horizon` steps of every series as a DataFrame (series,
    time, forecast, lower, upper), with the interval method in `.attrs`."""
    import pandas as pd

    if not horizon:
        raise SeqbenchError("forecast(n) needs n >= 1 steps past the end of the data.")
    forecast = forecast_windows(data, model, "future", samples, level, horizon)
    frame = pd.DataFrame(forecast.rows(), columns=forecast.header())
    frame.attrs.update(forecast.method, coverage_on_test=coverage_on_test(data, model, samples,
                                                                        level))
    return frame


def write_forecast(data, model, out_dir: Path, split: str, horizon: int = 0,
                   samples: int = 100, level: float = 95.0) -> list[Path]:
    """`forecast.csv|.json|.png` (the test period) or `future.csv|.json|.png` (`horizon`
    steps past the end): every series' forecasts with intervals, how the intervals were
    made and what they covered on the test period, and a plot with dates on its axis."""
    forecast = forecast_windows(data, model, split, samples, level, horizon or None)
    stem = "future" if split == "future" else "forecast"
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.json"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(forecast.header())
        writer.writerows(forecast.rows())
    coverage = coverage_on_test(data, model, samples, level) if split == "future" else float(
        ((forecast.truth >= forecast.lower) & (forecast.truth <= forecast.upper)).mean())
    json_path.write_text(json.dumps({"intervals": forecast.method,
                                     "coverage_on_test": round(coverage, 4)}, indent=1) + "\n")
    return [csv_path, json_path, plot(data, forecast, out_dir / f"{stem}.png")]


def _axis(labels: list[str]) -> np.ndarray:
    """Plot positions of time labels: dates or numbers where they parse, else positions."""
    keys = time_keys(labels)
    return np.arange(len(labels)) if keys is None else keys


def plot(data, forecast: Forecast, path: Path) -> Path:
    """History, truth, forecast and interval band, one panel per series (a grid of at most
    `GRID` for many series), with the data's dates on the time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_series: dict[str, list[int]] = {}
    for i, name in enumerate(forecast.names):
        by_series.setdefault(name, []).append(i)
    shown = list(by_series)[:GRID]
    columns = min(4, len(shown))
    rows = -(-len(shown) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(9 if columns == 1 else 3.2 * columns,
                                                     3.5 if rows == 1 else 2.6 * rows),
                             squeeze=False)
    origins = data.origins("future" if forecast.truth is None else "test")
    for ax, name in zip(axes.flat, shown):
        windows = by_series[name]
        _, times, values, row = data.track(origins[windows[0]])
        span = sum(len(forecast.labels[i]) for i in windows)
        begin = max(0, row - 3 * span)
        labels = [*times[begin:row], *(label for i in windows for label in forecast.labels[i])]
        x = _axis(labels)
        past, ahead = x[: row - begin], x[row - begin :]
        ax.plot(past, values[begin:row], color="gray", label="history")
        pick = np.concatenate
        if forecast.truth is not None:
            ax.plot(ahead, pick([forecast.truth[i] for i in windows]), color="black",
                    label="truth")
        ax.fill_between(ahead, pick([forecast.lower[i] for i in windows]),
                        pick([forecast.upper[i] for i in windows]), color="C1", alpha=0.25,
                        label=f"{forecast.level:g}% interval")
        ax.plot(ahead, pick([forecast.point[i] for i in windows]), color="C1",
                label="forecast")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        for label in ax.get_xticklabels():
            label.set_rotation(30)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    what = "past the end of the data" if forecast.truth is None else "over the test period"
    extra = f"; {len(shown)} of {len(by_series)} series, the CSV has all" \
        if len(by_series) > len(shown) else ""
    fig.suptitle(f"{data.name}: forecasts {what}{extra}\n{forecast.level:g}% intervals: "
                 f"MC dropout ({forecast.method['samples']} samples) + validation error",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
