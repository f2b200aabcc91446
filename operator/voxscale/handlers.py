"""Thin kopf handlers: reconcile children on create/update/resume; a daemon per cluster ticks the loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import kopf
from pydantic import ValidationError

from voxscale import names
from voxscale.api import ShardStatus, SpeechClusterSpec, parse_spec
from voxscale.k8s import Kube
from voxscale.loop import ClusterAPI, ClusterRef, Loop, stored_status
from voxscale.metrics.endpoints import AllowList
from voxscale.metrics.promql import check_template
from voxscale.render import Owner, render_shard
from voxscale.render.status import set_condition
from voxscale.routing import RouteAPI, reconcile_routes
from voxscale.sources import SourceCache, endpoint_refusal

log = logging.getLogger(__name__)
RESOURCE = (names.GROUP, names.VERSION, names.PLURAL)
# Owned fields are re-applied this often, so a hand edit of a child object is undone.
REAPPLY_EVERY_SECONDS = 60.0
# A retry of a failed apply waits this long: slow enough never to hot-loop the apiserver.
RETRY_DELAY_SECONDS = 30.0


class OperatorAPI(ClusterAPI, RouteAPI, Protocol):
    """What the handlers need from Kubernetes: a tick's calls, plus applying and deleting shard
    objects and reading the Prometheus token (voxscale.k8s.Kube implements it)."""

    def apply(self, obj: dict[str, Any], *, manager: str = names.FIELD_MANAGER) -> dict[str, Any]: ...
    def delete_shards_except(self, namespace: str, cluster: str, keep: set[str],
                             deployments: set[str] | None = None) -> list[str]: ...
    def read_secret_key(self, namespace: str, name: str, key: str) -> str: ...


class Stopped(Protocol):
    """kopf's DaemonStopped as the daemon uses it: true once stopping; wait(n) sleeps up to n s."""

    def __bool__(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> Awaitable[object]: ...


def _kube(memo: kopf.Memo) -> OperatorAPI:
    kube: OperatorAPI = memo["kube"]
    return kube


def _loop(memo: kopf.Memo) -> Loop:
    loop: Loop = memo["loop"]
    return loop


def _endpoints(memo: kopf.Memo) -> AllowList:
    endpoints: AllowList = memo.get("endpoints") or AllowList.default()
    return endpoints


def checked_spec(body: kopf.Body | dict[str, Any]) -> tuple[SpeechClusterSpec | None, str]:
    """(typed spec, "") or (None, what is wrong): the models' rules, then what no schema can check.

    The CRD bounds a PromQL template's length but cannot parse it: a template reading a series
    outside {selector} passes the API server and the models, and used to fail every tick as a
    logged ValueError instead of an InvalidSpec condition the user can see.
    """
    try:
        spec = parse_spec(dict(body.get("spec") or {}))
    except ValidationError as err:
        return None, "; ".join(
            f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:5]
        )
    for field_name in ("rate", "latency", "queue", "batch_efficiency"):
        template = getattr(spec.prometheus.queries, field_name)
        try:
            if template:
                check_template(template)
        except ValueError as err:
            return None, f"spec.prometheus.queries.{field_name}: {err}"
    return spec, ""


def validated_spec(
    body: kopf.Body | dict[str, Any], kube: OperatorAPI, endpoints: AllowList | None = None
) -> SpeechClusterSpec | None:
    """The typed spec, or None after saying (condition + Event) what to fix.

    A Prometheus URL off the allow-list (default: in-cluster Services) is refused like an
    invalid spec: nothing is applied or scaled, and the daemon sends it no request.
    """
    spec, problems = checked_spec(body)
    if spec is None:
        _refuse(body, kube, names.REASON_INVALID_SPEC,
                f"invalid spec, nothing changed until it is fixed: {problems}")
        return None
    refusal = endpoint_refusal(spec, endpoints or AllowList.default())
    if refusal is not None:
        message = f"nothing changed until it is fixed: {refusal}"
        _refuse(body, kube, names.REASON_ENDPOINT_NOT_ALLOWED, message)
        return None
    return spec


