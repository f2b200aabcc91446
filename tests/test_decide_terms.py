"""The plan (forecast at the SLO, error-corrected), the observed term, and how they blend."""

from __future__ import annotations

import math

import pytest

from tests.test_decide_builders import T0, forecast, obs, policy
from voxscale.api import ScalerState
from voxscale.decide import Forecast, Policy
from voxscale.decide.blend import blend
from voxscale.decide.predictive import Plan, plan_replicas
from voxscale.decide.reactive import latency_correction, reactive_replicas

# ------------------------------------------------------------------ plan


def plan(fc: Forecast | None, p: Policy, *, observed: float | None = None,
         state: ScalerState | None = None, horizon: float = 70.0, now: float = T0) -> Plan:
    return plan_replicas(fc, observed, p, state or ScalerState(), horizon=horizon, now=now)


@pytest.mark.parametrize(
    ("upper", "expected"),
    [
        pytest.param(412.0, 30, id="412-rps-over-14-per-replica-is-30"),
        pytest.param(28.0, 2, id="an-exact-multiple-is-not-rounded-up"),
        pytest.param(28.1, 3, id="a-little-over-needs-one-more"),
        pytest.param(0.0, 0, id="no-load-forecast-needs-nothing"),
        pytest.param(-5.0, 0, id="a-negative-forecast-is-no-load"),
    ],
)
def test_the_plan_is_the_upper_bound_over_per_replica_rps(upper: float, expected: int) -> None:
    assert plan(forecast(upper), policy(target=14.0)).replicas == expected


def test_the_plan_sizes_the_bound_through_the_slo_capacity_model() -> None:
    # No target: 70 rps + 1.645·√(70 / 0.5 s) = 89.5 rps of p95 burst, at 20 rps per replica
    # that is 5 replicas; the old fixed 0.7 target would also give 5, but at 700 rps the
    # pooled headroom is 61.5 rps, 9 % (39 replicas), and the target's 43 % (50).
    p = policy(capacity_rps=20.0, target_utilization=None)
    assert plan(forecast(70.0), p).replicas == 5
    assert plan(forecast(700.0), p).replicas == 39


def test_under_a_target_override_the_bound_is_planned_at_full_capacity() -> None:
    # The bound at the quantile already is the headroom for a rise: 70 rps at 20 rps per
    # replica is 4, not 70 / (20 × 0.7) = 5; the observed rate keeps the target (5).
    p = policy(capacity_rps=20.0, target_utilization=0.7)
    assert plan(forecast(70.0), p).replicas == 4
    assert reactive_replicas(obs(70.0).metrics, 1, p).replicas == 5


def test_the_forecast_alone_keeps_the_no_forecast_headroom() -> None:
    # The forecast-only fallback has nothing observed to correct it: 70 / (20 × 0.7) = 5.
    p = policy(capacity_rps=20.0, target_utilization=None)
    need = plan_replicas(forecast(700.0), None, p, ScalerState(), horizon=70.0, now=T0,
                         capacity=p.capacity_without_forecast)
    assert need.replicas == 50
    assert "× target 0.7" in need.reasons[-1]


def test_the_plan_adds_what_the_forecast_missed_now() -> None:
    # Forecast expected 100 rps now and 150 at most over the horizon; 130 is observed: the
    # model is 30 low, so the plan sizes 150 + 30 = 180 rps -> ceil(180 / 14) = 13.
    got = plan(forecast(150.0, current=100.0), policy(target=14.0), observed=130.0)
    assert (got.replicas, got.rate) == (13, 180.0)
    assert got.reasons[0] == "plan: observed 130.0 rps > forecast 100.0 now: +30.0 rps carried for 70 s"


def test_the_miss_is_carried_for_one_horizon_then_dropped() -> None:
    p = policy(target=14.0)
    first = plan(forecast(150.0, current=100.0), p, observed=130.0)
    assert first.state is not None
    within = plan(forecast(150.0, current=100.0), p, observed=90.0, state=first.state, now=T0 + 60)
    assert within.rate == 180.0
    after = plan(forecast(150.0, current=100.0), p, observed=90.0, state=first.state, now=T0 + 71)
    assert after.rate == 150.0
    assert after.state is not None and after.state.forecast_miss_until is None


def test_a_miss_the_panic_window_sees_first_counts_this_tick_and_is_not_carried() -> None:
    # 100 rps expected now; the 1m rate says 110 (+10, carried), the 30-s window 160 (+60):
    # this tick plans 150 + 60 = 210 rps -> 15, and the next tick, the burst gone from the
    # panic window, still carries the 1m miss of 10 but not the 60.
    p = policy(target=14.0)
    fc = forecast(150.0, current=100.0)
    first = plan_replicas(fc, 110.0, p, ScalerState(), horizon=70.0, now=T0, burst=160.0)
    assert (first.replicas, first.rate) == (15, 210.0)
    assert first.reasons[1] == "plan: 160.0 rps in the panic window > forecast 100.0 now: +60.0 rps this tick"
    assert first.state is not None and first.state.forecast_miss == 10.0
    later = plan_replicas(fc, 100.0, p, first.state, horizon=70.0, now=T0 + 10, burst=100.0)
    assert later.rate == 160.0
    # A panic window below the forecast, or without data, changes nothing.
    for quiet in (90.0, math.nan, None):
        calm = plan_replicas(fc, 110.0, p, ScalerState(), horizon=70.0, now=T0, burst=quiet)
        assert calm.rate == 160.0


