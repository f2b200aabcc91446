"""Per-shard cache of fitted forecast paths: refit on a cadence, re-anchor cheaply in between."""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from dataclasses import dataclass

from voxscale.decide.types import Forecast
from voxscale.forecast.errors import HorizonErrors, last_observed
from voxscale.forecast.holt_winters import HoltWinters
from voxscale.forecast.naive import SeasonalNaive
from voxscale.forecast.path import ForecastPath
from voxscale.series import History

ANCHOR_SECONDS = 900.0
"""Re-anchor on the last 15 minutes: long enough to average out 1-minute noise (15 points),
short enough to follow a level change within one refit period."""


REFIT_SPREAD = 0.25
"""Each key refits every refit_every × a fixed factor in [0.75, 1.25). Shards first fitted in
the same tick (all of them, when the operator starts) would otherwise refit in the same tick
every hour: 1,000 Holt-Winters fits at ~0.14 s is a 140 s tick. Spread over half an hour
(180 ticks of 10 s) that is ~6 fits, under a second, per tick."""


@dataclass(frozen=True)
class _Entry:
    path: ForecastPath
    settings: tuple[float, float, str, float]
    fitted_at: float


def refit_period(key: Hashable, refit_every_seconds: float, spread: float) -> float:
    """A stable per-key period: the same key gets the same factor in every process."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    unit = int.from_bytes(digest, "big") / 2.0**64
    return refit_every_seconds * (1.0 - spread + 2.0 * spread * unit)


def make_model(method: str, seasonality_seconds: float, quantile: float) -> HoltWinters | SeasonalNaive:
    """The model behind a spec's `forecast.method` ('holt-winters' or 'seasonal-naive')."""
    if method == "holt-winters":
        return HoltWinters(seasonality_seconds, quantile)
    if method == "seasonal-naive":
        return SeasonalNaive(seasonality_seconds, quantile)
    raise ValueError(f"unknown forecast method {method!r}; use 'holt-winters' or 'seasonal-naive'")


