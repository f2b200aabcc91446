"""The operator's own Prometheus metrics: what it decided, why, and how healthy its inputs are."""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from typing import get_args

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from voxscale.api import Mode, ShardStatus, Term

_SHARD = ("namespace", "cluster", "shard")

DESIRED = Gauge(
    "voxscale_desired_replicas", "Replicas decided for the shard, by winning term", [*_SHARD, "term"]
)
READY = Gauge("voxscale_ready_replicas", "Ready worker pods", _SHARD)
WARMING = Gauge("voxscale_warming_replicas", "Scheduled worker pods not yet Ready", _SHARD)
PENDING = Gauge("voxscale_pending_replicas", "Worker pods the scheduler could not place", _SHARD)
OBSERVED_RATE = Gauge("voxscale_observed_rate_rps", "Observed request rate", _SHARD)
FORECAST_RATE = Gauge(
    "voxscale_forecast_rate_rps", "Upper forecast of the request rate over the horizon", _SHARD
)
LATENCY = Gauge("voxscale_observed_latency_ms", "Observed latency at the SLO percentile", _SHARD)
CAPACITY = Gauge("voxscale_capacity_rps", "Rate the Ready replicas hold at the SLO (capacity model)", _SHARD)
PLANNED_RATE = Gauge(
    "voxscale_planned_rate_rps", "Rate the plan sized for: forecast upper + carried miss", _SHARD
)
REPLICA_SLO_RATE = Gauge(
    "voxscale_replica_slo_rate_rps", "What one replica sustains at the SLO (capacity model)", _SHARD
)
SLO = Gauge("voxscale_slo_latency_ms", "SLO latency target", _SHARD)
HORIZON = Gauge("voxscale_horizon_seconds", "Forecast horizon: learned warm-up + interval", _SHARD)
MODE = Gauge("voxscale_mode", "1 for the shard's current mode", [*_SHARD, "mode"])
METRIC_FAILURES = Counter("voxscale_metric_failures_total", "Ticks without usable metrics", _SHARD)
SCALE_EVENTS = Counter("voxscale_scale_events_total", "Replica changes applied", [*_SHARD, "direction"])
_CLASS = (*_SHARD, "class")
CLASS_REPLICAS = Gauge(
    "voxscale_class_replicas",
    "Replicas a traffic class needs (the shard runs Interactive + every Batch need)", _CLASS,
)
CLASS_BACKLOG = Gauge("voxscale_class_backlog_requests", "A Batch class's queued requests", _CLASS)
CLASS_REQUIRED_RATE = Gauge(
    "voxscale_class_required_rate_rps",
    "Throughput that completes a Batch class's backlog and arrivals before its deadline", _CLASS,
)
CLASS_AT_RISK = Gauge(
    "voxscale_class_deadline_at_risk", "1 while a Batch class's deadline is at risk", _CLASS
)
FALLBACK_SHARE = Gauge(
    "voxscale_fallback_share",
    "spec.model.fallback: share of new interactive requests sent to the smaller model (0 to 1)", _SHARD,
)
_POOL = (*_SHARD, "pool")
COST = Gauge(
    "voxscale_cost_per_hour",
    "spec.placement: what the shard's scheduled replicas on a pool cost per hour (price × pods)", _POOL,
)
OVERFLOW = Gauge(
    "voxscale_placement_overflow_replicas",
    "spec.placement: a class's replicas beyond its first pool (e.g. batch on on-demand while spot is short)",
    _CLASS,
)
TICK = Histogram(
    "voxscale_tick_duration_seconds",
    "Duration of one SpeechCluster tick",
    ["namespace", "cluster"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Every value the status can hold gets its series, so a mode left has an explicit 0.
_MODES: tuple[str, ...] = get_args(Mode)
_TERMS: tuple[str, ...] = get_args(Term)


def _set(gauge: Gauge, labels: tuple[str, ...], value: float | None) -> None:
    # No data is exported as an absent series, never as 0.
    if value is not None:
        gauge.labels(*labels).set(value)
        return
    with contextlib.suppress(KeyError):  # already absent
        gauge.remove(*labels)


def export_shard(
    namespace: str,
    cluster: str,
    status: ShardStatus,
    *,
    slo_ms: float,
    capacity_rps: float,
    replica_slo_rps: float,
    metrics_ok: bool,
) -> None:
    key = (namespace, cluster, status.name)
    for term in _TERMS:
        DESIRED.labels(*key, term).set(status.replicas if term == status.winning_term else 0)
    for mode in _MODES:
        MODE.labels(*key, mode).set(1 if mode == status.mode else 0)
    READY.labels(*key).set(status.ready_replicas)
    WARMING.labels(*key).set(status.warming_replicas)
    PENDING.labels(*key).set(status.pending_replicas)
    SLO.labels(*key).set(slo_ms)
    CAPACITY.labels(*key).set(capacity_rps)
    REPLICA_SLO_RATE.labels(*key).set(replica_slo_rps)
    _set(PLANNED_RATE, key, status.planned_rate)
    _set(OBSERVED_RATE, key, status.observed_rate)
    _set(FORECAST_RATE, key, status.forecast_rate)
    _set(LATENCY, key, status.observed_latency_ms)
    _set(HORIZON, key, status.horizon_seconds)
    _set(FALLBACK_SHARE, key, status.fallback_share)
    for c in status.classes or ():
        labels = (*key, c.name)
        _set(CLASS_REPLICAS, labels, c.replicas)
        _set(CLASS_BACKLOG, labels, c.backlog)
        _set(CLASS_REQUIRED_RATE, labels, c.required_rate)
        CLASS_AT_RISK.labels(*labels).set(1 if c.deadline_at_risk else 0)
    if not metrics_ok:
        METRIC_FAILURES.labels(*key).inc()


def export_cost(namespace: str, cluster: str, shard: str, pool_cost: dict[str, float],
                overflow: dict[str, int] | None = None) -> None:
    """spec.placement: each pool's cost per hour for the shard, and each class's overflow (0 when
    it runs on its first pool)."""
    for pool, cost in pool_cost.items():
        COST.labels(namespace, cluster, shard, pool).set(cost)
    for name, replicas in (overflow or {}).items():
        OVERFLOW.labels(namespace, cluster, shard, name).set(replicas)


def count_scale(namespace: str, cluster: str, shard: str, before: int, after: int) -> None:
    SCALE_EVENTS.labels(namespace, cluster, shard, "up" if after > before else "down").inc()


_SERIES: tuple[tuple[MetricWrapperBase, tuple[str, ...]], ...] = (
    (DESIRED, (*_SHARD, "term")),
    (READY, _SHARD),
    (WARMING, _SHARD),
    (PENDING, _SHARD),
    (OBSERVED_RATE, _SHARD),
    (FORECAST_RATE, _SHARD),
    (LATENCY, _SHARD),
    (CAPACITY, _SHARD),
    (PLANNED_RATE, _SHARD),
    (REPLICA_SLO_RATE, _SHARD),
    (SLO, _SHARD),
    (HORIZON, _SHARD),
    (MODE, (*_SHARD, "mode")),
    (METRIC_FAILURES, _SHARD),
    (SCALE_EVENTS, (*_SHARD, "direction")),
    (CLASS_REPLICAS, _CLASS),
    (CLASS_BACKLOG, _CLASS),
    (CLASS_REQUIRED_RATE, _CLASS),
    (CLASS_AT_RISK, _CLASS),
    (COST, _POOL),
    (OVERFLOW, _CLASS),
    (FALLBACK_SHARE, _SHARD),
    (TICK, ("namespace", "cluster")),
)
"""Every labelled metric above with its label names in declaration order (what remove() takes)."""


def forget(namespace: str, cluster: str, shards: Collection[str] | None = None) -> int:
    """Remove every exported series of a cluster (shards None) or of those of its shards.

    A deleted cluster's or a removed shard's series would otherwise be scraped forever, frozen at
    their last values: 22 label sets per shard (7 terms, 4 modes, 11 gauges) plus its counters,
    and the cluster's tick histogram. Returns how many label sets were removed.
    """
    wanted = None if shards is None else set(shards)
    removed = 0
    for metric, label_names in _SERIES:
        for labels in _label_sets(metric, label_names):
            mine = labels["namespace"] == namespace and labels["cluster"] == cluster
            if mine and (wanted is None or labels.get("shard") in wanted):
                with contextlib.suppress(KeyError):  # removed meanwhile by another tick
                    metric.remove(*(labels[name] for name in label_names))
                    removed += 1
    return removed


def _label_sets(metric: MetricWrapperBase, label_names: tuple[str, ...]) -> list[dict[str, str]]:
    """The distinct label sets `metric` exports (a histogram's `le` and suffixes folded away)."""
    seen: dict[tuple[str, ...], dict[str, str]] = {}
    for family in metric.collect():
        for sample in family.samples:
            key = tuple(sample.labels.get(name, "") for name in label_names)
            seen.setdefault(key, dict(zip(label_names, key, strict=True)))
    return list(seen.values())
