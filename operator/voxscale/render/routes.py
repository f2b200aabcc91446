"""The front door: a SpeechCluster's one Gateway API route (GRPCRoute or HTTPRoute), and its problems.

One rule per shard, named after it, to that shard's Service, with session persistence so a
caller's session stays on one worker. Each language a shard serves matches twice: with the
region header (`x-language: en` + `x-region: us`) and, for the first shard in spec order that
serves the language, without it (`x-language: en`). Gateway API gives precedence to the match
with more header matches, so in the example a caller naming region us reaches us-en-es, and one
naming no region reaches eu-en: two shards of different regions never compete for a caller.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voxscale import names
from voxscale.api import RoutingSpec, ShardSpec, SpeechClusterSpec
from voxscale.render.common import Owner
from voxscale.render.service import PORTS

# Gateway API v1's bounds on one route (the CRD's maxItems and its CEL rule on rules): a route
# over them is refused by the API server, so it is reported before it is sent. A shard serves at
# most 32 languages, so one rule never exceeds the 64 matches a rule may hold.
MAX_RULES = 16
MAX_MATCHES = 128


@dataclass(frozen=True)
class RoutePlan:
    """What to apply, and what to say about it."""

    kind: str
    name: str
    route: dict[str, Any] | None
    """None when applying would misroute (a conflict) or be refused (over Gateway API's limits):
    the route last applied, if any, is left as it was."""
    problems: tuple[tuple[str, str], ...] = ()
    """(reason, message) pairs, worst first; empty when every language is routed."""
    summary: str = ""


def route_kind(routing: RoutingSpec) -> str:
    return names.ROUTE_KINDS[routing.protocol][0]


def _service_port(routing: RoutingSpec) -> int:
    port_name = names.PORT_NAME_GRPC if routing.protocol == "grpc" else names.PORT_NAME_HTTP
    return dict(PORTS)[port_name]


def _first_shard_per_language(spec: SpeechClusterSpec) -> dict[str, str]:
    first: dict[str, str] = {}
    for shard in spec.shards:
        for language in shard.languages:
            first.setdefault(language, shard.name)
    return first


def _matches(
    routing: RoutingSpec, spec: SpeechClusterSpec, moves: Mapping[tuple[str, str], str]
) -> dict[str, list[dict[str, Any]]]:
    """Shard -> its rule's matches: each shard's own languages, except those failed over
    (`moves`), whose matches go to the receiving shard's rule instead, after its own."""
    def exact(header: str, value: str) -> dict[str, str]:
        return {"type": "Exact", "name": header, "value": value}

    first = _first_shard_per_language(spec)
    out: dict[str, list[dict[str, Any]]] = {shard.name: [] for shard in spec.shards}
    for shard in spec.shards:
        for language in shard.languages:
            to = moves.get((shard.name, language), shard.name)
            region = exact(routing.region_header, shard.region)
            out[to].append({"headers": [exact(routing.language_header, language), region]})
            if first[language] == shard.name:
                out[to].append({"headers": [exact(routing.language_header, language)]})
    return out


def _session(routing: RoutingSpec) -> dict[str, Any]:
    session: dict[str, Any] = {"type": routing.session.type, "sessionName": routing.session.name}
    if routing.session.absolute_timeout:
        session["absoluteTimeout"] = routing.session.absolute_timeout
    return session


def _rule(
    owner: Owner, routing: RoutingSpec, shard: ShardSpec, matches: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": shard.name,
        "matches": matches,
        "backendRefs": [
            {"name": names.shard_resource_name(owner.name, shard.name), "port": _service_port(routing)}
        ],
        "sessionPersistence": _session(routing),
    }


def infer_path(model: str) -> str:
    """KServe v2 inference over HTTP: POST /v2/models/<model>/infer."""
    return f"/v2/models/{model}/infer"


def _fallback_rule(
    owner: Owner, spec: SpeechClusterSpec, routing: RoutingSpec, shard: ShardSpec, *,
    matches: list[dict[str, Any]], share: float,
) -> dict[str, Any] | None:
    """spec.model.fallback over HTTP: the shard's matches on the main model's infer path, split
    by weight between the main model and, rewritten, the smaller one; None without one or over
    gRPC (a GRPCRoute cannot rewrite the model name: it is in the protobuf body).

    An Exact path match outranks every header-only match (Gateway API precedence), so each shard
    gets this rule while a fallback is declared, at weight 0 when its share is 0: a shard with a
    share and the region-less match of its language would otherwise take another region's
    callers. The same Service backs both weights; only the path differs."""
    fb = spec.model.fallback
    if fb is None or routing.protocol != "http":
        return None
    backend = {"name": names.shard_resource_name(owner.name, shard.name), "port": _service_port(routing)}
    weight = round(100 * share)
    rewrite = {"type": "URLRewrite", "urlRewrite": {
        "path": {"type": "ReplaceFullPath", "replaceFullPath": infer_path(fb.name)}}}
    return {
        "name": f"{shard.name}-{names.FALLBACK_RULE_SUFFIX}",
        "matches": [{"path": {"type": "Exact", "value": infer_path(spec.model.name)}, **m} for m in matches],
        "backendRefs": [{**backend, "weight": 100 - weight},
                        {**backend, "weight": weight, "filters": [rewrite]}],
        "sessionPersistence": _session(routing),
    }


def render_route(
    owner: Owner, spec: SpeechClusterSpec, routing: RoutingSpec,
    moves: Mapping[tuple[str, str], str] | None = None,
    shares: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The route as rendered, whether or not it may be applied (see plan_route). A shard whose
    every language failed over has no rule: a rule without matches would match every request.
    `shares`: shard -> share of its interactive requests for spec.model.fallback (0 if absent)."""
    matches = _matches(routing, spec, moves or {})
    smaller = [_fallback_rule(owner, spec, routing, shard, matches=matches[shard.name],
                              share=(shares or {}).get(shard.name, 0.0))
               for shard in spec.shards if matches[shard.name]]
    parent_refs = [ref.model_dump(by_alias=True, exclude_none=True) for ref in routing.parent_refs]
    return {
        "apiVersion": names.GATEWAY_API_VERSION,
        "kind": route_kind(routing),
        "metadata": {
            "name": names.route_name(owner.name),
            "namespace": owner.namespace,
            "labels": {
                names.LABEL_NAME: names.WORKER_APP,
                names.LABEL_INSTANCE: owner.name,
                names.LABEL_COMPONENT: names.COMPONENT_ROUTING,
                names.LABEL_MANAGED_BY: names.FIELD_MANAGER,
                names.LABEL_CLUSTER: owner.name,
                names.LABEL_MODEL: spec.model.name,
            },
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "parentRefs": parent_refs,
            "rules": [_rule(owner, routing, shard, matches[shard.name])
                      for shard in spec.shards if matches[shard.name]]
            + [rule for rule in smaller if rule is not None],
        },
    }


def conflicts(spec: SpeechClusterSpec) -> list[str]:
    """One line per language that two shards of one region serve: identical matches, so every
    caller would reach the first of them and the other would never see that language."""
    serving: dict[tuple[str, str], list[str]] = defaultdict(list)
    for shard in spec.shards:
        for language in shard.languages:
            serving[(shard.region, language)].append(shard.name)
    return [
        f"language {language} in region {region} is served by shards {' and '.join(shards)}"
        for (region, language), shards in serving.items()
        if len(shards) > 1
    ]


def unserved(spec: SpeechClusterSpec, routing: RoutingSpec) -> list[str]:
    """Languages the routing must serve that no shard serves."""
    served = {language for shard in spec.shards for language in shard.languages}
    return [language for language in routing.languages if language not in served]


def _oversize(route: dict[str, Any]) -> list[str]:
    rules = route["spec"]["rules"]
    matches = sum(len(rule["matches"]) for rule in rules)
    out = []
    if len(rules) > MAX_RULES:
        out.append(f"{len(rules)} shards need {len(rules)} rules; Gateway API allows {MAX_RULES} per route")
    if matches > MAX_MATCHES:
        out.append(f"the shards' languages need {matches} header matches; Gateway API allows"
                   f" {MAX_MATCHES} per route (each language matches once per shard, plus once"
                   " without a region)")
    return out


def plan_route(
    owner: Owner, spec: SpeechClusterSpec, routing: RoutingSpec,
    moves: Mapping[tuple[str, str], str] | None = None,
    shares: Mapping[str, float] | None = None,
) -> RoutePlan:
    """The route and the (reason, message) problems of spec.routing, worst first; `moves` are
    the failed-over (home shard, language) -> receiving shard (render/failover.py), `shares` the
    smaller model's share per shard (decide/fallback.py)."""
    route = render_route(owner, spec, routing, moves, shares)
    kind, name = route["kind"], route["metadata"]["name"]
    clashes, oversize, missing = conflicts(spec), _oversize(route), unserved(spec, routing)
    problems: list[tuple[str, str]] = []
    if clashes:
        problems.append((names.REASON_ROUTING_CONFLICT,
                         "; ".join(clashes) + ": serve each language from one shard per region"
                         f" ({kind} {name} is left as it was until this is fixed)"))
    if oversize:
        problems.append((names.REASON_ROUTE_REJECTED,
                         "; ".join(oversize) + f" ({kind} {name} is left as it was until this is fixed)"))
    if missing:
        them = "it" if len(missing) == 1 else "them"
        problems.append((names.REASON_LANGUAGE_UNSERVED,
                         f"spec.routing.languages lists {', '.join(missing)}, which no shard serves:"
                         f" callers asking for {them} find no route; add {them} to a shard's"
                         " languages (the other languages are routed)"))
    languages = sorted({language for shard in spec.shards for language in shard.languages})
    summary = (f"{kind} {name} routes {len(languages)} languages ({', '.join(languages)}) to"
               f" {len(spec.shards)} shards; sessions stick by {routing.session.type.lower()}"
               f" {routing.session.name}")
    applicable = not clashes and not oversize
    return RoutePlan(kind, name, route if applicable else None, tuple(problems), summary)
