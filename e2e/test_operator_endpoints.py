"""spec.prometheus.url is no read primitive: a URL off the operator's allow-list (the API server's,
another loopback service) is refused without a request, and an allowed endpoint's error body comes
back nowhere (status, Events, the operator's log)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from e2e.helpers import E2ECluster, condition, eventually
from e2e.operator_process import OperatorProcess, e2e_spec, events, operator_namespace, speechcluster
from voxscale import names
from voxscale_lab.devcluster import Kubectl

TAG = "endpoints"
CANARY = "TOP-SECRET-INTERNAL-DATA db_password=e2e-canary-91c4"


@dataclass
class Recorder:
    """A loopback HTTP service that answers every GET with 403 and a secret body, counting hits."""

    hits: list[str] = field(default_factory=list)
    url: str = ""


@contextmanager
def recording_service() -> Iterator[Recorder]:
    recorder = Recorder()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            recorder.hits.append(self.path)
            body = json.dumps({"internal": CANARY}).encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def allowed() -> Iterator[Recorder]:
    """The one endpoint on this module's allow-list."""
    with recording_service() as r:
        yield r


@pytest.fixture(scope="module")
def refused() -> Iterator[Recorder]:
    """Another loopback service: on no list, so it must never be called."""
    with recording_service() as r:
        yield r


@pytest.fixture(scope="module")
def op(
    cluster: E2ECluster, speechcluster_crd: dict[str, Any], allowed: Recorder
) -> Iterator[OperatorProcess]:
    o = OperatorProcess(cluster.kubectl.kubeconfig, "", cluster.workdir / f"operator-{TAG}.log",
                        (allowed.url,))
    o.start()
    try:
        yield o
    finally:
        o.stop()


@pytest.fixture
def ns(kubectl: Kubectl, op: OperatorProcess, request: pytest.FixtureRequest) -> Iterator[str]:
    yield from operator_namespace(kubectl, op, request, TAG)


def _named(ns: str, name: str, url: str) -> dict[str, Any]:
    doc = e2e_spec(ns, url, shards=["eu-en"])
    doc["metadata"]["name"] = name
    return doc


def _refusal(kubectl: Kubectl, ns: str, name: str) -> dict[str, Any] | None:
    ready = condition(speechcluster(kubectl, ns, name), names.CONDITION_READY)
    ok = ready is not None and ready["reason"] == names.REASON_ENDPOINT_NOT_ALLOWED
    return ready if ok else None


def _apiserver_url(kubectl: Kubectl) -> str:
    config = yaml.safe_load(kubectl.kubeconfig.read_text())
    server: str = config["clusters"][0]["cluster"]["server"]
    return server


def test_a_speechcluster_naming_the_api_servers_url_is_refused_and_says_which_setting_to_change(
    kubectl: Kubectl, ns: str,
) -> None:
    url = _apiserver_url(kubectl)
    kubectl.apply(_named(ns, "asr", url))
    ready = eventually("Ready=False MetricsEndpointNotAllowed", lambda: _refusal(kubectl, ns, "asr"))
    assert ready["status"] == "False"
    for words in ("spec.prometheus.url", "prometheus.allowedEndpoints", "--allowed-metrics-endpoint",
                  "no request was sent"):
        assert words in ready["message"], ready["message"]
    warning = eventually("a Warning MetricsEndpointNotAllowed event",
                         lambda: events(kubectl, ns, names.REASON_ENDPOINT_NOT_ALLOWED) or None)
    assert warning[0]["type"] == "Warning"
    obj = speechcluster(kubectl, ns, "asr")
    # Never ticked: a tick would have written shard status and a MetricsAvailable condition.
    assert condition(obj, names.CONDITION_METRICS_AVAILABLE) is None
    assert not obj["status"].get("shards")
    assert kubectl.json("get", "deployments", "-n", ns)["items"] == []


def test_a_loopback_service_off_the_list_gets_no_request_and_an_allowed_ones_body_leaks_nowhere(
    kubectl: Kubectl, ns: str, op: OperatorProcess, allowed: Recorder, refused: Recorder,
) -> None:
    log_from = op.log_size()
    kubectl.apply(_named(ns, "sneaky", refused.url))
    eventually("Ready=False MetricsEndpointNotAllowed", lambda: _refusal(kubectl, ns, "sneaky"))
    # The control: the same operator does call an allowed endpoint, and reports only its status.
    kubectl.apply(_named(ns, "asr", allowed.url))

    def reported() -> dict[str, Any] | None:
        metrics = condition(speechcluster(kubectl, ns, "asr"), names.CONDITION_METRICS_AVAILABLE)
        ok = metrics is not None and "HTTP 403 from the metrics endpoint" in metrics["message"]
        return metrics if ok else None

    eventually("MetricsAvailable=False naming HTTP 403", reported)
    eventually("a MetricsUnavailable Warning event",
               lambda: events(kubectl, ns, names.REASON_METRICS_UNAVAILABLE) or None)
    assert allowed.hits, "the allowed endpoint was queried"
    assert refused.hits == []
    everything = "\n".join([
        kubectl.run("get", names.PLURAL, "-n", ns, "-o", "yaml").stdout,
        kubectl.run("get", "events", "-n", ns, "-o", "yaml").stdout,
        op.log_since(log_from),
    ])
    assert "e2e-canary-91c4" not in everything
    assert "TOP-SECRET" not in everything
