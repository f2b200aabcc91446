"""The local front door's configuration: the operator's rendered Gateway API route, as haproxy.cfg.

The route is the input, not the spec: `plan` reads the rules, header matches and
sessionPersistence that `voxscale.render.routes.render_route` produced, so the proxy routes by
exactly what the operator would apply to a cluster. `haproxy_config` adds what a cluster's
Service endpoints would give a gateway controller: the live workers of each rule's shard.

Semantics kept from Gateway API:
- matches are ORed within a rule, header matches ANDed within a match; of several matching
  rules the match with the most header matches wins (the region match beats the language-only
  one), then rule order. HAProxy takes the first `use_backend` that matches, so the lines are
  sorted by header count, stably.
- a request that matches no rule gets 404 (Gateway API's answer for "no route").
- sessionPersistence: a session (the value of the header, or cookie, it names) stays on one
  worker for as long as that worker is an endpoint. A stick table is the guarantee; the
  consistent hash on the same key only picks the worker of a new session (see `_backend`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SERVED_BY_HEADER = "X-Served-By"
"""Response header naming the worker (HAProxy server) that answered: how tests prove stickiness."""
SERVED_SHARD_HEADER = "X-Served-Shard"
"""Response header naming the rule (shard) whose backend answered."""
NO_ROUTE_BACKEND = "no-route"
DEFAULT_SESSION_EXPIRY_SECONDS = 3600
"""A session's stick-table entry is forgotten after this long unused, unless the route's
sessionPersistence gives a timeout. HAProxy refreshes it on every request of the session."""
STICK_TABLE_SIZE = "100k"
STREAM_TIMEOUT = "10m"
"""Client and server inactivity timeout: a stream may sit silent between chunks this long."""

# Names and values go into haproxy.cfg unquoted: refuse anything HAProxy's parser treats
# specially (spaces, '#', quotes, '$', parentheses) rather than escape it.
_SAFE = re.compile(r"^[A-Za-z0-9_.:-]+$")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9_./-]*$")
_DURATION_PART = re.compile(r"([0-9]+)(ms|h|m|s)")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class UnsupportedRouteError(ValueError):
    """The route uses something the local front door does not translate; the message says what."""


@dataclass(frozen=True)
class Endpoint:
    """One live worker behind a shard, as a Service's endpoints would list it."""

    name: str
    """Its name (the pod's): the HAProxy server name, reported in X-Served-By."""
    address: str
    """host:port of the port the route's backendRef names (HTTP 8000 or gRPC 8001 in a pod)."""


@dataclass(frozen=True)
class Switch:
    """One route match: requests carrying all these exact (header, value) pairs go to `backend`."""

    backend: str
    headers: tuple[tuple[str, str], ...]
    path: str | None = None
    """An Exact path match (the fallback's infer rule); None matches any path."""
    rule: str = ""
    """The rule the match belongs to (several rules may share one backend: the same Service)."""


@dataclass(frozen=True)
class Rewrite:
    """A weighted backendRef with a URLRewrite: `weight` of `total` of the rule's requests get
    their path replaced by `path` (spec.model.fallback: the smaller model's infer path)."""

    rule: str
    path: str
    weight: int
    total: int


@dataclass(frozen=True)
class Session:
    """Where a session key comes from and how long an unused session is remembered."""

    type: str
    """"Header" or "Cookie", as in Gateway API sessionPersistence."""
    name: str
    expire_seconds: int

    @property
    def key(self) -> str:
        """The HAProxy sample fetch of the session key."""
        return f"req.hdr({self.name})" if self.type == "Header" else f"req.cook({self.name})"


@dataclass(frozen=True)
class Plan:
    """The route, reduced to what the proxy does with it."""

    route: str
    """"<kind> <namespace>/<name>", for comments and the 404 message."""
    h2: bool
    """GRPCRoute: HTTP/2 (h2c) on both sides; HTTPRoute: HTTP/1.1."""
    switches: tuple[Switch, ...]
    """In HAProxy's evaluation order (Gateway API precedence)."""
    backends: tuple[str, ...]
    """One per rule, in rule order: the rule's name, which render_route sets to the shard's."""
    services: Mapping[str, str]
    """Rule -> the backendRef it names ("<service>:<port>"): what the endpoints stand in for."""
    session: Session | None
    rewrites: tuple[Rewrite, ...] = ()


def _safe(what: str, value: str) -> str:
    if not _SAFE.match(value):
        raise UnsupportedRouteError(f"{what} {value!r}: the local front door accepts only [A-Za-z0-9_.:-]")
    return value


def duration_seconds(duration: str) -> float:
    """A Gateway API Duration ("1h", "30m", "1h30m", "500ms") in seconds."""
    parts = _DURATION_PART.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise UnsupportedRouteError(f"duration {duration!r} is not a Gateway API Duration")
    return sum(int(n) * _SECONDS[u] for n, u in parts)


