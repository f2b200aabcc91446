"""Kube over the kubernetes client's DynamicClient, against a fake API server at the transport
(the ApiClient's rest_client): discovery, paths, query, content types and deadlines as sent."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import kubernetes
import pytest
import urllib3
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import RESTResponse

from voxscale import names
from voxscale.k8s import APPLY, MERGE, REQUEST_TIMEOUT_SECONDS, Kube

HOST = "https://apiserver.invalid"
CANARY = "canary-5e1d-internal"
Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]]


def _resources(group_version: str, *kinds: tuple[str, str]) -> dict[str, Any]:
    listed = [{"name": plural, "kind": kind, "namespaced": True, "verbs": ["get", "list", "patch"]}
              for kind, plural in kinds]
    listed += [{"name": f"{plural}/status", "kind": kind, "namespaced": True, "verbs": ["get", "patch"]}
               for kind, plural in kinds if kind in {"Deployment", names.KIND}]
    return {"kind": "APIResourceList", "groupVersion": group_version, "resources": listed}


DISCOVERY: dict[str, Any] = {
    "/version": {"major": "1", "minor": "33", "gitVersion": "v1.33.0"},
    "/api/v1": _resources("v1", ("ConfigMap", "configmaps"), ("Service", "services"), ("Pod", "pods"),
                          ("Secret", "secrets"), ("Event", "events")),
    "/apis/apps/v1": _resources("apps/v1", ("Deployment", "deployments")),
    "/apis/policy/v1": _resources("policy/v1", ("PodDisruptionBudget", "poddisruptionbudgets")),
    "/apis/autoscaling/v2": _resources("autoscaling/v2",
                                       ("HorizontalPodAutoscaler", "horizontalpodautoscalers")),
    f"/apis/{names.API_VERSION}": _resources(names.API_VERSION, (names.KIND, names.PLURAL)),
}
DISCOVERY["/apis"] = {"kind": "APIGroupList", "groups": [
    {"name": gv.split("/")[0], "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
     "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}}
    for gv in ("apps/v1", "policy/v1", "autoscaling/v2", names.API_VERSION)
]}


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeApiServer:
    """Answers discovery from DISCOVERY and every other request from `answer(call)`; records both."""

    answer: Callable[[Call], Answer] = lambda call: (200, {"kind": "Status", "status": "Success"})
    calls: list[Call] = field(default_factory=list)
    discovery: list[str] = field(default_factory=list)
    timeouts: list[Any] = field(default_factory=list)

    def request(self, method: str, url: str, headers: Any = None, body: Any = None,
                post_params: Any = None, _request_timeout: Any = None) -> RESTResponse:
        parts = urlsplit(url)
        self.timeouts.append(_request_timeout)
        if parts.path in DISCOVERY:
            self.discovery.append(parts.path)
            return _response(200, DISCOVERY[parts.path])
        call = Call(method, parts.path, dict(parse_qsl(parts.query)), dict(headers or {}), body)
        self.calls.append(call)
        status, payload, *more = self.answer(call)
        return _response(status, payload, *more)


def _response(status: int, payload: Any, headers: dict[str, str] | None = None) -> RESTResponse:
    reasons = {200: "OK", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 502: "Bad Gateway"}
    raw = urllib3.HTTPResponse(body=json.dumps(payload).encode(), status=status, reason=reasons[status],
                               headers=headers or {"Content-Type": "application/json"}, preload_content=True)
    return RESTResponse(raw)


def _kube(answer: Callable[[Call], Answer] | None = None) -> tuple[Kube, FakeApiServer]:
    api = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=HOST))
    server = FakeApiServer(answer) if answer else FakeApiServer()
    api.rest_client = server
    return Kube(api=api), server


def _not_found(call: Call) -> Answer:
    return 404, {"kind": "Status", "reason": "NotFound", "message": f"{call.path} not found"}


def _deployment() -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "asr-eu-en", "namespace": "speech"}, "spec": {"replicas": 3}}


# ---------------------------------------------------------------------------------- apply and scale


def test_a_server_side_apply_is_a_forced_patch_under_our_field_manager() -> None:
    kube, server = _kube(lambda call: (200, {"kind": "Deployment", "metadata": {"uid": "u-9"}}))
    assert kube.apply(_deployment())["metadata"]["uid"] == "u-9"
    [call] = server.calls
    assert (call.method, call.path) == ("PATCH", "/apis/apps/v1/namespaces/speech/deployments/asr-eu-en")
    assert call.query["fieldManager"] == names.FIELD_MANAGER
    assert call.query["force"].lower() == "true"
    assert call.headers["Content-Type"] == APPLY
    assert call.body["spec"]["replicas"] == 3


def test_a_scale_applies_only_replicas_under_the_scalers_field_manager() -> None:
    kube, server = _kube()
    kube.scale("speech", "asr-eu-en", 5)
    [call] = server.calls
    assert call.query["fieldManager"] == names.FIELD_MANAGER_SCALER
    assert call.body["spec"] == {"replicas": 5}
    assert set(call.body) == {"apiVersion", "kind", "metadata", "spec"}


def test_discovery_is_fetched_once_per_kube_and_every_request_has_a_deadline() -> None:
    kube, server = _kube()
    for _ in range(3):
        kube.apply(_deployment())
        kube.scale("speech", "asr-eu-en", 2)
    assert server.discovery.count("/apis/apps/v1") == 1 and server.discovery.count("/apis") == 1
    assert len(server.calls) == 6
    assert set(server.timeouts) == {REQUEST_TIMEOUT_SECONDS}


def test_reads_are_plain_gets_with_no_patch_content_type() -> None:
    secret = {"kind": "Secret", "data": {"token": base64.b64encode(b"t0k\n").decode()}}
    kube, server = _kube(lambda call: (200, secret))
    assert kube.read_secret_key("speech", "prom", "token") == "t0k"
    [call] = server.calls
    assert (call.method, call.path) == ("GET", "/api/v1/namespaces/speech/secrets/prom")
    assert "patch" not in call.headers.get("Content-Type", "")


# ---------------------------------------------------------------------------------- errors


def test_a_refused_apply_raises_the_api_servers_status() -> None:
    kube, _ = _kube(lambda call: (409, {"kind": "Status", "reason": "Conflict"}))
    with pytest.raises(ApiException) as refused:
        kube.apply(_deployment())
    assert refused.value.status == 409


def test_a_refused_call_says_the_status_and_the_api_servers_message_never_headers() -> None:
    status = {"kind": "Status", "reason": "Forbidden",
              "message": 'deployments.apps "asr-eu-en" is forbidden: User "vx" cannot patch'}
    kube, _ = _kube(lambda call: (403, status, {"Content-Type": "application/json", "Audit-Id": CANARY}))
    with pytest.raises(ApiException) as refused:
        kube.apply(_deployment())
    assert refused.value.status == 403
    assert str(refused.value) == f"HTTP 403 Forbidden: {status['message']}"
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_a_body_that_is_no_status_object_is_not_quoted() -> None:
    # e.g. an HTML error page from a proxy between the operator and the API server
    kube, _ = _kube(lambda call: (502, {"html": f"<pre>{CANARY}</pre>"}))
    with pytest.raises(ApiException) as refused:
        kube.delete_shards_except("speech", "asr", set())
    assert str(refused.value) == "HTTP 502 Bad Gateway"


def test_a_secret_value_that_is_not_utf8_is_reported_without_its_bytes() -> None:
    value = base64.b64encode(b"\xff" + CANARY.encode()).decode()
    kube, _ = _kube(lambda call: (200, {"kind": "Secret", "data": {"token": value}}))
    with pytest.raises(ValueError, match="speech/t key 'token' is not base64 of UTF-8") as bad:
        kube.read_secret_key("speech", "t", "token")
    assert CANARY not in str(bad.value) and "xff" not in str(bad.value)


def test_a_lost_event_is_logged_and_does_not_fail_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    kube, server = _kube(lambda call: (403, {"kind": "Status", "message": CANARY}))
    owner = {"metadata": {"name": "asr", "namespace": "speech", "uid": "u-1"}}
    kube.event(owner, "Normal", names.REASON_SCALED_UP, "2 -> 3", datetime(2026, 1, 1, tzinfo=UTC))
    [call] = server.calls
    assert (call.method, call.path) == ("POST", "/api/v1/namespaces/speech/events")
    assert call.body["involvedObject"]["kind"] == names.KIND
    assert "could not post Event ScaledUp" in caplog.text and CANARY not in caplog.text


# ---------------------------------------------------------------------------------- shards


def _pod(name: str, ready: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def test_a_shard_is_its_deployments_replicas_and_its_pods_by_selector() -> None:
    def answer(call: Call) -> Answer:
        if call.path.endswith("/deployments/asr-eu-en"):
            return 200, {"kind": "Deployment", "metadata": {"uid": "d-1"}, "spec": {"replicas": 3}}
        return 200, {"kind": "PodList", "items": [_pod("a", "True"), _pod("b", "False")]}

    kube, server = _kube(answer)
    pods = kube.read_shard("speech", "asr", "eu-en")
    assert (pods.exists, pods.deployment_uid) == (True, "d-1")
    assert (pods.spec_replicas, pods.counts.ready, pods.counts.warming) == (3, 1, 1)
    selector = ",".join(f"{k}={v}" for k, v in names.selector_labels("asr", "eu-en").items())
    assert server.calls[1].path == "/api/v1/namespaces/speech/pods"
    assert server.calls[1].query["labelSelector"] == selector


def test_a_shard_without_a_deployment_does_not_exist_yet() -> None:
    kube, server = _kube(_not_found)
    assert not kube.read_shard("speech", "asr", "eu-en").exists
    assert len(server.calls) == 1


def test_only_children_of_shards_left_out_are_deleted_in_the_background() -> None:
    def answer(call: Call) -> Answer:
        if call.method == "DELETE":
            return _not_found(call) if "services" in call.path else (200, {"kind": "Status"})
        items = [{"metadata": {"name": f"asr-{s}", "labels": {names.LABEL_SHARD: s}}}
                 for s in ("eu-en", "ap-ja")]
        return 200, {"kind": "List", "items": items}

    kube, server = _kube(answer)
    assert kube.delete_shards_except("speech", "asr", {"eu-en"}) == ["ap-ja"]
    lists = [c for c in server.calls if c.method == "GET"]
    assert all(c.query["labelSelector"] == f"{names.LABEL_CLUSTER}=asr" for c in lists) and len(lists) == 4
    deletes = [c for c in server.calls if c.method == "DELETE"]
    assert [c.path.rsplit("/", 2)[1] for c in deletes] == [
        "configmaps", "services", "poddisruptionbudgets", "deployments"]
    assert all(c.path.endswith("/asr-ap-ja") for c in deletes)
    assert all(c.query["propagationPolicy"] == "Background" for c in deletes)


def test_a_kept_shards_deployment_no_longer_rendered_is_deleted_and_its_other_children_kept() -> None:
    def answer(call: Call) -> Answer:
        if call.method == "DELETE":
            return 200, {"kind": "Status"}
        kind = call.path.rsplit("/", 1)[1]
        names_ = ["asr-eu-en"]
        if kind == "deployments":
            names_ += ["asr-eu-en-spot", "asr-eu-en-on-demand"]
        items = [{"metadata": {"name": n, "labels": {names.LABEL_SHARD: "eu-en"}}} for n in names_]
        return 200, {"kind": "List", "items": items}

    kube, server = _kube(answer)
    rendered = {"asr-eu-en-spot", "asr-eu-en-on-demand"}  # spec.placement added: the one-pool Deployment goes
    assert kube.delete_shards_except("speech", "asr", {"eu-en"}, rendered) == []
    deletes = [c.path for c in server.calls if c.method == "DELETE"]
    assert deletes == ["/apis/apps/v1/namespaces/speech/deployments/asr-eu-en"]


def test_a_shard_on_a_pool_is_read_by_its_pool_deployment_and_selector() -> None:
    def answer(call: Call) -> Answer:
        if call.path.endswith("/deployments/asr-eu-en-spot"):
            return 200, {"kind": "Deployment", "metadata": {"uid": "d-2"}, "spec": {"replicas": 2}}
        return 200, {"kind": "PodList", "items": [_pod("a", "True")]}

    kube, server = _kube(answer)
    pods = kube.read_pool("speech", "asr", "eu-en", "spot")
    assert (pods.spec_replicas, pods.counts.ready, pods.counts.warming) == (2, 1, 0)
    selector = ",".join(f"{k}={v}" for k, v in names.pool_selector_labels("asr", "eu-en", "spot").items())
    assert server.calls[1].query["labelSelector"] == selector


def test_hpas_are_read_as_deployment_to_hpa_name() -> None:
    hpas = [{"metadata": {"name": name}, "spec": {"scaleTargetRef": {"kind": kind, "name": target}}}
            for name, kind, target in (("h1", "Deployment", "asr-eu-en"), ("h2", "StatefulSet", "db"))]
    kube, server = _kube(lambda call: (200, {"kind": "HorizontalPodAutoscalerList", "items": hpas}))
    assert kube.hpa_targets("speech") == {"asr-eu-en": "h1"}
    assert server.calls[0].path == "/apis/autoscaling/v2/namespaces/speech/horizontalpodautoscalers"


# ---------------------------------------------------------------------------------- status, the lab's calls


def test_status_is_a_merge_patch_of_the_status_subresource() -> None:
    kube, server = _kube()
    kube.patch_status("speech", "asr", {"replicas": 4})
    [call] = server.calls
    path = f"/apis/{names.API_VERSION}/namespaces/speech/{names.PLURAL}/asr/status"
    assert (call.method, call.path) == ("PATCH", path)
    assert call.headers["Content-Type"] == MERGE
    assert call.body == {"status": {"replicas": 4}}


def test_a_pod_is_listed_by_selector_and_merge_patched() -> None:
    kube, server = _kube(lambda call: (200, {"kind": "PodList", "items": [_pod("a", "True")]}))
    assert [p["metadata"]["name"] for p in kube.list_pods("speech", "x=y")] == ["a"]
    kube.patch_pod("speech", "a", {"metadata": {"annotations": {"k": "v"}}})
    listing, patch = server.calls
    assert (listing.method, listing.query["labelSelector"]) == ("GET", "x=y")
    assert (patch.method, patch.path, patch.headers["Content-Type"]) == (
        "PATCH", "/api/v1/namespaces/speech/pods/a", MERGE)


def test_a_missing_speechcluster_reads_as_none() -> None:
    kube, server = _kube(_not_found)
    assert kube.read_speechcluster("speech", "asr") is None
    assert server.calls[0].path == f"/apis/{names.API_VERSION}/namespaces/speech/{names.PLURAL}/asr"


def test_a_kube_from_a_kubeconfig_file_talks_to_its_server_and_leaves_the_default_alone(
    tmp_path: Path,
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "demo",
        "clusters": [{"name": "demo", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "demo", "user": {"token": "t"}}],
        "contexts": [{"name": "demo", "context": {"cluster": "demo", "user": "demo"}}],
    }))
    kube = Kube.from_kubeconfig(kubeconfig)
    assert kube.api.configuration.host == "https://127.0.0.1:6443"
    assert kubernetes.client.Configuration.get_default_copy().host != "https://127.0.0.1:6443"
    kube.close()
