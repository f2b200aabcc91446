"""Kube._call speaks the installed kubernetes client's ApiClient (>= 35 split call_api in three)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from voxscale import names
from voxscale.k8s import APPLY, Kube


@dataclass
class FakeResponse:
    status: int
    payload: dict[str, Any]
    reason: str = "OK"
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    data: bytes = b""

    def read(self) -> bytes:
        self.data = json.dumps(self.payload).encode()
        return self.data

    def getheaders(self) -> dict[str, str]:
        return self.headers


@dataclass
class RecordingRest:
    response: FakeResponse
    calls: list[tuple[str, str, Any, dict[str, str]]] = field(default_factory=list)

    def request(self, method: str, url: str, headers: Any = None, body: Any = None,
                post_params: Any = None, _request_timeout: Any = None, **_: Any) -> FakeResponse:
        self.calls.append((method, url, body, dict(headers or {})))
        return self.response


def _kube(response: FakeResponse) -> tuple[Kube, RecordingRest]:
    config = kubernetes.client.Configuration(host="https://apiserver.invalid")
    api = kubernetes.client.ApiClient(config)
    rest = RecordingRest(response)
    api.rest_client = rest
    return Kube(api=api), rest


def _deployment() -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "asr-eu-en", "namespace": "speech"}, "spec": {"replicas": 3}}


def test_a_server_side_apply_is_a_forced_patch_under_our_field_manager() -> None:
    kube, rest = _kube(FakeResponse(200, {"kind": "Deployment", "metadata": {"uid": "u-9"}}))
    answer = kube.apply(_deployment())
    assert answer["metadata"]["uid"] == "u-9"
    [(method, url, body, headers)] = rest.calls
    assert method == "PATCH"
    assert url.startswith("https://apiserver.invalid/apis/apps/v1/namespaces/speech/deployments/asr-eu-en?")
    assert f"fieldManager={names.FIELD_MANAGER}" in url and "force=True" in url.replace("true", "True")
    assert headers["Content-Type"] == APPLY
    assert body["spec"]["replicas"] == 3


def test_a_refused_apply_raises_the_api_servers_status() -> None:
    kube, _ = _kube(FakeResponse(409, {"kind": "Status", "reason": "Conflict"}, reason="Conflict"))
    with pytest.raises(ApiException) as refused:
        kube.apply(_deployment())
    assert refused.value.status == 409


CANARY = "canary-5e1d-internal"


def test_a_refused_call_says_the_status_and_the_api_servers_message_never_headers() -> None:
    status = {"kind": "Status", "reason": "Forbidden",
              "message": 'deployments.apps "asr-eu-en" is forbidden: User "vx" cannot patch'}
    response = FakeResponse(403, status, reason="Forbidden",
                            headers={"content-type": "application/json", "Audit-Id": CANARY})
    kube, _ = _kube(response)
    with pytest.raises(ApiException) as refused:
        kube.apply(_deployment())
    assert refused.value.status == 403
    assert str(refused.value) == f"HTTP 403 Forbidden: {status['message']}"
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_a_body_that_is_no_status_object_is_not_quoted() -> None:
    # e.g. an HTML error page from a proxy between the operator and the API server
    kube, _ = _kube(FakeResponse(502, {"html": f"<pre>{CANARY}</pre>"}, reason="Bad Gateway"))
    with pytest.raises(ApiException) as refused:
        kube.delete_shards_except("speech", "asr", set())
    assert str(refused.value) == "HTTP 502 Bad Gateway"


def test_a_secret_value_that_is_not_utf8_is_reported_without_its_bytes() -> None:
    value = base64.b64encode(b"\xff" + CANARY.encode()).decode()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"}, "data": {"token": value}}
    kube, _ = _kube(FakeResponse(200, secret))
    with pytest.raises(ValueError, match="speech/t key 'token' is not base64 of UTF-8") as bad:
        kube.read_secret_key("speech", "t", "token")
    assert CANARY not in str(bad.value) and "xff" not in str(bad.value)
