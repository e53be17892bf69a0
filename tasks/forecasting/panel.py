"""Many series, one global model: M1 yearly from aeon, or your long CSV with an id column.

The M competitions' protocol: the last `horizon` values of every series are its test
period and the `horizon` before them its validation period; one model is trained on the
windows of all series (a global model, as N-BEATS and DeepAR are), and the errors are
averaged over series, each series scaled by its own training statistics and MASE scaled by
its own in-sample naive error, so a series in millions does not outweigh one in units.
Every series has exactly one validation and one test forecast of `horizon` steps, so the
mean over all forecast values is the mean over series of each series' error.

Short series (M1 yearly has 15 to 58 values) are padded on the left with their first value
so that a look-back window fits; a training window needs one real value before its first
target.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from seqbench import DataContext, SeqbenchError, cached, content_key, sha256_of
from seqbench.userdata import (
    UserSource,
    check_time_order,
    is_number,
    read_csv_rows,
    read_long_table,
    refuse_float32_overflow,
    user_path,
)
from seqbench_tasks.forecasting.metrics import check_season, seasonal_scale
from seqbench_tasks.forecasting.series import only_column
from seqbench_tasks.forecasting.task import ForecastData

SPLITS = ("train", "valid", "test")
#: Bump when the reading changes so stale caches are rebuilt.
PANEL_VERSION = 2


@dataclass
class Panel:
    """Target values of many series (each `[T_i]`), with their ids and time labels, and
    covariate columns (each `[T_i, k]`) of which the `future` ones are known ahead."""

    name: str
    ids: list[str]
    values: list[np.ndarray]
    times: list[list[str]]
    season: int
    covariates: tuple[str, ...] = ()
    future: tuple[str, ...] = ()
    extra: list[np.ndarray] = field(default_factory=list)


def m1_yearly_file() -> Path:
    """Where aeon keeps its copy of M1 yearly (Monash forecasting archive format)."""
    spec = importlib.util.find_spec("aeon")
    return Path(spec.origin).parent / "datasets" / "data" / "m1_yearly_dataset" / \
        "m1_yearly_dataset.tsf"


def load_m1_yearly(path: Path) -> Panel:
    """The 181 yearly series of the M1 competition (Makridakis et al. 1982), from the copy
    aeon ships."""
    from aeon.datasets import load_from_tsf_file

    frame, _ = load_from_tsf_file(str(path))
    values = [np.asarray(v, dtype=np.float64) for v in frame["series_value"]]
    starts = [int(str(t)[:4]) for t in frame["start_timestamp"]]
    times = [[str(start + i) for i in range(len(v))] for start, v in zip(starts, values)]
    return Panel("m1-yearly", [str(n) for n in frame["series_name"]], values, times, season=1)


def read_long_series(path: Path, id_column: str, target: str, season: int,
                     covariates: tuple[str, ...] = (), future: tuple[str, ...] = ()) -> Panel:
    """A long CSV: one row per time step of one series; the first column labels the time,
    `id_column` names the series, `target` holds the value and `covariates` name exogenous
    columns. Rows of a series in file order, their time labels strictly increasing where
    they are numbers or dates (`check_time_order`, per series). Without a `target`, the
    one numeric column besides the time, the id and the covariates is the target."""
    target = target or value_column(path, {id_column, *covariates})
    _, (where, *numeric), body = read_long_table(path, [
        ("id", id_column), ("target", target), *(("covariates", c) for c in covariates)])
    names = (target, *covariates)
    series: dict[str, tuple[list[str], list[int], list[list[float]]]] = {}
    for line, row in body:
        try:
            values = [float(row[i]) for i in numeric]
        except ValueError:
            bad = next(n for n, i in zip(names, numeric) if not is_number(row[i]))
            raise SeqbenchError(f"'{path}' line {line}: '{bad}' is not a number "
                                f"('{row[numeric[names.index(bad)]]}').") from None
        if not np.isfinite(values).all():
            bad = names[int(np.flatnonzero(~np.isfinite(values))[0])]
            raise SeqbenchError(f"'{path}' line {line}: '{bad}' is "
                                f"{row[numeric[names.index(bad)]]}; fill or drop it.")
        times, lines, rows = series.setdefault(row[where].strip(), ([], [], []))
        times.append(row[0])
        lines.append(line)
        rows.append(values)
    for times, lines, rows in series.values():  # one pass per series, not one per row
        refuse_float32_overflow(rows, lambda at: f"'{path}' line {lines[at[0]]}, column "
                                                 f"'{names[at[1]]}'")
        check_time_order(path, times, lines)
    ids = list(series)
    table = [np.asarray(series[i][2]) for i in ids]
    return Panel(f"'{path}'", ids, [t[:, 0] for t in table], [series[i][0] for i in ids], season,
                 covariates, future, [t[:, 1:] for t in table])


def value_column(path: Path, roles: set[str]) -> str:
    """The one column of numbers that is neither the time (the first) nor in `roles`."""
    header, body = read_csv_rows(path)
    return only_column(path, [name for at, name in enumerate(header) if at and name not in roles
                              and all(is_number(row[at]) for _, row in body)])


def load_panel(dataset: str, params: Mapping[str, Any], context: DataContext) -> Panel:
    """M1 yearly, or the user's long CSV (`path` or its alias `csv`, `id`, `target`), parsed
    once and then read from a cache keyed by the file's content and the options."""
    if dataset == "m1-yearly":
        path = m1_yearly_file()
        key = content_key("m1-yearly", PANEL_VERSION, sha256_of(path))
        return cached(context.cache_dir / f"m1-yearly-{key}.pkl", lambda: load_m1_yearly(path))
    if params["path"] and params["csv"] and params["path"] != params["csv"]:
        raise SeqbenchError("path and csv name the same file; give one of them.")
    path = user_path(params["path"] or params["csv"], "csv", "a CSV file", folder=False)
    covariates, future = (tuple(c.strip() for c in params[k].split(",") if c.strip())
                          for k in ("covariates", "future_covariates"))
    unknown = [c for c in future if c not in covariates]
    if unknown:
        raise SeqbenchError(f"future_covariates names '{unknown[0]}', which is not among "
                            f"covariates={params['covariates']}; list it there too.")
    options = (params["id"], params["target"], params["season"], covariates, future)
    key = content_key("panel", PANEL_VERSION, sha256_of(path), options)
    panel = cached(context.cache_dir / f"panel-{key}.pkl", lambda: read_long_series(path, *options))
    return replace(panel, name=f"'{path}'")  # the same content may come under another name