def _refuse(body: kopf.Body | dict[str, Any], kube: OperatorAPI, reason: str, message: str) -> None:
    """Ready=False with `reason` and `message`, and the same as a Warning Event."""
    now = datetime.now(UTC)
    conditions = set_condition(
        stored_status(body).conditions,
        names.CONDITION_READY,
        False,
        reason=reason,
        message=message,
        now=now,
        generation=body["metadata"].get("generation"),
    )
    kube.patch_status(
        body["metadata"]["namespace"],
        body["metadata"]["name"],
        {"conditions": [c.model_dump(by_alias=True, mode="json", exclude_none=True) for c in conditions]},
    )
    kube.event(dict(body), "Warning", reason, message, now)


def reconcile_children(
    body: kopf.Body | dict[str, Any], spec: SpeechClusterSpec, kube: OperatorAPI
) -> list[str]:
    """Apply every shard's objects; delete the objects of shards no longer in the spec; apply
    (or remove) the Gateway API route of spec.routing."""
    meta = body["metadata"]
    owner = Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])
    # A streaming shard's drain is learned by the loop into status; its pods' grace follows it.
    drains = {s.name: s.drain_seconds for s in stored_status(body).shards}
    deployments: set[str] = set()
    for shard in spec.shards:
        for obj in render_shard(owner, spec, shard, drain_seconds=drains.get(shard.name)):
            kube.apply(obj)
            deployments |= {obj["metadata"]["name"]} if obj["kind"] == "Deployment" else set()
    removed = kube.delete_shards_except(owner.namespace, owner.name, {s.name for s in spec.shards},
                                        deployments)
    for shard_name in removed:
        kube.event(
            dict(body),
            "Normal",
            names.REASON_SHARD_REMOVED,
            f"shard {shard_name} left the spec: its Deployment, Service, ConfigMap and PDB were deleted",
            datetime.now(UTC),
        )
    reconcile_routes(body, spec, kube, now=datetime.now(UTC))
    return removed


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Our status schema is structural and typed: kopf's own bookkeeping goes to annotations,
    # or the apiserver would prune it and kopf would re-run handlers forever.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=names.GROUP)
    settings.persistence.finalizer = f"{names.GROUP}/finalizer"
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    kube: OperatorAPI = memo.get("kube") or Kube()
    memo["kube"] = kube
    memo["endpoints"] = _endpoints(memo)
    memo["loop"] = Loop(kube=kube)


@kopf.on.probe(id="loop")
def loop_alive(memo: kopf.Memo, **_: Any) -> bool:
    return "loop" in memo


