"""Benchmark: one decision tick over 1,000 shards with 7-day 1-minute histories and cached forecasts.

Prints figures, asserts nothing. Run: `.venv/bin/python bench/decide_tick.py [--shards 1000]`.
Phases: build histories → fit every shard once (the refit cost) → ticks of decide() alone with
forecasts in hand → ticks of cached forecast + decide(), as the loop does (minus I/O).
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from voxscale.api import ScalerState
from voxscale.decide import (
    Forecast,
    Observation,
    PodCounts,
    Policy,
    ShardMetrics,
    decide,
    horizon_seconds,
    restore_state,
)
from voxscale.forecast.cache import REFIT_SPREAD, ForecastCache, refit_period
from voxscale.series import History

DAY = 86400.0
STEP = 60.0
NOW = 1_700_000_000.0 - (1_700_000_000.0 % STEP)
SETTINGS = {"seasonality_seconds": DAY, "refit_every_seconds": 3600.0, "quantile": 0.9}


def synthetic_history(i: int, now: float, days: int = 7) -> History:
    """A daily cycle (night 20% of peak), a weekend dip, 8% noise; peaks 10-500 rps by shard."""
    rng = np.random.default_rng(i)
    t = now - STEP * np.arange(days * 1440)[::-1]
    day = 0.6 - 0.4 * np.cos(2 * np.pi * ((t + 3600 * (i % 24)) % DAY) / DAY)
    weekend = np.where(((t // DAY) % 7) >= 5, 0.7, 1.0)
    peak = 10.0 + 490.0 * rng.random()
    values = peak * day * weekend * (1 + 0.08 * rng.standard_normal(t.shape))
    return History.of(t[0], STEP, np.maximum(values, 0.0))


def observe(h: History, ready: int, now: float) -> Observation:
    rate = float(h.values[-1])
    return Observation(
        ShardMetrics(at=now, rate=rate, latency_ms=300.0 + rate % 200),
        PodCounts(asked=ready, ready=ready),
    )


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fit_all(cache: ForecastCache, histories: list[History], policy: Policy, method: str) -> list[float]:
    horizon = horizon_seconds(policy, ScalerState())
    return [
        timed(lambda i=i, h=h: cache.forecast(i, h, horizon, NOW, method=method, **SETTINGS))
        for i, h in enumerate(histories)
    ]


def refit_schedule(shards: int, fit_seconds: float, tick: float = 10.0) -> None:
    """Where the second round of refits lands when every shard was fitted in the same tick
    (operator start): the cache's real per-key period, bucketed into 10 s ticks."""
    ticks = [int(np.ceil(refit_period(i, 3600.0, REFIT_SPREAD) / tick)) for i in range(shards)]
    worst = max(ticks.count(t) for t in set(ticks))
    print(f"refit spread ±{REFIT_SPREAD:.0%}: after a synchronized start, the busiest 10 s tick of the "
          f"next round refits {worst} of {shards} shards (≈ {worst * fit_seconds:.2f} s at the median "
          f"fit time; without the spread all {shards}: ≈ {shards * fit_seconds:.0f} s)")


def run(shards: int, ticks: int, method: str) -> None:
    policy = Policy(max_replicas=200)
    t0 = time.perf_counter()
    histories = [synthetic_history(i, NOW) for i in range(shards)]
    mb = sum(h.values.nbytes for h in histories) / 1e6
    print(f"histories: {shards} × {len(histories[0])} points ({mb:.0f} MB) "
          f"built in {time.perf_counter() - t0:.1f} s")

    cache = ForecastCache()
    fits = fit_all(cache, histories, policy, method)
    print(f"refit ({method}): median {1e3 * statistics.median(fits):.1f} ms/shard, "
          f"p90 {1e3 * sorted(fits)[int(0.9 * len(fits))]:.1f} ms, "
          f"all {shards} {sum(fits):.1f} s; amortized over a 1 h refit period at 10 s ticks: "
          f"{sum(fits) / 360 * 1e3:.0f} ms/tick")

    refit_schedule(shards, statistics.median(fits))
    states = [restore_state(None, 10, NOW) for _ in range(shards)]

    def tick(now: float, with_forecast: bool, fixed: list[Forecast | None]) -> None:
        for i, h in enumerate(histories):
            state = states[i]
            fc = fixed[i]
            if with_forecast:
                hz = horizon_seconds(policy, state)
                fc = cache.forecast(i, h, hz, now, method=method, **SETTINGS)
            d = decide(observe(h, 10, now), fc, policy, state, now)
            states[i] = d.state

    hz0 = horizon_seconds(policy, states[0])
    fixed = [cache.forecast(i, h, hz0, NOW, method=method, **SETTINGS)
             for i, h in enumerate(histories)]
    refits_before = cache.refits
    gc.collect()
    decide_only = [timed(lambda k=k: tick(NOW + 10 * k, False, fixed)) for k in range(ticks)]
    full = [timed(lambda k=k: tick(NOW + 10 * k, True, fixed)) for k in range(ticks)]
    print(f"tick, decide() only: median {1e3 * statistics.median(decide_only):.1f} ms "
          f"({1e6 * statistics.median(decide_only) / shards:.0f} µs/shard) over {ticks} ticks")
    print(f"tick, cached forecast + decide(): median {1e3 * statistics.median(full):.1f} ms "
          f"({1e6 * statistics.median(full) / shards:.0f} µs/shard), "
          f"refits during ticks: {cache.refits - refits_before}")

    tracemalloc.start()
    tick(NOW + 10 * ticks, True, fixed)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"memory: peak allocated during one full tick {peak / 1e3:.0f} kB (tracemalloc); "
          f"process max RSS {rss:.0f} MB (histories + fitted paths + interpreter)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shards", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--method", default="holt-winters",
                        choices=["holt-winters", "seasonal-naive"])
    args = parser.parse_args()
    run(args.shards, args.ticks, args.method)


if __name__ == "__main__":
    main()
