"""How wrong the served forecasts were at the planning horizon, and a bound calibrated on that."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from itertools import chain

import numpy as np

from voxscale.decide.types import Forecast
from voxscale.series import FloatArray, History

ERROR_WINDOW_SECONDS = 6 * 3600.0
"""Errors kept: the last 6 hours. Long enough for a quantile over hundreds of windows, short
enough that a quiet night does not set the band for a bursty afternoon (and vice versa)."""
MIN_ERROR_SPAN_SECONDS = 1800.0
"""Until forecasts issued over 30 minutes have been scored, the model's own interval is used."""
REQUANTILE_SECONDS = 60.0
"""Quantiles of ~2,000 stored errors cost ~0.5 ms: every 10 s tick that is 0.5 s per 1,000 shards.
Recomputed once a minute they cost a few µs a tick, and a band that moves over hours loses
nothing by lagging a minute."""


@dataclass
class HorizonErrors:
    """Forecasts served for one key, scored against what was then observed.

    An error is √(observed max over [t, t + h]) − √(forecast mean issued at t): the same
    quantity decide() plans on, at the same horizon, after the cache's re-anchoring. The
    model's own interval is a season-fit residual spread widened for a whole refit period; on
    the spiky ELB trace its 0.9 bound was a median 3.3× the observed rate, while the windows it
    had to cover rarely exceeded the mean by more than a few tens of percent.

    Why √ and not a ratio: request counts are Poisson-like, their spread grows as √ of their
    level, and √ is the scale where it is constant. A ratio (log) scale measures an idle minute
    that jumps from 1 to 35 req/s as ×18 and then applies ×18 to a busy minute's 1,000 req/s:
    on the bursty Azure code trace the log p95 error was +3,389 % and the bound 19,096 req/s,
    7× the trace's peak (411 replicas for an oracle's mean of 30). The same jump on the √
    scale is +4.9, which at 1,000 req/s is +32 %. Replayed (1 day, W = 120 s, default
    quantile): Azure code 3.60× → 1.99× the oracle's replica-hours at the same 6.67 %
    violation minutes, ELB 3.39× / 3.26 % → 2.07× / 4.10 %; nyc_taxi and Azure conv unchanged.
    """

    window_seconds: float = ERROR_WINDOW_SECONDS
    min_span_seconds: float = MIN_ERROR_SPAN_SECONDS
    pending: deque[tuple[float, float, float, float]] = field(default_factory=deque)
    """(issued at, window end, forecast mean, last observed rate or NaN) not yet fully observed."""
    scored: deque[tuple[float, float]] = field(default_factory=deque)
    """(issued at, error on the √ scale), oldest first."""
    persistence: deque[tuple[float, float]] = field(default_factory=deque)
    """(issued at, error on the √ scale) of "the last observed rate holds": the skill baseline."""
    memo: tuple[float, tuple[float, ...], tuple[float, ...] | None] | None = None
    """(computed at, quantile levels, their values) of the last `quantiles_at` computation."""
    gate_memo: tuple[float, float, Skill | None] | None = None
    """(computed at, quantile, verdict) of the last `skill_at` computation."""

    def issue(self, now: float, horizon_seconds: float, mean: float, last: float | None = None) -> None:
        if self.pending and now < self.pending[-1][0]:
            # The clock went backwards (a replay restarted): the past no longer lines up.
            self.pending.clear()
            self.scored.clear()
            self.persistence.clear()
            self.memo = self.gate_memo = None
        held = math.nan if last is None or not math.isfinite(last) else max(last, 0.0)
        self.pending.append((now, now + max(horizon_seconds, 0.0), mean, held))

    def score(self, history: History, now: float) -> None:
        """Score every pending forecast whose window the history now covers completely."""
        covered = history.start + len(history) * history.step
        while self.pending and self.pending[0][1] < covered:
            issued, until, mean, held = self.pending.popleft()
            seen = observed_max(history, issued, until)
            if seen is not None:  # a window with no data scores nothing (never zero)
                self.scored.append((issued, to_scale(seen) - to_scale(mean)))
                if math.isfinite(held):
                    self.persistence.append((issued, to_scale(seen) - to_scale(held)))
        for scored in (self.scored, self.persistence):
            while scored and scored[0][0] < now - self.window_seconds:
                scored.popleft()

    def quantiles(self, *qs: float) -> tuple[float, ...] | None:
        """Empirical quantiles of the errors; None until they span `min_span_seconds`."""
        if not self.scored or self.scored[-1][0] - self.scored[0][0] < self.min_span_seconds:
            return None
        # C-level iteration over the (issued, error) pairs: a generator over 2,000 tuples cost
        # more than the quantiles themselves.
        pairs = np.fromiter(chain.from_iterable(self.scored), np.float64, 2 * len(self.scored))
        return tuple(float(v) for v in np.quantile(pairs[1::2], qs))

    def quantiles_at(self, now: float, *qs: float) -> tuple[float, ...] | None:
        """`quantiles`, recomputed at most every REQUANTILE_SECONDS of `now`."""
        memo = self.memo
        if memo is not None and memo[1] == qs and memo[0] <= now < memo[0] + REQUANTILE_SECONDS:
            return memo[2]
        values = self.quantiles(*qs)
        self.memo = (now, qs, values)
        return values

    def skill(self, quantile: float) -> Skill | None:
        """Which bound has been sharper at `quantile`: the model's or persistence's.

        Both bounds are calibrated the same way (their own errors' `quantile`), so both cover
        about the same share of windows; the better one is the *sharper*, measured by the mean
        pinball loss at `quantile` over the windows both scored (a proper scoring rule for a
        quantile: Gneiting 2011). On a noisy series the model's band is wide because its
        level is off as often as the load moves; "the last rate, plus how far it rose within
        a horizon lately" is then the tighter bound. None until both span `min_span_seconds`.
        """
        if len(self.persistence) < 2 or len(self.scored) < 2:
            return None
        if self.persistence[-1][0] - self.persistence[0][0] < self.min_span_seconds:
            return None
        both = dict(self.persistence)
        pairs = [(e, both[t]) for t, e in self.scored if t in both]
        if len(pairs) < 2:
            return None
        errors = np.asarray(pairs, dtype=np.float64)
        model, held = errors[:, 0], errors[:, 1]
        high_model, high_held = np.quantile(model, quantile), np.quantile(held, quantile)
        return Skill(
            model_loss=_pinball(model - high_model, quantile),
            persistence_loss=_pinball(held - high_held, quantile),
            persistence_high=float(np.quantile(np.asarray([e for _, e in self.persistence]), quantile)),
            windows=len(pairs),
        )

    def skill_at(self, now: float, quantile: float) -> Skill | None:
        """`skill`, recomputed at most every REQUANTILE_SECONDS of `now`."""
        memo = self.gate_memo
        if memo is not None and memo[1] == quantile and memo[0] <= now < memo[0] + REQUANTILE_SECONDS:
            return memo[2]
        verdict = self.skill(quantile)
        self.gate_memo = (now, quantile, verdict)
        return verdict

    def calibrate(self, forecast: Forecast, quantile: float, last: float | None = None) -> Forecast:
        """Mean and upper moved, on the √ scale, by the median and `quantile` recent error.

        E.g. a mean of 400 req/s (√ 20) whose recent errors had median +0.2 and p90 +1.5
        becomes mean 20.2² = 408, upper 21.5² = 462 req/s. A model that over-forecast lately
        (a negative median) is corrected down as well as up: the bound follows what was
        observed, not what was fitted.
        """
        q = self.quantiles_at(forecast.at, 0.5, quantile)
        if q is None:
            return forecast
        mid, high = q
        base = to_scale(forecast.mean)
        mean = from_scale(base + mid)
        upper = max(mean, from_scale(base + high))
        method = (f"{forecast.method}, p{quantile * 100:g} error {_describe(forecast.mean, high)}"
                  f" over {len(self.scored)} windows")
        current = forecast.current
        if current is not None:
            current = from_scale(to_scale(current) + mid)
        skill = None if last is None or not math.isfinite(last) else self.skill_at(forecast.at, quantile)
        if skill is not None and skill.persistence_loss < skill.model_loss:
            # The model has had no skill lately: plan on the last rate and how far load rose
            # within a horizon from it. `current` becomes that rate, so a miss is measured
            # against what the bound was built on.
            held = max(last or 0.0, 0.0)
            # The model's expected path still counts: a ramp it sees coming is kept (its mean,
            # not its wide band).
            upper = max(mean, from_scale(to_scale(held) + skill.persistence_high))
            method = (f"last rate, p{quantile * 100:g} rise {_describe(held, skill.persistence_high)}"
                      f" (pinball {skill.persistence_loss:.3f} < {forecast.method.split(',')[0]}"
                      f" {skill.model_loss:.3f} over {skill.windows} windows)")
            return replace(forecast, mean=mean, upper=upper, method=method,
                           current=held, calibrated=True)
        return replace(forecast, mean=mean, upper=upper, method=method, current=current,
                       calibrated=True)


