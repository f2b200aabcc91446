"""Batch classes: the replicas that finish each class's queued work before its deadline.

A Batch class has no latency target, only a deadline: every request completes within
`deadline_seconds` of arriving. Its need is a throughput, the backlog ÷ the time left to the
oldest request's deadline plus the rate still arriving, through the capacity model at full
batches. Worked numbers: 9,000 requests queued, the oldest 1,800 s into a 3,600 s deadline,
40 req/s arriving, a 130 s horizon: 9,000 / (1,800 − 130) + 40 = 45.4 req/s; at 72 req/s per
replica with full batches that is 1 replica.

Why the horizon is taken off: a replica asked for now serves only after its warm-up, so
the backlog must fit in what is left once new capacity is Ready. When that is less than one
horizon the oldest work will be late whatever is asked; the need is then sized to clear the
backlog within one horizon more, and the class says its deadline is at risk.

The shard runs the Interactive need + every Batch need (engine.py): Triton fills each batch
from the highest priority level first, so batch work rides in what interactive leaves, and
the interactive plan's headroom is what holds its percentile through Poisson bursts. Counting
batch throughput on that headroom would take it back exactly when a burst needs it.

No data is never zero: a class whose backlog has no answer keeps its last need (state), and
the shard is not scaled down that tick, since vanished metrics are no evidence that the
queue drained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from voxscale import names
from voxscale.api import ScalerState
from voxscale.decide.capacity import CapacityModel
from voxscale.decide.evolve import updated
from voxscale.decide.types import BatchClass, ClassMetrics, ClassNeed, Policy


@dataclass(frozen=True)
class BatchPlan:
    """Every Batch class of a shard this tick: what they add and why."""

    replicas: int = 0
    """Sum of the Batch needs (no data counts its last need)."""
    hold: bool = False
    """A class has no data: the shard must not go below its current count this tick."""
    needs: tuple[ClassNeed, ...] = ()
    reasons: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()
    state: ScalerState | None = None
    """The state with the last needs updated; None when there are no Batch classes."""


def batch_capacity(policy: Policy) -> CapacityModel:
    """Replicas a batch throughput needs: no latency target, so no burst headroom, and a
    replica runs full batches (B / s(B), 72 req/s at a = 60 ms, c = 12 ms, B = 32). Without a
    service-time profile, the SLO rate μ is all that is known: a lower bound of throughput."""
    per_replica = policy.service.max_rps if policy.service is not None else policy.capacity_rps
    return CapacityModel(per_replica, policy.slo_latency_ms, policy.slo_percentile,
                         target_utilization=1.0)


def plan_batch(
    classes: tuple[ClassMetrics, ...], policy: Policy, state: ScalerState, *, horizon: float
) -> BatchPlan:
    """The Batch classes' needs at this tick; BatchPlan() without Batch classes."""
    if not policy.batch_classes:
        return BatchPlan()
    seen = {m.name: m for m in classes}
    last = dict(state.batch_needs or {})
    model = batch_capacity(policy)
    needs: list[ClassNeed] = []
    reasons: list[str] = []
    problems: list[tuple[str, str]] = []
    for c in policy.batch_classes:
        need = class_need(c, seen.get(c.name), model, policy, horizon=horizon, last=last.get(c.name))
        needs.append(need)
        reasons.extend(need.reasons)
        problems.extend(need.problems)
        if need.replicas is not None and not need.held:
            last[c.name] = need.replicas
    total = sum(n.replicas or 0 for n in needs)
    held = any(n.held for n in needs)
    if total:
        reasons.append(f"classes: batch {' + '.join(f'{n.name} {n.replicas or 0}' for n in needs)}"
                       f" = {total} on top of interactive (batch rides in what interactive leaves)")
    return BatchPlan(total, held, tuple(needs), tuple(reasons), tuple(problems),
                     updated(state, {"batch_needs": last}))


def class_need(
    c: BatchClass, m: ClassMetrics | None, model: CapacityModel, policy: Policy, *,
    horizon: float, last: int | None,
) -> ClassNeed:
    """One Batch class: (backlog ÷ time left + arrivals) through the batch capacity model."""
    backlog = _finite(m.backlog) if m is not None else None
    if backlog is None:
        why = "; ".join(m.errors) if m is not None and m.errors else "no backlog series"
        kept = last if last is not None else 0
        line = (f"class {c.name}: backlog no data ({why}); need {kept} held"
                f" ({'last known' if last is not None else 'none known'}), no scale-down")
        problem = (names.REASON_CLASS_METRICS_UNAVAILABLE,
                   f"class {c.name}: backlog no data ({why}); its last need {kept} is held and"
                   " the shard is not scaled down: check the worker's voxscale_class_* series")
        return ClassNeed(c.name, "Batch", kept, held=True, reasons=(line,), problems=(problem,))
    rate = _finite(m.rate) if m is not None else None
    oldest = _finite(m.oldest_seconds) if m is not None else None
    arriving = max(rate or 0.0, 0.0)
    backlog = max(backlog, 0.0)
    left = c.deadline_seconds - (oldest or 0.0) if backlog > 0 else float(c.deadline_seconds)
    usable = left - horizon
    at_risk = backlog > 0 and usable < horizon
    window = max(usable, horizon)
    required = (backlog / window if backlog > 0 else 0.0) + arriving
    replicas = model.replicas_for(required)
    line = (f"class {c.name}: backlog {backlog:.0f} / ({left:.0f} s to deadline − {horizon:.0f} s"
            f" warm-up) + {arriving:.1f} rps arriving = {required:.1f} rps → {replicas}"
            f" at {model.per_replica_rps:.1f} rps/replica")
    if backlog > 0 and at_risk:
        line = (f"class {c.name}: backlog {backlog:.0f}, oldest {oldest or 0:.0f} s of"
                f" {c.deadline_seconds:g} s: {left:.0f} s left, under two horizons; sized to clear it in"
                f" {window:.0f} s + {arriving:.1f} rps arriving = {required:.1f} rps → {replicas}")
    lines = [line]
    if rate is None:
        lines.append(f"class {c.name}: arrival rate no data, backlog only")
    if oldest is None and backlog > 0:
        lines.append(f"class {c.name}: oldest age no data, the full {c.deadline_seconds:g} s assumed")
    problems: tuple[tuple[str, str], ...] = ()
    if at_risk or replicas > policy.max_replicas:
        problems = ((names.REASON_DEADLINE_AT_RISK, _at_risk_message(
            c, backlog, left, replicas=replicas, policy=policy, horizon=horizon)),)
    return ClassNeed(c.name, "Batch", replicas, rate=rate, backlog=backlog, oldest_seconds=oldest,
                     required_rate=required, at_risk=bool(problems), reasons=tuple(lines),
                     problems=problems)


def _at_risk_message(c: BatchClass, backlog: float, left: float, *, replicas: int, policy: Policy,
                     horizon: float) -> str:
    if replicas > policy.max_replicas:
        return (f"class {c.name}: {backlog:.0f} queued need {replicas} replicas for the"
                f" {c.deadline_seconds:g} s deadline, above maxReplicas {policy.max_replicas}:"
                " raise maxReplicas or deadlineSeconds, or submit less at once")
    return (f"class {c.name}: oldest request has {left:.0f} s left of its {c.deadline_seconds:g} s"
            f" deadline, less than two {horizon:.0f} s horizons (warm-up + interval): new capacity"
            " comes too late for it; lengthen deadlineSeconds or keep more replicas warm (minReplicas)")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
