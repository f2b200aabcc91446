"""What every replay policy is built from: the shard's capacity, target and bounds."""

from __future__ import annotations

import math
from dataclasses import dataclass

from voxscale.decide.capacity import ServiceTime


@dataclass(frozen=True)
class PolicyContext:
    capacity_rps: float
    """Sustainable requests/s per replica at the SLO (CapacityProfile.sustainable_rps)."""
    warmup_seconds: float
    target_utilization: float = 0.7
    min_replicas: int = 1
    max_replicas: int = 500
    slo_ms: float = 500.0
    percentile: float = 0.95
    initial_replicas: int = 1
    service: ServiceTime | None = None
    """The replica's batch service time (voxscale's capacity model reads it; baselines don't)."""

    @property
    def per_replica_target(self) -> float:
        """Load one replica should carry: capacity × target utilisation (e.g. 63.8 × 0.7 = 44.7)."""
        return self.capacity_rps * self.target_utilization

    def clamp(self, replicas: float) -> int:
        return int(min(max(replicas, self.min_replicas), self.max_replicas))


def ceil_replicas(rate: float, per_replica: float) -> int:
    # 1e-9 keeps 2.0000000001 replicas from becoming 3 after a float round trip.
    return max(0, math.ceil(rate / per_replica - 1e-9))
