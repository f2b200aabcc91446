"""Thin kopf handlers: reconcile children on create/update/resume; a daemon per cluster ticks the loop."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from voxscale import names
from voxscale.api import SpeechClusterSpec, SpeechClusterStatus, parse_spec
from voxscale.k8s import Kube
from voxscale.loop import ClusterRef, Loop
from voxscale.metrics.endpoints import AllowList
from voxscale.metrics.prometheus import PrometheusSource
from voxscale.metrics.promql import check_template
from voxscale.render import Owner, render_shard
from voxscale.render.status import set_condition

log = logging.getLogger(__name__)
RESOURCE = (names.GROUP, names.VERSION, names.PLURAL)
# Owned fields are re-applied this often, so a hand edit of a child object is undone.
REAPPLY_EVERY_SECONDS = 60.0
# A retry of a failed apply waits this long: slow enough never to hot-loop the apiserver.
RETRY_DELAY_SECONDS = 30.0


def _kube(memo: kopf.Memo) -> Kube:
    kube: Kube = memo["kube"]
    return kube


def _endpoints(memo: kopf.Memo) -> AllowList:
    endpoints: AllowList = memo.get("endpoints") or AllowList.default()
    return endpoints


class EndpointNotAllowedError(ValueError):
    """spec.prometheus.url is not on the operator's allow-list; no request was sent to it."""


def endpoint_refusal(spec: SpeechClusterSpec, endpoints: AllowList) -> str | None:
    """None when the operator may call spec.prometheus.url; else what to change, for the user."""
    why = endpoints.refusal(spec.prometheus.url)
    if why is None:
        return None
    return (
        f"spec.prometheus.url is not on this operator's allow-list of metrics endpoints ({why}); "
        f"no request was sent. Point spec.prometheus.url at an allowed Prometheus ({endpoints}), "
        f"or have the operator's admin add it to the Helm value prometheus.allowedEndpoints "
        f"(flag --allowed-metrics-endpoint)"
    )


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
    body: kopf.Body | dict[str, Any], kube: Kube, endpoints: AllowList | None = None
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


def _refuse(body: kopf.Body | dict[str, Any], kube: Kube, reason: str, message: str) -> None:
    """Ready=False with `reason` and `message`, and the same as a Warning Event."""
    now = datetime.now(UTC)
    status = SpeechClusterStatus.model_validate(
        {k: v for k, v in (body.get("status") or {}).items() if k != "kopf"}
    )
    conditions = set_condition(
        status.conditions,
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


def reconcile_children(body: kopf.Body | dict[str, Any], spec: SpeechClusterSpec, kube: Kube) -> list[str]:
    """Apply every shard's objects; delete the objects of shards no longer in the spec."""
    meta = body["metadata"]
    owner = Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])
    for shard in spec.shards:
        for obj in render_shard(owner, spec, shard):
            kube.apply(obj)
    removed = kube.delete_shards_except(owner.namespace, owner.name, {s.name for s in spec.shards})
    for shard_name in removed:
        kube.event(
            dict(body),
            "Normal",
            names.REASON_SHARD_REMOVED,
            f"shard {shard_name} left the spec: its Deployment, Service, ConfigMap and PDB were deleted",
            datetime.now(UTC),
        )
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
    memo["kube"] = memo.get("kube") or Kube()
    memo["endpoints"] = _endpoints(memo)
    memo["loop"] = Loop(kube=memo["kube"])


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
    await asyncio.to_thread(
        kube.patch_status,
        body["metadata"]["namespace"],
        body["metadata"]["name"],
        {"observedGeneration": body["metadata"].get("generation")},
    )


@kopf.daemon(*RESOURCE, cancellation_timeout=10.0)
async def control_loop(stopped: kopf.DaemonStopped, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Tick every spec.scaling.intervalSeconds; body is kopf's live view of the object."""
    kube, loop, sources = _kube(memo), memo["loop"], SourceCache(_endpoints(memo))
    last_apply = time.monotonic()
    try:
        while not stopped:
            started = time.monotonic()
            interval = await _tick_once(body, kube, loop, sources)
            if time.monotonic() - last_apply >= REAPPLY_EVERY_SECONDS:
                spec = _quiet_spec(body, sources.endpoints)
                if spec is not None:
                    await _safe_reapply(body, spec, kube)
                last_apply = time.monotonic()
            await stopped.wait(max(0.5, interval - (time.monotonic() - started)))
    finally:
        sources.close()


@dataclass
class SourceCache:
    """One SpeechCluster's PrometheusSource, rebuilt only when its settings or token change.

    A new source per tick would open a fresh HTTP connection pool every interval (and leave the
    old one to the garbage collector); the Secret is still read every tick, so a rotated token
    takes effect on the next one. No source is built for a URL off `endpoints`, so none can
    send it a request (and no Secret is read for it).
    """

    endpoints: AllowList = field(default_factory=AllowList.default)
    key: tuple[str, float, str | None] | None = None
    source: PrometheusSource | None = None

    def get(self, spec: SpeechClusterSpec, ref: ClusterRef, kube: Kube) -> PrometheusSource:
        refusal = endpoint_refusal(spec, self.endpoints)
        if refusal is not None:
            self.close()
            raise EndpointNotAllowedError(refusal)
        token = _token(spec, ref, kube)
        key = (spec.prometheus.model_dump_json(), spec.slo.quantile, token)
        if self.source is None or key != self.key:
            self.close()
            self.source = _source(spec, token)
            self.key = key
        return self.source

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
        self.source, self.key = None, None


async def _tick_once(body: kopf.Body, kube: Kube, loop: Loop, sources: SourceCache | None = None) -> float:
    sources = sources or SourceCache()
    spec = _quiet_spec(body, sources.endpoints)
    if spec is None:
        return 30.0  # invalid spec or refused URL: the reconcile handler has said what to fix
    meta = body["metadata"]
    ref = ClusterRef(meta["namespace"], meta["name"], meta["uid"], meta.get("generation"), dict(body))
    try:
        source = await asyncio.to_thread(sources.get, spec, ref, kube)
        await loop.tick(ref, spec, source, now=time.time())
    except Exception:
        log.exception("tick of %s/%s failed; retrying next interval", ref.namespace, ref.name)
    return float(spec.scaling.interval_seconds)


def _metrics_source(spec: SpeechClusterSpec, ref: ClusterRef, kube: Kube) -> PrometheusSource:
    return _source(spec, _token(spec, ref, kube))


def _token(spec: SpeechClusterSpec, ref: ClusterRef, kube: Kube) -> str | None:
    secret = spec.prometheus.bearer_token_secret_ref
    return None if secret is None else kube.read_secret_key(ref.namespace, secret.name, secret.key)


def _source(spec: SpeechClusterSpec, token: str | None) -> PrometheusSource:
    return PrometheusSource.from_spec(spec.prometheus, bearer_token=token, quantile=spec.slo.quantile)


def _quiet_spec(body: kopf.Body, endpoints: AllowList) -> SpeechClusterSpec | None:
    """The spec the daemon may act on: valid, and its Prometheus URL on the allow-list."""
    spec = checked_spec(body)[0]
    return spec if spec is not None and endpoint_refusal(spec, endpoints) is None else None


async def _safe_reapply(body: kopf.Body, spec: SpeechClusterSpec, kube: Kube) -> None:
    try:
        await asyncio.to_thread(reconcile_children, body, spec, kube)
    except Exception:
        log.exception("periodic re-apply failed; next attempt in %.0f s", REAPPLY_EVERY_SECONDS)


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
