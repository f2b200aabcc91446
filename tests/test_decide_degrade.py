"""Degrade, never guess: hold, then the fallback ladder; and resuming after a restart."""

from __future__ import annotations

import math

import pytest

from tests.test_decide_builders import T0, forecast, obs, policy
from voxscale.api import Recommendation, ScalerState
from voxscale.decide import Forecast, Policy, decide, restore_state
from voxscale.decide.degrade import forecast_only_ticks

OUTAGE = ("prometheus: connection refused",)


def outage_run(
    p: Policy, ticks: int, fc: Forecast | None, *, current: int = 12, ready: int = 10
) -> list[tuple[int, str, tuple[str, ...]]]:
    """Replicas, mode and degraded flags of `ticks` consecutive ticks without metrics."""
    state = ScalerState()
    out = []
    for i in range(ticks):
        o = obs(None, ready=ready, asked=current, errors=OUTAGE)
        d = decide(o, fc, p, state, T0 + 10 * i)
        out.append((d.replicas, d.mode, d.degraded))
        state, current = d.state, d.replicas
    return out


@pytest.mark.parametrize(
    "rate",
    [pytest.param(None, id="no-data"), pytest.param(math.nan, id="nan"),
     pytest.param(math.inf, id="infinite")],
)
def test_unusable_metrics_hold_the_larger_of_current_and_ready(rate: float | None) -> None:
    d = decide(obs(rate, ready=10, asked=12), None, policy(), ScalerState(), T0)
    assert (d.replicas, d.mode, d.term) == (12, "hold", "hold")
    assert d.degraded == ("metrics-unavailable",)
    assert d.state.failures == 1


def test_hold_never_goes_below_ready() -> None:
    d = decide(obs(None, ready=15, asked=12), None, policy(), ScalerState(), T0)
    assert d.replicas == 15


def test_ladder_goes_hold_then_forecast_only_then_floor() -> None:
    p = policy(target=14.0, failure_threshold=3, fallback_replicas=25,
               declared_warmup_seconds=20, interval_seconds=10)
    # horizon 30 s = 3 ticks of forecast-only after 2 ticks of hold.
    assert forecast_only_ticks(p, 30.0) == 3
    run = outage_run(p, 8, forecast(280.0))
    modes = [(mode, flags[-1]) for _, mode, flags in run]
    assert modes == [
        ("hold", "metrics-unavailable"),
        ("hold", "metrics-unavailable"),
        ("fallback", "fallback-forecast-only"),
        ("fallback", "fallback-forecast-only"),
        ("fallback", "fallback-forecast-only"),
        ("fallback", "fallback-floor"),
        ("fallback", "fallback-floor"),
        ("fallback", "fallback-floor"),
    ]
    assert [n for n, _, _ in run] == [12, 12, 20, 20, 20, 25, 25, 25]


def test_without_a_forecast_the_ladder_goes_straight_to_the_floor() -> None:
    run = outage_run(policy(failure_threshold=2), 3, None)
    assert [flags[-1] for _, _, flags in run] == [
        "metrics-unavailable", "fallback-floor", "fallback-floor",
    ]
    assert [n for n, _, _ in run] == [12, 12, 12]


@pytest.mark.parametrize(
    ("fc", "floor"),
    [
        pytest.param(forecast(14.0), None, id="forecast-lower-than-current"),
        pytest.param(None, 3, id="floor-lower-than-current"),
    ],
)
def test_fallback_never_scales_down(fc: Forecast | None, floor: int | None) -> None:
    p = policy(target=14.0, failure_threshold=1, fallback_replicas=floor)
    assert {n for n, _, _ in outage_run(p, 20, fc)} == {12}


def test_good_data_resets_the_failure_count() -> None:
    p = policy(target=14.0)
    d = decide(obs(None, ready=10, errors=OUTAGE), None, p, ScalerState(failures=2), T0)
    assert d.state.failures == 3
    d = decide(obs(140.0, ready=10), None, p, d.state, T0 + 10)
    assert (d.state.failures, d.mode, d.degraded) == (0, "stable", ())


def test_the_held_count_keeps_scale_down_waiting_after_metrics_return() -> None:
    p = policy(target=14.0)
    d = decide(obs(None, ready=20, errors=OUTAGE), None, p, ScalerState(), T0)
    d = decide(obs(14.0, ready=20), None, p, d.state, T0 + 10)
    assert d.replicas == 20


def test_the_hold_reason_names_the_error() -> None:
    d = decide(obs(None, ready=3, errors=OUTAGE), None, policy(), ScalerState(), T0)
    assert d.reasons[0] == "metrics: unusable (prometheus: connection refused), failure 1 of 3"


# ------------------------------------------------------------------ restart


def test_restore_without_stored_state_seeds_the_window_with_ready() -> None:
    state = restore_state(None, 20, T0)
    assert state.recommendations == [Recommendation(at=T0, replicas=20)]
    d = decide(obs(14.0, ready=20), None, policy(target=14.0), state, T0 + 10)
    assert d.replicas == 20


def test_restore_keeps_a_real_stored_state_untouched() -> None:
    stored = ScalerState(recommendations=[Recommendation(at=T0 - 50, replicas=7)], failures=1)
    assert restore_state(stored, 20, T0) is stored


def test_restore_treats_a_never_written_state_as_none_but_keeps_its_warmups() -> None:
    state = restore_state(ScalerState(warmup_samples=[90.0]), 5, T0)
    assert state.recommendations == [Recommendation(at=T0, replicas=5)]
    assert state.warmup_samples == [90.0]


def test_restore_is_idempotent_once_decide_has_run() -> None:
    state = restore_state(None, 20, T0)
    d = decide(obs(14.0, ready=20), None, policy(target=14.0), state, T0 + 10)
    assert restore_state(d.state, 20, T0 + 20) is d.state
