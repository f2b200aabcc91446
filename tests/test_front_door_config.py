"""The local front door's haproxy.cfg is a pure translation of the operator's rendered route: the
same caller reaches the same shard as the route says, sessions stick by the route's session key,
and a request no rule matches is refused. (HAProxy's own `haproxy -c` verdict is in
tests/integration/test_front_door.py.)"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.helpers import spec_with
from voxscale.render import Owner
from voxscale.render.routes import render_route
from voxscale_lab.harness.front_door import (
    NO_ROUTE_BACKEND,
    SERVED_BY_HEADER,
    Endpoint,
    UnsupportedRouteError,
    duration_seconds,
    haproxy_config,
    plan,
)

OWNER = Owner(name="asr", namespace="speech", uid="00000000-0000-0000-0000-000000000001")
ENDPOINTS = {
    "eu-en": [Endpoint("eu-en-0", "127.0.0.1:9000"), Endpoint("eu-en-1", "127.0.0.1:9001")],
    "eu-de-fr": [Endpoint("eu-de-fr-0", "127.0.0.1:9010")],
    "us-en-es": [Endpoint("us-en-es-0", "127.0.0.1:9020")],
}


def _route(**routing: Any) -> dict[str, Any]:
    spec = spec_with(routing={"parentRefs": [{"name": "speech-gateway"}], **routing})
    assert spec.routing is not None
    return render_route(OWNER, spec, spec.routing)


def _config(route: dict[str, Any], endpoints: dict[str, list[Endpoint]] | None = None) -> str:
    return haproxy_config(plan(route), ENDPOINTS if endpoints is None else endpoints,
                          listen="127.0.0.1:8080", admin_socket="/tmp/haproxy.sock")


def _section(config: str, header: str) -> list[str]:
    """The lines of one section ("frontend front-door", "backend shard-eu-en"), stripped."""
    block = config.split(f"\n{header}\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in block.splitlines()]


def _switches(config: str) -> list[tuple[str, dict[str, str]]]:
    """The frontend's use_backend lines in order: (backend, {header: exact value})."""
    out = []
    for line in _section(config, "frontend front-door"):
        if m := re.match(r"use_backend (\S+)(?: if (.*))?$", line):
            conditions = re.findall(r"\{ req\.hdr\((\S+)\) -m str (\S+) \}", m.group(2) or "")
            out.append((m.group(1), dict(conditions)))
    return out


def _served_by(config: str, headers: dict[str, str]) -> str:
    """The backend HAProxy picks: the first use_backend whose conditions all hold, else the default."""
    for backend, wanted in _switches(config):
        if all(headers.get(h) == v for h, v in wanted.items()):
            return backend
    [default] = [line.split()[1] for line in _section(config, "frontend front-door")
                 if line.startswith("default_backend")]
    return default


def test_each_caller_reaches_the_shard_the_rendered_route_names() -> None:
    # The example: eu-en (eu-west: en), eu-de-fr (eu-west: de, fr), us-en-es (us-east: en, es).
    config = _config(_route(protocol="http"))
    callers = {
        ("en", "us-east"): "shard-us-en-es",  # the region match outranks eu-en's language-only one
        ("en", "eu-west"): "shard-eu-en",
        ("en", None): "shard-eu-en",  # no region: the first shard in spec order serving en
        ("en", "mars"): "shard-eu-en",  # an unknown region still matches the language-only rule
        ("es", None): "shard-us-en-es",
        ("fr", "eu-west"): "shard-eu-de-fr",
        ("de", None): "shard-eu-de-fr",
        ("ja", None): NO_ROUTE_BACKEND,
        ("es", "eu-west"): "shard-us-en-es",
    }
    for (language, region), backend in callers.items():
        headers = {"x-language": language} | ({"x-region": region} if region else {})
        assert _served_by(config, headers) == backend, (language, region)


def test_matches_with_more_headers_come_first_and_keep_rule_order_among_equals() -> None:
    switches = _switches(_config(_route()))
    counts = [len(headers) for _, headers in switches]
    assert counts == sorted(counts, reverse=True) and set(counts) == {1, 2}
    two = [backend for backend, headers in switches if len(headers) == 2]
    assert two == ["shard-eu-en", "shard-eu-de-fr", "shard-eu-de-fr", "shard-us-en-es", "shard-us-en-es"]


