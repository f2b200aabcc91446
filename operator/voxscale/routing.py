"""Apply or remove a SpeechCluster's Gateway API route, and say what became of it.

Bad routing input never stops the shards and never crash-loops: the verdict goes to
status.routing (mirrored into the Routed condition by every tick) and, when it changes, to an
Event. A conflict leaves the route last applied as it was, so no caller is moved by a mistake.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from voxscale import names
from voxscale.api import RoutingStatus, SpeechClusterSpec
from voxscale.k8s import KindNotServedError, KubeApiError
from voxscale.loop import stored_status
from voxscale.render.common import Owner
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
    body: Any, spec: SpeechClusterSpec, kube: RouteAPI, *, now: datetime
) -> RoutingStatus | None:
    """Apply the route of spec.routing (or delete ours when it is unset); the verdict stored."""
    meta = body["metadata"]
    owner = Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])
    previous = stored_status(body)
    if spec.routing is None:
        if previous.routing is not None:
            _remove(body, previous.routing, previous.conditions, kube, now)
        return None
    plan = plan_route(owner, spec, spec.routing)
    failure = _apply(plan, kube, previous.routing)
    problems = ([failure] if failure else []) + list(plan.problems)
    # Nothing applied (a conflict): the verdict is about the route that stays, if there is one.
    live = previous.routing if plan.route is None and previous.routing is not None else plan
    verdict = RoutingStatus(
        kind=live.kind,
        name=live.name,
        routed=not problems,
        reason=problems[0][0] if problems else names.REASON_ROUTES_APPLIED,
        message=("; ".join(m for _, m in problems) if problems else plan.summary)[:1024],
        observed_generation=meta.get("generation"),
    )
    if verdict != previous.routing:
        _store(body, verdict, routing_condition(previous.conditions, verdict, now), kube)
    said = (previous.routing.reason, previous.routing.message) if previous.routing else None
    if said != (verdict.reason, verdict.message):
        kind = "Normal" if verdict.routed else "Warning"
        kube.event(dict(body), kind, verdict.reason, verdict.message, now)
    return verdict


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
    kube.patch_status(meta["namespace"], meta["name"], {
        "routing": routing.model_dump(by_alias=True, mode="json", exclude_none=True) if routing else None,
        "conditions": [c.model_dump(by_alias=True, mode="json", exclude_none=True) for c in conditions],
    })
