"""Seasonal-naive forecasting: tomorrow looks like today. The fallback and the MASE baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from voxscale.decide.types import Forecast
from voxscale.forecast.path import ForecastPath, z_score
from voxscale.forecast.prepare import Prepared, prepare
from voxscale.series import FloatArray, History


@dataclass(frozen=True)
class SeasonalNaive:
    """Forecast each point as the value one season earlier (plain naive below one season)."""

    seasonality_seconds: float = 86400.0
    quantile: float = 0.9
    max_per_season: int = 288

    def forecast(self, history: History, horizon_seconds: float, now: float) -> Forecast | None:
        path = self.path(history, max(0.0, now - history.end) + horizon_seconds)
        return None if path is None else path.window(now, horizon_seconds)

    def path(self, history: History, span_seconds: float) -> ForecastPath | None:
        """Forecast path covering `span_seconds` after the last observation."""
        prepared = prepare(history, self.seasonality_seconds, max_per_season=self.max_per_season)
        return None if prepared is None else naive_path(prepared, span_seconds, self.quantile)


def naive_path(prepared: Prepared, span_seconds: float, quantile: float) -> ForecastPath:
    """Seasonal-naive path from a prepared series; the interval widens by √(seasons ahead).

    The spread is the RMS of the in-sample seasonal differences y[t] − y[t−m]: if today
    differs from yesterday by ±12 req/s typically, so will tomorrow (Hyndman & Athanasopoulos,
    FPP3 §5.5, seasonal naive: σ_h = σ √(k+1), k = whole seasons ahead).
    """
    x, m = prepared.values, prepared.season
    steps = np.arange(1, _steps(span_seconds, prepared.step) + 1)
    if x.size > m:
        mean = x[x.size - m + (steps - 1) % m]
        sigma = _rms(x[m:] - x[:-m])
        spread = np.sqrt((steps - 1) // m + 1.0)
        method = "seasonal-naive"
    else:
        # Less than one season: only "the last value" is defensible; its error grows like a walk.
        mean = np.full(steps.size, x[-1])
        sigma = _rms(np.diff(x))
        spread = np.sqrt(steps.astype(np.float64))
        method = "naive"
    upper = mean + z_score(quantile) * sigma * spread
    return ForecastPath(
        start=prepared.end + prepared.step,
        step=prepared.step,
        mean=mean.astype(np.float64),
        upper=np.maximum(upper, mean).astype(np.float64),
        method=method,
        fitted_until=prepared.last_seen,
    )


def _steps(span_seconds: float, step: float) -> int:
    """Points needed to cover the span, plus one so the far end can be interpolated."""
    return max(2, math.ceil(max(span_seconds, 0.0) / step) + 1)


def _rms(diffs: FloatArray) -> float:
    return float(np.sqrt(np.mean(diffs**2))) if diffs.size else 0.0
