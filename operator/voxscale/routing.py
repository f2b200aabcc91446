"""Apply or remove a SpeechCluster's Gateway API route, and say what became of it.

Bad routing input never stops the shards and never crash-loops: the verdict goes to
status.routing (mirrored into the Routed condition by every tick) and, when it changes, to an
Event. A conflict leaves the route last applied as it was, so no caller is moved by a mistake.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol

from voxscale import names
from voxscale.api import FailoverStatus, FallbackWeight, RoutingStatus, ShardStatus, SpeechClusterSpec
from voxscale.k8s import KindNotServedError, KubeApiError
from voxscale.loop import stored_status
from voxscale.render.common import Owner
from voxscale.render.failover import (
    FailoverVerdict,
    carried_failovers,
    failover_events,
    failover_verdict,
    moves_of,
)
from voxscale.render.routes import RoutePlan, plan_route
from voxscale.render.status import routing_condition

INSTALL_HINT = (
    "install the Gateway API CRDs, experimental channel (route sessionPersistence is experimental"
    f" in {names.GATEWAY_API_RELEASE}): kubectl apply --server-side -f https://github.com/kubernetes-sigs/"
    f"gateway-api/releases/download/{names.GATEWAY_API_RELEASE}/experimental-install.yaml; the operator"
    " applies the route on its next re-apply, within a minute"
)


class RouteAPI(Protocol):
    """What routing needs from Kubernetes (voxscale.k8s.Kube implements it)."""

    def apply(self, obj: dict[str, Any], *, manager: str = names.FIELD_MANAGER) -> dict[str, Any]: ...
    def delete_object(self, api_version: str, kind: str, namespace: str, name: str) -> None: ...
    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...
    def event(self, owner: dict[str, Any], type_: str, reason: str, message: str, now: datetime) -> None: ...


def reconcile_routes(
    body: Any, spec: SpeechClusterSpec, kube: RouteAPI, *, now: datetime,
    shards: Sequence[ShardStatus] | None = None, established: Collection[str] = frozenset(),
) -> RoutingStatus | None:
    """Apply the route of spec.routing (or delete ours when it is unset); the verdict stored.

    Without `shards` (a reconcile: create, spec change, the minute's re-apply) the regional
    failovers in force are kept as the spec still allows them. With `shards`, the tick's fresh
    view (the daemon, after every tick), failovers are judged (`established`: the shards seen
    Ready before) and the route is applied only when a language's destination changed; nothing
    at all happens before a reconcile has stored a first verdict.
    """
    meta = body["metadata"]
    owner = Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])
    previous = stored_status(body)
    daemon = shards is not None
    if spec.routing is None:
        if previous.routing is not None and not daemon:
            _remove(body, previous.routing, previous.conditions, kube, now)
        return None
    if daemon and previous.routing is None:
        return None
    before = previous.routing.failovers if previous.routing else []
    if shards is None:
        failover = FailoverVerdict(carried_failovers(spec, before))
    else:
        failover = failover_verdict(spec, shards, before, now, established=established)
    shares = fallback_shares(spec, shards if daemon else previous.shards)
    weights = [FallbackWeight(shard=shard, weight=round(100 * share))
               for shard, share in shares.items() if round(100 * share)]
    unchanged = previous.routing is not None and previous.routing.fallback_weights == weights
    if previous.routing is not None and daemon and failover.moves == moves_of(before) and unchanged:
        return _store_failovers(body, previous.routing, before, list(failover.failovers),
                                spec=spec, kube=kube, now=now)
    plan = plan_route(owner, spec, spec.routing, failover.moves, shares)
    failure = _apply(plan, kube, previous.routing)
    problems = ([failure] if failure else []) + list(plan.problems)
    # Nothing applied (a conflict): the verdict is about the route that stays, if there is one.
    live = previous.routing if plan.route is None and previous.routing is not None else plan
    applied = plan.route is not None and failure is None
    verdict = RoutingStatus(
        kind=live.kind,
        name=live.name,
        routed=not problems,
        reason=problems[0][0] if problems else names.REASON_ROUTES_APPLIED,
        message=("; ".join(m for _, m in problems) if problems else plan.summary)[:1024],
        observed_generation=meta.get("generation"),
        failovers=list(failover.failovers) if applied else list(before),
        fallback_weights=(weights if applied or previous.routing is None
                          else previous.routing.fallback_weights),
    )
    if verdict != previous.routing:
        _store(body, verdict, routing_condition(previous.conditions, verdict, now), kube)
    said = (previous.routing.reason, previous.routing.message) if previous.routing else None
    if said != (verdict.reason, verdict.message):
        kind = "Normal" if verdict.routed else "Warning"
        kube.event(dict(body), kind, verdict.reason, verdict.message, now)
    _announce_failovers(body, before, verdict.failovers, spec=spec, kube=kube, now=now)
    return verdict


def fallback_shares(spec: SpeechClusterSpec, shards: Sequence[ShardStatus] | None) -> dict[str, float]:
    """Shard -> the smaller model's share its last tick decided (decide/fallback.py): what the
    HTTPRoute's infer rules carry as weights. Empty without a fallback model or over gRPC, whose
    route cannot rewrite the model name (docs/fallback.md)."""
    if spec.model.fallback is None or spec.routing is None or spec.routing.protocol != "http":
        return {}
    return {s.name: s.fallback_share for s in shards or () if s.fallback_share}


def _store_failovers(
    body: Any, routing: RoutingStatus, before: list[FailoverStatus], after: list[FailoverStatus], *,
    spec: SpeechClusterSpec, kube: RouteAPI, now: datetime,
) -> RoutingStatus:
    """No destination changed: the route stays as applied; a hold's clock or a reason that moved
    is stored (and a language newly stranded is said), nothing more."""
    if after == before:
        return routing
    verdict = routing.model_copy(update={"failovers": after})
    _store(body, verdict, routing_condition(stored_status(body).conditions, verdict, now), kube)
    _announce_failovers(body, before, after, spec=spec, kube=kube, now=now)
    return verdict


def _announce_failovers(
    body: Any, before: Sequence[FailoverStatus], after: Sequence[FailoverStatus], *,
    spec: SpeechClusterSpec, kube: RouteAPI, now: datetime,
) -> None:
    for type_, reason, message in failover_events(before, after, spec):
        kube.event(dict(body), type_, reason, message[:1024], now)


def _apply(plan: RoutePlan, kube: RouteAPI, previous: RoutingStatus | None) -> tuple[str, str] | None:
    """Apply the planned route; (reason, message) when the cluster cannot take it. Other errors
    (the API server down, a timeout) propagate: the caller retries those."""
    if plan.route is None:
        return None
    try:
        kube.apply(plan.route)
    except KindNotServedError:
        return names.REASON_ROUTING_UNAVAILABLE, f"this cluster serves no {plan.kind}: {INSTALL_HINT}"
    except KubeApiError as err:
        if err.status == 404:
            return names.REASON_ROUTING_UNAVAILABLE, f"{plan.kind} not found ({err}): {INSTALL_HINT}"
        if err.status in (400, 403, 409, 422):
            # An unknown field (sessionPersistence) means the standard channel's CRDs.
            hint = f" ({INSTALL_HINT})" if "not declared in schema" in str(err) else ""
            return names.REASON_ROUTE_REJECTED, f"the API server refused {plan.kind} {plan.name}: {err}{hint}"
        raise
    if previous is not None and previous.kind != plan.kind:
        # protocol changed: the route of the other kind would keep routing to the same shards
        kube.delete_object(names.GATEWAY_API_VERSION, previous.kind, plan.route["metadata"]["namespace"],
                           previous.name)
    return None


def _remove(body: Any, previous: RoutingStatus, conditions: Any, kube: RouteAPI, now: datetime) -> None:
    meta = body["metadata"]
    kube.delete_object(names.GATEWAY_API_VERSION, previous.kind, meta["namespace"], previous.name)
    _store(body, None, routing_condition(conditions, None, now), kube)
    message = f"spec.routing was removed: {previous.kind} {previous.name} deleted"
    kube.event(dict(body), "Normal", names.REASON_ROUTES_REMOVED, message, now)


def _store(body: Any, routing: RoutingStatus | None, conditions: Any, kube: RouteAPI) -> None:
    meta = body["metadata"]
    # failovers (and fallbackWeights) are always written, [] when none: a merge patch keeps a key
    # it does not name.
    kube.patch_status(meta["namespace"], meta["name"], {
        "routing": routing.model_dump(by_alias=True, mode="json", exclude_none=True) if routing else None,
        "conditions": [c.model_dump(by_alias=True, mode="json", exclude_none=True) for c in conditions],
    })
