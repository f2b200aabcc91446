"""Knative Pod Autoscaler (KPA) on requests per second.

Faithful to https://knative.dev/docs/serving/autoscaling/kpa-specific/ and
pkg/autoscaler/scaling/autoscaler.go (`Scale`), with the documented defaults:
tick 2 s; stable window 60 s; panic window 10 % of it = 6 s; target utilisation 70 %;
panic threshold 200 % (enter panic when desiredPanicPods / readyPods ≥ 2.0); while panicking
the count never decreases and panic ends one stable window after the last over-threshold
tick; max scale-up rate 1000 and max scale-down rate 2 per decision, both relative to
Ready pods: desired ∈ [floor(ready / 2), ceil(1000 × ready)]. The metric is request
arrivals as the queue-proxy counts them, averaged per window.
"""

from __future__ import annotations

import math

from voxscale_lab.replay.policies.base import PolicyContext
from voxscale_lab.replay.view import View

TICK_SECONDS = 2.0
STABLE_WINDOW_SECONDS = 60.0
PANIC_WINDOW_SECONDS = 6.0
PANIC_THRESHOLD = 2.0
MAX_SCALE_UP_RATE = 1000.0
MAX_SCALE_DOWN_RATE = 2.0


class KPA:
    name = "kpa"
    interval_seconds = TICK_SECONDS

    def __init__(self, ctx: PolicyContext) -> None:
        self.ctx = ctx
        self.panic_time: float | None = None
        self.max_panic_pods = 0

    def step(self, now: float, view: View) -> int:
        stable = view.arrival_rate(STABLE_WINDOW_SECONDS)
        panic = view.arrival_rate(PANIC_WINDOW_SECONDS)
        if stable is None or panic is None:
            return self.ctx.clamp(view.ready + view.warming)
        return self.ctx.clamp(self.scale(now, stable, panic, view.ready))

    def scale(self, now: float, stable: float, panic: float, ready_pods: int) -> int:
        """autoscaler.go Scale(): observed window averages → desired pod count."""
        target = self.ctx.per_replica_target
        ready = max(1.0, float(ready_pods))
        max_up = math.ceil(MAX_SCALE_UP_RATE * ready)
        max_down = math.floor(ready / MAX_SCALE_DOWN_RATE)
        dspc = math.ceil(stable / target)
        dppc = math.ceil(panic / target)
        desired_stable = int(min(max(dspc, max_down), max_up))
        desired_panic = int(min(max(dppc, max_down), max_up))
        over = dppc / ready >= PANIC_THRESHOLD
        if over:
            self.panic_time = now
        elif self.panic_time is not None and now > self.panic_time + STABLE_WINDOW_SECONDS:
            self.panic_time, self.max_panic_pods = None, 0
        if self.panic_time is None:
            return desired_stable
        # Panicking: scale on the panic window and never scale down.
        self.max_panic_pods = max(self.max_panic_pods, desired_panic)
        return self.max_panic_pods
