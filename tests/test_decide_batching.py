"""Online capacity from Triton's batch efficiency, and the backlog a saturated shard hides."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.test_decide_builders import T0, obs, policy
from voxscale.api import ScalerState
from voxscale.decide import ShardMetrics
from voxscale.decide.batching import calibrate_service_time
from voxscale.decide.capacity import ServiceTime
from voxscale.decide.reactive import reactive_replicas
from voxscale.decide.types import FallbackPolicy

STANDIN = ServiceTime(0.060, 0.012, 32)
P = policy(capacity_rps=STANDIN.sustainable_rps(500.0, 0.95), target_utilization=None,
           service=STANDIN)


def metrics(rate: float, batch: float | None, queue: float | None = None) -> ShardMetrics:
    return ShardMetrics(at=T0, rate=rate, batch_efficiency=batch, queue=queue)


def test_batches_that_take_longer_than_the_profile_lower_capacity() -> None:
    # 40 rps per replica with a mean batch of 12: a batch took 12 / 40 = 300 ms against the
    # profile's 60 + 12·12 = 204 ms, so batches take 1.47× the profile.
    got = calibrate_service_time(P, metrics(400.0, 12.0), 10, ScalerState())
    assert got.state.service_time_scale == pytest.approx(300 / 204)
    assert got.policy.capacity_rps < 0.75 * P.capacity_rps
    assert got.reasons[0].startswith("capacity: batches take 1.47× the profile")


def test_without_explaining_the_calibrated_policy_and_state_are_the_same() -> None:
    # A fresh reading that lowers capacity, and a learned scale held through an idle reading.
    cases = ((metrics(400.0, 12.0), ScalerState()),
             (metrics(50.0, 1.0), ScalerState(service_time_scale=1.3)))
    for m, state in cases:
        full = calibrate_service_time(P, m, 10, state)
        assert calibrate_service_time(P, m, 10, state, explain=False) == full._replace(reasons=())


def test_the_profile_holds_when_batches_match_it() -> None:
    per = 40.0
    b = STANDIN.batch_at(per)
    got = calibrate_service_time(P, metrics(10 * per, b), 10, ScalerState())
    assert got.policy == P and got.reasons == ()


def test_an_idle_replica_says_nothing_about_capacity() -> None:
    # 5 rps per replica: the profile's batch is 0.3, so the replica idles between requests and
    # rate ÷ batch is idle time, not service time.
    got = calibrate_service_time(P, metrics(50.0, 1.0), 10, ScalerState())
    assert got.state.service_time_scale is None and got.policy == P


def test_one_reading_moves_a_learned_scale_by_a_fifth_and_at_most_2x() -> None:
    state = ScalerState(service_time_scale=1.0)
    got = calibrate_service_time(P, metrics(400.0, 30.0), 10, state)
    # 30 / (40 × 0.42) = 1.79 → 1 + 0.2 × 0.79
    assert got.state.service_time_scale == pytest.approx(1 + 0.2 * (30 / (40 * 0.42) - 1))
    wild = calibrate_service_time(P, metrics(400.0, 32.0), 10, ScalerState())
    assert wild.state.service_time_scale == pytest.approx(32 / (40 * (0.06 + 0.012 * 32)))


def test_batches_read_while_a_backlog_queues_say_nothing_about_service_time() -> None:
    # The reading of the first test, taken while 10 replicas hold 400 requests (past one full
    # batch of 32 each): the batches are as large as the queue makes them, so the learned
    # scale stays where it was. Up to one full batch each is a replica forming its next batch.
    learned = ScalerState(service_time_scale=1.1)
    queued = calibrate_service_time(P, metrics(400.0, 12.0, queue=400.0), 10, learned)
    assert queued.state.service_time_scale == 1.1
    forming = calibrate_service_time(P, metrics(400.0, 12.0, queue=320.0), 10, learned)
    assert forming.state.service_time_scale == pytest.approx(1.1 + 0.2 * (300 / 204 - 1.1))


def test_no_profile_or_no_batch_series_leaves_the_policy_alone() -> None:
    plain = policy(capacity_rps=60.0, target_utilization=None)
    assert calibrate_service_time(plain, metrics(400.0, 12.0), 10, ScalerState()).policy == plain
    assert calibrate_service_time(P, metrics(400.0, None), 10, ScalerState()).policy == P


def test_a_backlog_past_one_full_batch_per_replica_is_demand_to_drain() -> None:
    # 10 ready replicas can each be forming a batch of 32; 1,320 waiting is 1,000 more, which
    # must drain within the 100 s horizon: +10 rps on top of the 600 observed.
    o = obs(600.0, ready=10)
    m = ShardMetrics(at=T0, rate=600.0, queue=1320.0)
    plain = reactive_replicas(o.metrics, 10, P)
    backlog = reactive_replicas(m, 10, P, drain_seconds=100.0)
    assert backlog.replicas >= plain.replicas
    assert "backlog 1000 requests" in backlog.reasons[1]


# spec.model.fallback: the smaller model shares the replica's GPU time. The e2e's stand-ins:
# 100 + 12·b ms, the smaller one 30 + 4·b ms; 75 req/s on one replica, half of it moved, both
# batching ~12.2 (each model's batch collects its arrivals while the other one's runs).
MAIN = ServiceTime(0.100, 0.012, 32)
SMALL = ServiceTime(0.030, 0.004, 32)
SHARED = policy(capacity_rps=MAIN.sustainable_rps(1000.0, 0.95), target_utilization=None, service=MAIN,
                fallback=FallbackPolicy("asr-small", SMALL.sustainable_rps(1000.0, 0.95), service=SMALL))


def shared(moved: float | None, small_batch: float | None) -> ShardMetrics:
    return ShardMetrics(at=T0, rate=75.0, batch_efficiency=12.2, fallback_rate=moved,
                        fallback_batch=small_batch)


def test_requests_moved_to_the_smaller_model_are_not_read_as_a_faster_main_model() -> None:
    # Busy time at the profiles: 37.5/12.2 × 0.246 + 37.5/12.2 × 0.079 = 1.0, the profile holds.
    # Reading the main model's batch against both models' 75 req/s would give 12.2 / (75 × 0.246)
    # = 0.66: capacity 1.5× too high, and the share handed back under unchanged load.
    got = calibrate_service_time(SHARED, shared(37.5, 12.2), 1, ScalerState())
    assert got.state.service_time_scale == pytest.approx(1.0, abs=0.01)
    assert got.policy.capacity_rps == pytest.approx(SHARED.capacity_rps, rel=0.05)


def test_moved_requests_whose_batch_time_is_unknown_leave_the_learned_scale_as_it_was() -> None:
    state = ScalerState(service_time_scale=1.3)
    rate_only = replace(SHARED, fallback=FallbackPolicy("asr-small", 180.0))  # no serviceTime
    for policy_, reading in ((SHARED, shared(37.5, None)), (rate_only, shared(37.5, 12.2))):
        assert calibrate_service_time(policy_, reading, 1, state).state.service_time_scale == 1.3


def test_nothing_moved_calibrates_on_the_main_model_alone() -> None:
    one = calibrate_service_time(SHARED, shared(0.0, None), 1, ScalerState())
    assert one.state.service_time_scale == pytest.approx(12.2 / (75 * MAIN.seconds(12.2)))