@dataclass(frozen=True)
class Skill:
    """Mean pinball losses of the two calibrated bounds over the same scored windows."""

    model_loss: float
    persistence_loss: float
    persistence_high: float
    """The `quantile` rise (√ scale) of the observed maximum over the last rate (the bound's margin)."""
    windows: int


def to_scale(rate: float) -> float:
    """√rate: the scale errors are measured and added on (see HorizonErrors)."""
    return math.sqrt(max(rate, 0.0))


def from_scale(value: float) -> float:
    """The rate at `value` on the √ scale (a bound below 0 on that scale is no rate)."""
    return max(value, 0.0) ** 2


def _describe(rate: float, error: float) -> str:
    """An error on the √ scale as the rise it gives at `rate`: '+15 %' at 400 req/s for +1.5."""
    base = max(rate, 0.0)
    return f"{(from_scale(to_scale(base) + error) + 1.0) / (base + 1.0) - 1.0:+.0%}"


def _pinball(residual: FloatArray, quantile: float) -> float:
    """Mean pinball (quantile) loss of residuals y − bound."""
    return float(np.mean(np.maximum(quantile * residual, (quantile - 1.0) * residual)))


def last_observed(history: History) -> float | None:
    """The latest finite sample of `history`, or None."""
    tail = history.values[-10:]
    finite = tail[np.isfinite(tail)]
    return float(finite[-1]) if finite.size else None


def observed_max(history: History, start: float, until: float) -> float | None:
    """Highest observed sample whose interval [T, T + step) meets [start, until]; None if none."""
    lo = max(0, math.floor((start - history.start) / history.step))
    hi = min(len(history), math.floor((until - history.start) / history.step) + 1)
    if hi <= lo:
        return None
    window = history.values[lo:hi]
    finite = window[np.isfinite(window)]
    return float(finite.max()) if finite.size else None
