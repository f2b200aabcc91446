"""The daemon carries the smaller model's share into the HTTPRoute: applied when a shard's weight
changes, not otherwise; kept by a reconcile; never over gRPC."""

from __future__ import annotations

from typing import Any

from tests.helpers import RecordingKube
from tests.test_routing import NOW, _body, _reconcile, _stored, _tick
from voxscale.api import ShardStatus

HTTP = {"parentRefs": [{"name": "speech-gateway"}], "protocol": "http"}
SMALL = {"name": "asr-small", "requestsPerSecondPerReplica": 180}


def _fallback_body(routing: dict[str, Any] = HTTP) -> dict[str, Any]:
    body = _body(routing)
    body["spec"]["model"] = {**body["spec"]["model"], "fallback": SMALL}
    return body


def _shards(share: float) -> list[ShardStatus]:
    return [ShardStatus(name="eu-en", replicas=2, ready_replicas=2, fallback_share=share),
            ShardStatus(name="eu-de-fr", replicas=1, ready_replicas=1, fallback_share=0.0),
            ShardStatus(name="us-en-es", replicas=2, ready_replicas=2, fallback_share=0.0)]


def _weights(route: dict[str, Any]) -> dict[str, int]:
    return {r["name"]: r["backendRefs"][1]["weight"] for r in route["spec"]["rules"]
            if r["name"].endswith("-infer")}


def test_the_daemon_applies_the_route_when_a_share_changes_and_only_then() -> None:
    kube = RecordingKube()
    body = _fallback_body()
    _reconcile(body, kube)
    body = _stored(body, kube)
    assert body["status"]["routing"]["fallbackWeights"] == []

    kube = RecordingKube()
    body = _tick(body, kube, _shards(0.0), 0)
    assert kube.calls == []  # no share: nothing applied
    body = _tick(body, kube, _shards(0.3), 10)
    [route] = kube.applied
    assert _weights(route) == {"eu-en-infer": 30, "eu-de-fr-infer": 0, "us-en-es-infer": 0}
    assert body["status"]["routing"]["fallbackWeights"] == [{"shard": "eu-en", "weight": 30}]

    kube = RecordingKube()
    body = _tick(body, kube, _shards(0.3), 20)
    assert kube.applied == []  # the same share: not applied again
    body = _tick(body, kube, _shards(0.0), 30)
    [route] = kube.applied
    assert _weights(route)["eu-en-infer"] == 0
    assert body["status"]["routing"]["fallbackWeights"] == []


def test_a_reconcile_keeps_the_share_the_last_tick_decided() -> None:
    kube = RecordingKube()
    body = _fallback_body()
    _reconcile(body, kube)
    body = _stored(body, kube)
    body["status"]["shards"] = [s.model_dump(by_alias=True, mode="json") for s in _shards(0.5)]
    kube = RecordingKube()
    _reconcile(body, kube)
    [route] = kube.applied
    assert _weights(route)["eu-en-infer"] == 50


def test_over_grpc_the_route_never_carries_a_share() -> None:
    kube = RecordingKube()
    body = _fallback_body({**HTTP, "protocol": "grpc"})
    _reconcile(body, kube)
    body = _stored(body, kube)
    kube = RecordingKube()
    _tick(body, kube, _shards(0.3), 10)
    assert kube.calls == []
    assert NOW is not None
