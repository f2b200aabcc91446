"""Routing on the recording fake of the Kubernetes seam: the route applied with the shards, its
verdict stored and announced once, bad input (no CRDs, refused, conflict) said and never raised,
the route deleted when routing goes, and every tick mirroring the verdict into the Routed condition."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.helpers import RecordingKube, example_doc
from voxscale import names
from voxscale.api import RoutingStatus, ShardStatus, SpeechClusterStatus, parse_spec
from voxscale.handlers import reconcile_children
from voxscale.k8s import KindNotServedError, KubeApiError
from voxscale.render.status import cluster_status
from voxscale.routing import reconcile_routes

NOW = datetime(2025, 1, 1, tzinfo=UTC)
ROUTING = {"parentRefs": [{"name": "speech-gateway"}]}


def _body(routing: dict[str, Any] | None = ROUTING, **spec_changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(example_doc())
    if routing is not None:
        doc["spec"]["routing"] = routing
    doc["spec"].update(spec_changes)
    doc["metadata"].update({"uid": "u-1", "generation": 4})
    return doc


def _reconcile(body: dict[str, Any], kube: RecordingKube) -> RoutingStatus | None:
    return reconcile_routes(body, parse_spec(body["spec"]), kube, now=NOW)


def _stored(body: dict[str, Any], kube: RecordingKube) -> dict[str, Any]:
    """The body as the API server holds it after the last status patch (a merge patch)."""
    later = copy.deepcopy(body)
    status = later.setdefault("status", {})
    for key, value in kube.statuses[-1].items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value
    return later


def _api_error(status: int, message: str) -> KubeApiError:
    err = ApiException(status=status, reason="Refused")
    err.body = json.dumps({"kind": "Status", "message": message})
    return KubeApiError(err)


def _routed(status: dict[str, Any]) -> dict[str, Any]:
    [condition] = [c for c in status["conditions"] if c["type"] == names.CONDITION_ROUTED]
    return condition


def test_without_routing_nothing_is_rendered_written_or_said() -> None:
    kube = RecordingKube()
    assert _reconcile(_body(routing=None), kube) is None
    assert kube.calls == []


def test_the_route_is_applied_with_the_shards_and_its_verdict_stored_and_announced_once() -> None:
    kube = RecordingKube()
    body = _body()
    reconcile_children(body, parse_spec(body["spec"]), kube)
    assert [o["kind"] for o in kube.applied][-1] == "GRPCRoute"
    [status] = kube.statuses
    assert status["routing"] == {
        "kind": "GRPCRoute", "name": "asr", "routed": True, "reason": names.REASON_ROUTES_APPLIED,
        "message": "GRPCRoute asr routes 4 languages (de, en, es, fr) to 3 shards; sessions stick by"
                   " header x-voxscale-session",
        "observedGeneration": 4, "failovers": [], "fallbackWeights": [],
    }
    assert (_routed(status)["status"], _routed(status)["reason"]) == ("True", names.REASON_ROUTES_APPLIED)
    assert [(t, r) for t, r, _ in kube.events] == [("Normal", names.REASON_ROUTES_APPLIED)]
    # The periodic re-apply: the route again (undoing hand edits), but no write and no Event.
    again = RecordingKube()
    _reconcile(_stored(body, kube), again)
    assert [o["kind"] for o in again.applied] == ["GRPCRoute"]
    assert again.statuses == [] and again.events == []


def test_without_the_gateway_api_crds_it_says_what_to_install_once_and_the_shards_still_apply() -> None:
    absent = KindNotServedError(names.GATEWAY_API_VERSION, "GRPCRoute")
    kube = RecordingKube(apply_errors={"GRPCRoute": absent})
    body = _body()
    reconcile_children(body, parse_spec(body["spec"]), kube)  # does not raise
    assert len(kube.applied) == 12  # every shard's four objects
    verdict = kube.statuses[-1]["routing"]
    assert (verdict["routed"], verdict["reason"]) == (False, names.REASON_ROUTING_UNAVAILABLE)
    assert "this cluster serves no GRPCRoute" in verdict["message"]
    assert f"download/{names.GATEWAY_API_RELEASE}/experimental-install.yaml" in verdict["message"]
    assert [(t, r) for t, r, _ in kube.events] == [("Warning", names.REASON_ROUTING_UNAVAILABLE)]
    kube.events.clear()
    _reconcile(_stored(body, kube), kube)
    assert kube.events == []  # the re-apply a minute later says nothing new


@pytest.mark.parametrize(("error", "reason", "says"), [
    (_api_error(404, "the server could not find the requested resource"), names.REASON_ROUTING_UNAVAILABLE,
     "GRPCRoute not found"),
    (_api_error(422, 'GRPCRoute.gateway.networking.k8s.io "asr" is invalid: sectionName or port must be'
                     " specified"),
     names.REASON_ROUTE_REJECTED, "the API server refused GRPCRoute asr: HTTP 422"),
    (_api_error(400, ".spec.rules[0].sessionPersistence: field not declared in schema"),
     names.REASON_ROUTE_REJECTED, "experimental-install.yaml"),
    (_api_error(403, 'grpcroutes.gateway.networking.k8s.io "asr" is forbidden'), names.REASON_ROUTE_REJECTED,
     "is forbidden"),
], ids=["crd-gone", "cel-rule", "standard-channel", "rbac"])
def test_a_route_the_api_server_refuses_is_reported_with_its_message(
    error: KubeApiError, reason: str, says: str
) -> None:
    kube = RecordingKube(apply_errors={"GRPCRoute": error})
    verdict = _reconcile(_body(), kube)
    assert verdict is not None and not verdict.routed
    assert verdict.reason == reason and says in verdict.message
    assert kube.events[0][:2] == ("Warning", reason)


def test_an_api_server_outage_is_raised_for_the_caller_to_retry() -> None:
    kube = RecordingKube(apply_errors={"GRPCRoute": _api_error(503, "etcd unavailable")})
    with pytest.raises(KubeApiError):
        _reconcile(_body(), kube)


def test_a_conflict_leaves_the_route_last_applied_as_it_was() -> None:
    kube = RecordingKube()
    body = _body()
    _reconcile(body, kube)
    body = _stored(body, kube)
    body["spec"]["shards"].append({"name": "eu-en-2", "region": "eu-west", "languages": ["en"]})
    kube = RecordingKube()
    verdict = _reconcile(body, kube)
    assert kube.applied == [] and kube.deleted == []
    assert verdict is not None and (verdict.kind, verdict.name) == ("GRPCRoute", "asr")
    assert verdict.reason == names.REASON_ROUTING_CONFLICT
    assert "language en in region eu-west is served by shards eu-en and eu-en-2" in verdict.message
    assert [(t, r) for t, r, _ in kube.events] == [("Warning", names.REASON_ROUTING_CONFLICT)]


def test_a_new_protocol_applies_the_other_kind_and_deletes_the_old_route() -> None:
    kube = RecordingKube()
    body = _body()
    _reconcile(body, kube)
    body = _stored(body, kube)
    body["spec"]["routing"]["protocol"] = "http"
    kube = RecordingKube()
    _reconcile(body, kube)
    assert [o["kind"] for o in kube.applied] == ["HTTPRoute"]
    assert kube.deleted == [("GRPCRoute", "asr")]
    assert kube.statuses[-1]["routing"]["kind"] == "HTTPRoute"


def test_removing_routing_deletes_the_route_and_its_condition_with_an_event() -> None:
    kube = RecordingKube()
    body = _body()
    _reconcile(body, kube)
    body = _stored(body, kube)
    del body["spec"]["routing"]
    kube = RecordingKube()
    assert _reconcile(body, kube) is None
    assert kube.deleted == [("GRPCRoute", "asr")]
    [patch] = kube.statuses
    assert patch["routing"] is None
    assert names.CONDITION_ROUTED not in {c["type"] for c in patch["conditions"]}
    assert kube.events == [("Normal", names.REASON_ROUTES_REMOVED,
                            "spec.routing was removed: GRPCRoute asr deleted")]


def test_every_tick_mirrors_status_routing_into_the_routed_condition_and_drops_it_without() -> None:
    verdict = RoutingStatus(kind="GRPCRoute", name="asr", routed=False, reason=names.REASON_ROUTING_CONFLICT,
                            message="language en ...", observed_generation=4)
    # A tick whose view predates the verdict wrote no Routed condition: the next one restores it.
    status = cluster_status([], SpeechClusterStatus(routing=verdict), NOW, 5)
    [routed] = [c for c in status.conditions if c.type == names.CONDITION_ROUTED]
    assert (routed.status, routed.reason, routed.observed_generation) == ("False", verdict.reason, 4)
    assert status.routing is None  # never written by the tick: only the reconcile writes it
    # Routing removed while a stale tick carried the condition over: the next tick drops it.
    later = cluster_status([], SpeechClusterStatus(conditions=status.conditions), NOW, 5)
    assert names.CONDITION_ROUTED not in {c.type for c in later.conditions}


# ---------------------------------------------------------------------------- regional failover


def _shards(eu_en_ready: int) -> list[ShardStatus]:
    return [ShardStatus(name="eu-en", replicas=2, ready_replicas=eu_en_ready,
                        pending_replicas=2 - eu_en_ready),
            ShardStatus(name="eu-de-fr", replicas=1, ready_replicas=1),
            ShardStatus(name="us-en-es", replicas=2, ready_replicas=2)]


def _tick(body: dict[str, Any], kube: RecordingKube, shards: list[ShardStatus],
          seconds: float) -> dict[str, Any]:
    """The daemon's step after a tick; the body as stored afterwards."""
    reconcile_routes(body, parse_spec(body["spec"]), kube, now=NOW + timedelta(seconds=seconds),
                     shards=shards, established={"eu-en", "eu-de-fr", "us-en-es"})
    return _stored(body, kube) if kube.statuses else body


