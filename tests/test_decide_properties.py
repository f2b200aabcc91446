"""Properties of decide() that must hold for any input, checked with hypothesis."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_decide_builders import T0, FakeShard, forecast, obs, policy
from voxscale.api import Recommendation, ScalerState
from voxscale.decide import Forecast, Observation, Policy, decide

MAX = 200


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    low = draw(st.integers(0, 20))
    return policy(
        target=draw(st.floats(1.0, 500.0)),
        min_replicas=low,
        max_replicas=draw(st.integers(max(low, 1), MAX)),
        slo_latency_ms=draw(st.floats(10.0, 5000.0)),
        tolerance=draw(st.floats(0.0, 0.5)),
        panic_threshold=draw(st.floats(1.0, 10.0)),
        scale_up_max_pods=draw(st.integers(1, 10)),
        scale_down_max_percent=draw(st.floats(1.0, 100.0)),
        failure_threshold=draw(st.integers(1, 5)),
        fallback_replicas=draw(st.none() | st.integers(0, MAX)),
        forecast_enabled=draw(st.booleans()),
    )


@st.composite
def states(draw: st.DrawFn) -> ScalerState:
    recs = draw(st.lists(st.tuples(st.floats(-600.0, 0.0), st.integers(0, MAX)), max_size=8))
    panic = draw(st.none() | st.floats(-120.0, 120.0))
    return ScalerState(
        recommendations=[Recommendation(at=T0 + at, replicas=n) for at, n in sorted(recs)],
        panic_since=None if panic is None else T0 - 60,
        panic_until=None if panic is None else T0 + panic,
        failures=draw(st.integers(0, 20)),
        last_scale_up_at=draw(st.none() | st.floats(T0 - 60, T0)),
        warmup_samples=draw(st.lists(st.floats(0.0, 600.0), max_size=5)),
    )


latencies = st.none() | st.floats(0.0, 100_000.0) | st.just(math.nan)
rates = st.none() | st.floats(0.0, 50_000.0) | st.just(math.nan)
forecasts = st.none() | st.floats(0.0, 50_000.0).map(forecast)


@st.composite
def observations(draw: st.DrawFn, rate: st.SearchStrategy[float | None] = rates) -> Observation:
    return obs(
        draw(rate),
        latency=draw(latencies),
        ready=draw(st.integers(0, MAX)),
        warming=draw(st.integers(0, 20)),
        pending=draw(st.integers(0, 20)),
        asked=draw(st.integers(0, MAX)),
    )


@settings(max_examples=300, deadline=None)
@given(observations(), forecasts, policies(), states())
def test_replicas_always_stay_within_min_and_max(
    o: Observation, fc: Forecast | None, p: Policy, s: ScalerState
) -> None:
    d = decide(o, fc, p, s, T0)
    assert p.min_replicas <= d.replicas <= p.max_replicas
    assert len(d.state.recommendations) <= 64 and len(d.reasons) <= 16


@settings(max_examples=300, deadline=None)
@given(observations(rate=st.none() | st.just(math.nan)), forecasts, policies(), states())
def test_missing_metrics_never_scale_below_current(
    o: Observation, fc: Forecast | None, p: Policy, s: ScalerState
) -> None:
    d = decide(o, fc, p, s, T0)
    assert d.replicas >= min(o.pods.asked, p.max_replicas)
    assert d.mode in ("hold", "fallback") and "metrics-unavailable" in d.degraded


@settings(max_examples=300, deadline=None)
@given(
    o=observations(), fc=forecasts, p=policies(), s=states(),
    loads=st.tuples(st.floats(0.0, 50_000.0), st.floats(0.0, 50_000.0)),
)
def test_more_load_never_means_fewer_replicas(
    *, o: Observation, fc: Forecast | None, p: Policy, s: ScalerState, loads: tuple[float, float]
) -> None:
    low, high = sorted(loads)

    def at(rate: float) -> int:
        m = o.metrics
        lighter = Observation(type(m)(at=m.at, rate=rate, latency_ms=m.latency_ms), o.pods)
        return decide(lighter, fc, p, s, T0).replicas
    assert at(low) <= at(high)


@settings(max_examples=40, deadline=None)
@given(
    load=st.floats(0.0, 600.0),
    ready=st.integers(0, 40),
    warmup=st.floats(0.0, 180.0),
)
def test_a_constant_load_settles_and_stays(load: float, ready: int, warmup: float) -> None:
    p = policy(capacity_rps=20.0, target_utilization=0.7, declared_warmup_seconds=warmup,
               min_replicas=1, max_replicas=60)
    shard = FakeShard.with_ready(p, warmup, ready)
    shard.run(T0, 2400, lambda t: load)
    tail = [d.replicas for now, *_, d in shard.history if now >= T0 + 1500]
    assert len(set(tail)) == 1, tail
    settled = tail[0]
    assert settled == max(p.min_replicas, min(p.max_replicas, math.ceil(load / 14.0 - 1e-9)))
