"""Online capacity from Triton's batch efficiency, and the backlog a saturated shard hides."""

from __future__ import annotations

import pytest

from tests.test_decide_builders import T0, obs, policy
from voxscale.api import ScalerState
from voxscale.decide import ShardMetrics
from voxscale.decide.batching import calibrate_service_time
from voxscale.decide.capacity import ServiceTime
from voxscale.decide.reactive import reactive_replicas

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
