"""Forecast the request rate of a shard: Holt-Winters with a seasonal-naive fallback, cached per shard.

Public API (everything else in this package is internal):

- `Forecaster` — the protocol: `forecast(history, horizon_seconds, now) -> Forecast | None`,
  None when the history is empty or mostly missing. "No data" is never a zero forecast.
- `HoltWinters(seasonality_seconds=86400, quantile=0.9)` — ETS(A,Ad,A) on log1p(rate) at
  ≤ 288 points per season, plus a weekly profile once the history covers two weeks; falls
  back to seasonal-naive below two seasons (and plain naive below one).
- `SeasonalNaive(seasonality_seconds=86400, quantile=0.9)` — same time one season ago.
- `ForecastCache().forecast(key, history, horizon_seconds, now, *, seasonality_seconds,
  refit_every_seconds, quantile, method)` — what the control loop and replay call once per
  tick per shard: refits on the cadence, re-anchors the cached path in between, and once the
  forecasts it served over half an hour have been scored, calibrates mean and upper on their
  errors at the horizon (`ForecastCache(calibrate=False)` serves the model's own interval);
  `cache.refits` counts fits.
- `make_model(method, seasonality_seconds, quantile)` — the model for a spec's method name.

`Forecast.mean` / `Forecast.upper` are the highest mean / upper-bound rate (req/s) over
[now, now + horizon]; `upper` is the `quantile` one-sided prediction bound (the empirical
quantile of recent horizon errors once calibrated), `upper ≥ mean ≥ 0`.
"""

from __future__ import annotations

from typing import Protocol

from voxscale.decide.types import Forecast
from voxscale.forecast.cache import ForecastCache, make_model
from voxscale.forecast.holt_winters import HoltWinters
from voxscale.forecast.naive import SeasonalNaive
from voxscale.forecast.path import ForecastPath
from voxscale.series import History


class Forecaster(Protocol):
    def forecast(self, history: History, horizon_seconds: float, now: float) -> Forecast | None:
        """Highest mean / upper rate over [now, now + horizon]; None when history is unusable."""
        ...


__all__ = [
    "Forecast",
    "ForecastCache",
    "ForecastPath",
    "Forecaster",
    "HoltWinters",
    "SeasonalNaive",
    "make_model",
]
