"""Knative-style timelines: a fake clock, a fake shard whose pods warm up, decide() every tick."""

from __future__ import annotations

from tests.test_decide_builders import T0, FakeShard, oracle, policy
from voxscale.api import ScalerState
from voxscale.decide import Observation, PodCounts, ShardMetrics, decide

WARMUP = 120.0
P = policy(
    capacity_rps=20.0, target_utilization=0.7, declared_warmup_seconds=WARMUP,
    interval_seconds=10, min_replicas=2, max_replicas=60, slo_latency_ms=500.0,
)


def ramp(t: float) -> float:
    """40 rps until +10 min, then up 2 rps every 10 s to 400 rps at +40 min, then flat."""
    return 40.0 + min(max(0.0, t - T0 - 600) / 10 * 2, 360.0)


def test_a_ramp_seen_by_the_forecast_has_capacity_ready_before_the_breach() -> None:
    shard = FakeShard.with_ready(P, WARMUP, 3)
    shard.run(T0, 3600, ramp, oracle(ramp))
    for now, load, ready, _, _ in shard.history:
        # Ready pods can always serve the load at the SLO (capacity, not target): no breach.
        assert ready * P.capacity_rps >= load, f"short at +{now - T0:.0f} s: {ready} ready"
    assert shard.history[-1][2] >= 29  # 400 rps / 14 rps per replica


def test_the_same_ramp_without_a_forecast_breaches_then_catches_up() -> None:
    # The counterfactual that shows what the forecast buys: reactive only is late by a warm-up.
    shard = FakeShard.with_ready(P, WARMUP, 3)
    shard.run(T0, 3600, ramp)
    short = [now for now, load, ready, _, _ in shard.history if ready * P.capacity_rps < load]
    assert short, "reactive-only scaling should have been caught short during the ramp"
    assert shard.history[-1][2] * P.capacity_rps >= ramp(T0 + 3600)


def burst(t: float) -> float:
    """Steady 50 rps, then an unforeseen 5× burst for 10 minutes from +5 min."""
    return 250.0 if T0 + 300 <= t < T0 + 900 else 50.0


def test_an_unforeseen_burst_panics_and_does_not_scale_down_while_it_lasts() -> None:
    shard = FakeShard.with_ready(P, WARMUP, 4)
    shard.run(T0, 1800, burst)
    modes = {now - T0: d.mode for now, _, _, _, d in shard.history}
    assert modes[290] == "stable"
    assert modes[300] == "panic"
    during = [d.replicas for now, _, _, _, d in shard.history if T0 + 300 <= now < T0 + 900]
    assert during == sorted(during), "replicas went down during the panic"
    # The served rate saturates at what 4 ready pods can do, so latency is the only witness of
    # the demand, and its ask is capped at 2× ready: capacity doubles once per warm-up
    # (4 → 8 → 16 → 18) instead of trusting a 10× latency blindly.
    ready_at = {now - T0: ready for now, _, ready, _, _ in shard.history}
    assert [ready_at[t] for t in (300, 420, 540, 660)] == [4, 8, 16, 18]
    assert P.capacity.rate_for(ready_at[660]) >= 250.0
    # After the burst: back down, but only after the stabilization window.
    after = {now - T0: d.replicas for now, _, _, _, d in shard.history if now >= T0 + 900}
    assert after[900] == 18 and after[1190] == 18 and after[1200] < 18


def step_up(t: float) -> float:
    """100 rps, then 150 rps from +5 min: within what 8 replicas hold (160), above 8 × 14."""
    return 150.0 if t >= T0 + 300 else 100.0


def spike(t: float) -> float:
    """100 rps with 20 s at 150 rps from +5 min."""
    return 150.0 if T0 + 300 <= t < T0 + 320 else 100.0


def windowed(panic: float | None) -> FakeShard:
    """8 ready pods whose metrics are 1m rates and, unless None, a `panic`-second rate."""
    shard = FakeShard.with_ready(P, WARMUP, 8)
    shard.windows = (60.0, panic)
    return shard


def test_a_step_is_asked_for_one_panic_window_after_it_not_one_stable_window() -> None:
    # 150 rps needs 11. The 30 s rate shows all of it at +5:30; the 1m rate is at 125 (9).
    fast, slow = windowed(P.panic_window_seconds), windowed(None)
    fast.run(T0, 900, step_up)
    slow.run(T0, 900, step_up)

    def first(shard: FakeShard, n: int, *, ready: bool = False) -> float:
        return min(now - T0 for now, _, r, _, d in shard.history if (r if ready else d.replicas) >= n)

    assert (first(fast, 11), first(slow, 11)) == (330, 360)
    assert (first(fast, 11, ready=True), first(slow, 11, ready=True)) == (450, 480)
    assert all(d.mode == "stable" for *_, d in fast.history), "1.5x is not a panic"


def test_a_spike_inside_the_panic_window_is_held_for_the_scale_down_window_then_let_go() -> None:
    # 20 s at 150 rps: the 30 s rate asks for 10 (the 1m rate only for 9), and like every
    # recommendation it is let go only after the 300 s scale-down window.
    shard = windowed(P.panic_window_seconds)
    shard.run(T0, 1200, spike)
    replicas = {now - T0: d.replicas for now, _, _, _, d in shard.history}
    assert max(replicas.values()) == 10
    assert replicas[330] == 10 and replicas[630] == 10 and replicas[640] < 10
    assert replicas[1190] == 8


def drop(t: float) -> float:
    """300 rps for 10 minutes, then almost nothing."""
    return 300.0 if t < T0 + 600 else 1.0


