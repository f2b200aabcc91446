"""Reactive term: what the observed rate needs at the SLO, corrected upward when latency breaks it."""

from __future__ import annotations

import math
from typing import NamedTuple

from voxscale.decide.capacity import CapacityModel
from voxscale.decide.step import Need
from voxscale.decide.types import Policy, ShardMetrics
from voxscale.decide.units import ceil_ratio


class Reactive(NamedTuple):
    """Unlike the forecast, observed load always has something to say (0 is a real answer)."""

    replicas: int
    reasons: tuple[str, ...] = ()


def reactive_replicas(
    metrics: ShardMetrics,
    ready: int,
    policy: Policy,
    capacity: CapacityModel | None = None,
    *,
    drain_seconds: float | None = None,
    explain: bool = True,
) -> Reactive:
    """Replicas the observed load needs now: max(rate term, panic-window term, latency
    correction).

    The rate terms go through the same SLO capacity model as the plan (`capacity`, default
    the policy's); with no forecast beside it, the caller passes the model with growth
    headroom (`Policy.capacity_without_forecast`). Needs a usable rate. `explain=False`: the
    same count without the reason lines (decide's replay path).
    """
    rate = metrics.rate if metrics.rate is not None and math.isfinite(metrics.rate) else 0.0
    rate = max(0.0, rate)
    model = capacity or policy.capacity
    backlog = backlog_requests(metrics.queue, ready, policy)
    demand = rate + (backlog / drain_seconds if backlog and drain_seconds else 0.0)
    by_rate = model.replicas_for(demand)
    burst = burst_replicas(metrics.panic_rate, demand - rate, by_rate, model, policy)
    need = max(by_rate, burst.replicas or 0)
    by_latency = latency_correction(metrics.latency_ms, ready, policy)
    if by_latency.replicas is not None and by_latency.replicas > need:
        need = by_latency.replicas
    if not explain:
        return Reactive(need)
    lines = [f"observed: rate {rate:.1f} rps → {by_rate} ({model.describe(demand, by_rate)})"]
    if demand > rate:
        lines.append(f"observed: backlog {backlog:.0f} requests past one full batch per ready"
                     f" replica, drained over {drain_seconds:.0f} s: +{demand - rate:.1f} rps")
    return Reactive(need, (*lines, *burst.reasons, *by_latency.reasons))


def burst_replicas(
    panic_rate: float | None, backlog_rps: float, stable: int, model: CapacityModel,
    policy: Policy,
) -> Need:
    """Replicas the panic-window rate (plus the same backlog drain) needs, where that is more
    than the stable rate's `stable`; None otherwise (and with no panic-window rate).

    Knative's panic metric: 10 replicas serving 300 rps that jump to 600 rps show 600 in a
    30 s window after 30 s, while a 1m rate has only reached 450. The count it asks for is
    the observed need, so it also panics (panic.py) once it reaches 2× the ready pods, and
    like every recommendation it is let go only through the scale-down window: it never
    pulls the count down by itself. Noise is small next to that: a steady 100 rps is
    3,000 ± 55 requests per 30 s, ±2 %.
    """
    if panic_rate is None or not math.isfinite(panic_rate):
        return Need(None)
    rate = max(0.0, panic_rate)
    n = model.replicas_for(rate + backlog_rps)
    if n <= stable:  # nothing the stable rate did not already ask for
        return Need(None)
    return Need(n, (f"observed: {policy.panic_window_seconds:g} s panic-window rate"
                    f" {rate:.1f} rps → {n}, above the stable rate's {stable}",))


def backlog_requests(queue: float | None, ready: int, policy: Policy) -> float:
    """Requests waiting beyond the next full batch of every ready replica: a saturated shard's
    served rate understates its demand by what piles up (Triton's pending count includes the
    batch each replica is forming, so only the excess is backlog)."""
    if queue is None or not math.isfinite(queue) or policy.service is None:
        return 0.0
    return max(0.0, queue - ready * policy.service.max_batch)


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