def _en_eu_west(route: dict[str, Any]) -> str:
    wanted = {"x-language": "en", "x-region": "eu-west"}
    return next(rule["backendRefs"][0]["name"] for rule in route["spec"]["rules"] for m in rule["matches"]
                if {h["name"]: h["value"] for h in m["headers"]} == wanted)


def test_the_daemon_applies_the_route_only_when_a_language_changes_destination() -> None:
    kube = RecordingKube()
    body = _body()
    _reconcile(body, kube)
    body = _stored(body, kube)
    kube = RecordingKube()
    body = _tick(body, kube, _shards(2), 0)
    assert kube.calls == []  # nothing changed: nothing applied, stored or said

    body = _tick(body, kube, _shards(0), 10)  # eu-en lost its GPUs
    [route] = kube.applied
    assert _en_eu_west(route) == "asr-us-en-es"
    [failover] = body["status"]["routing"]["failovers"]
    assert failover == {"from": "eu-en", "to": "us-en-es", "languages": ["en"],
                        "reason": "0 of 2 replicas Ready (2 Pending)", "since": "2025-01-01T00:00:10Z"}
    assert [(t, r) for t, r, _ in kube.events] == [("Warning", names.REASON_FAILED_OVER)]
    [cond] = [c for c in body["status"]["conditions"] if c["type"] == names.CONDITION_FAILED_OVER]
    assert (cond["status"], cond["reason"]) == ("True", names.REASON_FAILED_OVER)

    kube = RecordingKube()
    body = _tick(body, kube, _shards(0), 20)
    assert kube.calls == []
    body = _tick(body, kube, _shards(2), 30)  # Ready again: the hold starts, the route stays
    assert kube.applied == [] and kube.events == []
    assert body["status"]["routing"]["failovers"][0]["homeReadySince"] == "2025-01-01T00:00:30Z"
    body = _tick(body, kube, _shards(2), 50)  # held for 20 s: home
    [route] = kube.applied
    assert _en_eu_west(route) == "asr-eu-en"
    assert body["status"]["routing"]["failovers"] == []
    assert [(t, r) for t, r, _ in kube.events] == [("Normal", names.REASON_FAILED_BACK)]
    [cond] = [c for c in body["status"]["conditions"] if c["type"] == names.CONDITION_FAILED_OVER]
    assert (cond["status"], cond["reason"]) == ("False", names.REASON_AT_HOME)


def test_the_daemon_does_nothing_before_the_reconcile_stored_a_first_verdict() -> None:
    kube = RecordingKube()
    _tick(_body(), kube, _shards(0), 0)
    assert kube.calls == []


def test_the_periodic_reapply_keeps_a_failover_in_force() -> None:
    kube = RecordingKube()
    body = _body()
    _reconcile(body, kube)
    body = _tick(_stored(body, kube), kube, _shards(0), 10)
    body["status"]["shards"] = [s.model_dump(by_alias=True, mode="json") for s in _shards(0)]
    kube = RecordingKube()
    reconcile_children(body, parse_spec(body["spec"]), kube)
    assert _en_eu_west(kube.applied[-1]) == "asr-us-en-es"
    assert not [e for e in kube.events if e[1] in (names.REASON_FAILED_OVER, names.REASON_FAILED_BACK)]
