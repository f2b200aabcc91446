"""Reconcile handlers over a recording fake of k8s.Kube: bad input is reported once, never crashes;
good input applies every shard's objects and removes shards that left the spec."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from tests.helpers import example_doc
from voxscale import names
from voxscale.handlers import reconcile_children, validated_spec
from voxscale.k8s import Kube


@dataclass
class RecordingKube:
    applied: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    existing_shards: set[str] = field(default_factory=set)

    def apply(self, obj: dict[str, Any], *, manager: str = names.FIELD_MANAGER) -> dict[str, Any]:
        self.applied.append(obj)
        return obj

    def delete_shards_except(self, namespace: str, cluster: str, keep: set[str]) -> list[str]:
        return sorted(self.existing_shards - keep)

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.statuses.append(status)

    def event(self, owner: dict[str, Any], type_: str, reason: str, message: str, now: datetime) -> None:
        self.events.append((type_, reason, message))


def _body(**spec_changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(example_doc())
    doc["spec"].update(spec_changes)
    doc["metadata"].update({"uid": "u-1", "generation": 3})
    return doc


def test_an_invalid_spec_sets_ready_false_and_warns_once_without_raising() -> None:
    kube = RecordingKube()
    body = _body(scaling={"minReplicas": 9, "maxReplicas": 2})
    assert validated_spec(body, cast(Kube, kube)) is None
    [status] = kube.statuses
    [ready] = status["conditions"]
    assert ready["type"] == names.CONDITION_READY and ready["status"] == "False"
    assert ready["reason"] == names.REASON_INVALID_SPEC
    assert "minReplicas 9 > maxReplicas 2" in ready["message"]
    assert ready["observedGeneration"] == 3
    assert kube.events == [("Warning", names.REASON_INVALID_SPEC, ready["message"])]
    assert kube.applied == []


def test_a_valid_spec_is_returned_typed_and_says_nothing() -> None:
    kube = RecordingKube()
    spec = validated_spec(_body(), cast(Kube, kube))
    assert spec is not None and [s.name for s in spec.shards] == ["eu-en", "eu-de-fr", "us-en-es"]
    assert kube.statuses == [] and kube.events == []


def test_reconcile_applies_four_owned_objects_per_shard_configmap_first() -> None:
    kube = RecordingKube()
    body = _body()
    spec = validated_spec(body, cast(Kube, kube))
    assert spec is not None
    reconcile_children(body, spec, cast(Kube, kube))
    kinds = [o["kind"] for o in kube.applied]
    assert kinds == ["ConfigMap", "Service", "PodDisruptionBudget", "Deployment"] * 3
    assert {o["metadata"]["ownerReferences"][0]["uid"] for o in kube.applied} == {"u-1"}


def test_a_shard_that_left_the_spec_is_deleted_with_an_event() -> None:
    kube = RecordingKube(existing_shards={"eu-en", "eu-de-fr", "us-en-es", "ap-ja"})
    body = _body()
    spec = validated_spec(body, cast(Kube, kube))
    assert spec is not None
    assert reconcile_children(body, spec, cast(Kube, kube)) == ["ap-ja"]
    assert [(t, r) for t, r, _ in kube.events] == [("Normal", names.REASON_SHARD_REMOVED)]
    assert "ap-ja" in kube.events[0][2]


@dataclass
class SecretKube(RecordingKube):
    token: str = "t1"

    def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        return self.token


def test_a_clusters_prometheus_source_is_reused_until_its_settings_or_token_change() -> None:
    from voxscale.handlers import SourceCache
    from voxscale.loop import ClusterRef

    kube = SecretKube()
    secret = {"name": "prom-token"}
    body = _body(prometheus={"url": "http://prom.monitoring.svc:9090", "bearerTokenSecretRef": secret})
    spec = validated_spec(body, cast(Kube, kube))
    assert spec is not None
    ref, sources = ClusterRef("speech", "asr", "u-1", 3, body), SourceCache()
    first = sources.get(spec, ref, cast(Kube, kube))
    assert sources.get(spec, ref, cast(Kube, kube)) is first
    kube.token = "t2"  # the Secret was rotated
    rotated = sources.get(spec, ref, cast(Kube, kube))
    assert rotated is not first
    moved = validated_spec(
        _body(prometheus={"url": "http://other.monitoring.svc:9090", "bearerTokenSecretRef": secret}),
        cast(Kube, kube),
    )
    assert moved is not None and sources.get(moved, ref, cast(Kube, kube)) is not rotated
    sources.close()
    assert sources.source is None