class PanelData(ForecastData):
    """Windows over every series of a panel, each scaled by its own training statistics.

    Reuses the single-series normalisation, model, head, loss, metrics and baselines; what
    differs is that mean, scale and MASE denominator travel with each window instead of
    being one per run, and that the windows are read from each series' padded values.
    """

    def __init__(self, panel: Panel, lookback: int, horizon: int, primary: str = "mase",
                 norm: str = "revin", cache_dir: Path | None = None) -> None:
        self.panel, self.lookback, self.horizon, self.primary = panel, lookback, horizon, primary
        self.norm, self.cache_dir, self.season = norm, cache_dir, panel.season
        self.name = panel.name
        self.report_standardized = False
        self.inputs = self.outputs = self._out_in_inputs = [0]
        self.future_columns = [panel.covariates.index(c) for c in panel.future]
        # target, covariates, and a "this step is in the future" flag when some are known ahead
        self.input_size = 1 + len(panel.covariates) + bool(self.future_columns)
        short = [(key, len(v)) for key, v in zip(panel.ids, panel.values)
                 if len(v) < 2 * horizon + 2]
        if short:
            raise SeqbenchError(
                f"{panel.name}: series '{short[0][0]}' has {short[0][1]} "
                f"values; with horizon {horizon} each series needs {2 * horizon + 2} (test, "
                f"validation and two training values). {len(short)} series are that short; "
                "drop them or shorten the horizon.")
        self.padded, self.scale, self.padded_extra = [], [], []
        starts: dict[str, list[tuple[int, int]]] = {split: [] for split in SPLITS}
        for index, values in enumerate(panel.values):
            valid_start, test_start = len(values) - 2 * horizon, len(values) - horizon
            check_season(panel.season, valid_start, f"{panel.name}: series '{panel.ids[index]}'")
            train = values[:valid_start]
            mean, std = train.mean(), train.std()
            std = std if std > 0 else 1.0
            z = (values - mean) / std
            self.padded.append(np.concatenate([np.full(lookback, z[0]), z]))
            if panel.covariates:
                extra = panel.extra[index]
                spread = extra[:valid_start].std(0)
                extra = (extra - extra[:valid_start].mean(0)) / np.where(spread > 0, spread, 1)
                self.padded_extra.append(np.concatenate([np.repeat(extra[:1], lookback, 0),
                                                         extra]))
            self.scale.append((mean, std, {
                "train": seasonal_scale(values[:valid_start, None], panel.season)[0],
                "valid": seasonal_scale(values[:valid_start, None], panel.season)[0],
                "test": seasonal_scale(values[:test_start, None], panel.season)[0]}))
            starts["train"] += [(index, t) for t in range(1, valid_start - horizon + 1)]
            starts["valid"].append((index, valid_start))
            starts["test"].append((index, test_start))
        self.starts = {split: np.asarray(pairs).reshape(-1, 2) for split, pairs in starts.items()}
        if not len(self.starts["train"]):
            raise SeqbenchError(f"{panel.name}: no series is long enough for a training window "
                                f"(each needs {3 * horizon + 1} values); shorten the horizon.")
        self.split = UserSource(
            {split: [f"{key}: {times[a]}..{times[b - 1]}" for key, times, (a, b) in zip(
                panel.ids, panel.times, spans)] for split, spans in self.spans().items()},
            f"last {horizon} values of each series test, the {horizon} before them validation, "
            "the rest training",
            notes=(f"covariates: {', '.join(panel.covariates)} (past values; known ahead: "
                   f"{', '.join(panel.future) or 'none'})",) if panel.covariates else ())

    def spans(self) -> dict[str, list[tuple[int, int]]]:
        """Each series' rows `[a, b)` in every split."""
        h = self.horizon
        ends = [len(v) for v in self.panel.values]
        return {"train": [(0, n - 2 * h) for n in ends],
                "valid": [(n - 2 * h, n - h) for n in ends], "test": [(n - h, n) for n in ends]}

    def history(self, starts: np.ndarray, steps: int) -> np.ndarray:
        """The `steps` values before each `(series, origin)` (left-padded), `[N, steps, 1]`."""
        at = self.lookback
        return np.stack([self.padded[s][at + t - steps : at + t] for s, t in starts])[:, :, None]

    def truth(self, starts: np.ndarray) -> np.ndarray:
        at = self.lookback
        return np.stack([self.padded[s][at + t : at + t + self.horizon]
                         for s, t in starts])[:, :, None]

    def model_inputs(self, starts: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The model's input: the normalised target windows `x`, beside the covariates' past
        values (standardised per series), then, when some covariates are known ahead,
        `horizon` more steps carrying only those, flagged as future."""
        if not self.padded_extra:
            return x
        past = np.stack([self.padded_extra[s][t : t + self.lookback] for s, t in starts])
        x = np.concatenate([x, past], axis=2)
        if not self.future_columns:
            return x
        if any(len(self.padded_extra[s]) < self.lookback + t + self.horizon for s, t in starts):
            raise SeqbenchError(
                f"this model reads the future values of {', '.join(self.panel.future)} "
                "(future_covariates), which the data does not have past its end; forecast "
                "with a model trained without future_covariates.")
        ahead = np.zeros((len(starts), self.horizon, self.input_size))
        ahead[:, :, 1 + np.array(self.future_columns)] = np.stack([
            self.padded_extra[s][self.lookback + t : self.lookback + t + self.horizon]
            for s, t in starts])[:, :, self.future_columns]
        ahead[:, :, -1] = 1.0
        return np.concatenate([np.concatenate([x, np.zeros(x.shape[:2] + (1,))], 2), ahead], 1)

    def scoring(self, split: str, starts: np.ndarray) -> dict[str, Any]:
        """Per-window mean, std and MASE scale as `[N, 1, 1]` tensors."""
        import torch

        columns = np.array([(self.scale[s][0], self.scale[s][1], self.scale[s][2][split])
                            for s, _ in starts]).reshape(-1, 3)
        return {name: torch.tensor(c, dtype=torch.float32).view(-1, 1, 1)
                for name, c in zip(("mean", "std", "mase_scale"), columns.T)}

    def fold(self, index: int, folds: int):
        raise SeqbenchError("rolling-origin folds need one series; a panel validates on the "
                            "last-but-one horizon of every series (leave folds=1).")

    def refit(self):
        raise SeqbenchError("a panel cannot train on its validation horizons yet (refit); "
                            "leave refit off.")

    def statistical_jobs(self, starts: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per window: its series' original values and its one origin."""
        return [(self.panel.values[s], np.array([t])) for s, t in starts]

    def from_original(self, starts: np.ndarray, forecasts: list[np.ndarray]) -> np.ndarray:
        return np.stack([(f[0] - self.scale[s][0]) / self.scale[s][1]
                         for f, (s, _) in zip(forecasts, starts)])[:, :, None]

    def origins(self, split: str) -> np.ndarray:
        """Every series' test origin, or (`"future"`) the end of every series."""
        if split == "future":
            return np.array([(s, len(v)) for s, v in enumerate(self.panel.values)])
        return self.starts["test"]

    def track(self, origin) -> tuple[str, list[str], np.ndarray, int]:
        series, row = origin
        return self.panel.ids[series], self.panel.times[series], self.panel.values[series], \
            int(row)

    def target_output(self) -> int:
        return 0

    def describe(self):
        lengths = [len(v) for v in self.panel.values]
        facts = self.split.facts()
        facts["notes"].append(f"{len(lengths)} series of {min(lengths)}-{max(lengths)} values; "
                              "items are windows (one validation and one test forecast of "
                              "every series)")
        return {"lengths": {"train": [n - 2 * self.horizon for n in lengths],
                            "valid": [self.horizon] * len(lengths),
                            "test": [self.horizon] * len(lengths)}, **facts}

    def artifacts(self, model, run_dir: Path) -> list[Path]:
        """`forecast.csv` and `forecast.png` (every series' test forecast), the split record."""
        from seqbench_tasks.forecasting.future import write_forecast

        return [*write_forecast(self, model, run_dir, "test"), *self.split.write(run_dir)]
