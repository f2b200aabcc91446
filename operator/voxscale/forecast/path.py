"""A fitted forecast path (mean and upper bound on a time grid) and how to read a horizon off it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist

import numpy as np

from voxscale.decide.types import Forecast
from voxscale.series import FloatArray, History

MAX_LEVEL_SHIFT = 4.0
"""Re-anchoring may scale the cached path by at most 4× either way: beyond that the model is
wrong, not shifted, and the next refit (or the reactive term) must take over."""


def z_score(quantile: float) -> float:
    """One-sided normal quantile: 0.9 → 1.2816."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    return NormalDist().inv_cdf(quantile)


@dataclass(frozen=True)
class ForecastPath:
    """`mean[i]` and `upper[i]` (req/s) forecast for `start + i*step`, fitted on data up to `fitted_until`."""

    start: float
    step: float
    mean: FloatArray
    upper: FloatArray
    method: str
    fitted_until: float
    """Time of the last observation the model saw."""

    @property
    def stop(self) -> float:
        """Time of the last point of the path."""
        return self.start + (self.mean.size - 1) * self.step

    def window(self, now: float, horizon_seconds: float, level: float = 1.0) -> Forecast:
        """Highest mean and upper rate over [now, now + horizon], scaled (on rate+1) by `level`.

        Both ends are interpolated, so a 90 s horizon on a 5-minute path still sees the
        slope between two points; points outside the path hold its first/last value.
        """
        lo, hi = now, now + max(horizon_seconds, 0.0)
        i0 = max(0, math.ceil((lo - self.start) / self.step))
        i1 = min(self.mean.size, math.floor((hi - self.start) / self.step) + 1)
        floats = self._floats
        means, uppers = floats if floats is not None else (self.mean, self.upper)
        at_lo, upper_lo = self._at_both(means, uppers, lo)
        at_hi, upper_hi = self._at_both(means, uppers, hi)
        mean = max(at_lo, at_hi)
        upper = max(upper_lo, upper_hi)
        if i1 > i0 and floats is not None:
            mean = max(mean, *floats[0][i0:i1])
            upper = max(upper, *floats[1][i0:i1])
        elif i1 > i0:
            mean = max(mean, float(self.mean[i0:i1].max()))
            upper = max(upper, float(self.upper[i0:i1].max()))
        current = max(0.0, (at_lo + 1.0) * level - 1.0)
        mean = max(0.0, (mean + 1.0) * level - 1.0)
        upper = max(mean, (upper + 1.0) * level - 1.0)
        return Forecast(now, float(horizon_seconds), mean, upper, self.method, current)

    def level_since_fit(self, history: History, anchor_seconds: float) -> float:
        """Ratio of observed to forecast (rate+1) over the recent samples the fit did not see.

        E.g. the path says 100 req/s for the last 15 minutes and 121 were observed: the level
        is 122/101 ≈ 1.21 and the cached path is lifted by 21 % until the next refit. Rate+1
        (not rate) keeps a near-zero night from producing huge ratios.
        """
        recent = history.last(anchor_seconds)
        times = recent.times()
        fresh = (times > self.fitted_until) & np.isfinite(recent.values)
        if not fresh.any():
            return 1.0
        observed = _mean(recent.values[fresh])
        expected = _mean(np.interp(times[fresh], self._grid, self.mean))
        ratio = (max(observed, 0.0) + 1.0) / (max(expected, 0.0) + 1.0)
        return min(MAX_LEVEL_SHIFT, max(1.0 / MAX_LEVEL_SHIFT, ratio))

    @cached_property
    def _grid(self) -> FloatArray:
        """The path's times (read once a minute by `level_since_fit` for the path's hour)."""
        return self.start + self.step * np.arange(self.mean.size, dtype=np.float64)

    @cached_property
    def _floats(self) -> tuple[list[float], list[float]] | None:
        """mean and upper as Python floats (None if either holds a NaN, which Python's max would
        not propagate as numpy's does): `window` runs every tick on a path fitted hourly, and
        reading numpy arrays element by element cost more than the arithmetic."""
        if np.isnan(self.mean).any() or np.isnan(self.upper).any():
            return None
        return self.mean.tolist(), self.upper.tolist()

    def _at_both(
        self, means: list[float] | FloatArray, uppers: list[float] | FloatArray, t: float
    ) -> tuple[float, float]:
        """Both series interpolated at `t` (they share the grid: one position, two reads)."""
        pos = min(max((t - self.start) / self.step, 0.0), len(means) - 1.0)
        i = int(pos)
        j = min(i + 1, len(means) - 1)
        frac = pos - i
        return (float(means[i] + (means[j] - means[i]) * frac),
                float(uppers[i] + (uppers[j] - uppers[i]) * frac))



def _mean(values: FloatArray) -> float:
    """`ndarray.mean()`'s own arithmetic (np.add.reduce, then ÷ the count), the same bits,
    without its ~3 µs of Python around a few samples."""
    return float(np.add.reduce(values) / values.size)
