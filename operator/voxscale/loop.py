"""One control-loop tick for one SpeechCluster: observe -> forecast -> decide -> act, per shard.

Shards tick concurrently and independently: an exception in one shard becomes that shard's
"hold" report, never a stalled cluster. Blocking I/O (Kubernetes, Prometheus, model fits) runs
in worker threads so the operator's event loop keeps serving every other SpeechCluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from voxscale import names, placing, readings, telemetry
from voxscale.api import (
    ScalerState,
    ShardSpec,
    ShardStatus,
    SpeechClusterSpec,
    SpeechClusterStatus,
    duration_seconds,
)
from voxscale.decide import decide, horizon_seconds, record_warmups, restore_state
from voxscale.decide.drain import learned_drain
from voxscale.decide.placement import Placement, PlacementPolicy
from voxscale.decide.types import (
    Decision,
    Forecast,
    Observation,
    PodCounts,
    Policy,
    ShardMetrics,
)
from voxscale.forecast import ForecastCache
from voxscale.history import HistoryStore
from voxscale.metrics.protocol import MetricsSource, ShardSelector
from voxscale.pods import ShardPods
from voxscale.render.status import ShardReport, cluster_status, shard_status
from voxscale.scale_in import set_deletion_costs
from voxscale.series import History

log = logging.getLogger(__name__)


class ShardPodsLike(Protocol):
    """A shard's Deployment and pods as the API sees them (voxscale.k8s.ShardPods)."""

    @property
    def exists(self) -> bool: ...
    @property
    def counts(self) -> PodCounts:
        """Live counts: `asked` is the Deployment's spec.replicas now, hand edits included."""
        ...
    @property
    def warmups(self) -> tuple[tuple[float, float], ...]: ...
    @property
    def pending_reasons(self) -> tuple[str, ...]: ...
    @property
    def spec_replicas(self) -> int: ...


