"""Pure builders of SpeechCluster status: per-shard numbers, roll-ups and conditions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from voxscale import names
from voxscale.api import (
    ClassStatus,
    Condition,
    Mode,
    RoutingStatus,
    ShardStatus,
    SpeechClusterStatus,
)
from voxscale.decide.types import Decision, Forecast, Observation

# Worst first: the cluster-wide mode shown by `kubectl get spc` is its worst shard's.
MODE_SEVERITY: dict[Mode, int] = {"stable": 0, "panic": 1, "hold": 2, "fallback": 3}


@dataclass(frozen=True)
class ShardReport:
    """What one shard's tick produced, beyond the Decision: for conditions."""

    status: ShardStatus
    metrics_errors: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()
    """(reason, message) pairs that make the cluster Degraded, e.g. ('HPAConflict', '...')."""


def shard_status(
    name: str,
    decision: Decision,
    obs: Observation,
    forecast: Forecast | None,
    last_scale_time: datetime | None,
) -> ShardStatus:
    return ShardStatus(
        name=name,
        replicas=decision.replicas,
        ready_replicas=obs.pods.ready,
        warming_replicas=obs.pods.warming,
        pending_replicas=obs.pods.pending,
        observed_rate=obs.metrics.rate,
        observed_latency_ms=obs.metrics.latency_ms,
        forecast_rate=forecast.upper if forecast else None,
        planned_rate=decision.planned_rate,
        horizon_seconds=decision.horizon_seconds,
        learned_warmup_seconds=decision.learned_warmup_seconds,
        mode=decision.mode,
        winning_term=decision.term,
        reasons=[r[:1024] for r in decision.reasons[:16]],
        last_scale_time=last_scale_time,
        scaler_state=decision.state,
        classes=[
            ClassStatus(name=n.name, kind=n.kind, replicas=n.replicas, observed_rate=n.rate,
                        backlog=n.backlog, oldest_seconds=n.oldest_seconds,
                        required_rate=n.required_rate, deadline_at_risk=n.at_risk)
            for n in decision.classes
        ] or None,
        fallback_share=decision.fallback_share,
    )


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: bool,
    *,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """Replace one condition; lastTransitionTime moves only when the status flips."""
    value = "True" if status else "False"
    old = next((c for c in conditions if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == value else now
    new = Condition(
        type=type_,
        status=value,
        reason=reason,
        message=message[:1024],
        last_transition_time=since,
        observed_generation=generation,
    )
    return [c for c in conditions if c.type != type_] + [new]


def _verdicts(reports: Sequence[ShardReport]) -> list[tuple[str, bool, str, str]]:
    """(condition type, status, reason, message) for each cluster condition."""
    broken = [f"{r.status.name}: {', '.join(r.metrics_errors)}" for r in reports if r.metrics_errors]
    problems = [f"{r.status.name}: {msg}" for r in reports for _, msg in r.problems]
    reasons = [reason for r in reports for reason, _ in r.problems]
    not_ready = [r.status.name for r in reports if r.status.ready_replicas < min(1, r.status.replicas)]
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return [
        (names.CONDITION_METRICS_AVAILABLE, True, "MetricsOK", "every shard has a request rate")
        if not broken
        else (
            names.CONDITION_METRICS_AVAILABLE,
            False,
            "NoData",
            f"no usable metrics for {'; '.join(broken)}",
        ),
        (names.CONDITION_DEGRADED, False, "AsPlanned", "all shards scale normally")
        if not problems
        else (names.CONDITION_DEGRADED, True, reasons[0], problems[0] + more),
        (names.CONDITION_READY, True, names.REASON_RECONCILED, "every shard has Ready workers")
        if not not_ready
        else (
            names.CONDITION_READY,
            False,
            "ShardsNotReady",
            f"no Ready worker yet in {', '.join(not_ready)}",
        ),
    ]


def fallback_verdict(reports: Sequence[ShardReport]) -> tuple[bool, str, str] | None:
    """(status, reason, message) of the SmallerModel condition; None without spec.model.fallback
    (no shard reports a share)."""
    if all(r.status.fallback_share is None for r in reports):
        return None
    serving = [f"{r.status.name} {r.status.fallback_share:.0%}" for r in reports if r.status.fallback_share]
    missing = [f"{r.status.name}: {m}" for r in reports for reason, m in r.problems
               if reason == names.REASON_FALLBACK_MODEL_UNAVAILABLE]
    if serving:
        return True, names.REASON_SERVING_SMALLER_MODEL, (
            f"new interactive requests to the smaller model: {', '.join(serving)}")
    if missing:
        return False, names.REASON_FALLBACK_MODEL_UNAVAILABLE, "; ".join(missing)
    return False, names.REASON_MAIN_MODEL_ONLY, "every shard serves the main model only"


def cluster_conditions(
    reports: Sequence[ShardReport], previous: Sequence[Condition], now: datetime, generation: int | None
) -> list[Condition]:
    conditions = list(previous)
    smaller = fallback_verdict(reports)
    verdicts = _verdicts(reports)
    if smaller is None:
        conditions = [c for c in conditions if c.type != names.CONDITION_SMALLER_MODEL]
    else:
        verdicts.append((names.CONDITION_SMALLER_MODEL, *smaller))
    for type_, ok, reason, message in verdicts:
        conditions = set_condition(
            conditions, type_, ok, reason=reason, message=message, now=now, generation=generation
        )
    return conditions


def routing_condition(
    conditions: Sequence[Condition], routing: RoutingStatus | None, now: datetime
) -> list[Condition]:
    """The Routed condition as status.routing says; none without routing. The tick rewrites the
    whole list from a view that can be a moment old, so the condition is re-derived from
    status.routing (which only the reconcile writes) rather than carried over."""
    if routing is None:
        return [c for c in conditions if c.type not in (names.CONDITION_ROUTED, names.CONDITION_FAILED_OVER)]
    routed = set_condition(
        conditions, names.CONDITION_ROUTED, routing.routed, reason=routing.reason,
        message=routing.message, now=now, generation=routing.observed_generation,
    )
    away, reason, message = failover_condition(routing)
    return set_condition(routed, names.CONDITION_FAILED_OVER, away, reason=reason, message=message,
                         now=now, generation=routing.observed_generation)


def failover_condition(routing: RoutingStatus) -> tuple[bool, str, str]:
    """(status, reason, message) of the FailedOver condition: True while any language's new
    streams go to another region; FailoverImpossible (worst) when one has nowhere to go."""
    moved = [f for f in routing.failovers if f.to]
    stuck = [f for f in routing.failovers if not f.to]
    lines = [f"{', '.join(f.languages)} of {f.from_shard} -> {f.to} since"
             f" {f.since.isoformat(timespec='seconds')} ({f.reason})"
             + (f"; {f.from_shard} serves again since {f.home_ready_since.isoformat(timespec='seconds')}"
                if f.home_ready_since else "") for f in moved]
    lines += [f"{', '.join(f.languages)} of {f.from_shard}: no healthy shard of another region serves"
              f" {'it' if len(f.languages) == 1 else 'them'} ({f.reason}); routed home still" for f in stuck]
    if stuck:
        return bool(moved), names.REASON_FAILOVER_IMPOSSIBLE, "; ".join(lines)
    if moved:
        return True, names.REASON_FAILED_OVER, "; ".join(lines)
    return False, names.REASON_AT_HOME, "every shard serves its own languages"


def cluster_status(
    reports: Sequence[ShardReport], previous: SpeechClusterStatus, now: datetime, generation: int | None
) -> SpeechClusterStatus:
    shards = [r.status for r in reports]
    latencies = [s.observed_latency_ms for s in shards if s.observed_latency_ms is not None]
    return SpeechClusterStatus(
        observed_generation=previous.observed_generation
        if previous.observed_generation is not None
        else generation,
        conditions=routing_condition(
            cluster_conditions(reports, previous.conditions, now, generation), previous.routing, now
        ),
        shards=shards,
        shard_count=len(shards),
        desired_replicas=sum(s.replicas for s in shards),
        ready_replicas=sum(s.ready_replicas for s in shards),
        worst_latency_ms=max(latencies) if latencies else None,
        mode=max((s.mode for s in shards), key=MODE_SEVERITY.__getitem__, default=None),
    )
