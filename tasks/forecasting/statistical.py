"""The forecasters' own baselines: ETS, Theta and AutoARIMA from `statsforecast`.

A recurrent cell is only worth training if it beats what a forecaster would fit first, so
every forecasting table carries statsforecast's AutoETS (Hyndman et al. 2002's state-space
ETS with automatic model selection), AutoTheta (Assimakopoulos & Nikolopoulos 2000, the
M3 winner, with Fiorucci et al.'s optimised variants) and AutoARIMA (Hyndman & Khandakar
2008), each scored on exactly the test windows the model is scored on.

How they are computed, per series and per output channel:

* **Fitted once, on the history before the test period** (the rows a model's training and
  validation windows see), at most its last `FIT_ROWS` values: fitting cost grows with
  length, and beyond a few thousand points these low-order models' parameters barely move
  (ETTh1: AutoARIMA on 11,520 hourly values takes 23 s, on 2,000 about 4 s).
* **One test window per series** (airline, M1 and users' panels): that fit forecasts it, so
  the baseline is fitted per window, as in the M competitions.
* **Sliding test windows** (ETTh1 has 2,857): refitting at every origin would cost hours, so
  the fitted model is rolled forward instead ("fixed-parameter rolling origin", Tashman
  2000): for each window its parameters run over the last `FORWARD_ROWS` (720, or ten
  seasons if longer) values before the origin (statsforecast's `forward`), which updates
  the state to the origin, and it forecasts from there. The stretch starts at a whole
  number of seasons from the fit's first value, so ETS's seasonal states keep their
  phase; statsforecast's own `cross_validation(refit=False, input_size=...)` does not,
  which is why this loop is written here.

AutoARIMA uses the Hannan-Rissanen/CSS approximation in the model search on long or
high-frequency series, as R's `auto.arima` does by default (`n > 150` or season > 12);
statsforecast defaults to the exact likelihood, which makes ETTh1's search minutes long.
A model that fails on a series (or returns a non-finite forecast) falls back to the naive
forecast there, and the baseline reports how many series did (`fallbacks`).
Results are cached by the series' content, so the cost is paid once per machine.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seqbench import cached, content_key

NAMES = ("ets", "theta", "auto_arima")
#: Longest history a model is fitted on (the most recent values before the test period).
FIT_ROWS = 2000
#: Shortest stretch a fitted model is rolled forward over to reach a later origin (ETTh1:
#: Theta's MSE is 0.0288 over 720 hourly values, 0.0311 over 240; 52 s against 40 s).
FORWARD_ROWS = 720
#: Bump when the computation changes, so cached forecasts are rebuilt.
VERSION = 1


def _models(season: int, fit_rows: int) -> dict:
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta

    return {"ets": AutoETS(season_length=season),
            "theta": AutoTheta(season_length=season),
            "auto_arima": AutoARIMA(season_length=season,
                                    approximation=fit_rows > 150 or season > 12)}


def _forward_start(origin: int, fit_start: int, season: int) -> int:
    """First row of the stretch a fitted model runs over to reach `origin`: at least
    `FORWARD_ROWS` (and ten seasons) back, a whole number of seasons after `fit_start`."""
    start = max(fit_start, origin - max(FORWARD_ROWS, 10 * season))
    return start - (start - fit_start) % season


def _one_series(values: np.ndarray, origins: np.ndarray, horizon: int,
                season: int) -> dict[str, tuple[np.ndarray, bool]]:
    """Each model's forecasts `[len(origins), horizon]` from every origin of one series,
    and whether it fell back to the naive forecast."""
    first = int(origins[0])
    fit_start = max(0, first - FIT_ROWS)
    history = values[fit_start:first]
    # Seasonal models need two full seasons of history; fewer, and they go without.
    period = season if len(history) >= 2 * season else 1
    naive = np.stack([np.full(horizon, values[o - 1]) for o in origins])
    out = {}
    for name, model in _models(period, len(history)).items():
        try:
            model.fit(history)
            forecasts = np.stack([
                model.predict(horizon)["mean"] if o == first else
                model.forward(values[_forward_start(o, fit_start, period):o], horizon)["mean"]
                for o in map(int, origins)])
            failed = not np.isfinite(forecasts).all()
        except Exception:  # noqa: BLE001 - any model failure is the documented fallback
            failed = True
        out[name] = (naive, True) if failed else (forecasts, False)
    return out


def _key(jobs: Sequence[tuple[np.ndarray, np.ndarray]], horizon: int, season: int) -> str:
    import statsforecast

    digest = hashlib.sha256()
    for values, origins in jobs:
        digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(origins, dtype=np.int64).tobytes())
        digest.update(b"|")
    return content_key("statsforecast", VERSION, statsforecast.__version__, FIT_ROWS,
                       FORWARD_ROWS, horizon, season, digest.hexdigest())


def statistical_forecasts(jobs: Sequence[tuple[np.ndarray, np.ndarray]], horizon: int,
                          season: int, cache_dir: Path | None = None
                          ) -> dict[str, tuple[list[np.ndarray], int]]:
    """For each model: the forecasts of every job (a series' original values and its
    ascending forecast origins, each forecast `[len(origins), horizon]`), and on how many
    series it fell back to naive. Cached in `cache_dir` when given."""
    def compute() -> dict[str, tuple[list[np.ndarray], int]]:
        with warnings.catch_warnings():  # statsforecast warns per fit about convergence
            warnings.simplefilter("ignore")
            per_job = [_one_series(np.asarray(v, dtype=np.float64), np.asarray(o), horizon,
                                   season) for v, o in jobs]
        return {name: ([job[name][0] for job in per_job], sum(job[name][1] for job in per_job))
                for name in NAMES}

    if cache_dir is None:
        return compute()
    return cached(cache_dir / f"statsforecast-{_key(jobs, horizon, season)}.pkl", compute)
