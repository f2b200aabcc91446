"""The horizon error model: forecasts served are scored against what was then observed."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.forecast_series import T0, daily
from voxscale.decide.types import Forecast
from voxscale.forecast import ForecastCache
from voxscale.forecast.errors import HorizonErrors, observed_max
from voxscale.series import History

STEP = 60.0
HORIZON = 130.0


def _flat(minutes: int, rate: float, start: float = T0) -> History:
    return History.of(start, STEP, np.full(minutes, rate))


def _served(errors: HorizonErrors, history: History, mean: float, seconds: float) -> None:
    """Issue a forecast of `mean` every 10 s over `seconds`, scoring on what was visible."""
    for now in np.arange(T0, T0 + seconds, 10.0):
        visible = history.until(float(now) - STEP)  # a sample is complete one step after it starts
        errors.score(visible, float(now))
        errors.issue(float(now), HORIZON, mean)


def _forecast(mean: float, upper: float) -> Forecast:
    return Forecast(T0, HORIZON, mean, upper, "holt-winters(daily)")


@pytest.mark.parametrize(
    ("start", "until", "expected"),
    [
        pytest.param(T0 + 30, T0 + 30, 2.0, id="a-point-inside-one-sample-reads-that-sample"),
        pytest.param(T0 + 30, T0 + 200, 4.0, id="a-window-reads-every-sample-it-touches"),
        pytest.param(T0 + 130, T0 + 170, None, id="a-window-of-missing-samples-is-no-data"),
        pytest.param(T0 + 600, T0 + 700, None, id="a-window-after-the-history-is-no-data"),
    ],
)
def test_the_observed_max_covers_every_sample_the_window_touches(
    start: float, until: float, expected: float | None
) -> None:
    history = History.of(T0, STEP, [2.0, 3.0, math.nan, 4.0, 1.0])
    assert observed_max(history, start, until) == expected


def test_a_forecast_is_scored_only_once_its_window_is_fully_observed() -> None:
    errors = HorizonErrors()
    errors.issue(T0, HORIZON, 100.0)
    errors.score(_flat(2, 100.0), T0 + 120)  # samples up to T0 + 120: the window ends at 130
    assert not errors.scored
    errors.score(_flat(3, 100.0), T0 + 180)
    assert [e for _, e in errors.scored] == [0.0]


def test_nothing_is_calibrated_before_half_an_hour_of_forecasts_was_scored() -> None:
    errors = HorizonErrors()
    _served(errors, _flat(60, 120.0), 100.0, 20 * 60.0)
    raw = _forecast(100.0, 300.0)
    assert errors.calibrate(raw, 0.9) == raw


def test_a_model_that_under_forecasts_by_a_fifth_is_lifted_to_what_was_observed() -> None:
    errors = HorizonErrors()
    _served(errors, _flat(120, 120.0), 100.0, 90 * 60.0)
    got = errors.calibrate(_forecast(100.0, 300.0), 0.9)
    assert got.mean == pytest.approx(120.0)
    assert got.upper == pytest.approx(120.0)  # observed exactly 120 every time: no spread
    assert "p90 error +20%" in got.method


def test_a_wide_model_interval_is_narrowed_to_the_errors_actually_seen() -> None:
    # The diagnosis on ELB: the season-fit interval was 3× the rate while the windows it had
    # to cover were within ±10 % of the mean.
    rng = np.random.default_rng(0)
    history = History.of(T0, STEP, 100.0 * (1.0 + rng.uniform(-0.1, 0.1, 200)))
    errors = HorizonErrors()
    _served(errors, history, 100.0, 120 * 60.0)
    got = errors.calibrate(_forecast(100.0, 330.0), 0.9)
    assert 100.0 <= got.upper < 111.0
    assert got.mean <= got.upper


def test_errors_older_than_the_window_are_forgotten() -> None:
    errors = HorizonErrors(window_seconds=3600.0)
    _served(errors, _flat(400, 100.0), 100.0, 5 * 3600.0)
    last_tick = T0 + 5 * 3600.0 - 10.0
    assert errors.scored[0][0] >= last_tick - 3600.0


def test_a_clock_that_goes_backwards_starts_the_errors_afresh() -> None:
    errors = HorizonErrors()
    _served(errors, _flat(120, 100.0), 100.0, 90 * 60.0)
    errors.issue(T0, HORIZON, 100.0)
    assert not errors.scored and len(errors.pending) == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-3.0, 3.0), min_size=2, max_size=50),
    st.floats(0.0, 1e5),
    st.floats(0.5, 0.999),
)
def test_a_calibrated_forecast_is_finite_with_upper_at_least_mean_at_least_zero(
    logs: list[float], mean: float, quantile: float
) -> None:
    errors = HorizonErrors(min_span_seconds=0.0)
    errors.scored.extend((T0 + i, e) for i, e in enumerate(logs))
    got = errors.calibrate(_forecast(mean, mean * 3), quantile)
    assert math.isfinite(got.mean) and math.isfinite(got.upper)
    assert got.upper >= got.mean >= 0.0


def test_the_cache_serves_a_calibrated_bound_on_a_smooth_day() -> None:
    history = daily(4, step=STEP, noise=2.0)
    plain, calibrated = ForecastCache(spread=0.0, calibrate=False), ForecastCache(spread=0.0)
    start = T0 + 3 * 86400.0
    settings_ = {"seasonality_seconds": 86400.0, "refit_every_seconds": 3600.0, "quantile": 0.9}
    for now in np.arange(start, start + 2 * 3600.0, 10.0):
        seen = history.until(float(now) - STEP)
        a = plain.forecast("eu", seen, HORIZON, float(now), **settings_)
        b = calibrated.forecast("eu", seen, HORIZON, float(now), **settings_)
    assert a is not None and b is not None
    assert "error" in b.method and "error" not in a.method
    # A smooth day keeps a tight band: the bound stays within 5 % of the model's mean.
    assert a.mean * 0.95 < b.mean <= b.upper < a.mean * 1.05


def test_the_error_band_is_recomputed_at_most_once_a_minute() -> None:
    errors = HorizonErrors()
    _served(errors, _flat(120, 120.0), 100.0, 90 * 60.0)
    at = T0 + 90 * 60.0
    first = errors.calibrate(Forecast(at, HORIZON, 100.0, 300.0, "hw"), 0.9)
    errors.scored.extend((at, 20.0) for _ in range(5000))  # a burst of huge errors: +20 on the √ scale
    same_minute = errors.calibrate(Forecast(at + 50, HORIZON, 100.0, 300.0, "hw"), 0.9)
    next_minute = errors.calibrate(Forecast(at + 60, HORIZON, 100.0, 300.0, "hw"), 0.9)
    assert same_minute.upper == first.upper
    assert next_minute.upper > 2 * first.upper


def _served_against(errors: HorizonErrors, history: History, means: np.ndarray, seconds: float) -> None:
    """Issue forecast `means[i]` at the i-th 10-s tick, with the last visible rate beside it."""
    for i, now in enumerate(np.arange(T0, T0 + seconds, 10.0)):
        visible = history.until(float(now) - STEP)
        errors.score(visible, float(now))
        last = float(visible.values[-1]) if len(visible) else None
        errors.issue(float(now), HORIZON, float(means[i % means.size]), last)


def test_a_model_with_no_skill_is_replaced_by_the_last_rate_and_its_recent_rise() -> None:
    # A steady 100 req/s, and a model whose level is wrong by ±40 % tick to tick: its calibrated
    # band must cover its own misses, while "the last rate holds" was exactly right every time.
    errors = HorizonErrors()
    noisy = np.array([60.0, 140.0, 100.0, 70.0, 130.0])
    _served_against(errors, _flat(120, 100.0), noisy, 90 * 60.0)
    skill = errors.skill(0.9)
    assert skill is not None and skill.persistence_loss < skill.model_loss
    got = errors.calibrate(_forecast(100.0, 300.0), 0.9, last=100.0)
    assert got.upper == pytest.approx(max(got.mean, 100.0))
    assert got.current == 100.0
    assert got.method.startswith("last rate, p90 rise +0%")


def test_a_model_that_sees_the_load_move_keeps_its_own_band() -> None:
    # Load alternates 50 / 150 each minute and the model forecasts each window's peak: it beats
    # "the last rate holds", which is 200 % low after every quiet minute.
    minutes = 120
    load = np.where(np.arange(minutes) % 2 == 0, 50.0, 150.0)
    errors = HorizonErrors()
    _served_against(errors, History.of(T0, STEP, load), np.array([150.0]), 90 * 60.0)
    skill = errors.skill(0.9)
    assert skill is not None and skill.model_loss <= skill.persistence_loss
    got = errors.calibrate(_forecast(150.0, 300.0), 0.9, last=50.0)
    assert got.method.startswith("holt-winters(daily), p90 error")


def test_without_explaining_a_calibrated_forecast_keeps_its_numbers_and_its_model_method() -> None:
    # Both branches: the model's own band, and the last rate standing in for a model with no skill.
    quiet = np.where(np.arange(120) % 2 == 0, 50.0, 150.0)
    for load, means, last in ((quiet, np.array([150.0]), 50.0),
                              (np.full(120, 100.0), np.array([60.0, 140.0, 100.0, 70.0, 130.0]), 100.0)):
        errors = HorizonErrors()
        _served_against(errors, History.of(T0, STEP, load), means, 90 * 60.0)
        full = errors.calibrate(_forecast(150.0, 300.0), 0.9, last=last)
        bare = errors.calibrate(_forecast(150.0, 300.0), 0.9, last=last, explain=False)
        assert full.method != bare.method == "holt-winters(daily)"
        assert replace(bare, method=full.method) == full


def test_without_a_last_rate_the_gate_is_not_consulted() -> None:
    errors = HorizonErrors()
    _served_against(errors, _flat(120, 100.0), np.array([60.0, 140.0]), 90 * 60.0)
    got = errors.calibrate(_forecast(100.0, 300.0), 0.9, last=None)
    assert got.method.startswith("holt-winters(daily)")
