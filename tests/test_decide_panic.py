"""Burst (panic) mode and warm-up accounting, step by step and through decide()."""

from __future__ import annotations

import pytest

from tests.test_decide_builders import T0, forecast, obs, policy
from voxscale.api import ScalerState
from voxscale.decide import decide
from voxscale.decide.panic import breaches, panic_step
from voxscale.decide.types import PodCounts
from voxscale.decide.warming import warming_capacity

# ------------------------------------------------------------------ panic


@pytest.mark.parametrize(
    ("desired", "ready", "load", "expected"),
    [
        pytest.param(20, 10, True, True, id="exactly-twice-ready-is-a-breach"),
        pytest.param(19, 10, True, False, id="just-under-twice-is-not"),
        pytest.param(3, 0, True, True, id="load-with-nothing-ready-is-a-breach"),
        pytest.param(1, 0, False, False, id="no-load-and-nothing-ready-is-calm"),
    ],
)
def test_panic_breach_is_desired_at_threshold_times_ready(
    desired: int, ready: int, load: bool, expected: bool
) -> None:
    assert breaches(desired, ready, load, policy(panic_threshold=2.0)) is expected


def test_entering_panic_records_since_and_until_one_stable_window_ahead() -> None:
    p = policy(stable_window_seconds=60)
    got = panic_step(20, 10, load=True, policy=p, state=ScalerState(), now=T0)
    assert got.active
    assert (got.state.panic_since, got.state.panic_until) == (T0, T0 + 60)


def test_each_breach_extends_panic_but_keeps_its_start() -> None:
    p = policy(stable_window_seconds=60)
    state = ScalerState(panic_since=T0, panic_until=T0 + 60)
    got = panic_step(20, 10, load=True, policy=p, state=state, now=T0 + 30)
    assert (got.state.panic_since, got.state.panic_until) == (T0, T0 + 90)


@pytest.mark.parametrize(
    ("at", "active"),
    [
        pytest.param(T0 + 59, True, id="a-second-before-the-window-ends-still-panics"),
        pytest.param(T0 + 60, False, id="a-full-window-without-breach-leaves"),
    ],
)
def test_panic_ends_only_after_a_full_stable_window_without_breach(at: float, active: bool) -> None:
    p = policy(stable_window_seconds=60)
    state = ScalerState(panic_since=T0 - 30, panic_until=T0 + 60)
    got = panic_step(5, 10, load=True, policy=p, state=state, now=at)
    assert got.active is active
    if not active:
        assert (got.state.panic_since, got.state.panic_until) == (None, None)


def test_panic_never_scales_down() -> None:
    state = ScalerState(panic_since=T0 - 10, panic_until=T0 + 50)
    d = decide(obs(14.0, ready=20), None, policy(target=14.0), state, T0)
    assert (d.mode, d.replicas) == ("panic", 20)


def test_panic_bypasses_the_scale_up_rate_limit_up_to_max() -> None:
    # 4 ready, load for 40: the normal limit is 4 + max(4, 4) = 8; panic goes straight on.
    d = decide(obs(560.0, ready=4), None, policy(target=14.0, max_replicas=30), ScalerState(), T0)
    assert d.mode == "panic"
    assert d.replicas == 30
    assert d.term == "ceiling"


def test_without_panic_the_same_jump_is_rate_limited() -> None:
    p = policy(target=14.0, panic_threshold=100.0)
    d = decide(obs(560.0, ready=4), None, p, ScalerState(), T0)
    assert (d.mode, d.replicas) == ("stable", 8)


def test_a_forecast_that_doubles_the_need_within_the_horizon_panics_too() -> None:
    d = decide(obs(28.0, ready=2), forecast(280.0), policy(target=14.0), ScalerState(), T0)
    assert (d.mode, d.replicas, d.term) == ("panic", 20, "predictive")


# ------------------------------------------------------------------ the panic window


