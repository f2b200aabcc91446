"""Holt-Winters and seasonal-naive forecasts on named scenarios, plus properties of any forecast."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.forecast_series import DAY, T0, daily, truth
from voxscale.forecast import HoltWinters, SeasonalNaive
from voxscale.series import History

HOUR = 3600.0


def test_a_flat_series_forecasts_its_level() -> None:
    history = History.of(T0, 60, np.random.default_rng(1).normal(50.0, 1.0, 3 * 1440))
    forecast = HoltWinters().forecast(history, 120, history.end + 60)
    assert forecast is not None
    assert forecast.method == "holt-winters(daily)"
    assert forecast.mean == pytest.approx(50.0, rel=0.05)
    assert forecast.mean <= forecast.upper < 60.0


@pytest.mark.parametrize(
    "hour_of_day",
    [6.0, 18.0, 12.0],
    ids=["at-the-peak", "at-the-trough", "on-the-way-down"],
)
def test_a_pure_daily_sine_is_forecast_at_the_right_height(hour_of_day: float) -> None:
    history = daily(4, noise=2.0)
    now = history.end + hour_of_day * HOUR + 300  # the 5th day at that hour
    forecast = HoltWinters().forecast(history, HOUR, now)
    expected = max(truth(t) for t in np.linspace(now, now + HOUR, 61))
    assert forecast is not None
    assert forecast.mean == pytest.approx(expected, rel=0.05)


def test_a_growing_trend_is_forecast_above_yesterday() -> None:
    history = daily(5, base=100.0, growth_per_day=20.0, noise=1.0)
    now = history.end + 300
    forecast = HoltWinters().forecast(history, HOUR, now)
    yesterday = SeasonalNaive().forecast(history, HOUR, now)
    assert forecast is not None and yesterday is not None
    assert forecast.mean > yesterday.mean
    assert forecast.mean == pytest.approx(
        max(truth(t, growth=20.0) for t in np.linspace(now, now + HOUR, 61)), rel=0.05
    )


@pytest.mark.parametrize(
    ("gap_start_hour", "gap_hours"),
    [(30.0, 0.5), (40.0, 3.0), (60.0, 8.0)],
    ids=["half-hour-gap", "three-hour-gap", "eight-hour-gap"],
)
def test_gaps_are_filled_and_the_shape_survives(gap_start_hour: float, gap_hours: float) -> None:
    history = daily(4, noise=2.0)
    values = history.values.copy()
    lo = int(gap_start_hour * HOUR / history.step)
    values[lo : lo + int(gap_hours * HOUR / history.step)] = np.nan
    gappy = History(history.start, history.step, values)
    now = history.end + 6 * HOUR
    forecast = HoltWinters().forecast(gappy, HOUR, now)
    assert forecast is not None
    assert forecast.mean == pytest.approx(150.0, rel=0.05)


@pytest.mark.parametrize(
    ("days", "method"),
    [
        (1.5, "seasonal-naive"),
        (0.5, "naive"),
        (2.5, "holt-winters(daily)"),
        (15, "holt-winters(daily+weekly)"),
    ],
    ids=["under-two-days", "under-one-day", "over-two-days", "over-two-weeks"],
)
def test_the_method_follows_how_much_history_there_is(days: float, method: str) -> None:
    history = daily(days, noise=1.0)
    forecast = HoltWinters().forecast(history, 600, history.end)
    assert forecast is not None
    assert forecast.method == method


def test_seasonal_naive_repeats_the_same_time_yesterday() -> None:
    history = daily(1.5)
    now = history.end + 300
    forecast = SeasonalNaive().forecast(history, 0, now)
    assert forecast is not None
    assert forecast.mean == pytest.approx(truth(now), abs=0.5)


def _nan_mostly(n: int) -> History:
    values = np.full(n, np.nan)
    values[::4] = 10.0
    return History.of(T0, 60, values)


@pytest.mark.parametrize(
    "history",
    [History.of(T0, 60, []), History.of(T0, 60, np.full(500, np.nan)), _nan_mostly(2000)],
    ids=["empty", "all-nan", "three-quarters-missing"],
)
@pytest.mark.parametrize("model", [HoltWinters(), SeasonalNaive()], ids=["hw", "snaive"])
def test_unusable_history_gives_no_forecast_not_zero(
    history: History, model: HoltWinters | SeasonalNaive
) -> None:
    assert model.forecast(history, 120, T0 + DAY) is None


def test_trailing_missing_data_forecasts_from_the_last_observation() -> None:
    history = daily(3)
    values = history.values.copy()
    values[-12:] = np.nan  # the last hour never arrived
    forecast = HoltWinters().forecast(History(history.start, history.step, values), 600, history.end)
    assert forecast is not None
    assert math.isfinite(forecast.mean)


def test_the_upper_bound_widens_with_the_quantile() -> None:
    history = daily(4, noise=5.0)
    now = history.end + 300
    low = HoltWinters(quantile=0.6).forecast(history, HOUR, now)
    high = HoltWinters(quantile=0.99).forecast(history, HOUR, now)
    assert low is not None and high is not None
    assert low.mean == pytest.approx(high.mean)
    assert high.upper > low.upper > low.mean


rates = st.one_of(st.floats(0, 1e5), st.just(math.nan))


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(rates, max_size=400),
    step=st.sampled_from([60.0, 300.0]),
    horizon=st.floats(0, 7200),
    quantile=st.floats(0.5, 0.999),
    ahead=st.floats(0, 3600),
)
def test_any_forecast_is_finite_with_upper_at_least_mean_at_least_zero(
    values: list[float], step: float, horizon: float, quantile: float, ahead: float
) -> None:
    history = History.of(T0, step, values)
    # A 2-hour season so short generated series reach the Holt-Winters path too.
    for model in (HoltWinters(2 * HOUR, quantile), SeasonalNaive(2 * HOUR, quantile)):
        forecast = model.forecast(history, horizon, history.end + ahead)
        if forecast is None:
            continue
        assert math.isfinite(forecast.mean) and math.isfinite(forecast.upper)
        assert forecast.upper >= forecast.mean >= 0.0
        assert forecast.horizon_seconds == horizon
