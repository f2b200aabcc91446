"""Score replay runs: SLO-violation minutes and requests, replica-hours and their cost, vs the oracle.

Cost is replica-hours × one price per replica-hour (`voxscale replay --price-per-replica-hour`):
the replay simulates one shard of one class on one node pool, so there is no spot/on-demand
split to price (docs/placement.md says how the operator prices pools).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from voxscale_lab.replay.simulator import Run


@dataclass(frozen=True)
class Score:
    trace: str
    policy: str
    warmup_seconds: float
    violation_minutes_pct: float
    """Share of minutes (with requests) whose latency percentile exceeds the SLO."""
    violating_requests_pct: float
    replica_hours: float
    """Ready + warming replicas integrated over time: a warming GPU is paid for."""
    scale_events_per_hour: float
    oracle_ratio: float | None = None
    hours: float = 0.0
    cost: float | None = None
    """replica_hours × the price per replica-hour, when one was given."""
    currency: str = "USD"


def priced(
    scores: Sequence[Score], price_per_replica_hour: float | None, currency: str = "USD"
) -> list[Score]:
    """Each score with its cost at one price per replica-hour (None: unpriced, as before)."""
    if price_per_replica_hour is None:
        return list(scores)
    return [replace(s, cost=s.replica_hours * price_per_replica_hour, currency=currency) for s in scores]


def score(run: Run, slo_ms: float, percentile: float) -> Score:
    minutes = run.minute_latency_ms(percentile)
    counted = np.isfinite(minutes) | np.isinf(minutes)
    bad_minutes = float((minutes[counted] > slo_ms).sum())
    # A second's latency is uniform on [lo, lo + width]: the share above the SLO is linear.
    with np.errstate(invalid="ignore"):
        over = np.clip((run.lo_ms + run.width_ms - slo_ms) / run.width_ms, 0.0, 1.0)
    over = np.where(np.isinf(run.lo_ms), 1.0, over)
    total = float(run.arrivals.sum())
    hours = run.seconds / 3600.0
    return Score(
        trace=run.workload,
        policy=run.policy,
        warmup_seconds=run.config.warmup_seconds,
        violation_minutes_pct=100.0 * bad_minutes / max(1, int(counted.sum())),
        violating_requests_pct=100.0 * float((over * run.arrivals).sum()) / max(total, 1.0),
        replica_hours=float(run.ready.sum() + run.warming.sum()) / 3600.0,
        scale_events_per_hour=run.scale_events / hours if hours else 0.0,
        hours=hours,
    )


def with_oracle_ratio(scores: Sequence[Score]) -> list[Score]:
    """Fill `oracle_ratio` from the oracle row of the same trace and warm-up."""
    oracle = {(s.trace, s.warmup_seconds): s.replica_hours for s in scores if s.policy == "oracle"}
    out = []
    for s in scores:
        base = oracle.get((s.trace, s.warmup_seconds))
        out.append(replace(s, oracle_ratio=s.replica_hours / base if base else None))
    return out


def markdown(scores: Sequence[Score]) -> str:
    """The table; a cost column after replica-h when the scores are priced."""
    currency = next((s.currency for s in scores if s.cost is not None), None)
    cost_head, cost_rule = (f" | cost ({currency})", "---:|") if currency else ("", "")
    head = (
        f"| trace | W (s) | policy | SLO-violation min % | violating req % | replica-h{cost_head} "
        f"| × oracle | scale events/h |\n|---|---:|---|---:|---:|---:|{cost_rule}---:|---:|"
    )
    rows = [
        f"| {s.trace} | {s.warmup_seconds:g} | {s.policy} | {s.violation_minutes_pct:.2f} "
        f"| {s.violating_requests_pct:.2f} | {s.replica_hours:.1f}"
        f"{f' | {s.cost:.2f}' if currency and s.cost is not None else ''} "
        f"| {'–' if s.oracle_ratio is None else f'{s.oracle_ratio:.2f}'} "
        f"| {s.scale_events_per_hour:.1f} |"
        for s in scores
    ]
    return "\n".join([head, *rows])


def to_json(scores: Sequence[Score]) -> str:
    return json.dumps([asdict(s) for s in scores], indent=2)