class ClusterAPI(Protocol):
    """What a tick needs from Kubernetes (voxscale.k8s.Kube implements it)."""

    def read_shard(self, namespace: str, cluster: str, shard: str) -> ShardPodsLike: ...
    def read_pool(self, namespace: str, cluster: str, shard: str, pool: str) -> ShardPods: ...
    def scale(self, namespace: str, deployment: str, replicas: int) -> None: ...
    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...
    def patch_pod(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...
    def hpa_targets(self, namespace: str) -> dict[str, str]: ...
    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...
    def event(self, owner: dict[str, Any], type_: str, reason: str, message: str, now: datetime) -> None: ...


@dataclass(frozen=True)
class ClusterRef:
    namespace: str
    name: str
    uid: str
    generation: int | None
    body: dict[str, Any]
    """The SpeechCluster as last seen (for Events' involvedObject and stored status)."""

    @classmethod
    def of(cls, body: Any) -> ClusterRef:
        """The reference to a SpeechCluster object (a kopf Body or its dict)."""
        meta = body["metadata"]
        return cls(meta["namespace"], meta["name"], meta["uid"], meta.get("generation"), dict(body))


@dataclass(frozen=True)
class TickContext:
    """Everything one tick of one SpeechCluster shares across its shards."""

    ref: ClusterRef
    spec: SpeechClusterSpec
    source: MetricsSource
    hpas: dict[str, str]
    """Deployment name -> name of an HPA that targets it."""
    previous: SpeechClusterStatus
    now: float

    def stored(self, shard: str) -> ShardStatus | None:
        return next((s for s in self.previous.shards if s.name == shard), None)


@dataclass
class Loop:
    """Long-lived per operator: holds the caches that make a tick cheap."""

    kube: ClusterAPI
    forecasts: ForecastCache = field(default_factory=ForecastCache)
    histories: HistoryStore = field(default_factory=HistoryStore)
    states: dict[tuple[str, str], ScalerState] = field(default_factory=dict)
    """(cluster uid, shard) -> the state of the last tick; status is the copy that survives restarts."""
    problems: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    """(cluster uid, shard) -> problem reasons of the last tick, so each is announced once."""

    async def tick(
        self, ref: ClusterRef, spec: SpeechClusterSpec, source: MetricsSource, now: float
    ) -> SpeechClusterStatus:
        with telemetry.TICK.labels(ref.namespace, ref.name).time():
            hpas = await _safe(asyncio.to_thread(self.kube.hpa_targets, ref.namespace), {})
            ctx = TickContext(ref, spec, source, hpas, stored_status(ref.body), now)
            reports = await asyncio.gather(*(self._tick_shard(ctx, shard) for shard in spec.shards))
            self.forget_shards_except(ref, {shard.name for shard in spec.shards})
            status = cluster_status(reports, ctx.previous, _utc(now), ref.generation)
            body = status.model_dump(by_alias=True, mode="json", exclude_none=True)
            await asyncio.to_thread(self.kube.patch_status, ref.namespace, ref.name, body)
        return status

    def forget(self, ref: ClusterRef, shards: Collection[str] | None = None) -> None:
        """Drop all this process holds for a deleted cluster (shards None) or for shards that
        left its spec: state, announced problems, fitted forecasts, history and exported series.

        Without it every SpeechCluster ever seen keeps ~80 KB of history per shard, its fitted
        paths, and ~20 series per shard frozen at their last values on /metrics.
        """
        for key in self._keys(ref):
            if shards is None or key[1] in shards:
                self.states.pop(key, None)
                self.problems.pop(key, None)
                self.forecasts.forget(key)
                self.histories.forget(key)
        telemetry.forget(ref.namespace, ref.name, shards)

    def forget_shards_except(self, ref: ClusterRef, keep: Collection[str]) -> set[str]:
        """Forget the cluster's shards not in `keep` (its spec's shards); returns those forgotten."""
        gone = self.shards(ref) - set(keep)
        if gone:
            self.forget(ref, gone)
        return gone

    def shards(self, ref: ClusterRef) -> set[str]:
        """The shards of `ref` this process holds anything for."""
        return {shard for _, shard in self._keys(ref)}

    def _keys(self, ref: ClusterRef) -> set[tuple[str, str]]:
        """Every (uid, shard) key of `ref` in any of the four stores (the caches key by Hashable)."""
        held = {*self.states, *self.problems, *self.forecasts.keys(), *self.histories.keys()}
        return {
            (ref.uid, str(key[1]))
            for key in held
            if isinstance(key, tuple) and len(key) == 2 and key[0] == ref.uid
        }

    async def _tick_shard(self, ctx: TickContext, shard: ShardSpec) -> ShardReport:
        try:
            return await self._decide_and_act(ctx, shard)
        except Exception as err:  # one shard's failure must not stall the others
            log.exception("tick of shard %s/%s failed", ctx.ref.name, shard.name)
            held = (ctx.stored(shard.name) or ShardStatus(name=shard.name)).model_copy(
                update={
                    "mode": "hold",
                    "winning_term": "hold",
                    "reasons": [f"tick failed: {type(err).__name__}: {err}"[:1024]],
                }
            )
            return ShardReport(held, ("tick failed",), (("TickFailed", str(err)[:512]),))

    async def _decide_and_act(self, ctx: TickContext, shard: ShardSpec) -> ShardReport:
        ref = ctx.ref
        pools = PlacementPolicy.from_spec(ctx.spec)
        pods = await asyncio.to_thread(_read_pods, self.kube, ref, shard.name, pools)
        stored = ctx.stored(shard.name)
        if not pods.exists:
            missing = (("ShardMissing", "Deployment not created yet"),)
            return ShardReport(stored or ShardStatus(name=shard.name), (), missing)
        policy = Policy.from_spec(ctx.spec, shard.name)
        live = pods.spec_replicas  # the Deployment's spec.replicas now, a hand edit included
        # After a restart with no stored state, hold what is running (or already asked for).
        state = _learn_warmups(self._state(ctx, shard.name, max(pods.counts.ready, live)), pods.warmups)
        obs, forecast = await self._observe(ctx, shard, pods, state, horizon_seconds(policy, state))
        decision = decide(obs, forecast, policy, state, ctx.now)
        hpa = _hpa(ctx, shard.name, pods)
        placed = placing.split(decision, pods, policy) if isinstance(pods, placing.PooledPods) else None
        decision = placing.remember(decision, placed)
        remembered = _remembered_state(decision.state, live, hpa_owned=hpa is not None)
        self.states[(ref.uid, shard.name)] = remembered
        last_scale = stored.last_scale_time if stored else None
        note = None
        if placed is not None and isinstance(pods, placing.PooledPods):
            scaled = hpa is None and await asyncio.to_thread(
                placing.scale_pools, self.kube, ref.body, (shard.name, pods, placed), _utc(ctx.now))
            last_scale = _utc(ctx.now) if scaled else last_scale
        elif hpa is None and decision.replicas != live:
            if ctx.spec.streaming is not None and decision.replicas < live:
                note = await self._rank_scale_in(ctx, shard, live, decision.replicas)
            await self._scale(ctx, shard.name, live, obs.pods.asked, decision, note=note)
            last_scale = _utc(ctx.now)
        status = shard_status(shard.name, decision, obs, forecast, last_scale)
        status = status.model_copy(update={
            "scaler_state": remembered,
            "reasons": [*status.reasons, note][:16] if note else status.reasons,
            "drain_seconds": await self._learn_drain(ctx, shard, stored),
        })
        problems = _problems(decision, pods, hpa, placed)
        if placed is not None and isinstance(pods, placing.PooledPods):
            status = placing.with_placement(status, placed, pods)
            placing.export(ref.namespace, ref.name, shard.name, placed)
            problems = (*problems, *placed.problems)
        self._export(ctx, policy, status, metrics_ok=obs.metrics.usable)
        await self._announce(ctx, shard.name, problems)
        return ShardReport(status, _metric_errors(obs.metrics), problems)

    def _export(self, ctx: TickContext, policy: Policy, status: ShardStatus, *, metrics_ok: bool) -> None:
        telemetry.export_shard(
            ctx.ref.namespace,
            ctx.ref.name,
            status,
            slo_ms=ctx.spec.slo.latency_ms,
            capacity_rps=policy.capacity.rate_for(status.ready_replicas),
            replica_slo_rps=policy.capacity_rps,
            metrics_ok=metrics_ok,
        )

    async def _announce(self, ctx: TickContext, shard: str, problems: tuple[tuple[str, str], ...]) -> None:
        """A Warning Event when a shard newly enters a problem (HPA conflict, pods pending,
        metrics lost, fallback): once on entry, not every tick — the condition carries the rest."""
        key = (ctx.ref.uid, shard)
        seen = self.problems.get(key, frozenset())
        self.problems[key] = frozenset(reason for reason, _ in problems)
        for reason, message in problems:
            if reason not in seen:
                await asyncio.to_thread(
                    self.kube.event, ctx.ref.body, "Warning", reason, f"{shard}: {message}", _utc(ctx.now)
                )
        serving = names.REASON_SERVING_SMALLER_MODEL
        if serving in seen and serving not in self.problems[key]:  # spec.model.fallback: the exit
            message = (f"{shard}: the smaller model's share is back at 0: new interactive requests go"
                       " to the main model")
            await asyncio.to_thread(
                self.kube.event, ctx.ref.body, "Normal", names.REASON_MAIN_MODEL_ONLY, message, _utc(ctx.now)
            )

    async def _observe(
        self, ctx: TickContext, shard: ShardSpec, pods: ShardPodsLike, state: ScalerState, horizon: float
    ) -> tuple[Observation, Forecast | None]:
        selector, spec, source, now = _selector(ctx, shard), ctx.spec, ctx.source, ctx.now
        metrics = await asyncio.to_thread(source.observe, selector, now)
        metrics, loaded = await asyncio.to_thread(
            readings.with_fallback, spec, source, selector, metrics, now)
        classes = await asyncio.to_thread(readings.batch_classes, spec, source, selector, now)
        streams = await asyncio.to_thread(readings.live_streams, spec, source, selector, now)
        forecast = await self._forecast(ctx, selector, horizon)
        counts = _as_asked(pods.counts, state)
        return Observation(metrics, counts, classes, streams, fallback_loaded=loaded), forecast

    async def _scale(
        self, ctx: TickContext, shard: str, live: int, asked: int, decision: Decision, *, note: str | None
    ) -> None:
        ref = ctx.ref
        deployment = names.shard_resource_name(ref.name, shard)
        await asyncio.to_thread(self.kube.scale, ref.namespace, deployment, decision.replicas)
        reason, message = _scale_event(live, asked, decision)
        message = f"{message}; {note}" if note else message
        await asyncio.to_thread(self.kube.event, ref.body, "Normal", reason, message, _utc(ctx.now))
        telemetry.count_scale(ref.namespace, ref.name, shard, live, decision.replicas)

    async def _rank_scale_in(self, ctx: TickContext, shard: ShardSpec, live: int, target: int) -> str:
        """Before lowering replicas: each pod's deletion cost from its live streams, so the
        ReplicaSet controller removes the idlest; the line says which streams the victims hold.

        A failure here does not stop the scale-in (the decision stands, and the victims still
        drain), but the line says that Kubernetes picked them."""
        try:
            return await asyncio.to_thread(
                set_deletion_costs, self.kube, ctx.source, _selector(ctx, shard),
                live=live, target=target, now=ctx.now)
        except Exception as err:
            log.warning("deletion costs of %s/%s not set: %s", ctx.ref.name, shard.name, err)
            why = f"{type(err).__name__}: {err}"[:300]
            return f"scale-in {live} → {target}: deletion costs not set ({why}); Kubernetes picks the pods"

    async def _learn_drain(
        self, ctx: TickContext, shard: ShardSpec, stored: ShardStatus | None
    ) -> int | None:
        """Streaming shards: the drain from the p99 session length (the stored one while there
        is no data); None without spec.streaming."""
        if ctx.spec.streaming is None:
            return None
        p99 = await _safe(asyncio.to_thread(ctx.source.session_seconds, _selector(ctx, shard), ctx.now), None)
        return learned_drain(p99, stored.drain_seconds if stored else None, ctx.spec)

    def _state(self, ctx: TickContext, shard: str, floor: int) -> ScalerState:
        """Memory first; after a restart, the copy in status; with neither, a seeded window."""
        state = self.states.get((ctx.ref.uid, shard))
        if state is None:
            stored = ctx.stored(shard)
            state = restore_state(stored.scaler_state if stored else None, floor, ctx.now)
        return state

    async def _forecast(self, ctx: TickContext, selector: ShardSelector, horizon: float) -> Forecast | None:
        f = ctx.spec.scaling.forecast
        if not f.enabled:
            return None
        step, refit = duration_seconds(f.resolution), duration_seconds(f.refit_every)
        key = (ctx.ref.uid, selector.shard)
        buffer = self.histories.buffer(key, span=duration_seconds(f.history), step=step, refresh_every=refit)

        def fetch(start: float, end: float, step_: float) -> History:
            return ctx.source.history(selector, start, end, step_)

        history = await asyncio.to_thread(buffer.update, fetch, ctx.now)
        return await asyncio.to_thread(
            self.forecasts.forecast,
            key,
            history,
            horizon,
            ctx.now,
            seasonality_seconds=duration_seconds(f.seasonality),
            refit_every_seconds=refit,
            quantile=f.quantile,
            method=f.method,
        )


def _as_asked(live: PodCounts, state: ScalerState) -> PodCounts:
    """The pods as decide() sees them: `asked` is what *we* last asked for, not the live
    spec.replicas, so a `kubectl scale --replicas=12` over our 3 is drift to undo (3), not a
    new baseline. Before anything was asked (first tick, no stored state) the two agree."""
    asked = state.last_replicas if state.last_replicas is not None else live.asked
    return replace(live, asked=asked)


def _remembered_state(state: ScalerState, live: int, *, hpa_owned: bool) -> ScalerState:
    """The state to keep for the next tick: the decision's, except under an HPA.

    Nothing is applied while an HPA owns the count, so "what we asked for" stays what is live:
    remembering an unapplied 4 over a live 1 would make the first scale after the HPA is
    deleted read as undoing a hand edit (DriftCorrected "1 -> 4") instead of ScaledUp.
    """
    return state.model_copy(update={"last_replicas": live}) if hpa_owned else state


def _learn_warmups(state: ScalerState, warmups: tuple[tuple[float, float], ...]) -> ScalerState:
    """Pods that became Ready since the last tick teach the warm-up time (seconds created->Ready)."""
    last_tick = state.recommendations[-1].at if state.recommendations else None
    if last_tick is None:
        return state
    fresh = [seconds for became, seconds in warmups if became > last_tick]
    return record_warmups(state, fresh) if fresh else state


def _read_pods(kube: ClusterAPI, ref: ClusterRef, shard: str, pools: PlacementPolicy | None) -> ShardPodsLike:
    """The shard's Deployment and pods; with spec.placement, its Deployment on every pool."""
    if pools is None:
        return kube.read_shard(ref.namespace, ref.name, shard)
    return placing.read_pools(kube, ref.namespace, ref.name, shard, pools)


def _hpa(ctx: TickContext, shard: str, pods: ShardPodsLike) -> str | None:
    """The HPA targeting the shard's Deployment (any of its pools' with spec.placement)."""
    deployments = [names.shard_resource_name(ctx.ref.name, shard)]
    if isinstance(pods, placing.PooledPods):
        deployments = [names.pool_resource_name(ctx.ref.name, shard, p) for p in pods.pools]
    return next((ctx.hpas[d] for d in deployments if d in ctx.hpas), None)


def _problems(
    decision: Decision, pods: ShardPodsLike, hpa: str | None, placed: Placement | None = None
) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    if hpa is not None:
        out.append(
            (
                names.REASON_HPA_CONFLICT,
                f"HorizontalPodAutoscaler {hpa} targets this shard's Deployment; voxscale will not "
                f"fight it and leaves replicas alone: delete the HPA or remove the shard",
            )
        )
    if pods.counts.pending and placed is None:  # with placement: PoolPending, per pool
        why = pods.pending_reasons[0] if pods.pending_reasons else "unschedulable"
        out.append((names.REASON_PODS_PENDING, f"{pods.counts.pending} pod(s) Pending: {why}"))
    # Worst step first: Degraded shows the first problem, and "fallback-floor" says more than
    # the "metrics-unavailable" that always comes with it.
    for step in reversed(decision.degraded):
        reason = names.REASON_FALLBACK if step.startswith("fallback") else names.REASON_METRICS_UNAVAILABLE
        out.append((reason, f"{step}: {'; '.join(decision.reasons[-2:])}"))
    out.extend(decision.class_problems)
    out.extend(decision.fallback_problems)
    return tuple(out)


def _scale_event(live: int, asked: int, decision: Decision) -> tuple[str, str]:
    why = "; ".join(decision.reasons)
    if live != asked and decision.replicas == asked:
        return (
            names.REASON_DRIFT_CORRECTED,
            f"replicas {live} -> {decision.replicas}: Deployment was changed outside voxscale",
        )
    reason = names.REASON_SCALED_UP if decision.replicas > live else names.REASON_SCALED_DOWN
    return reason, f"{live} -> {decision.replicas} ({decision.mode}, {decision.term}): {why}"


def _metric_errors(metrics: ShardMetrics) -> tuple[str, ...]:
    if metrics.usable:
        return ()
    return metrics.errors or ("no request rate",)


def stored_status(body: Any) -> SpeechClusterStatus:
    """The status stored on a SpeechCluster (a kopf Body or its dict), kopf's own keys left out;
    an empty one when it cannot be read (hand-edited, or written by an older version)."""
    raw = body.get("status") or {}
    try:
        return SpeechClusterStatus.model_validate({k: v for k, v in raw.items() if k != "kopf"})
    except ValueError:
        log.warning("ignoring unreadable stored status of %s", body.get("metadata", {}).get("name"))
        return SpeechClusterStatus()


def _selector(ctx: TickContext, shard: ShardSpec) -> ShardSelector:
    return readings.shard_selector(ctx.ref.namespace, ctx.ref.name, ctx.spec, shard.name)


async def _safe(coro: Any, default: Any) -> Any:
    try:
        return await coro
    except Exception:
        log.exception("optional read failed; continuing without it")
        return default


def _utc(now: float) -> datetime:
    return datetime.fromtimestamp(now, tz=UTC)