@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
@kopf.on.resume(*RESOURCE)
async def reconcile(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    kube = _kube(memo)
    spec = await asyncio.to_thread(validated_spec, body, kube, _endpoints(memo))
    if spec is None:
        return  # bad input: said so once; no retry until the spec changes
    try:
        await asyncio.to_thread(reconcile_children, body, spec, kube)
    except Exception as err:
        raise kopf.TemporaryError(f"applying shard objects failed: {err}", delay=RETRY_DELAY_SECONDS) from err
    _loop(memo).forget_shards_except(ClusterRef.of(body), {s.name for s in spec.shards})
    await asyncio.to_thread(
        kube.patch_status,
        body["metadata"]["namespace"],
        body["metadata"]["name"],
        {"observedGeneration": body["metadata"].get("generation")},
    )


@kopf.on.delete(*RESOURCE)
async def forget_cluster(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A deleted SpeechCluster leaves nothing in this process: no state, forecast, history or
    series (its children go with it: they carry its ownerReference)."""
    _loop(memo).forget(ClusterRef.of(body))


@kopf.daemon(*RESOURCE, cancellation_timeout=10.0)
async def control_loop(stopped: kopf.DaemonStopped, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Tick every spec.scaling.intervalSeconds; body is kopf's live view of the object."""
    await run_daemon(body, _kube(memo), _loop(memo), SourceCache(_endpoints(memo)), stopped)


async def run_daemon(
    body: kopf.Body | dict[str, Any],
    kube: OperatorAPI,
    loop: Loop,
    sources: SourceCache,
    stopped: Stopped,
    *,
    now: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """The daemon's cycle: tick, re-apply owned fields every REAPPLY_EVERY_SECONDS, sleep out
    the rest of the interval (a 10 s interval whose tick took 3 s sleeps 7 s), until stopped.

    On the way out the cluster's source is closed and the Loop forgets it: a deleted cluster's
    last tick can finish after the delete handler ran, and would leave its series behind.
    """
    last_apply = monotonic()
    established: set[str] = set()  # shards seen Ready: from now on, 0 Ready is an outage
    try:
        while not stopped:
            started = monotonic()
            interval = await _tick_once(body, kube, loop, sources, now=now(), established=established)
            if monotonic() - last_apply >= REAPPLY_EVERY_SECONDS:
                await _safe_reapply(body, kube, loop, sources.endpoints)
                last_apply = monotonic()
            await stopped.wait(max(0.5, interval - (monotonic() - started)))
    finally:
        sources.close()
        loop.forget(ClusterRef.of(body))


async def _tick_once(
    body: kopf.Body | dict[str, Any],
    kube: OperatorAPI,
    loop: Loop,
    sources: SourceCache,
    *,
    now: float | None = None,
    established: set[str] | None = None,
) -> float:
    """One tick of one SpeechCluster; the seconds until the next. `sources` is the daemon's own
    cache: whoever creates it closes it (the daemon on stop). `established` (the daemon's) gains
    the shards this tick saw Ready."""
    spec = _quiet_spec(body, sources.endpoints)
    if spec is None:
        return 30.0  # invalid spec or refused URL: the reconcile handler has said what to fix
    ref = ClusterRef.of(body)
    at = time.time() if now is None else now
    try:
        source = await asyncio.to_thread(sources.get, spec, ref, kube)
        status = await loop.tick(ref, spec, source, now=at)
    except Exception:
        log.exception("tick of %s/%s failed; retrying next interval", ref.namespace, ref.name)
        return float(spec.scaling.interval_seconds)
    seen = established if established is not None else set()
    seen.update(s.name for s in status.shards if s.ready_replicas > 0)
    if spec.routing is not None:
        await _follow_failover(body, spec, kube, status.shards, at, seen)
    return float(spec.scaling.interval_seconds)


async def _follow_failover(  # noqa: PLR0917 (the tick's values, passed on)
    body: kopf.Body | dict[str, Any], spec: SpeechClusterSpec, kube: OperatorAPI,
    shards: list[ShardStatus], now: float, established: set[str],
) -> None:
    """Regional failover every tick, not every re-apply: the route is applied again only when a
    language's destination changed (a shard stopped or resumed serving)."""
    try:
        await asyncio.to_thread(reconcile_routes, body, spec, kube, now=datetime.fromtimestamp(now, tz=UTC),
                                shards=shards, established=frozenset(established))
    except Exception:
        log.exception("failover check of %s failed; next tick retries", body["metadata"]["name"])


def _quiet_spec(body: kopf.Body | dict[str, Any], endpoints: AllowList) -> SpeechClusterSpec | None:
    """The spec the daemon may act on: valid, and its Prometheus URL on the allow-list."""
    spec = checked_spec(body)[0]
    return spec if spec is not None and endpoint_refusal(spec, endpoints) is None else None


async def _safe_reapply(
    body: kopf.Body | dict[str, Any], kube: OperatorAPI, loop: Loop, endpoints: AllowList
) -> None:
    """Undo hand edits of owned fields; a shard that left the spec meanwhile is deleted and forgotten."""
    spec = _quiet_spec(body, endpoints)
    if spec is None:
        return
    try:
        await asyncio.to_thread(reconcile_children, body, spec, kube)
    except Exception:
        log.exception("periodic re-apply failed; next attempt in %.0f s", REAPPLY_EVERY_SECONDS)
        return
    loop.forget_shards_except(ClusterRef.of(body), {s.name for s in spec.shards})


def run_operator(
    *, namespaces: list[str], liveness_port: int, metrics_port: int, verbose: bool, endpoints: AllowList
) -> int:
    """`voxscale run`: the operator against the current kubeconfig (or in-cluster account)."""
    from prometheus_client import start_http_server

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log.info("metrics endpoints allowed: %s", endpoints)
    kube = Kube.from_environment()
    start_http_server(metrics_port)
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz",
            memo=kopf.Memo(kube=kube, endpoints=endpoints),
            standalone=True,
        )
    )
    return 0