class ForecastCache:
    """Fitted paths by key (e.g. shard name). Call `forecast` once per tick per shard.

    A refit happens when the key is new, the settings or the history step changed, the fit
    is `refit_every_seconds` old, the clock went backwards, or the path no longer covers
    now + horizon. Otherwise the cached path is scaled by recent observed / forecast rate,
    which costs a few array reads (tens of microseconds), not a fit (tens of milliseconds).
    """

    def __init__(
        self,
        anchor_seconds: float = ANCHOR_SECONDS,
        spread: float = REFIT_SPREAD,
        *,
        calibrate: bool = True,
        explain: bool = True,
    ) -> None:
        if not 0.0 <= spread < 1.0:
            raise ValueError(f"spread must be in [0, 1), got {spread}")
        self._entries: dict[Hashable, _Entry] = {}
        self._levels: dict[Hashable, tuple[_Entry, float, float, bytes, float, History]] = {}
        """Per key: the re-anchoring level last computed, the path and samples it read, and the
        History they came from (History is a frozen value: the same object, the same samples)."""
        self._periods: dict[Hashable, tuple[float, float]] = {}
        """Per key: (refit_every, its spread period): a hash per key, not per tick."""
        self._errors: dict[Hashable, HorizonErrors] = {}
        self._calibrate = calibrate
        self._explain = explain
        """False: calibrated forecasts keep the model's `method` (see HorizonErrors.calibrate)."""
        self._anchor_seconds = anchor_seconds
        self._spread = spread
        self.refits = 0
        """How many times a model was fitted (including fits that found the history unusable)."""

    def forecast(
        self,
        key: Hashable,
        history: History,
        horizon_seconds: float,
        now: float,
        *,
        seasonality_seconds: float,
        refit_every_seconds: float,
        quantile: float,
        method: str = "holt-winters",
    ) -> Forecast | None:
        """Highest mean / upper rate over [now, now + horizon]; None when history is unusable.

        Once the forecasts served for this key over the last half hour have been scored against
        the observed rate, mean and upper are calibrated on those errors (see errors.py).
        """
        raw = self._raw(key, history, horizon_seconds, now, seasonality_seconds=seasonality_seconds,
                        refit_every_seconds=refit_every_seconds, quantile=quantile, method=method)
        if raw is None or not self._calibrate:
            return raw
        errors = self._errors.get(key)
        if errors is None:  # not setdefault: that would build (and drop) a log every tick
            errors = self._errors[key] = HorizonErrors()
        errors.score(history, now)
        last = last_observed(history)
        errors.issue(now, horizon_seconds, raw.mean, last)
        return errors.calibrate(raw, quantile, last, explain=self._explain)

    def _raw(
        self,
        key: Hashable,
        history: History,
        horizon_seconds: float,
        now: float,
        *,
        seasonality_seconds: float,
        refit_every_seconds: float,
        quantile: float,
        method: str,
    ) -> Forecast | None:
        settings = (seasonality_seconds, quantile, method, history.step)
        entry = self._entries.get(key)
        known = self._periods.get(key)
        if known is None or known[0] != refit_every_seconds:
            known = self._periods[key] = (
                refit_every_seconds, refit_period(key, refit_every_seconds, self._spread))
        period = known[1]
        if entry is None or _stale(entry, settings, now, horizon_seconds, period):
            # Cover the whole refit period plus twice the horizon, so a growing learned warm-up
            # does not force an early refit: 1 h + 2 × 90 s = 63 points at 1 minute.
            span = max(0.0, now - history.end) + period + 2 * horizon_seconds
            entry = self._refit(key, history, now, span, settings)
            if entry is None:
                return None
        return entry.path.window(now, horizon_seconds, self._level(key, entry, history))

    def _level(self, key: Hashable, entry: _Entry, history: History) -> float:
        """`level_since_fit`, reused while the path and the anchor's samples are the same: the
        history moves once a minute, the loop ticks every 10 s."""
        memo = self._levels.get(key)
        if memo is not None and memo[0] is entry and memo[5] is history:
            return memo[4]  # the very History of the last tick (a replay asks 6 times a minute)
        recent = history.last(self._anchor_seconds)
        seen = recent.values.tobytes()
        if (memo is not None and memo[0] is entry and memo[1] == recent.start
                and memo[2] == recent.step and memo[3] == seen):
            level = memo[4]
        else:
            level = entry.path.level_since_fit(recent, self._anchor_seconds)
        self._levels[key] = (entry, recent.start, recent.step, seen, level, history)
        return level

    def forget(self, key: Hashable) -> None:
        """Drop a key (a shard that was removed): its fitted path and its scored errors."""
        self._entries.pop(key, None)
        self._errors.pop(key, None)
        self._levels.pop(key, None)
        self._periods.pop(key, None)

    def keys(self) -> set[Hashable]:
        """Every key holding a fitted path or scored errors."""
        return set(self._entries) | set(self._errors)

    def _refit(
        self,
        key: Hashable,
        history: History,
        now: float,
        span: float,
        settings: tuple[float, float, str, float],
    ) -> _Entry | None:
        seasonality, quantile, method, _ = settings
        self.refits += 1
        path = make_model(method, seasonality, quantile).path(history, span)
        if path is None:
            self._entries.pop(key, None)
            return None
        entry = _Entry(path, settings, now)
        self._entries[key] = entry
        return entry


def _stale(
    entry: _Entry,
    settings: tuple[float, float, str, float],
    now: float,
    horizon_seconds: float,
    refit_every_seconds: float,
) -> bool:
    return (
        entry.settings != settings
        or now - entry.fitted_at >= refit_every_seconds
        or now < entry.fitted_at
        or now + horizon_seconds > entry.path.stop
    )
