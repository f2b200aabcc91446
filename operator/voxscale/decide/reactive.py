"""Reactive term: observed rate ÷ per-replica rps, corrected upward when latency breaks the SLO."""

from __future__ import annotations

import math
from typing import NamedTuple

from voxscale.decide.step import Need
from voxscale.decide.types import Policy, ShardMetrics
from voxscale.decide.units import ceil_ratio, replicas_for


class Reactive(NamedTuple):
    """Unlike the forecast, observed load always has something to say (0 is a real answer)."""

    replicas: int
    reasons: tuple[str, ...] = ()


def reactive_replicas(metrics: ShardMetrics, ready: int, policy: Policy) -> Reactive:
    """Replicas the observed load needs: max(rate term, latency correction). Needs a usable rate."""
    rate = metrics.rate if metrics.rate is not None and math.isfinite(metrics.rate) else 0.0
    rate = max(0.0, rate)
    per = policy.per_replica_rps
    by_rate = replicas_for(rate, per)
    lines = [f"reactive: rate {rate:.1f} rps / {per:.1f} rps per replica = {by_rate}"]
    by_latency = latency_correction(metrics.latency_ms, ready, policy)
    lines.extend(by_latency.reasons)
    if by_latency.replicas is not None and by_latency.replicas > by_rate:
        return Reactive(by_latency.replicas, tuple(lines))
    return Reactive(by_rate, tuple(lines))


def latency_correction(latency_ms: float | None, ready: int, policy: Policy) -> Need:
    """Replicas the latency percentile asks for, or None when it asks for nothing.

    Worked numbers, SLO 500 ms, tolerance 10% (band up to 550 ms), 10 ready pods:
    - 520 ms is inside the band: noise, no correction.
    - 900 ms is 1.8× the SLO: latency rises with the load each pod carries once queues form,
      so 1.8× latency asks for ceil(10 × 1.8) = 18 pods, even if the rate alone says fewer
      (a saturated shard's *served* rate understates the demand).
    - 5 s is 10×: the queue, not the load, dominates, so the ask is capped at
      max(ceil(2.0 × 10), 10 + 4) = 20 — the panic threshold, or 4 more for tiny shards
      (1 pod doubling to 2 is too timid). The next tick asks again if 20 is not enough.
    - 200 ms is below the band: latency floors at the service time, so it never drives a
      scale-down; the rate term alone decides.
    The base is *ready* pods: warming pods serve nothing yet, so counting them would ask
    for the capacity that is already coming a second time.
    """
    if latency_ms is None or not math.isfinite(latency_ms):
        return Need(None, ("reactive: latency no data, rate only",))
    if ready <= 0:
        return Need(None)
    ratio = latency_ms / policy.slo_latency_ms
    if ratio <= 1.0 + policy.tolerance:
        return Need(None)
    cap = max(ceil_ratio(policy.panic_threshold * ready, 1.0), ready + policy.scale_up_max_pods)
    wanted = ceil_ratio(ready * ratio, 1.0)
    n = min(wanted, cap)
    capped = f" (capped from {wanted})" if wanted > cap else ""
    return Need(
        n,
        (
            f"reactive: latency {latency_ms:.0f} ms = {ratio:.2f}×"
            f" SLO {policy.slo_latency_ms:.0f} ms"
            f" (> {1 + policy.tolerance:.2f}×): {ready} ready × {ratio:.2f} = {n}{capped}",
        ),
    )