def test_a_burst_in_the_panic_window_panics_before_the_stable_rate_moves() -> None:
    # 10 ready at 140 rps; the last 30 s ran at 280: the 1m rate has not moved yet.
    d = decide(obs(140.0, panic_rate=280.0, ready=10), None, policy(target=14.0), ScalerState(), T0)
    assert (d.mode, d.replicas, d.term, d.reactive) == ("panic", 20, "reactive", 20)
    assert "observed: 30 s panic-window rate 280.0 rps → 20, above the stable rate's 10" in d.reasons
    assert any(r.startswith("panic: enter, desired 20 ≥ 2 × 10 ready") for r in d.reasons)


def test_a_smaller_burst_in_the_panic_window_scales_up_without_panic() -> None:
    d = decide(obs(140.0, panic_rate=196.0, ready=10), None, policy(target=14.0), ScalerState(), T0)
    assert (d.mode, d.replicas, d.term) == ("stable", 14, "reactive")


@pytest.mark.parametrize(
    "panic_rate",
    [
        pytest.param(0.0, id="a-quiet-panic-window-never-lowers-the-need"),
        pytest.param(None, id="no-panic-window-series-is-no-data"),
        pytest.param(float("nan"), id="a-nan-panic-window-is-no-data-not-zero"),
    ],
)
def test_without_a_higher_panic_window_rate_the_stable_rate_decides(
    panic_rate: float | None,
) -> None:
    p = policy(target=14.0)
    alone = decide(obs(140.0, ready=10), None, p, ScalerState(), T0)
    d = decide(obs(140.0, panic_rate=panic_rate, ready=10), None, p, ScalerState(), T0)
    assert (d.replicas, d.reactive, d.reasons) == (alone.replicas, alone.reactive, alone.reasons)
    assert d.reactive == 10


# ------------------------------------------------------------------ warm-up accounting


@pytest.mark.parametrize(
    ("desired", "pods", "base", "increment"),
    [
        pytest.param(16, PodCounts(18, 10, 8), 18, -2, id="need-covered-by-ready-plus-warming"),
        pytest.param(30, PodCounts(18, 10, 8), 18, 12, id="increment-counted-from-ready-plus-warming"),
        pytest.param(12, PodCounts(14, 6, 0, pending=8), 6, 6, id="pending-pods-are-not-capacity"),
    ],
)
def test_warming_pods_are_capacity_that_is_coming(
    desired: int, pods: PodCounts, base: int, increment: int
) -> None:
    got = warming_capacity(desired, pods)
    assert (got.base, got.increment) == (base, increment)


def test_pending_pods_are_reported_not_counted() -> None:
    got = warming_capacity(12, PodCounts(14, 6, 0, pending=8))
    assert got.reasons == ("pending: 8 unschedulable pods are not counted as capacity",)


def test_warming_capacity_without_explaining_counts_the_same_without_lines() -> None:
    for desired, pods in ((12, PodCounts(14, 6, 0, pending=8)), (30, PodCounts(18, 10, 8))):
        full = warming_capacity(desired, pods)
        assert full.reasons
        assert warming_capacity(desired, pods, explain=False) == full._replace(reasons=())


def test_latency_during_warmup_does_not_add_the_same_pods_twice() -> None:
    # 4 ready at 2× SLO asked for 8; 4 are warming. Tick after tick, latency stays bad until
    # they are Ready, and the answer must stay 8, not 12, 16, ...
    p = policy(target=14.0, slo_latency_ms=500.0)
    state = ScalerState()
    for i in range(6):
        o = obs(56.0, latency=1000.0, ready=4, warming=4)
        d = decide(o, None, p, state, T0 + 10 * i)
        assert d.replicas == 8, d.reasons
        state = d.state


def test_pending_pods_do_not_earn_more_pods() -> None:
    # No GPU left: 2 ready, 8 pending of 10 asked; load wants 30 but panic is off.
    p = policy(target=14.0, panic_threshold=100.0)
    d = decide(obs(420.0, ready=2, pending=8), None, p, ScalerState(), T0)
    assert d.replicas == 10
    assert d.term == "current"
    assert any(r.startswith("pending: 8") for r in d.reasons)
