"""ForecastCache on a fake clock: refits counted exactly, cheap re-anchoring in between."""

from __future__ import annotations

import numpy as np
import pytest

from tests.forecast_series import daily
from voxscale.forecast import ForecastCache, HoltWinters
from voxscale.series import History

HOUR = 3600.0
SETTINGS = {"seasonality_seconds": 86400.0, "refit_every_seconds": HOUR, "quantile": 0.9}


def _ticks(cache: ForecastCache, history: History, start: float, seconds: float, every: float) -> None:
    """Call the cache like the control loop: once per interval, on what was visible then."""
    for now in np.arange(start, start + seconds, every):
        cache.forecast("eu", history.until(now), 90.0, float(now), **SETTINGS)


@pytest.mark.parametrize(
    ("seconds", "refits"),
    [(10.0, 1), (HOUR - 10, 1), (HOUR, 1), (HOUR + 10, 2), (3 * HOUR + 10, 4)],
    ids=["one-tick", "just-under-an-hour", "exactly-an-hour-of-ticks", "into-the-second-hour", "three-hours"],
)
def test_the_model_is_refitted_once_per_refit_period(seconds: float, refits: int) -> None:
    full = daily(6, step=60.0)
    cache = ForecastCache(spread=0.0)
    _ticks(cache, full, full.start + 3 * 86400, seconds, 10.0)
    assert cache.refits == refits


def test_a_new_key_or_changed_settings_refit_and_the_same_ones_do_not() -> None:
    history = daily(3, step=60.0)
    cache, now = ForecastCache(spread=0.0), history.end
    cache.forecast("eu", history, 90, now, **SETTINGS)
    cache.forecast("eu", history, 90, now + 10, **SETTINGS)
    assert cache.refits == 1
    cache.forecast("us", history, 90, now + 10, **SETTINGS)
    assert cache.refits == 2
    cache.forecast("eu", history, 90, now + 20, **{**SETTINGS, "quantile": 0.99})
    assert cache.refits == 3
    cache.forecast("eu", history, 90, now + 30, **SETTINGS, method="seasonal-naive")
    assert cache.refits == 4


def test_a_clock_that_goes_backwards_forces_a_refit() -> None:
    history = daily(3, step=60.0)
    cache = ForecastCache(spread=0.0)
    cache.forecast("eu", history, 90, history.end, **SETTINGS)
    cache.forecast("eu", history, 90, history.end - 600, **SETTINGS)
    assert cache.refits == 2


def test_a_horizon_beyond_the_cached_path_forces_a_refit() -> None:
    history = daily(3, step=60.0)
    cache = ForecastCache(spread=0.0)
    cache.forecast("eu", history, 90, history.end, **SETTINGS)
    cache.forecast("eu", history, 3 * HOUR, history.end + 10, **SETTINGS)
    assert cache.refits == 2


def test_the_first_cached_forecast_is_the_fresh_model_forecast() -> None:
    history = daily(3, step=60.0, noise=2.0)
    cached = ForecastCache(spread=0.0).forecast("eu", history, 90, history.end, **SETTINGS)
    fresh = HoltWinters().forecast(history, 90, history.end)
    assert cached == fresh


def test_between_refits_the_cached_path_follows_a_level_change() -> None:
    base = daily(4, step=60.0, noise=1.0)
    cut = len(base) - 30  # the fit sees all but the last 30 minutes
    cache = ForecastCache(spread=0.0)
    first = cache.forecast(
        "eu", History(base.start, 60, base.values[:cut]), 90, base.start + (cut - 1) * 60, **SETTINGS
    )
    doubled = base.values.copy()
    doubled[cut:] *= 2.0  # traffic doubles right after the fit
    later = cache.forecast("eu", History(base.start, 60, doubled), 90, base.end, **SETTINGS)
    steady = cache.forecast("eu", base, 90, base.end, **SETTINGS)
    assert cache.refits == 1
    assert first is not None and later is not None and steady is not None
    assert later.mean == pytest.approx(2.0 * steady.mean, rel=0.1)
    assert later.upper >= later.mean


def test_an_unusable_history_returns_none_and_recovers_when_data_returns() -> None:
    history = daily(3, step=60.0)
    empty = History(history.start, 60, np.full(len(history), np.nan))
    cache = ForecastCache(spread=0.0)
    assert cache.forecast("eu", empty, 90, history.end, **SETTINGS) is None
    assert cache.forecast("eu", history, 90, history.end + 10, **SETTINGS) is not None
    assert cache.refits == 2


def test_an_unknown_method_is_an_error_that_names_the_choices() -> None:
    history = daily(3, step=60.0)
    with pytest.raises(ValueError, match="seasonal-naive"):
        ForecastCache(spread=0.0).forecast("eu", history, 90, history.end, **SETTINGS, method="prophet")


def test_refits_of_shards_fitted_together_spread_over_the_period() -> None:
    """Keys first fitted in one tick must not all refit in one tick an hour later."""
    history = daily(3, step=60.0)
    cache, start = ForecastCache(), history.end
    keys = [f"shard-{i}" for i in range(24)]
    for key in keys:
        cache.forecast(key, history, 90, start, **SETTINGS)
    refit_ticks = []
    for tick in range(int(1.5 * HOUR // 10)):
        before = cache.refits
        for key in keys:
            cache.forecast(key, history, 90, start + 10 * (tick + 1), **SETTINGS)
        refit_ticks += [tick] * (cache.refits - before)
    assert len(refit_ticks) == len(keys)  # every key refitted exactly once in 1.5 h
    busiest = max(refit_ticks.count(t) for t in set(refit_ticks))
    assert busiest <= 3, f"{busiest} of {len(keys)} refits landed in one tick"
    assert min(refit_ticks) * 10 >= 0.75 * HOUR - 10
