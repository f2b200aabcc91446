"""decide() as a whole: the steps in order, the reasons it gives, and that it is pure."""

from __future__ import annotations

from dataclasses import replace

from tests.test_decide_builders import T0, forecast, obs, policy
from voxscale.api import Recommendation, ScalerState
from voxscale.decide import decide


def test_a_forecast_led_scale_up_explains_every_step_that_mattered() -> None:
    p = policy(target=14.0, slo_latency_ms=500.0, declared_warmup_seconds=120,
               interval_seconds=10, max_replicas=100)
    d = decide(obs(140.0, latency=300.0, ready=10, warming=2), forecast(412.0, horizon=130),
               p, ScalerState(), T0)
    assert (d.replicas, d.mode, d.term) == (30, "panic", "predictive")
    assert (d.predictive, d.reactive) == (30, 10)
    assert (d.horizon_seconds, d.learned_warmup_seconds) == (130.0, 120.0)
    assert d.reasons == (
        "plan: upper 412.0 rps over 130 s → 30 (14.0 rps/replica × target 1; fake)",
        "observed: rate 140.0 rps → 10 (14.0 rps/replica × target 1)",
        "blend: predictive 30 > reactive 10: forecast leads",
        "panic: enter, desired 30 ≥ 2 × 10 ready; no scale-down and no scale-up limit for the next 60 s",
        "warm-up: need 30 vs 10 ready + 2 warming = 12: add 18",
    )


def test_the_learned_warmup_stretches_the_horizon() -> None:
    state = ScalerState(warmup_samples=[200.0, 210.0])
    d = decide(obs(14.0), None, policy(declared_warmup_seconds=60), state, T0)
    assert (d.learned_warmup_seconds, d.horizon_seconds) == (210.0, 220.0)


def test_decide_is_pure_same_inputs_same_decision_and_inputs_untouched() -> None:
    state = ScalerState(recommendations=[Recommendation(at=T0 - 100, replicas=9)], failures=2)
    before = state.model_dump()
    args = (obs(100.0, latency=800.0, ready=5), forecast(90.0), policy(target=14.0), state, T0)
    assert decide(*args) == decide(*args)
    assert state.model_dump() == before


def test_next_state_records_the_recommendation_and_the_scale_time() -> None:
    d = decide(obs(140.0, ready=8), None, policy(target=14.0), ScalerState(failures=1), T0)
    assert d.replicas == 10
    assert d.state.recommendations[-1] == Recommendation(at=T0, replicas=10)
    assert (d.state.last_scale_up_at, d.state.last_replicas, d.state.failures) == (T0, 10, 0)


def test_a_held_scale_down_names_current_as_the_winning_term() -> None:
    state = ScalerState(recommendations=[Recommendation(at=T0 - 60, replicas=20)])
    d = decide(obs(14.0, ready=20), None, policy(target=14.0), state, T0)
    assert (d.replicas, d.term) == (20, "current")


def test_an_uncalibrated_plan_leaves_observed_load_its_growth_headroom() -> None:
    # 700 rps at 20 rps per replica: pooled headroom asks 39, growth headroom (0.7) asks 50.
    # A band never scored against this shard's own rises is no evidence of how fast it rises.
    p = policy(capacity_rps=20.0, target_utilization=None, max_replicas=100)
    o = obs(700.0, ready=50)
    raw = decide(o, forecast(700.0, calibrated=False), p, ScalerState(), T0)
    scored = decide(o, forecast(700.0, calibrated=True), p, ScalerState(), T0)
    assert (raw.predictive, raw.reactive) == (39, 50)
    assert (scored.predictive, scored.reactive) == (39, 39)


def test_without_explaining_a_decision_is_the_same_but_for_its_reasons() -> None:
    # The replay's path (explain=False) must decide exactly what the operator decides: a
    # forecast-led panic, a latency breach and a burst under a carried miss, a held
    # scale-down, and the degrade ladder with no rate at all.
    p = policy(target=14.0, declared_warmup_seconds=120, max_replicas=100)
    missed = ScalerState(forecast_miss=30.0, forecast_miss_until=T0 + 60,
                         recommendations=[Recommendation(at=T0 - 60, replicas=20)])
    cases = [
        (obs(140.0, latency=300.0, ready=10, warming=2), forecast(412.0, horizon=130), ScalerState()),
        (obs(300.0, panic_rate=600.0, latency=900.0, ready=10),
         forecast(250.0, current=200.0, calibrated=True), missed),
        (obs(14.0, ready=20), None, missed),
        (obs(None, ready=4), forecast(100.0), ScalerState(failures=2)),
    ]
    for o, f, state in cases:
        full = decide(o, f, p, state, T0)
        assert full.reasons
        assert decide(o, f, p, state, T0, explain=False) == replace(full, reasons=())
