"""How wrong the served forecasts were at the planning horizon, and a bound calibrated on that."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from voxscale.decide.evolve import evolve
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


class ErrorLog:
    """(issued at, log error) pairs, oldest first, held in two numpy arrays.

    The quantiles and the skill gate read ~2,000 pairs once a minute; turning a deque of
    tuples into arrays each time (and joining scored with persistence through a dict) cost
    ~1.5 ms a minute, the largest share of a 14-day replay. Reads as a sequence of tuples.
    """

    def __init__(self, items: Iterable[tuple[float, float]] = ()) -> None:
        self._times = np.empty(256)
        self._errors = np.empty(256)
        self._head = self._tail = 0
        self._ordered = True
        """Issued times never decrease (what the join in `_paired` relies on)."""
        self.strict = True
        """Issued times always increase (no two windows issued at the same time)."""
        self._version = 0
        """Bumped by every change of the pairs held: what `_known` was computed at."""
        self._known: tuple[int, dict[float, float]] = (0, {})
        self.extend(items)

    def append(self, item: tuple[float, float]) -> None:
        if self._tail == self._times.size:
            self._make_room()
        t, e = item
        if self._tail > self._head and t <= self._times[self._tail - 1]:
            self.strict = False
            self._ordered = self._ordered and t == self._times[self._tail - 1]
        self._times[self._tail], self._errors[self._tail] = t, e
        self._tail += 1
        self._version += 1

    def extend(self, items: Iterable[tuple[float, float]]) -> None:
        for item in items:
            self.append(item)

    def popleft(self) -> tuple[float, float]:
        item = self[0]
        self._head += 1
        self._version += 1
        return item

    def drop_before(self, cutoff: float) -> None:
        """popleft while the oldest pair was issued before `cutoff`."""
        times, head, tail = self._times, self._head, self._tail
        while head < tail and times[head] < cutoff:
            head += 1
        if head != self._head:
            self._head = head
            self._version += 1

    def clear(self) -> None:
        self._head = self._tail = 0
        self._ordered = self.strict = True
        self._version += 1

    def quantiles(self, qs: tuple[float, ...]) -> tuple[float, ...]:
        """`quantiles_linear` of the errors, each level remembered until the log changes.

        Once a minute the band asks for the p50 and p90 of ~2,000 scored errors and the skill
        gate for their p90 again: one partition (~15 µs), not two. A level's value does not
        depend on which other levels were asked with it (the order statistics around it are
        exact in any partition), so a remembered one has the same bits.
        """
        version, known = self._known
        if version != self._version:
            known = {}
            self._known = (self._version, known)
        missing = tuple(q for q in qs if q not in known)
        if missing:
            _, errors, _ = self.arrays()
            known.update(zip(missing, quantiles_linear(errors, missing), strict=True))
        return tuple(known[q] for q in qs)

    def arrays(self) -> tuple[FloatArray, FloatArray, bool]:
        """(issued times, log errors, whether the times never decrease): views, not copies."""
        return self._times[self._head : self._tail], self._errors[self._head : self._tail], self._ordered

    def _make_room(self) -> None:
        live = self._tail - self._head
        size = max(256, 2 * live)
        times, errors = np.empty(size), np.empty(size)
        times[:live] = self._times[self._head : self._tail]
        errors[:live] = self._errors[self._head : self._tail]
        self._times, self._errors, self._head, self._tail = times, errors, 0, live

    def __len__(self) -> int:
        return self._tail - self._head

    def __getitem__(self, i: int) -> tuple[float, float]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError("ErrorLog index out of range")
        j = self._head + (i % n)
        return float(self._times[j]), float(self._errors[j])

    def __iter__(self) -> Iterator[tuple[float, float]]:
        times, errors, _ = self.arrays()
        return zip(times.tolist(), errors.tolist(), strict=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ErrorLog) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ErrorLog({list(self)!r})"


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
    scored: ErrorLog = field(default_factory=ErrorLog)
    """(issued at, error on the √ scale), oldest first."""
    persistence: ErrorLog = field(default_factory=ErrorLog)
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
            scored.drop_before(now - self.window_seconds)

    def quantiles(self, *qs: float) -> tuple[float, ...] | None:
        """Empirical quantiles of the errors; None until they span `min_span_seconds`."""
        if not self.scored or self.scored[-1][0] - self.scored[0][0] < self.min_span_seconds:
            return None
        return self.scored.quantiles(qs)

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
        model, held, held_all = _paired(self.scored, self.persistence)
        if model.size < 2:
            return None
        # Every scored window paired (the usual case; a mask keeps no window twice): the scored
        # log's own quantile, which the band has just asked for.
        whole = model.size == len(self.scored)
        (high_model,) = self.scored.quantiles((quantile,)) if whole else quantiles_linear(model, (quantile,))
        (high_all,) = self.persistence.quantiles((quantile,))
        # Every persistence error was paired (the usual case): the same array, the same quantile.
        high_held = high_all if held_all is held else quantiles_linear(held, (quantile,))[0]
        return Skill(
            model_loss=_pinball(model - high_model, quantile),
            persistence_loss=_pinball(held - high_held, quantile),
            persistence_high=high_all,
            windows=int(model.size),
        )

    def skill_at(self, now: float, quantile: float) -> Skill | None:
        """`skill`, recomputed at most every REQUANTILE_SECONDS of `now`."""
        memo = self.gate_memo
        if memo is not None and memo[1] == quantile and memo[0] <= now < memo[0] + REQUANTILE_SECONDS:
            return memo[2]
        verdict = self.skill(quantile)
        self.gate_memo = (now, quantile, verdict)
        return verdict

    def calibrate(self, forecast: Forecast, quantile: float, last: float | None = None, *,
                  explain: bool = True) -> Forecast:
        """Mean and upper moved, on the √ scale, by the median and `quantile` recent error.

        E.g. a mean of 400 req/s (√ 20) whose recent errors had median +0.2 and p90 +1.5
        becomes mean 20.2² = 408, upper 21.5² = 462 req/s. A model that over-forecast lately
        (a negative median) is corrected down as well as up: the bound follows what was
        observed, not what was fitted. `explain=False` keeps the model's own `method` instead of
        one that says how it was calibrated (the same numbers; a replay reads no reasons).
        """
        q = self.quantiles_at(forecast.at, 0.5, quantile)
        if q is None:
            return forecast
        mid, high = q
        base = to_scale(forecast.mean)
        mean = from_scale(base + mid)
        upper = max(mean, from_scale(base + high))
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
                      f" {skill.model_loss:.3f} over {skill.windows} windows)"
                      if explain else forecast.method)
            return evolve(forecast, mean=mean, upper=upper, method=method,
                          current=held, calibrated=True)
        # Formatted only on the branch that returns it.
        method = (f"{forecast.method}, p{quantile * 100:g} error {_describe(forecast.mean, high)}"
                  f" over {len(self.scored)} windows" if explain else forecast.method)
        return evolve(forecast, mean=mean, upper=upper, method=method, current=current,
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
    # max(rate, 0.0) spelt out (it keeps rate unless rate < 0.0, NaN and -0.0 included):
    # ~1.3 million calls in a 14-day replay, and the builtin's call cost more than the test.
    return math.sqrt(0.0 if rate < 0.0 else rate)


def from_scale(value: float) -> float:
    """The rate at `value` on the √ scale (a bound below 0 on that scale is no rate)."""
    return (0.0 if value < 0.0 else value) ** 2  # max(value, 0.0), as in to_scale


def _describe(rate: float, error: float) -> str:
    """An error on the √ scale as the rise it gives at `rate`: '+15 %' at 400 req/s for +1.5."""
    base = max(rate, 0.0)
    return f"{(from_scale(to_scale(base) + error) + 1.0) / (base + 1.0) - 1.0:+.0%}"


def quantiles_linear(values: FloatArray, qs: tuple[float, ...]) -> tuple[float, ...]:
    """`np.quantile(values, qs)` (method "linear"), the same bits, at a third of the cost.

    numpy 1.26's quantile spends ~40 µs of Python around one partition of ~2,000 errors, and
    the gate took four a minute. This is its arithmetic for a 1-D array without NaN: the
    virtual index (n − 1)·q, the two order statistics around it, and `_lerp` (which
    interpolates from the upper neighbour when the weight is ≥ ½). Anything else is numpy's.
    """
    n = int(values.size)
    if n == 0 or not all(0.0 <= q <= 1.0 for q in qs) or bool(np.isnan(values).any()):
        return tuple(float(v) for v in np.quantile(values, qs))
    spots = [(n - 1) * q for q in qs]
    kth = sorted({i for v in spots if v < n - 1 for i in (math.floor(v), math.floor(v) + 1)} | {n - 1})
    part = np.partition(values, kth)
    out = []
    for v in spots:
        if v >= n - 1:
            out.append(float(part[n - 1]))
            continue
        i = math.floor(v)
        a, b, gamma = float(part[i]), float(part[i + 1]), v - i
        diff = b - a
        out.append(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)
    return tuple(out)


def _paired(scored: ErrorLog, persistence: ErrorLog) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Model and persistence errors of the windows both scored (in scored order), and every
    persistence error. A window issued at t pairs with the last persistence error issued at t."""
    t_model, e_model, _ = scored.arrays()
    t_held, e_held, ordered = persistence.arrays()
    if persistence.strict and t_held.size == t_model.size and np.array_equal(t_held, t_model):
        # The usual case: every scored window had a last rate beside it.
        return e_model, e_held, e_held
    if not ordered:  # a clock that moved back within the log: the dict join, as written
        both = dict(persistence)
        pairs = [(e, both[t]) for t, e in scored if t in both]
        errors = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
        return errors[:, 0], errors[:, 1], e_held
    last = np.searchsorted(t_held, t_model, side="right") - 1
    found = (last >= 0) & (t_held[np.maximum(last, 0)] == t_model)
    return e_model[found], e_held[last[found]], e_held


def _pinball(residual: FloatArray, quantile: float) -> float:
    """Mean pinball (quantile) loss of residuals y − bound."""
    # np.mean's own arithmetic (np.add.reduce, then ÷ the count) without its ~3 µs of Python.
    loss = np.maximum(quantile * residual, (quantile - 1.0) * residual)
    return float(np.add.reduce(loss) / loss.size)


def last_observed(history: History) -> float | None:
    """The latest finite sample of `history`, or None."""
    # Python floats: a mask and a fancy index per tick cost more than this loop.
    for value in reversed(history.values[-10:].tolist()):
        if math.isfinite(value):
            return float(value)
    return None


def observed_max(history: History, start: float, until: float) -> float | None:
    """Highest observed sample whose interval [T, T + step) meets [start, until]; None if none."""
    lo = max(0, math.floor((start - history.start) / history.step))
    hi = min(len(history), math.floor((until - history.start) / history.step) + 1)
    if hi <= lo:
        return None
    # A horizon is a handful of samples: Python floats beat a numpy mask and max on them.
    finite = [v for v in history.values[lo:hi].tolist() if math.isfinite(v)]
    return max(finite) if finite else None
