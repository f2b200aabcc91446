"""spec.classes through one loop tick: per-class reads, the summed count, status, /metrics, Events."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import REGISTRY

from tests.helpers import FakeMetrics, RecordingKube, spec_with
from voxscale import names
from voxscale.api import SpeechClusterSpec, SpeechClusterStatus
from voxscale.decide.types import ClassMetrics
from voxscale.loop import ClusterRef, Loop

NOW = 1_700_000_000.0
CLASSES = [{"name": "live", "kind": "Interactive", "priority": 1},
           {"name": "offline", "kind": "Batch", "priority": 2, "deadlineSeconds": 900}]


def _spec() -> SpeechClusterSpec:
    # 20 rps per replica at target 1.0; forecast off (decide/ tests the maths).
    return spec_with(classes=CLASSES, capacity={"requestsPerSecondPerReplica": 20, "targetUtilization": 1.0},
                     scaling={"intervalSeconds": 10, "maxReplicas": 40, "forecast": {"enabled": False}})


def _tick(kube: RecordingKube, metrics: FakeMetrics) -> SpeechClusterStatus:
    body: dict[str, Any] = {"metadata": {"name": "asr", "namespace": "speech", "uid": "u1"}, "status": {}}
    ref = ClusterRef("speech", "asr", "u1", 1, body)
    return asyncio.run(Loop(kube).tick(ref, _spec(), metrics, NOW))


def _kube() -> RecordingKube:
    return RecordingKube(replicas={"asr-eu-en": 2, "asr-eu-de-fr": 2, "asr-us-en-es": 2})


def test_a_batch_backlog_adds_its_need_to_the_interactive_one_and_shows_in_status_and_metrics() -> None:
    backlog = ClassMetrics("offline", NOW, rate=0.0, backlog=60_000, oldest_seconds=0.0)
    metrics = FakeMetrics({"eu-en": 30.0, "eu-de-fr": 20.0, "us-en-es": 20.0},
                          classes={("eu-en", "offline"): backlog})
    kube = _kube()
    status = _tick(kube, metrics)
    shard = next(s for s in status.shards if s.name == "eu-en")
    # Interactive 30 rps → 2; 60,000 / (900 − horizon) s → 4 more (the scale-up limit allows 6).
    assert [(c.name, c.replicas) for c in shard.classes or []] == [("live", 2), ("offline", 4)]
    assert kube.replicas["asr-eu-en"] == shard.replicas == 6
    assert REGISTRY.get_sample_value(
        "voxscale_class_replicas",
        {"namespace": "speech", "cluster": "asr", "shard": "eu-en", "class": "offline"}) == 4
    assert REGISTRY.get_sample_value(
        "voxscale_class_backlog_requests",
        {"namespace": "speech", "cluster": "asr", "shard": "eu-en", "class": "offline"}) == 60_000


def test_a_batch_class_without_data_is_announced_and_holds_the_shard() -> None:
    metrics = FakeMetrics({"eu-en": 0.0, "eu-de-fr": 0.0, "us-en-es": 0.0})  # no class series at all
    kube = _kube()
    status = _tick(kube, metrics)
    assert kube.replicas == {"asr-eu-en": 2, "asr-eu-de-fr": 2, "asr-us-en-es": 2}
    reasons = [reason for _, reason, _ in kube.events]
    assert reasons.count(names.REASON_CLASS_METRICS_UNAVAILABLE) == 3
    degraded = next(c for c in status.conditions if c.type == names.CONDITION_DEGRADED)
    assert degraded.status == "True" and degraded.reason == names.REASON_CLASS_METRICS_UNAVAILABLE
    assert "offline" in degraded.message


def test_without_classes_the_status_has_no_class_fields() -> None:
    body: dict[str, Any] = {"metadata": {"name": "asr", "namespace": "speech", "uid": "u2"}, "status": {}}
    ref = ClusterRef("speech", "asr", "u2", 1, body)
    spec = spec_with(scaling={"intervalSeconds": 10, "forecast": {"enabled": False}})
    status = asyncio.run(Loop(_kube()).tick(ref, spec, FakeMetrics({"eu-en": 10.0}), NOW))
    dumped = status.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert all("classes" not in s and "batchNeeds" not in s["scalerState"] for s in dumped["shards"])
