"""spec.placement through loop ticks: each pool's Deployment scaled, status and /metrics carry the
pools and their cost, spot exhaustion overflows batch to on-demand and comes back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.helpers import FakeMetrics, RecordingKube, spec_with
from tests.test_render_placement import CLASSES, PLACEMENT
from voxscale import names
from voxscale.api import SpeechClusterSpec, SpeechClusterStatus
from voxscale.decide.types import ClassMetrics
from voxscale.loop import ClusterRef, Loop

NOW = 1_700_000_000.0
SPOT, ON_DEMAND = "asr-eu-en-spot", "asr-eu-en-on-demand"


def _spec(**placement: Any) -> SpeechClusterSpec:
    return spec_with(
        classes=CLASSES, placement={**PLACEMENT, **placement}, shards=[
            {"name": "eu-en", "region": "eu-west", "languages": ["en"]}],
        capacity={"requestsPerSecondPerReplica": 20, "targetUtilization": 1.0},
        scaling={"intervalSeconds": 10, "maxReplicas": 40, "forecast": {"enabled": False},
                 "scaleUp": {"maxPods": 40}},
    )


def _metrics(backlog: float) -> FakeMetrics:
    offline = ClassMetrics("offline", NOW, rate=0.0, backlog=backlog, oldest_seconds=0.0)
    return FakeMetrics({"eu-en": 40.0}, classes={("eu-en", "offline"): offline})


class Cluster:
    """One SpeechCluster ticked by one Loop, its status carried from tick to tick."""

    def __init__(self, spec: SpeechClusterSpec) -> None:
        self.spec, self.kube = spec, RecordingKube()
        self.loop = Loop(self.kube)
        self.body: dict[str, Any] = {"metadata": {"name": "asr", "namespace": "speech", "uid": "u1"},
                                     "status": {}}
        self.now = NOW

    def tick(self, metrics: FakeMetrics) -> SpeechClusterStatus:
        ref = ClusterRef("speech", "asr", "u1", 1, self.body)
        status = asyncio.run(self.loop.tick(ref, self.spec, metrics, self.now))
        self.body["status"] = status.model_dump(by_alias=True, mode="json", exclude_none=True)
        self.now += 10
        return status


def test_each_pool_gets_its_classes_replicas_and_status_shows_the_cost() -> None:
    c = Cluster(_spec())
    c.tick(_metrics(backlog=400_000))
    status = c.tick(_metrics(backlog=400_000))  # cost is of the pods read: the first tick's
    # Interactive 40 rps → 2 on on-demand; 400,000 / (3,600 − 70) s = 113 rps → 6 on spot.
    assert (c.kube.replicas[ON_DEMAND], c.kube.replicas[SPOT]) == (2, 6)
    shard = status.shards[0]
    assert [(p.name, p.replicas) for p in shard.pools or []] == [("on-demand", 2), ("spot", 6)]
    # RecordingKube reports every asked pod Ready: 2 × 1.20 + 6 × 0.40.
    assert shard.cost_per_hour == pytest.approx(2 * 1.2 + 6 * 0.4)
    offline = next(x for x in shard.classes or [] if x.name == "offline")
    assert offline.pools == {"spot": 6}
    assert offline.cost_per_hour == pytest.approx(6 * 0.4)
    assert REGISTRY.get_sample_value("voxscale_cost_per_hour", {
        "namespace": "speech", "cluster": "asr", "shard": "eu-en", "pool": "spot"}) == pytest.approx(6 * 0.4)
    assert any(r.startswith("cost: ") for r in shard.reasons)


def test_spot_exhausted_overflows_batch_to_on_demand_then_returns_when_spot_is_ready() -> None:
    c = Cluster(_spec())
    c.tick(_metrics(400_000))
    c.kube.pending[SPOT] = 4  # 6 of 8 spot nodes taken back
    status = c.tick(_metrics(400_000))
    assert (c.kube.replicas[ON_DEMAND], c.kube.replicas[SPOT]) == (6, 6)
    assert status.shards[0].scaler_state.overflow == {"offline": 4}
    assert REGISTRY.get_sample_value("voxscale_placement_overflow_replicas", {
        "namespace": "speech", "cluster": "asr", "shard": "eu-en", "class": "offline"}) == 4
    reasons = [r for _, r, _ in c.kube.events]
    assert names.REASON_OVERFLOW in reasons and names.REASON_POOL_PENDING in reasons
    degraded = next(x for x in status.conditions if x.type == names.CONDITION_DEGRADED)
    assert degraded.status == "True"
    c.kube.pending[SPOT] = 0
    c.kube.ready[SPOT] = 2  # scheduled again, still warming: the overflow holds
    c.tick(_metrics(400_000))
    assert c.kube.replicas[ON_DEMAND] == 6
    c.kube.ready[SPOT] = 6
    status = c.tick(_metrics(400_000))
    assert (c.kube.replicas[ON_DEMAND], c.kube.replicas[SPOT]) == (2, 6)
    assert status.shards[0].scaler_state.overflow is None


def test_a_spot_price_above_on_demand_is_a_condition_and_an_event_not_a_crash() -> None:
    pools = [PLACEMENT["pools"][0], {**PLACEMENT["pools"][1], "pricePerHour": 3.0}]
    c = Cluster(_spec(pools=pools))
    status = c.tick(_metrics(0))
    c.tick(_metrics(0))
    degraded = next(x for x in status.conditions if x.type == names.CONDITION_DEGRADED)
    assert degraded.reason == names.REASON_PLACEMENT_INVALID
    assert [r for _, r, _ in c.kube.events].count(names.REASON_PLACEMENT_INVALID) == 1
    assert c.kube.replicas[ON_DEMAND] == 2, "the shard is still scaled"