def test_after_a_drop_scale_in_waits_for_stabilization_and_stops_at_min() -> None:
    shard = FakeShard.with_ready(P, WARMUP, 22)
    shard.run(T0, 1800, drop)
    replicas = {now - T0: d.replicas for now, _, _, _, d in shard.history}
    assert replicas[590] == 22
    assert all(replicas[t] == 22 for t in range(600, 900, 10)), "scaled in before 300 s"
    assert replicas[900] == 11  # halving after the window
    assert min(replicas.values()) == P.min_replicas
    assert replicas[1790] == P.min_replicas


def test_a_metrics_outage_holds_then_climbs_the_ladder_and_never_scales_down() -> None:
    p = policy(capacity_rps=20.0, target_utilization=0.7, declared_warmup_seconds=WARMUP,
               fallback_replicas=16, failure_threshold=3)
    shard = FakeShard.with_ready(p, WARMUP, 10)
    shard.run(T0, 1200, lambda t: 140.0, oracle(lambda t: 120.0),
              metrics_ok=lambda t: not T0 + 300 <= t < T0 + 900)
    seen = [(d.mode, d.degraded[-1] if d.degraded else "", d.replicas)
            for now, _, _, _, d in shard.history if T0 + 300 <= now < T0 + 900]
    assert [s[:2] for s in seen[:2]] == [("hold", "metrics-unavailable")] * 2
    assert seen[2][:2] == ("fallback", "fallback-forecast-only")
    assert seen[-1][:2] == ("fallback", "fallback-floor")
    counts = [n for _, _, n in seen]
    assert counts == sorted(counts) and counts[0] == 10 and counts[-1] == 16
    after = [d for now, _, _, _, d in shard.history if now >= T0 + 900]
    assert after[0].mode == "stable" and after[0].state.failures == 0
    assert after[0].replicas == 16, "dropped the moment metrics came back"


def test_a_restart_without_stored_state_does_not_dip_below_ready() -> None:
    # The operator restarts while 20 pods serve a load that has just fallen to 14 rps.
    shard = FakeShard.with_ready(P, WARMUP, 20)
    shard.run(T0, 290, lambda t: 14.0)
    assert {d.replicas for *_, d in shard.history} == {20}


def test_without_the_restore_seed_the_same_restart_would_halve_at_once() -> None:
    # What restore_state prevents: an empty window lets the first tick act on the rate alone.
    o = Observation(ShardMetrics(at=T0, rate=14.0), PodCounts(asked=20, ready=20))
    assert decide(o, None, P, ScalerState(), T0).replicas == 10


# ------------------------------------------------------- predictive scale-in

DERIVED = policy(
    capacity_rps=20.0, target_utilization=None, declared_warmup_seconds=WARMUP,
    interval_seconds=10, min_replicas=2, max_replicas=60, slo_latency_ms=500.0,
)


def test_when_forecast_and_load_both_leave_capacity_goes_before_the_window() -> None:
    # 300 rps until +10 min, then 1 rps, and the forecast saw it coming: the window rule would
    # hold 22 pods until +15 min; the plan and the observed rate agree the load has left, so
    # the shard keeps only the last horizon's observed need and releases from +12:10 on.
    shard = FakeShard.with_ready(DERIVED, WARMUP, 18)
    shard.run(T0, 1800, drop, oracle(drop, margin=1.0))
    replicas = {now - T0: d.replicas for now, _, _, _, d in shard.history}
    assert replicas[590] == 18
    first_down = min(t for t, n in replicas.items() if n < 18)
    assert 600 < first_down <= 600 + 130 + 10, f"released at +{first_down} s"
    assert first_down < 900, "waited for the whole stabilization window"
    down = next(d for now, _, _, _, d in shard.history if now - T0 == first_down)
    assert any(r.startswith("release: plan") for r in down.reasons)
    assert replicas[1790] == DERIVED.min_replicas


def test_a_rise_the_forecast_sees_within_one_warmup_holds_the_capacity() -> None:
    # A dip to 100 rps for 4 minutes between two 300 rps spells: the forecast sees the second
    # spell within the horizon, so nothing is released in the dip.
    def dip(t: float) -> float:
        return 100.0 if T0 + 600 <= t < T0 + 840 else 300.0

    shard = FakeShard.with_ready(DERIVED, WARMUP, 18)
    shard.run(T0, 1200, dip, oracle(dip, margin=1.0))
    during = [d.replicas for now, _, _, _, d in shard.history if T0 + 600 <= now < T0 + 1200]
    assert min(during) >= 18


def test_without_a_forecast_scale_in_still_waits_for_the_window() -> None:
    shard = FakeShard.with_ready(DERIVED, WARMUP, 18)
    shard.run(T0, 1200, drop)
    replicas = {now - T0: d.replicas for now, _, _, _, d in shard.history}
    assert all(replicas[t] >= 18 for t in range(600, 900, 10))


def test_a_big_shard_is_planned_hotter_than_a_small_one() -> None:
    # Square-root staffing: the pooled headroom shrinks as the rate grows, so the same SLO
    # costs 2 + 34 % at 40 rps and 40 + 9 % at 800 rps (20 rps per replica, p95, 500 ms).
    def flat(rate: float) -> int:
        shard = FakeShard.with_ready(DERIVED, WARMUP, 2)
        shard.run(T0, 900, lambda t: rate, oracle(lambda t: rate, margin=1.0))
        return shard.history[-1][4].replicas

    small, big = flat(40.0), flat(800.0)
    assert 40.0 / (small * 20.0) < 800.0 / (big * 20.0)
