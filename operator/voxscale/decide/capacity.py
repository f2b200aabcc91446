"""Capacity from the SLO: how many batched Triton replicas a request rate needs, pooled over n.

Two pieces, both pure:

* `ServiceTime`, one replica's batch service time `a + c·b` (a batch of b takes that long, up
  to the max batch B) and the latency percentile it gives at a steady load. At λ req/s a busy
  replica runs batches back to back, each collecting the arrivals of the one before:
  b = λ·s(b) ⇒ b = λa / (1 − λc). A request waits for the batch in flight (a uniform share of
  s) and rides the next, so latency is uniform on [s, 2s] and its p-th percentile is
  (1 + p)·s(b), plus Triton's max queue delay when the batcher waits to fill a batch.
  Worked example, a = 60 ms, c = 12 ms, B = 32, p95 ≤ 500 ms: s ≤ 0.5 / 1.95 = 256 ms, so
  b = 16.4 and one replica sustains 16.4 / 0.256 = 64 req/s at the SLO (89 % of its 72 req/s
  full-batch throughput).

* `CapacityModel`, the shard: n replicas behind one Service share the arrivals, and a Poisson
  stream of λ req/s carries λτ ± √(λτ) requests in any window of τ seconds. A request's latency
  budget is the SLO, so the bursts that matter are those of τ = SLO seconds; the fewest n with
  n·μ·τ ≥ λτ + z_p·√(λτ) keep the p-th percentile window within the replicas' SLO rate μ.
  That is square-root staffing: n = λ/μ + z_p·√(λ/τ)/μ. The relative headroom shrinks as
  1/√λ, so a big shard runs hotter than a small one at the same SLO: at μ = 64, p95, 500 ms,
  2,560 req/s needs (2,560 + 118) / 64 = 41.8 → 42 replicas (95 % utilised) while 128 req/s
  needs (128 + 26) / 64 = 2.4 → 3 (67 %). A fixed target utilisation pays the small shard's
  headroom on every shard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from statistics import NormalDist

from voxscale.decide.units import ceil_ratio

_Z = NormalDist()


@cache
def _z(percentile: float) -> float:
    """The one-sided normal quantile, once per percentile: inv_cdf is ~1 µs of Python, and
    decide() asked for the same one 7 times a tick."""
    return _Z.inv_cdf(percentile)


@dataclass(frozen=True)
class ServiceTime:
    """One replica's batch service time s(b) = a + c·b seconds, b ≤ max_batch."""

    fixed_seconds: float
    """a: the cost of one model execution, whatever its batch."""
    per_request_seconds: float
    """c: what one more request in a batch adds."""
    max_batch: int
    max_queue_delay_seconds: float = 0.0
    """Triton's dynamic batcher may hold a request this long to fill a batch."""

    def seconds(self, batch: float) -> float:
        return self.fixed_seconds + self.per_request_seconds * batch

    @property
    def max_rps(self) -> float:
        """Throughput with full batches: B / s(B)."""
        return self.max_batch / self.seconds(self.max_batch)

    def batch_at(self, rps: float) -> float:
        """Steady-state batch size at `rps` per replica, between 1 and max_batch."""
        lam = min(max(rps, 0.0), self.max_rps)
        denominator = 1.0 - lam * self.per_request_seconds
        b = lam * self.fixed_seconds / denominator if denominator > 0 else float(self.max_batch)
        return min(max(b, 1.0), float(self.max_batch))

    def latency_ms(self, rps: float, percentile: float) -> float:
        """Latency percentile (ms) of one replica carrying `rps` without a backlog."""
        wait = self.max_queue_delay_seconds
        return 1000.0 * ((1.0 + percentile) * self.seconds(self.batch_at(rps)) + wait)

    def sustainable_rps(self, slo_ms: float, percentile: float) -> float:
        """Highest per-replica rate whose latency percentile stays within `slo_ms` (0 if none)."""
        budget = (slo_ms / 1000.0 - self.max_queue_delay_seconds) / (1.0 + percentile)
        if budget < self.seconds(1.0):
            return 0.0
        if self.per_request_seconds > 0:
            b = min((budget - self.fixed_seconds) / self.per_request_seconds, self.max_batch)
        else:
            b = float(self.max_batch)
        b = max(b, 1.0)
        return min(b / self.seconds(b), self.max_rps)


@dataclass(frozen=True)
class CapacityModel:
    """Replicas a rate needs at the SLO; `target_utilization` set means the fixed-target rule."""

    per_replica_rps: float
    """μ: what one replica sustains with its latency percentile at the SLO."""
    slo_ms: float
    percentile: float
    target_utilization: float | None = None
    service: ServiceTime | None = None

    @property
    def burst_window_seconds(self) -> float:
        return self.slo_ms / 1000.0

    def headroom_rps(self, rate: float) -> float:
        """Arrivals above the mean in the p-th percentile SLO-long window: z·√(λ/τ)."""
        if rate <= 0 or self.target_utilization is not None:
            return 0.0
        return _z(self.percentile) * math.sqrt(rate / self.burst_window_seconds)

    def replicas_for(self, rate: float) -> int:
        """The fewest replicas that hold the SLO at `rate` req/s (0 load needs 0)."""
        if rate <= 0:
            return 0
        if self.target_utilization is not None:
            return ceil_ratio(rate, self.per_replica_rps * self.target_utilization)
        return ceil_ratio(rate + self.headroom_rps(rate), self.per_replica_rps)

    def rate_for(self, replicas: int) -> float:
        """The highest rate `replicas` hold at the SLO: the inverse of replicas_for."""
        if replicas <= 0:
            return 0.0
        cap = replicas * self.per_replica_rps
        if self.target_utilization is not None:
            return cap * self.target_utilization
        # λ + k·√λ = cap with k = z/√τ: a quadratic in √λ.
        k = _z(self.percentile) / math.sqrt(self.burst_window_seconds)
        root = (-k + math.sqrt(k * k + 4.0 * cap)) / 2.0
        return root * root

    def predicted_latency_ms(self, rate: float, replicas: int) -> float | None:
        """The SLO percentile at `rate` over `replicas`: the p-th percentile window's share per
        replica through the batch latency model; inf past saturation; None without a profile."""
        if self.service is None:
            return None
        if replicas <= 0:
            return math.inf if rate > 0 else None
        per = (rate + self.headroom_rps(rate)) / replicas
        if per > self.service.max_rps:
            return math.inf
        return self.service.latency_ms(per, self.percentile)

    def describe(self, rate: float, replicas: int) -> str:
        """'62.0 rps/replica at p95 ≤ 500 ms, +9.3 rps burst headroom' for reasons."""
        if self.target_utilization is not None:
            return (f"{self.per_replica_rps:.1f} rps/replica × target"
                    f" {self.target_utilization:g}")
        line = (f"{self.per_replica_rps:.1f} rps/replica at p{self.percentile * 100:g}"
                f" ≤ {self.slo_ms:g} ms + {self.headroom_rps(rate):.1f} rps burst headroom")
        latency = self.predicted_latency_ms(rate, replicas)
        if latency is not None and math.isfinite(latency):
            line += f", predicted p{self.percentile * 100:g} {latency:.0f} ms"
        return line
