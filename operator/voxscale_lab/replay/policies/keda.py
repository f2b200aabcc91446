"""KEDA Prometheus scaler: an HPA on an external `AverageValue` metric from a rate query.

Faithful to https://keda.sh/docs/latest/scalers/prometheus/ and
https://keda.sh/docs/latest/reference/scaledobject-spec/: the ScaledObject creates an HPA
whose external metric is `sum(rate(requests_total[1m]))` with `threshold` = the per-replica
target (type AverageValue). The HPA (15 s sync, 10 % tolerance, default behavior: 300 s
scale-down stabilization, +max(100 %, 4 pods) per 15 s) computes, for external per-pod
metrics (replica_calculator.go GetExternalPerPodMetricReplicas):
desired = ceil(metric / threshold) unless metric / (threshold × current) is within 10 %.
Unlike the CPU path there is no unready-pod rule: `current` counts warming pods.
`pollingInterval` (30 s) drives activation (0 ↔ 1), which never happens with min ≥ 1; with
`useCachedMetrics: true` the metric is refreshed only every pollingInterval.
"""

from __future__ import annotations

import math

from voxscale_lab.replay.policies.base import PolicyContext
from voxscale_lab.replay.policies.hpa import SYNC_SECONDS, TOLERANCE, Behavior
from voxscale_lab.replay.view import View

POLLING_INTERVAL_SECONDS = 30.0
RATE_WINDOW_SECONDS = 60.0


def external_per_pod_replicas(metric: float, threshold: float, current: int) -> int:
    if current > 0 and abs(1.0 - metric / (threshold * current)) <= TOLERANCE:
        return current
    return math.ceil(metric / threshold)


class KEDA:
    name = "keda"
    interval_seconds = SYNC_SECONDS

    def __init__(self, ctx: PolicyContext, *, use_cached_metrics: bool = False) -> None:
        self.ctx = ctx
        self.cached = use_cached_metrics
        self.behavior = Behavior()
        self._metric: float | None = None
        self._polled_at = -math.inf

    def step(self, now: float, view: View) -> int:
        current = view.ready + view.warming
        if not self.cached or now - self._polled_at >= POLLING_INTERVAL_SECONDS:
            self._metric, self._polled_at = view.arrival_rate(RATE_WINDOW_SECONDS), now
        if self._metric is None:
            return self.ctx.clamp(current)
        raw = external_per_pod_replicas(self._metric, self.ctx.per_replica_target, current)
        return self.ctx.clamp(self.behavior.apply(now, self.ctx.clamp(raw), current))
