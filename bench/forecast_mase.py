"""Print MASE of Holt-Winters vs seasonal-naive on the bundled traces, and fit / cached-tick times.

Run: .venv/bin/python bench/forecast_mase.py
Day-ahead rolling origin over the last 7 days of each trace (see tests/test_forecast_mase.py).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from voxscale.forecast import ForecastCache, HoltWinters, SeasonalNaive
from voxscale.forecast.evaluate import rolling_origin
from voxscale.series import History
from voxscale_lab.traces import load_trace

TRACES = Path(__file__).resolve().parents[1] / "examples" / "traces"
DAY = 86400.0
NATIVE = 10**6
CASES = [
    ("nyc_taxi.csv", 1800.0),
    ("elb_request_count_8c0756.csv", 300.0),
    ("Twitter_volume_AAPL.csv", 300.0),
]


def mase_table() -> None:
    models = [
        ("holt-winters", HoltWinters()),
        ("seasonal-naive(daily)", SeasonalNaive(DAY, max_per_season=NATIVE)),
        ("seasonal-naive(weekly)", SeasonalNaive(7 * DAY, max_per_season=NATIVE)),
    ]
    print(f"{'trace':32} {'model':24} {'MASE':>6}  per held-out day")
    for trace, step in CASES:
        history = load_trace(TRACES / trace).rate(step)
        for name, model in models:
            score = rolling_origin(history, model, origins=7, horizon_seconds=DAY, scale_season_seconds=DAY)
            days = " ".join(f"{s:.2f}" for s in score.per_origin)
            print(f"{trace:32} {name:24} {score.mase:6.3f}  {days}")


def one_minute_week(weeks: float = 1.0) -> History:
    """7 days of 1-minute nyc_taxi-shaped rates (the 30-minute trace repeated, with noise)."""
    coarse = load_trace(TRACES / "nyc_taxi.csv").rate(1800).values
    n = int(weeks * 7 * 1440)
    values = np.repeat(coarse, 30)[-n:] * np.random.default_rng(0).normal(1.0, 0.05, n)
    return History.of(1_420_000_000.0, 60.0, values)


def fit_times(history: History, repeats: int = 7) -> None:
    model = HoltWinters()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        path = model.path(history, 3600.0)
        seconds.append(time.perf_counter() - start)
    assert path is not None
    median_ms, min_ms = statistics.median(seconds) * 1e3, min(seconds) * 1e3
    print(
        f"fit on {len(history):,} 1-minute points ({path.method}): "
        f"median {median_ms:.1f} ms, min {min_ms:.1f} ms over {repeats} fits"
    )


def cached_tick_time(history: History, ticks: int = 2000) -> None:
    cache = ForecastCache()
    options = {"seasonality_seconds": DAY, "refit_every_seconds": 3600.0, "quantile": 0.9}
    cache.forecast("eu", history, 90.0, history.end, **options)
    start = time.perf_counter()
    for i in range(ticks):
        cache.forecast("eu", history, 90.0, history.end + 1.0 + i * 0.1, **options)
    per_tick = (time.perf_counter() - start) / ticks
    print(
        f"cached tick (re-anchor + window): {per_tick * 1e6:.0f} µs mean over {ticks}; refits={cache.refits}"
    )


def main() -> None:
    mase_table()
    week = one_minute_week()
    fit_times(week)
    fit_times(one_minute_week(2.0))
    cached_tick_time(week)


if __name__ == "__main__":
    main()
