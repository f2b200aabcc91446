"""Streams as capacity: the replicas whose sequence slots hold the live streams."""

from __future__ import annotations

import math

import pytest

from voxscale.api import ScalerState
from voxscale.decide import Observation, PodCounts, Policy, ShardMetrics, decide
from voxscale.decide.streams import stream_replicas

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("streams", "slots", "target", "expected"),
    [
        pytest.param(90.0, 32, None, 5, id="90-streams-at-32-slots-and-0.7-headroom-need-5"),
        pytest.param(22.4, 32, None, 1, id="exactly-one-replica-of-slots-at-headroom-is-1"),
        pytest.param(0.0, 32, None, 0, id="no-live-streams-ask-nothing"),
        pytest.param(90.0, 32, 0.9, 4, id="a-target-override-is-the-headroom"),
        pytest.param(None, 32, None, 0, id="no-stream-data-asks-nothing"),
        pytest.param(math.nan, 32, None, 0, id="nan-is-no-data"),
        pytest.param(90.0, None, None, 0, id="not-streaming-asks-nothing"),
    ],
)
def test_stream_need(streams: float | None, slots: int | None, target: float | None, expected: int) -> None:
    policy = Policy(streams_per_replica=slots, target_utilization=target)
    assert stream_replicas(streams, policy).replicas == expected


def _decide(streams: float | None, rate: float) -> tuple[int, tuple[str, ...]]:
    policy = Policy(min_replicas=1, max_replicas=40, capacity_rps=20.0, streams_per_replica=16,
                    forecast_enabled=False, scale_up_max_pods=40)
    obs = Observation(ShardMetrics(at=NOW, rate=rate, latency_ms=100.0), PodCounts(asked=2, ready=2),
                      streams=streams)
    d = decide(obs, None, policy, ScalerState(last_replicas=2), NOW)
    return d.replicas, d.reasons


def test_quiet_callers_fill_slots_and_the_streams_term_wins_over_a_low_rate() -> None:
    # 60 callers sending 5 req/s in all: the rate needs 1 replica, the slots 60 / (16 × 0.7) → 6.
    replicas, reasons = _decide(60.0, 5.0)
    assert replicas == 6
    assert "observed: streams need 6 > rate's 1" in reasons


def test_a_busy_rate_still_wins_over_few_streams() -> None:
    replicas, reasons = _decide(4.0, 150.0)
    assert replicas > 6
    assert not [r for r in reasons if r.startswith("observed: streams need")]
