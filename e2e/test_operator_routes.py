"""The front door on a real API server with the real Gateway API CRDs: the operator's route passes
their schema and CEL rules, matches each language to its shard's Service with session persistence,
follows the spec, and bad input (no CRDs, a conflict, an unserved language, a refused route) is
a condition and an Event, never a crash loop and never a dropped shard or route.

Test order matters: the first scenario runs before the session installs the CRDs (the fixture
`gateway_api_crds` is first requested inside it), and watches the operator recover once they are.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from e2e.helpers import FIGURES, condition, eventually
from e2e.operator_process import OperatorProcess, e2e_spec, events, speechcluster
from e2e.traffic import Telemetry
from voxscale import names
from voxscale.handlers import REAPPLY_EVERY_SECONDS
from voxscale_lab.devcluster import Kubectl
from voxscale_lab.harness.gateway_api import gateway_api_installed

TAG = "routes"
GATEWAY = {"name": "speech-gateway", "sectionName": "grpc"}


def _spec(tel: Telemetry, ns: str, routing: dict[str, Any] | None = None,
          shards: list[str] | None = None) -> dict[str, Any]:
    doc = e2e_spec(ns, tel.url, shards=shards)
    doc["spec"]["routing"] = {"parentRefs": [GATEWAY], **(routing or {})}
    return doc


def _route(kubectl: Kubectl, ns: str, kind: str = "GRPCRoute") -> dict[str, Any] | None:
    plural = dict(names.ROUTE_KINDS.values())[kind]
    resource = f"{plural}.{names.GATEWAY_API_GROUP}"
    out = kubectl.run("get", resource, "asr", "-n", ns, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


def _routing(kubectl: Kubectl, ns: str) -> dict[str, Any] | None:
    routing: dict[str, Any] | None = speechcluster(kubectl, ns, "asr").get("status", {}).get("routing")
    return routing


def _verdict(kubectl: Kubectl, ns: str, reason: str) -> dict[str, Any] | None:
    """status.routing once it has `reason` and the Routed condition says the same."""
    obj = speechcluster(kubectl, ns, "asr")
    routing, routed = obj.get("status", {}).get("routing"), condition(obj, names.CONDITION_ROUTED)
    if routing and routed and routing["reason"] == routed["reason"] == reason:
        return dict(routing)
    return None


def _wait_verdict(kubectl: Kubectl, ns: str, reason: str) -> dict[str, Any]:
    found: dict[str, Any] = eventually(reason, lambda: _verdict(kubectl, ns, reason), timeout=30)
    return found


def _deployment(kubectl: Kubectl, ns: str, shard: str) -> bool:
    name = names.shard_resource_name("asr", shard)
    return kubectl.run("get", "deployment", name, "-n", ns, check=False).returncode == 0


def _table(route: dict[str, Any]) -> dict[tuple[str, str | None], str]:
    """(language, region or None) -> "<Service>:<port>", as the API server stored the route."""
    out = {}
    for rule in route["spec"]["rules"]:
        [backend] = rule["backendRefs"]
        assert (backend.get("group", ""), backend.get("kind", "Service")) == ("", "Service")
        for match in rule["matches"]:
            headers = {h["name"]: h["value"] for h in match["headers"]}
            assert {h["type"] for h in match["headers"]} == {"Exact"}
            out[(headers["x-language"], headers.get("x-region"))] = f"{backend['name']}:{backend['port']}"
    return out


def _service_port(kubectl: Kubectl, ns: str, shard: str, port_name: str) -> str:
    name = names.shard_resource_name("asr", shard)
    svc = kubectl.json("get", "service", name, "-n", ns)
    return f"{name}:{next(p['port'] for p in svc['spec']['ports'] if p['name'] == port_name)}"


def _patch(kubectl: Kubectl, ns: str, patch: dict[str, Any]) -> None:
    kubectl.run("patch", names.PLURAL, "asr", "-n", ns, "--type=merge", "-p", json.dumps(patch))


def test_without_the_gateway_api_crds_routing_says_what_to_install_and_recovers_when_they_are(
    kubectl: Kubectl, op: OperatorProcess, tel: Telemetry, ns: str, request: pytest.FixtureRequest,
) -> None:
    installed = gateway_api_installed(kubectl)
    if installed and os.environ.get("E2E_KUBECONFIG"):
        pytest.skip(f"E2E_KUBECONFIG's cluster already has the Gateway API CRDs ({', '.join(installed)})")
    assert not installed, "the local cluster has Gateway API CRDs before this scenario installs them"
    log_offset = op.log_size()
    kubectl.apply(_spec(tel, ns, shards=["eu-en", "us-en-es"]))
    verdict = _wait_verdict(kubectl, ns, names.REASON_ROUTING_UNAVAILABLE)
    print(f"\nRouted=False RoutingUnavailable: {verdict['message']}")
    assert "this cluster serves no GRPCRoute" in verdict["message"]
    assert f"download/{names.GATEWAY_API_RELEASE}/experimental-install.yaml" in verdict["message"]
    # Nothing dropped: both shards' workers are there although their route is not.
    assert _deployment(kubectl, ns, "eu-en") and _deployment(kubectl, ns, "us-en-es")
    [warning] = events(kubectl, ns, names.REASON_ROUTING_UNAVAILABLE)
    assert warning["type"] == "Warning"

    installed_at = time.monotonic()
    request.getfixturevalue("gateway_api_crds")
    # No spec change: the daemon's periodic re-apply (every REAPPLY_EVERY_SECONDS) finds them.
    eventually("the route, after the CRDs arrived", lambda: _route(kubectl, ns),
               timeout=REAPPLY_EVERY_SECONDS + 30, interval=1.0)
    waited = time.monotonic() - installed_at
    FIGURES["route applied after the Gateway API CRDs were installed"] = f"{waited:.0f} s"
    print(f"route applied {waited:.1f} s after the CRDs were installed"
          f" (re-apply every {REAPPLY_EVERY_SECONDS:.0f} s)")
    _wait_verdict(kubectl, ns, names.REASON_ROUTES_APPLIED)
    # Said once, never retried as a failing handler, never restarted.
    assert len(events(kubectl, ns, names.REASON_ROUTING_UNAVAILABLE)) == 1
    log = op.log_since(log_offset)
    assert "failed temporarily" not in log and "Traceback" not in log, log[-4000:]
    assert op.starts == 1


def test_the_route_matches_each_language_to_its_shards_service_and_follows_the_spec(
    kubectl: Kubectl, tel: Telemetry, ns: str, gateway_api_crds: dict[str, Any],
) -> None:
    kubectl.apply(_spec(tel, ns))
    route = eventually("the GRPCRoute", lambda: _route(kubectl, ns), timeout=30)
    uid = speechcluster(kubectl, ns, "asr")["metadata"]["uid"]
    assert [(o["kind"], o["uid"], o.get("controller")) for o in route["metadata"]["ownerReferences"]] == [
        (names.KIND, uid, True)]
    assert route["spec"]["parentRefs"][0]["name"] == GATEWAY["name"]
    grpc = {s: _service_port(kubectl, ns, s, names.PORT_NAME_GRPC) for s in ("eu-en", "eu-de-fr", "us-en-es")}
    assert _table(route) == {
        ("en", "eu-west"): grpc["eu-en"], ("en", None): grpc["eu-en"],
        ("de", "eu-west"): grpc["eu-de-fr"], ("de", None): grpc["eu-de-fr"],
        ("fr", "eu-west"): grpc["eu-de-fr"], ("fr", None): grpc["eu-de-fr"],
        ("en", "us-east"): grpc["us-en-es"],
        ("es", "us-east"): grpc["us-en-es"], ("es", None): grpc["us-en-es"],
    }
    for rule in route["spec"]["rules"]:
        assert rule["sessionPersistence"]["type"] == "Header"
        assert rule["sessionPersistence"]["sessionName"] == "x-voxscale-session"
    verdict = _wait_verdict(kubectl, ns, names.REASON_ROUTES_APPLIED)
    print(f"\nstored route: {len(route['spec']['rules'])} rules, {len(_table(route))} matches;"
          f" {verdict['message']}")

    # Shards change: eu-de-fr leaves, eu-ja joins; the route follows (and the region header of
    # a language served in one region only still has its region-less match).
    shards = [s for s in _spec(tel, ns)["spec"]["shards"] if s["name"] != "eu-de-fr"]
    shards.append({"name": "eu-ja", "region": "eu-west", "languages": ["ja"]})
    _patch(kubectl, ns, {"spec": {"shards": shards}})
    updated = eventually("the route without de/fr and with ja", lambda: (r := _route(kubectl, ns)) and (
        [rule["name"] for rule in r["spec"]["rules"]] == ["eu-en", "us-en-es", "eu-ja"]) and r, timeout=30)
    ja = _service_port(kubectl, ns, "eu-ja", names.PORT_NAME_GRPC)
    assert _table(updated) == {
        ("en", "eu-west"): grpc["eu-en"], ("en", None): grpc["eu-en"],
        ("en", "us-east"): grpc["us-en-es"],
        ("es", "us-east"): grpc["us-en-es"], ("es", None): grpc["us-en-es"],
        ("ja", "eu-west"): ja, ("ja", None): ja,
    }
    print(f"after the shard change: rules {[r['name'] for r in updated['spec']['rules']]}")

    # protocol http: an HTTPRoute to the HTTP port, and the GRPCRoute gone.
    _patch(kubectl, ns, {"spec": {"routing": {"protocol": "http", "session": {"type": "Cookie"}}}})
    http = eventually("the HTTPRoute", lambda: _route(kubectl, ns, "HTTPRoute"), timeout=30)
    eventually("the GRPCRoute deleted", lambda: _route(kubectl, ns) is None, timeout=30)
    assert _table(http)[("ja", None)] == _service_port(kubectl, ns, "eu-ja", names.PORT_NAME_HTTP)
    assert {r["sessionPersistence"]["type"] for r in http["spec"]["rules"]} == {"Cookie"}

    # Routing removed: the route is deleted, status.routing and the Routed condition go.
    _patch(kubectl, ns, {"spec": {"routing": None}})
    eventually("the HTTPRoute deleted", lambda: _route(kubectl, ns, "HTTPRoute") is None, timeout=30)
    eventually("status.routing gone", lambda: _routing(kubectl, ns) is None, timeout=30)
    eventually("no Routed condition", lambda: condition(speechcluster(kubectl, ns, "asr"),
                                                         names.CONDITION_ROUTED) is None, timeout=30)
    [removed] = events(kubectl, ns, names.REASON_ROUTES_REMOVED)
    print(f"routing removed: {removed['message']}")
    assert removed["message"] == "spec.routing was removed: HTTPRoute asr deleted"


def test_a_conflict_an_unserved_language_and_a_refused_route_are_said_and_nothing_is_dropped(
    kubectl: Kubectl, tel: Telemetry, ns: str, gateway_api_crds: dict[str, Any],
) -> None:
    kubectl.apply(_spec(tel, ns, {"languages": ["en", "es", "ko"]}, shards=["eu-en", "us-en-es"]))
    unserved = _wait_verdict(kubectl, ns, names.REASON_LANGUAGE_UNSERVED)
    print(f"\nLanguageUnserved: {unserved['message']}")
    assert "lists ko, which no shard serves" in unserved["message"]
    route = eventually("the route of the served languages", lambda: _route(kubectl, ns), timeout=30)
    assert {language for language, _ in _table(route)} == {"en", "es"}

    # A second shard for en in eu-west: the route stays exactly as it was, the shard still runs.
    shards = [*_spec(tel, ns, shards=["eu-en", "us-en-es"])["spec"]["shards"],
              {"name": "eu-en-2", "region": "eu-west", "languages": ["en"]}]
    _patch(kubectl, ns, {"spec": {"shards": shards}})
    conflict = _wait_verdict(kubectl, ns, names.REASON_ROUTING_CONFLICT)
    print(f"RoutingConflict: {conflict['message']}")
    assert "language en in region eu-west is served by shards eu-en and eu-en-2" in conflict["message"]
    eventually("eu-en-2's Deployment", lambda: _deployment(kubectl, ns, "eu-en-2"), timeout=30)
    kept = _route(kubectl, ns)
    assert kept is not None and kept["metadata"]["resourceVersion"] == route["metadata"]["resourceVersion"]
    [warning] = events(kubectl, ns, names.REASON_ROUTING_CONFLICT)
    assert warning["type"] == "Warning"

    # Conflict fixed, then a parentRefs list Gateway API's own CEL rule refuses: RouteRejected
    # with the API server's words, and the route last applied stays.
    _patch(kubectl, ns, {"spec": {"shards": shards[:2], "routing": {"languages": None}}})
    _wait_verdict(kubectl, ns, names.REASON_ROUTES_APPLIED)
    applied = _route(kubectl, ns)
    assert applied is not None
    twice = [{"name": "speech-gateway"}, {"name": "speech-gateway", "sectionName": "http"}]
    _patch(kubectl, ns, {"spec": {"routing": {"parentRefs": twice}}})
    rejected = _wait_verdict(kubectl, ns, names.REASON_ROUTE_REJECTED)
    print(f"RouteRejected: {rejected['message']}")
    assert "the API server refused GRPCRoute asr: HTTP 422" in rejected["message"]
    assert "sectionName or port must be specified" in rejected["message"]
    after = _route(kubectl, ns)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == applied["metadata"]["resourceVersion"]
