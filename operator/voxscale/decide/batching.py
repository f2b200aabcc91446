"""Online capacity: Triton's observed batch size says how long a batch really takes."""

from __future__ import annotations

import math
from typing import NamedTuple

from voxscale.api import ScalerState
from voxscale.decide.capacity import ServiceTime
from voxscale.decide.evolve import evolve, updated
from voxscale.decide.reactive import backlog_requests
from voxscale.decide.types import Policy, ShardMetrics

MIN_MODELLED_BATCH = 2.0
"""Below a modelled batch of 2 the replica idles between requests, and rate ÷ batch is idle
time, not service time: the observation says nothing about capacity there."""
SMOOTHING = 0.2
"""Weight of one tick's estimate: at 10 s ticks the scale follows a drift within ~1 minute
(1 − 0.8⁵ = 67 %), while one noisy minute moves capacity by at most a fifth of its error."""
SCALE_BOUNDS = (0.5, 2.0)
"""A model off by more than 2× is a wrong profile, not a drift: the latency correction (and
an operator reading the reasons) must handle that, not a silent 4× capacity change."""


class Calibrated(NamedTuple):
    policy: Policy
    state: ScalerState
    reasons: tuple[str, ...] = ()


def calibrate_service_time(
    policy: Policy, metrics: ShardMetrics, ready: int, state: ScalerState, *, explain: bool = True
) -> Calibrated:
    """The policy with its service time scaled by what the replicas' batches show.

    A busy replica runs batches back to back, each collecting the arrivals of the one before,
    so at r req/s per replica and an observed mean batch b, a batch took b / r seconds. The
    profile says a + c·b. Worked example, a = 60 ms, c = 12 ms: 40 rps per replica and an
    observed batch of 12 mean 300 ms per batch against 204 ms modelled, a scale of 1.47
    (e.g. longer utterances than profiled): the replica sustains 43 rps at the SLO, not 64,
    and every term below plans with that. `explain=False`: the same policy and state, no line.
    """
    service = policy.service
    scale = state.service_time_scale
    fresh = _observed_scale(policy, metrics, ready)
    if fresh is not None:
        scale = fresh if scale is None else scale + SMOOTHING * (fresh - scale)
        state = updated(state, {"service_time_scale": scale})
    if service is None or scale is None or abs(scale - 1.0) < 0.02:
        return Calibrated(policy, state)
    scaled = ServiceTime(service.fixed_seconds * scale, service.per_request_seconds * scale,
                         service.max_batch, service.max_queue_delay_seconds)
    mu = scaled.sustainable_rps(policy.slo_latency_ms, policy.slo_percentile)
    if mu <= 0:
        return Calibrated(policy, state)
    scaled_policy = evolve(policy, capacity_rps=mu, service=scaled)
    if not explain:
        return Calibrated(scaled_policy, state)
    line = (f"capacity: batches take {scale:.2f}× the profile ({_evidence(metrics, ready)}):"
            f" {mu:.1f} rps/replica at the SLO, not {policy.capacity_rps:.1f}")
    return Calibrated(scaled_policy, state, (line,))


def _observed_scale(policy: Policy, metrics: ShardMetrics, ready: int) -> float | None:
    """Real batch time ÷ the profile's. A busy replica is never idle: per second it runs per/b
    batches of t(b) each (the profile's times), plus the smaller model's on the same GPU while a
    fallback share is moved, so the real times are 1 / (that busy time) of the profile's.
    One model: b / (per · t(b)). Worked, the e2e's stand-ins (100 + 12·b ms; the smaller one
    30 + 4·b ms) at 75 req/s, half of it moved: both batch ~12.2, busy 37.5/12.2 × 0.246 +
    37.5/12.2 × 0.079 = 1.0, the profile holds. The main model's batch against both models' rate
    would read 12.2 / (75 × 0.246) = 0.66: a main model a third faster than it is, whose
    capacity then asks for the share back while the load is unchanged.

    No reading while requests queue past one full batch per ready replica: then the batches
    are as large as the queue makes them, not as the arrival rate does, and the replicas
    are serving a backlog the 1m rate does not count. Seen on the Azure code trace at a
    120 s warm-up: a burst's backlog read as batches taking 1.66× the profile, which halved
    the capacity the rest of the hour was planned with (1.99× → 1.76× the oracle's
    replica-hours at the same violation minutes once those readings were skipped)."""
    service, b, rate = policy.service, metrics.batch_efficiency, metrics.rate
    if service is None or ready <= 0 or b is None or rate is None:
        return None
    if not (math.isfinite(b) and math.isfinite(rate)) or b < 1.0 or rate <= 0:
        return None
    if backlog_requests(metrics.queue, ready, policy) > 0:
        return None
    moved = _moved_busy(policy, metrics, ready)
    per = (rate - (metrics.fallback_rate or 0.0)) / ready
    if moved is None or per <= 0 or service.batch_at(per) < MIN_MODELLED_BATCH:
        return None
    scale = 1.0 / (per / b * service.seconds(b) + moved)
    low, high = SCALE_BOUNDS
    return min(max(scale, low), high)


def _moved_busy(policy: Policy, metrics: ShardMetrics, ready: int) -> float | None:
    """The smaller model's busy seconds per second on a replica at its profile's times: 0 when it
    served nothing; None (no reading this tick) when it served requests but its profile (only
    requestsPerSecondPerReplica declared) or its mean batch is not known."""
    rate, b, fb = metrics.fallback_rate, metrics.fallback_batch, policy.fallback
    if rate is None or not math.isfinite(rate) or rate <= 0:
        return 0.0
    if fb is None or fb.service is None or b is None or not math.isfinite(b) or b < 1.0:
        return None
    return rate / ready / b * fb.service.seconds(b)


def _evidence(metrics: ShardMetrics, ready: int) -> str:
    if metrics.batch_efficiency is None or metrics.rate is None or ready <= 0:
        return "earlier observations"
    return (f"mean batch {metrics.batch_efficiency:.1f} at {metrics.rate / ready:.1f} rps"
            f" per replica")