def test_an_observed_rate_below_the_forecast_takes_nothing_away() -> None:
    got = plan(forecast(150.0, current=100.0), policy(target=14.0), observed=60.0)
    assert got.rate == 150.0


def test_plan_reason_shows_the_numbers() -> None:
    need = plan(forecast(412.0, horizon=130.0), policy(target=14.0), horizon=130.0)
    assert need.reasons == (
        "plan: upper 412.0 rps over 130 s → 30 (14.0 rps/replica × target 1; fake)",
    )


def test_plan_notes_a_forecast_shorter_than_the_horizon() -> None:
    need = plan(forecast(100.0, horizon=60.0), policy(), horizon=130.0)
    assert "covers only 60 s" in need.reasons[0]


@pytest.mark.parametrize(
    ("enabled", "fc"),
    [
        pytest.param(True, None, id="no-forecast"),
        pytest.param(False, forecast(500.0), id="forecasting-disabled"),
        pytest.param(True, forecast(math.nan), id="nan-upper"),
        pytest.param(True, forecast(math.inf), id="infinite-upper"),
    ],
)
def test_the_plan_has_nothing_to_say_without_a_usable_forecast(enabled: bool, fc: object) -> None:
    p = policy(forecast_enabled=enabled)
    assert plan(fc, p).replicas is None  # type: ignore[arg-type]


def test_the_observed_rate_alone_keeps_growth_headroom() -> None:
    p = policy(capacity_rps=20.0, target_utilization=None)
    assert reactive_replicas(obs(70.0).metrics, 1, p, p.capacity_without_forecast).replicas == 5


# ------------------------------------------------------------------ reactive

SLO = 500.0


@pytest.mark.parametrize(
    ("rate", "latency", "ready", "expected"),
    [
        pytest.param(140.0, 300.0, 10, 10, id="rate-alone-when-latency-is-fine"),
        pytest.param(140.0, 540.0, 10, 10, id="inside-the-10pct-band-no-correction"),
        pytest.param(140.0, 551.0, 10, 12, id="just-over-the-band-corrects-by-the-ratio"),
        pytest.param(140.0, 900.0, 10, 18, id="1.8x-latency-asks-for-1.8x-ready"),
        pytest.param(140.0, 5000.0, 10, 20, id="10x-latency-is-capped-at-the-panic-threshold"),
        pytest.param(14.0, 5000.0, 1, 5, id="tiny-shard-cap-allows-4-more-pods"),
        pytest.param(280.0, 100.0, 30, 20, id="low-latency-never-drives-a-scale-down"),
        pytest.param(140.0, None, 10, 10, id="no-latency-series-rate-only"),
        pytest.param(140.0, math.nan, 10, 10, id="nan-latency-rate-only"),
        pytest.param(0.0, 900.0, 0, 0, id="nothing-ready-latency-is-meaningless"),
        pytest.param(280.0, 900.0, 10, 20, id="rate-wins-when-it-asks-for-more"),
    ],
)
def test_reactive_is_rate_corrected_upward_by_latency(
    rate: float, latency: float | None, ready: int, expected: int
) -> None:
    o = obs(rate, latency=latency, ready=ready)
    got = reactive_replicas(o.metrics, ready, policy(target=14.0, slo_latency_ms=SLO))
    assert got.replicas == expected


def test_latency_correction_ignores_warming_pods() -> None:
    # 4 ready at 2× SLO need 8; the 4 warming are that capacity coming, not a reason for 16.
    p = policy(slo_latency_ms=SLO)
    assert latency_correction(1000.0, 4, p).replicas == 8


def test_latency_correction_explains_itself() -> None:
    need = latency_correction(900.0, 10, policy(slo_latency_ms=SLO))
    assert need.reasons == (
        "reactive: latency 900 ms = 1.80× SLO 500 ms (> 1.10×): 10 ready × 1.80 = 18",
    )


def test_a_custom_tolerance_widens_the_dead_band() -> None:
    p = policy(slo_latency_ms=SLO, tolerance=0.5)
    assert latency_correction(700.0, 10, p).replicas is None
    assert latency_correction(800.0, 10, p).replicas == 16


# ------------------------------------------------------------------ blend


@pytest.mark.parametrize(
    ("predictive", "reactive", "desired", "term"),
    [
        pytest.param(30, 20, 30, "predictive", id="forecast-ahead-of-a-ramp-wins"),
        pytest.param(12, 20, 20, "reactive", id="load-above-the-forecast-wins"),
        pytest.param(20, 20, 20, "reactive", id="a-tie-goes-to-what-is-observed"),
        pytest.param(None, 7, 7, "reactive", id="no-forecast-reactive-alone"),
        pytest.param(0, 0, 0, "reactive", id="no-load-anywhere"),
    ],
)
def test_blend_takes_the_larger_term(
    predictive: int | None, reactive: int, desired: int, term: str
) -> None:
    got = blend(predictive, reactive)
    assert (got.desired, got.term) == (desired, term)


def test_blend_says_why_when_the_terms_disagree() -> None:
    assert blend(30, 20).reasons == ("blend: predictive 30 > reactive 20: forecast leads",)
    assert blend(None, 20).reasons == ()


@pytest.mark.parametrize(("predictive", "reactive"), [(30, 20), (12, 20), (20, 20), (None, 7)])
def test_blend_without_explaining_gives_the_same_count_and_term_without_a_line(
    predictive: int | None, reactive: int
) -> None:
    assert blend(predictive, reactive, explain=False) == blend(predictive, reactive)._replace(reasons=())
