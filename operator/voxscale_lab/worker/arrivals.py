"""Open-loop arrival schedules (seconds from the start) from a Poisson rate or a request trace."""

from __future__ import annotations

import numpy as np

from voxscale.series import FloatArray, History
from voxscale_lab.traces import Trace


def poisson_arrivals(rate: float, duration: float, rng: np.random.Generator) -> FloatArray:
    """Arrival times of a Poisson process of `rate` req/s over `[0, duration)`."""
    if rate < 0 or duration < 0:
        raise ValueError(f"rate and duration must be >= 0, got {rate}, {duration}")
    count = int(rng.poisson(rate * duration))
    return np.sort(rng.uniform(0.0, duration, size=count))


def rate_arrivals(
    history: History, rng: np.random.Generator, *, time_scale: float = 1.0, rate_scale: float = 1.0
) -> FloatArray:
    """A non-homogeneous Poisson process following a rate series, played `time_scale`× faster.

    Each step of the series becomes `step / time_scale` seconds at `rate × rate_scale` req/s,
    e.g. a 5-minute step at 2 req/s with time_scale 60 and rate_scale 10 is 5 s at 20 req/s.
    Steps with no data (NaN) send nothing: a gap in a trace is not a rate to reproduce.
    """
    if time_scale <= 0 or rate_scale < 0:
        raise ValueError(f"time_scale must be > 0 and rate_scale >= 0, got {time_scale}, {rate_scale}")
    step = history.step / time_scale
    rates = np.nan_to_num(history.values * rate_scale, nan=0.0)
    counts = rng.poisson(np.maximum(rates, 0.0) * step)
    starts = np.repeat(np.arange(len(rates)) * step, counts)
    return np.sort(starts + rng.uniform(0.0, step, size=int(counts.sum())))


def trace_arrivals(
    trace: Trace,
    rng: np.random.Generator,
    *,
    time_scale: float = 1.0,
    rate_scale: float = 1.0,
    step_seconds: float = 60.0,
) -> FloatArray:
    """Arrivals of a trace file: a per-request log is replayed as logged (shifted to 0,
    compressed by `time_scale`, thinned or repeated by `rate_scale`); an interval trace is
    turned into a rate series of `step_seconds` and sampled as a Poisson process."""
    if not trace.per_request:
        return rate_arrivals(trace.rate(step_seconds), rng, time_scale=time_scale, rate_scale=rate_scale)
    if time_scale <= 0 or rate_scale < 0:
        raise ValueError(f"time_scale must be > 0 and rate_scale >= 0, got {time_scale}, {rate_scale}")
    base = (trace.arrivals - trace.arrivals[0]) / time_scale if len(trace.arrivals) else trace.arrivals
    # rate_scale 2.5 = every request twice, plus a second copy of half of them at random.
    whole = int(np.floor(rate_scale))
    copies = [base] * whole
    copies.append(base[rng.uniform(size=len(base)) < rate_scale - whole])
    return np.sort(np.concatenate(copies))


def window(arrivals: FloatArray, start: float, duration: float | None) -> FloatArray:
    """The arrivals in `[start, start + duration)`, re-based to 0 (all after `start` if None)."""
    end = np.inf if duration is None else start + duration
    kept = arrivals[(arrivals >= start) & (arrivals < end)]
    return kept - start
