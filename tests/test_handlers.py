"""Reconcile handlers over the recording fake of the Kubernetes seam: bad input is reported once,
never crashes; good input applies every shard's objects and removes shards that left the spec."""

from __future__ import annotations

import copy
from typing import Any

from tests.helpers import RecordingKube, example_doc
from voxscale import names
from voxscale.handlers import reconcile_children, validated_spec
from voxscale.loop import ClusterRef
from voxscale.sources import SourceCache


def _body(**spec_changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(example_doc())
    doc["spec"].update(spec_changes)
    doc["metadata"].update({"uid": "u-1", "generation": 3})
    return doc


def test_an_invalid_spec_sets_ready_false_and_warns_once_without_raising() -> None:
    kube = RecordingKube()
    body = _body(scaling={"minReplicas": 9, "maxReplicas": 2})
    assert validated_spec(body, kube) is None
    [status] = kube.statuses
    [ready] = status["conditions"]
    assert ready["type"] == names.CONDITION_READY and ready["status"] == "False"
    assert ready["reason"] == names.REASON_INVALID_SPEC
    assert "minReplicas 9 > maxReplicas 2" in ready["message"]
    assert ready["observedGeneration"] == 3
    assert kube.events == [("Warning", names.REASON_INVALID_SPEC, ready["message"])]
    assert kube.applied == []


def test_an_unreadable_stored_status_does_not_stop_an_invalid_spec_being_reported() -> None:
    kube = RecordingKube()
    body = _body(scaling={"minReplicas": 9, "maxReplicas": 2})
    body["status"] = {"conditions": "not a list", "shards": [{"replicas": "many"}]}
    assert validated_spec(body, kube) is None
    [ready] = kube.statuses[0]["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", names.REASON_INVALID_SPEC)


def test_a_valid_spec_is_returned_typed_and_says_nothing() -> None:
    kube = RecordingKube()
    spec = validated_spec(_body(), kube)
    assert spec is not None and [s.name for s in spec.shards] == ["eu-en", "eu-de-fr", "us-en-es"]
    assert kube.statuses == [] and kube.events == []


def test_reconcile_applies_four_owned_objects_per_shard_configmap_first() -> None:
    kube = RecordingKube()
    body = _body()
    spec = validated_spec(body, kube)
    assert spec is not None
    reconcile_children(body, spec, kube)
    kinds = [o["kind"] for o in kube.applied]
    assert kinds == ["ConfigMap", "Service", "PodDisruptionBudget", "Deployment"] * 3
    assert {o["metadata"]["ownerReferences"][0]["uid"] for o in kube.applied} == {"u-1"}


def test_a_shard_that_left_the_spec_is_deleted_with_an_event() -> None:
    kube = RecordingKube(existing_shards={"eu-en", "eu-de-fr", "us-en-es", "ap-ja"})
    body = _body()
    spec = validated_spec(body, kube)
    assert spec is not None
    assert reconcile_children(body, spec, kube) == ["ap-ja"]
    assert [(t, r) for t, r, _ in kube.events] == [("Normal", names.REASON_SHARD_REMOVED)]
    assert "ap-ja" in kube.events[0][2]


def test_a_clusters_prometheus_source_is_reused_until_its_settings_or_token_change() -> None:
    secret = {"name": "prom-token"}
    kube = RecordingKube(secrets={("speech", "prom-token", "token"): "t1"})
    body = _body(prometheus={"url": "http://prom.monitoring.svc:9090", "bearerTokenSecretRef": secret})
    spec = validated_spec(body, kube)
    assert spec is not None
    ref, sources = ClusterRef("speech", "asr", "u-1", 3, body), SourceCache()
    first = sources.get(spec, ref, kube)
    assert sources.get(spec, ref, kube) is first
    kube.secrets[("speech", "prom-token", "token")] = "t2"  # the Secret was rotated
    rotated = sources.get(spec, ref, kube)
    assert rotated is not first
    moved = validated_spec(
        _body(prometheus={"url": "http://other.monitoring.svc:9090", "bearerTokenSecretRef": secret}), kube
    )
    assert moved is not None and sources.get(moved, ref, kube) is not rotated
    sources.close()
    assert sources.source is None
