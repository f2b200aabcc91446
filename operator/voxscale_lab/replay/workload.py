"""Turn a real trace into per-second arrivals for one shard, scaled to a chosen peak."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxscale.series import FloatArray, History
from voxscale_lab.traces import Trace, load_trace

DAY = 86_400.0


@dataclass(frozen=True)
class Workload:
    """Arrivals per second from `start`, plus the rate the operator saw before it (warm start)."""

    name: str
    start: float
    arrivals: FloatArray
    """arrivals[i] requests arrive in [start + i, start + i + 1)."""
    rate: FloatArray
    """The underlying rate (req/s) the arrivals were drawn from, per second."""
    prior: History
    """Observed rate before `start` at 1-minute steps (empty when the trace has none)."""

    @property
    def seconds(self) -> int:
        return int(self.arrivals.shape[0])


def per_second_rate(trace: Trace, smooth_seconds: float = 10.0) -> History:
    """The trace's rate on a 1-second grid.

    Interval traces are interpolated linearly between interval midpoints (a 5-minute count
    says nothing about which second inside it was busy; a staircase would invent a jump
    every 5 minutes). Per-request traces are counted per second and smoothed over
    `smooth_seconds`, so scaling 2.6 req/s up to 2,500 req/s keeps bursts of 10 s and more
    without turning each single request into a 1,000-request spike.
    """
    if trace.per_request:
        counts = trace.rate(1.0)
        k = max(1, int(smooth_seconds))
        kernel = np.ones(k) / k
        return History(counts.start, 1.0, np.convolve(counts.values, kernel, mode="same"))
    native = trace.rate(trace.interval or 60.0)
    mid = native.times() + native.step / 2
    ok = np.isfinite(native.values)
    grid = np.arange(math.ceil(native.start), math.floor(native.end + native.step), 1.0)
    return History.of(grid[0], 1.0, np.interp(grid, mid[ok], native.values[ok]))


def build_workload(
    path: str | Path,
    *,
    peak_rps: float,
    span_seconds: float | None = None,
    prior_seconds: float = 7 * DAY,
    poisson: bool = True,
    seed: int = 0,
    percentile: float = 99.0,
) -> Workload:
    """The last `span_seconds` of a trace (all of it when None), scaled so its p99 is `peak_rps`.

    The scale factor comes from the whole trace, so a quiet replay week is not blown up.
    Arrivals are Poisson around the rate, drawn from `seed` (deterministic), or the rate
    itself when `poisson` is False.
    """
    trace = load_trace(path)
    rate = per_second_rate(trace)
    factor = peak_rps / float(np.nanpercentile(rate.values, percentile))
    values = rate.values * factor
    n = len(values)
    first = 0 if span_seconds is None else max(0, n - int(span_seconds))
    replay = values[first:]
    arrivals = np.random.default_rng(seed).poisson(replay).astype(np.float64) if poisson else (
        replay.copy()
    )
    lead = values[max(0, first - int(prior_seconds)) : first]
    usable = len(lead) // 60 * 60
    prior_vals = lead[len(lead) - usable :].reshape(-1, 60).mean(axis=1) if usable else np.empty(0)
    start = rate.start + first
    prior = History.of(start - 60.0 * len(prior_vals), 60.0, prior_vals)
    return Workload(trace.name, start, arrivals, replay, prior)


def trace_paths(folder: str | Path) -> list[Path]:
    return sorted(Path(folder).glob("*.csv"))
