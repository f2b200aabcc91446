"""Kubernetes HorizontalPodAutoscaler (autoscaling/v2) on a CPU-style utilisation target.

Faithful to https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/ and
pkg/controller/podautoscaler/{horizontal.go,replica_calculator.go}:

* sync every 15 s (`--horizontal-pod-autoscaler-sync-period`);
* desired = ceil(current × utilisation / target), skipped inside the 10 % tolerance;
* on scale-up, not-yet-Ready pods count as 0 % utilisation; if that flips the direction or
  lands inside the tolerance, hold (`replica_calculator.go`);
* default behavior: scale-down stabilization window 300 s (the highest recommendation of the
  last 5 minutes wins); scale-up limited to max(+100 %, +4 pods) per 15 s; scale-down limited
  to −100 % per 15 s (no limit in practice).

Utilisation here = requests served by Ready replicas / (Ready × sustainable req/s): the load a
GPU pod's busy time would report, capped where the replica saturates.
"""

from __future__ import annotations

import math
from collections import deque

from voxscale_lab.replay.policies.base import PolicyContext
from voxscale_lab.replay.view import View

TOLERANCE = 0.1
SYNC_SECONDS = 15.0
DOWN_STABILIZATION_SECONDS = 300.0
UP_PERCENT, UP_PODS, UP_PERIOD_SECONDS = 100.0, 4, 15.0


class Behavior:
    """HPA v2 `behavior` defaults: stabilization and rate limits (horizontal.go)."""

    def __init__(self, down_window: float = DOWN_STABILIZATION_SECONDS) -> None:
        self.down_window = down_window
        self.recommendations: deque[tuple[float, int]] = deque()
        self.scale_ups: deque[tuple[float, int]] = deque()

    def apply(self, now: float, raw: int, current: int) -> int:
        """Stabilize `raw` (scale-down takes the window's max), then limit the scale-up rate."""
        # HPA keeps recommendations strictly newer than now − window (`After(cutoff)`).
        while self.recommendations and self.recommendations[0][0] <= now - self.down_window:
            self.recommendations.popleft()
        down = max([raw] + [r for _, r in self.recommendations])
        self.recommendations.append((now, raw))
        # Scale-up window is 0 s, so the up-recommendation is `raw` itself.
        desired = min(max(current, raw), down)
        return self._limit_up(now, desired, current)

    def _limit_up(self, now: float, desired: int, current: int) -> int:
        while self.scale_ups and self.scale_ups[0][0] <= now - UP_PERIOD_SECONDS:
            self.scale_ups.popleft()
        period_start = current - sum(n for _, n in self.scale_ups)
        limit = max(math.ceil(period_start * (1 + UP_PERCENT / 100)), period_start + UP_PODS)
        desired = min(desired, max(limit, current))
        if desired > current:
            self.scale_ups.append((now, desired - current))
        return desired


def resource_replicas(utilisation: float, target: float, ready: int, unready: int) -> int:
    """replica_calculator.go GetResourceReplicas, with unready pods counted as 0 on scale-up."""
    current = ready + unready
    ratio = utilisation / target
    if unready == 0 or ratio <= 1.0:
        # On scale-down unready pods are left out, which is what `ready` alone does.
        return current if abs(1.0 - ratio) <= TOLERANCE else math.ceil(ratio * ready)
    new_ratio = utilisation * ready / (target * current)
    if abs(1.0 - new_ratio) <= TOLERANCE or new_ratio < 1.0:
        return current
    new = math.ceil(new_ratio * current)
    return current if new < current else new


class HPA:
    name = "hpa"
    interval_seconds = SYNC_SECONDS

    def __init__(self, ctx: PolicyContext, metric_window: float = SYNC_SECONDS) -> None:
        self.ctx = ctx
        self.metric_window = metric_window
        self.behavior = Behavior()

    def step(self, now: float, view: View) -> int:
        current = view.ready + view.warming
        util = view.utilisation(self.metric_window, self.ctx.capacity_rps)
        if util is None or view.ready == 0:
            return self.ctx.clamp(current)  # no metrics: the HPA does not act
        raw = resource_replicas(util, self.ctx.target_utilization, view.ready, view.warming)
        return self.ctx.clamp(self.behavior.apply(now, self.ctx.clamp(raw), current))
