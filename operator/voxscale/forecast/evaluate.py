"""Rolling-origin backtests scored by MASE, shared by the forecast tests and bench/forecast_mase.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from voxscale.forecast.path import ForecastPath
from voxscale.series import FloatArray, History


class PathModel(Protocol):
    def path(self, history: History, span_seconds: float) -> ForecastPath | None: ...


@dataclass(frozen=True)
class Score:
    """Mean MASE over the origins, and the per-origin figures behind it."""

    mase: float
    per_origin: tuple[float, ...]


def seasonal_naive_mae(values: FloatArray, m: int) -> float:
    """In-sample MAE of 'same time one season ago' (the MASE denominator), skipping NaN pairs."""
    diffs = np.abs(values[m:] - values[:-m])
    return float(np.nanmean(diffs))


def mase(actual: FloatArray, predicted: FloatArray, scale: float) -> float:
    """Mean absolute error divided by `scale`; NaN actuals are skipped, never counted as zero."""
    seen = np.isfinite(actual)
    return float(np.mean(np.abs(actual[seen] - predicted[seen])) / scale)


def rolling_origin(
    history: History,
    model: PathModel,
    *,
    origins: int,
    horizon_seconds: float,
    scale_season_seconds: float,
) -> Score:
    """Forecast each of the last `origins` windows of `horizon_seconds` from the data before it.

    E.g. origins=7, horizon=1 day: seven day-ahead forecasts, one from each midnight of the
    last week, each scaled by the seasonal-naive in-sample MAE (daily season) of its own
    training data (Hyndman & Koehler 2006).
    """
    per_window = round(horizon_seconds / history.step)
    m = round(scale_season_seconds / history.step)
    scores: list[float] = []
    for i in range(origins, 0, -1):
        cut = len(history) - i * per_window
        train = History(history.start, history.step, history.values[:cut])
        actual = history.values[cut : cut + per_window]
        path = model.path(train, horizon_seconds)
        if path is None:
            raise ValueError(f"{type(model).__name__} refused a {cut}-point training window")
        times = train.end + history.step * np.arange(1, actual.size + 1)
        grid = path.start + path.step * np.arange(path.mean.size)
        predicted = np.interp(times, grid, path.mean)
        scores.append(mase(actual, predicted, seasonal_naive_mae(train.values, m)))
    return Score(float(np.mean(scores)), tuple(scores))