def test_a_request_no_rule_matches_is_answered_404_by_the_proxy() -> None:
    [rule] = [line for line in _section(_config(_route()), f"backend {NO_ROUTE_BACKEND}")
              if line.startswith("http-request")]
    assert rule.startswith("http-request return status 404 ")
    assert "GRPCRoute speech/asr" in rule


def test_every_shard_backend_sticks_sessions_by_the_route_session_header_and_names_its_server() -> None:
    config = _config(_route(protocol="http"))
    for rule, endpoints in ENDPOINTS.items():
        lines = _section(config, f"backend shard-{rule}")
        assert "stick on req.hdr(x-voxscale-session)" in lines
        assert "balance hash req.hdr(x-voxscale-session)" in lines
        assert "hash-type consistent" in lines
        assert any(line.startswith("stick-table type string ") for line in lines)
        assert f"http-response set-header {SERVED_BY_HEADER} %s" in lines
        servers = [line.split()[1:3] for line in lines if line.startswith("server ")]
        assert servers == [[e.name, e.address] for e in endpoints]


def test_a_session_timeout_becomes_the_stick_table_expiry_and_a_cookie_session_sticks_by_cookie() -> None:
    route = _route(session={"type": "Cookie", "name": "voxscale-session", "absoluteTimeout": "1h30m"})
    lines = _section(_config(route), "backend shard-eu-en")
    assert "stick on req.cook(voxscale-session)" in lines
    assert any(line.endswith(" expire 5400s") for line in lines if line.startswith("stick-table"))


def test_without_a_session_timeout_unused_sessions_are_forgotten_after_an_hour() -> None:
    lines = _section(_config(_route()), "backend shard-eu-en")
    assert any(line.endswith(" expire 3600s") for line in lines if line.startswith("stick-table"))


def test_a_grpc_route_speaks_http2_cleartext_on_both_sides_and_an_http_route_http1() -> None:
    grpc, http = _config(_route(protocol="grpc")), _config(_route(protocol="http"))
    assert "bind 127.0.0.1:8080 proto h2" in _section(grpc, "frontend front-door")
    assert "server eu-en-0 127.0.0.1:9000 proto h2" in _section(grpc, "backend shard-eu-en")
    assert "bind 127.0.0.1:8080" in _section(http, "frontend front-door")
    assert "server eu-en-0 127.0.0.1:9000" in _section(http, "backend shard-eu-en")


def test_a_shard_without_endpoints_keeps_its_backend_with_no_server() -> None:
    config = _config(_route(), {"eu-en": ENDPOINTS["eu-en"]})
    assert not [line for line in _section(config, "backend shard-us-en-es") if line.startswith("server")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["spec"]["rules"][0]["matches"][0]["headers"][0].update(type="RegularExpression"),
         "only Exact header matches"),
        (lambda r: r["spec"]["rules"][0]["matches"][0].update(method={"service": "x"}),
         "only header matches"),
        (lambda r: r["spec"]["rules"][0]["matches"][0]["headers"][0].update(value="en us"),
         "accepts only"),
        (lambda r: r["spec"]["rules"][1]["sessionPersistence"].update(sessionName="other"),
         "different sessionPersistence"),
        (lambda r: r.update(kind="TLSRoute"), "translates HTTPRoute and GRPCRoute"),
    ],
    ids=["regex-header", "method-match", "unsafe-value", "mixed-sessions", "other-kind"],
)
def test_what_the_front_door_cannot_translate_is_refused_naming_it(change: Any, message: str) -> None:
    route = _route()
    change(route)
    with pytest.raises(UnsupportedRouteError, match=message):
        plan(route)


def test_endpoints_for_a_shard_the_route_does_not_know_are_refused() -> None:
    with pytest.raises(UnsupportedRouteError, match="no rule for"):
        _config(_route(), {"gone": [Endpoint("x", "127.0.0.1:1")]})


@pytest.mark.parametrize(("duration", "seconds"),
                         [("1h", 3600), ("1h30m", 5400), ("90s", 90), ("500ms", 0.5)])
def test_gateway_api_durations_are_read_in_seconds(duration: str, seconds: float) -> None:
    assert duration_seconds(duration) == seconds


def test_a_malformed_duration_is_refused() -> None:
    with pytest.raises(UnsupportedRouteError, match="not a Gateway API Duration"):
        duration_seconds("1d")