def _path(match: Mapping[str, Any]) -> str | None:
    """An Exact path match's value; None for none (or the default PathPrefix "/")."""
    path = match.get("path")
    if path is None or path == {"type": "PathPrefix", "value": "/"}:
        return None
    if path.get("type") != "Exact":
        raise UnsupportedRouteError(f"match {dict(match)}: only Exact path matches are translated")
    value = str(path["value"])
    if not _SAFE_PATH.match(value):
        raise UnsupportedRouteError(f"path {value!r}: the local front door accepts only [A-Za-z0-9_./-]")
    return value


def _headers(match: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    others = set(match) - {"headers", "path"}
    if others:
        raise UnsupportedRouteError(f"match {dict(match)}: only header matches (and an Exact path)"
                                    " are translated")
    out = []
    for header in match.get("headers", []):
        if header.get("type", "Exact") != "Exact":
            raise UnsupportedRouteError(f"header match {header}: only Exact header matches are translated")
        out.append((_safe("header", header["name"]).lower(), _safe("header value", header["value"])))
    return tuple(out)


def _session(rules: Sequence[Mapping[str, Any]]) -> Session | None:
    given = {repr(rule.get("sessionPersistence")) for rule in rules}
    if len(given) > 1:
        raise UnsupportedRouteError("rules carry different sessionPersistence: one session key per route")
    persistence = rules[0].get("sessionPersistence") if rules else None
    if not persistence:
        return None
    timeout = persistence.get("absoluteTimeout") or persistence.get("idleTimeout")
    expire = max(1, round(duration_seconds(timeout))) if timeout else DEFAULT_SESSION_EXPIRY_SECONDS
    kind = persistence.get("type", "Cookie")  # Gateway API's default type
    name = persistence.get("sessionName") or "x-voxscale-session"
    return Session(kind, _safe("session name", name), expire)


def plan(route: Mapping[str, Any]) -> Plan:
    """What the proxy must do for a rendered HTTPRoute or GRPCRoute."""
    kind, meta, rules = route["kind"], route["metadata"], route["spec"]["rules"]
    if kind not in ("HTTPRoute", "GRPCRoute"):
        raise UnsupportedRouteError(f"{kind}: the local front door translates HTTPRoute and GRPCRoute")
    switches: list[tuple[int, int, int, Switch]] = []
    services: dict[str, str] = {}
    rewrites: list[Rewrite] = []
    for rule in rules:
        name = _safe("rule name", rule["name"])
        service, rule_rewrites = _backend_refs(name, rule["backendRefs"])
        # Rules to the same Service share its backend (one stick table, one set of workers).
        backend = next((b for b, s in services.items() if s == service), name)
        services.setdefault(backend, service)
        rewrites += rule_rewrites
        for match in rule.get("matches", []):
            headers, path = _headers(match), _path(match)
            # Gateway API precedence: an Exact path first, then most header matches; Python's
            # sort is stable, so ties keep rule order.
            key = (0 if path else 1, -len(headers), len(switches))
            switches.append((*key, Switch(backend, headers, path, name)))
    return Plan(
        route=f"{kind} {meta.get('namespace', 'default')}/{meta['name']}",
        h2=kind == "GRPCRoute",
        switches=tuple(s for *_, s in sorted(switches, key=lambda t: t[:3])),
        backends=tuple(services),
        services=services,
        session=_session(rules),
        rewrites=tuple(rewrites),
    )


def _backend_refs(rule: str, refs: Sequence[Mapping[str, Any]]) -> tuple[str, list[Rewrite]]:
    """The one Service a rule's backendRefs name, and their weighted path rewrites: several refs
    must name the same Service (the proxy splits by rewriting the path, not by backend)."""
    service = {f"{ref['name']}:{ref['port']}" for ref in refs}
    if len(service) != 1:
        raise UnsupportedRouteError(f"rule {rule}: backendRefs to several Services are not translated")
    total = sum(int(ref.get("weight", 1)) for ref in refs)
    out = []
    for ref in refs:
        filters = ref.get("filters", [])
        for f in filters:
            path = f.get("urlRewrite", {}).get("path", {})
            if f.get("type") != "URLRewrite" or path.get("type") != "ReplaceFullPath":
                raise UnsupportedRouteError(f"rule {rule}: only URLRewrite ReplaceFullPath is translated")
            out.append(Rewrite(rule, str(path["replaceFullPath"]), int(ref.get("weight", 1)), total))
    return service.pop(), out


def backend_name(rule: str) -> str:
    return f"shard-{rule}"


def server_line(endpoint: Endpoint, *, h2: bool) -> str:
    """The `server` line (and, without the keyword, the `add server` arguments) of one worker."""
    _safe("endpoint name", endpoint.name)
    _safe("endpoint address", endpoint.address)
    return f"server {endpoint.name} {endpoint.address}" + (" proto h2" if h2 else "")


def _frontend(p: Plan, listen: str) -> list[str]:
    lines = [
        "frontend front-door",
        f"    # {p.route}: one use_backend per match, most header matches first (Gateway API precedence)",
        f"    bind {listen}" + (" proto h2" if p.h2 else ""),
    ]
    lines += _rewrites(p)
    for switch in p.switches:
        if switch.path is not None:  # matched before any rewrite, by _rewrites
            rule = f"{{ var(txn.rule) -m str {switch.rule} }}"
            lines.append(f"    use_backend {backend_name(switch.backend)} if {rule}")
            continue
        conditions = " ".join(f"{{ req.hdr({h}) -m str {v} }}" for h, v in switch.headers)
        condition = f" if {conditions}" if conditions else ""
        lines.append(f"    use_backend {backend_name(switch.backend)}{condition}")
    lines.append(f"    default_backend {NO_ROUTE_BACKEND}")
    return lines


def _rewrites(p: Plan) -> list[str]:
    """Path matches and weighted rewrites (spec.model.fallback): the first path match in
    precedence order names the winning rule in a variable, so only that rule's weights apply;
    `rand(total) lt weight` sends weight/total of its requests to the rewritten path."""
    lines = []
    for s in p.switches:
        if s.path is not None:
            headers = "".join(f" {{ req.hdr({h}) -m str {v} }}" for h, v in s.headers)
            lines.append(f"    http-request set-var(txn.rule) str({s.rule}) if !{{ var(txn.rule) -m found }}"
                         f" {{ path {s.path} }}{headers}")
    for r in p.rewrites:
        if r.weight > 0:
            lines.append(f"    http-request set-path {r.path} if {{ var(txn.rule) -m str {r.rule} }}"
                         f" {{ rand({r.total}) lt {r.weight} }}")
    return lines


def _backend(p: Plan, rule: str, endpoints: Sequence[Endpoint]) -> list[str]:
    lines = [f"backend {backend_name(rule)}", f"    # rule {rule} -> {p.services[rule]}"]
    if p.session is not None:
        key, expire = p.session.key, p.session.expire_seconds
        lines += [
            # A new session's worker: a consistent hash of its key, so adding a worker moves
            # only ~1/(n+1) of the *unstuck* keys, and a restarted proxy (an empty table)
            # sends most sessions back where they were.
            f"    balance hash {key}",
            "    hash-type consistent",
            # The guarantee: the table remembers each session's worker, so a session never
            # moves while that worker is listed, whatever workers are added.
            f"    stick-table type string len 128 size {STICK_TABLE_SIZE} expire {expire}s",
            f"    stick on {key}",
        ]
    else:
        lines.append("    balance roundrobin")
    lines += [
        f"    http-response set-header {SERVED_BY_HEADER} %s",
        f"    http-response set-header {SERVED_SHARD_HEADER} {rule}",
    ]
    lines += [f"    {server_line(e, h2=p.h2)}" for e in endpoints]
    return lines


def haproxy_config(
    p: Plan,
    endpoints: Mapping[str, Sequence[Endpoint]],
    *,
    listen: str,
    admin_socket: str,
) -> str:
    """haproxy.cfg for the plan: `listen` is "host:port"; `endpoints` maps rule -> workers (a rule
    with none answers 503, as a Service without ready endpoints would)."""
    unknown = set(endpoints) - set(p.backends)
    if unknown:
        raise UnsupportedRouteError(f"endpoints for {sorted(unknown)}, which the route has no rule for")
    sections = [
        [
            "global",
            # expose-fd listeners: a reload's new process takes the listening sockets from this one
            # (`-x`), so no connection is refused while the two change over (haproxy.reload).
            f"    stats socket {admin_socket} mode 600 level admin expose-fd listeners",
            "    maxconn 4096",
        ],
        [
            "defaults",
            "    mode http",
            "    timeout connect 5s",
            f"    timeout client {STREAM_TIMEOUT}",
            f"    timeout server {STREAM_TIMEOUT}",
            "    timeout http-request 30s",
            # A request whose worker went away is tried on another once, not failed.
            "    option redispatch",
            "    retries 1",
        ],
        _frontend(p, listen),
        *(_backend(p, rule, endpoints.get(rule, ())) for rule in p.backends),
        [
            f"backend {NO_ROUTE_BACKEND}",
            f"    http-request return status 404 content-type text/plain"
            f' string "no rule of {p.route} matches this request"',
        ],
    ]
    return "\n\n".join("\n".join(s) for s in sections) + "\n"
