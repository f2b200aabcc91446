"""Simulate one shard second by second under a scaling policy, seeing only what the operator sees.

Model (documented once, used everywhere):

* Arrivals `A[t]` requests in second t. Replicas requested by the policy are warming for
  `warmup_seconds` W and then Ready; a scale-down removes replicas at once, warming first.
* Each Ready replica serves up to `profile.max_rps` requests per second (full batches). The
  shard is a fluid FIFO queue: backlog Q carries over, `Q' = max(0, Q + A − R·μ)`. With
  Poisson arrivals and integer capacity this is exactly the M/D/c chain observed every second.
* A request arriving in second t first waits for the backlog ahead, `Q/(R·μ)` seconds, then
  sees the batching latency of the load it joins: uniform on [s(b), 2·s(b)] with b the
  batch size at that load (see `CapacityProfile`). So a second's latency is uniform on
  `[lo, lo + width]`, lo = wait + s, width = s; percentiles over a window are percentiles of
  that arrival-weighted mixture.
* Policies are called every `policy.interval_seconds`, at t = 0, interval, 2·interval, …
  with a `View` of the past only (the oracle is handed the future at construction).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from voxscale.series import FloatArray
from voxscale_lab.capacity import CapacityProfile
from voxscale_lab.replay.view import RunArrays, View, mixture_quantile_rows
from voxscale_lab.replay.workload import Workload


class ScalingPolicy(Protocol):
    """A replay policy: every `interval_seconds`, how many replicas the shard should have."""

    name: str
    interval_seconds: float

    def step(self, now: float, view: View) -> int: ...


@dataclass(frozen=True)
class SimConfig:
    profile: CapacityProfile
    warmup_seconds: float
    min_replicas: int = 1
    max_replicas: int = 500
    initial_replicas: int = 1
    """Ready at t = 0 (a shard that was already running)."""


@dataclass(frozen=True)
class Run:
    """Everything a report needs, per second."""

    policy: str
    workload: str
    start: float
    config: SimConfig
    arrivals: FloatArray
    served: FloatArray
    backlog: FloatArray
    ready: FloatArray
    warming: FloatArray
    requested: FloatArray
    lo_ms: FloatArray
    width_ms: FloatArray
    scale_events: int

    @property
    def seconds(self) -> int:
        return int(self.arrivals.shape[0])

    def minute_latency_ms(self, percentile: float) -> FloatArray:
        """Latency percentile of each whole minute; NaN for a minute without requests."""
        m = self.seconds // 60
        shape = (m, 60)
        return mixture_quantile_rows(
            self.lo_ms[: m * 60].reshape(shape),
            self.width_ms[: m * 60].reshape(shape),
            self.arrivals[: m * 60].reshape(shape),
            percentile,
        )


def simulate(policy: ScalingPolicy, workload: Workload, config: SimConfig) -> Run:
    """Run `policy` over `workload`: one pass, 1-second steps."""
    n = workload.seconds
    arrays = RunArrays.empty(workload, config.profile)
    view = View(arrays, workload, config)
    prof = config.profile
    mu, a, c, big_b = prof.max_rps, prof.a_seconds, prof.c_seconds, float(prof.max_batch)
    warm = float(config.warmup_seconds)
    tick = max(1, round(policy.interval_seconds))
    ready, backlog = config.initial_replicas, 0.0
    warming: deque[float] = deque()  # ready-at times, oldest first
    requested, events = ready, 0
    arr = workload.arrivals
    # Written through memoryviews of the same float64 buffers (the View reads the arrays): a
    # memoryview store is ~20 ns against ~65 ns for ndarray.__setitem__, and ten a second are
    # 12 million stores in 14 days. Ints are stored as the same doubles either way.
    out_served, out_q, out_ready, out_warm = _stores(
        arrays.served, arrays.backlog, arrays.ready, arrays.warming)
    out_req, out_lo, out_w = _stores(arrays.requested, arrays.lo_ms, arrays.width_ms)
    cum_served, cum_batches, cum_ready = _stores(arrays.cum_served, arrays.cum_batches, arrays.cum_ready)
    # Python floats, not numpy scalars, through the per-second arithmetic (a numpy scalar op
    # costs ~3× a float's): the same IEEE operations in the same order, so the same numbers,
    # and the running sums are the cum arrays' own additions (cum[t + 1] = cum[t] + x).
    arrivals = arr.tolist()
    total_served = total_batches = total_ready = 0.0
    for t in range(n):
        if t % tick == 0:
            view.now_index = t
            view.ready, view.warming = ready, len(warming)
            target = min(max(int(policy.step(workload.start + t, view)), config.min_replicas),
                         config.max_replicas)
            if target != requested:
                events += 1
                ready = _apply(target, ready, warming, t + warm)
                requested = target
        while warming and warming[0] <= t:
            warming.popleft()
            ready += 1
            view.new_warmups.append(warm)
        cap = ready * mu
        total = backlog + arrivals[t]
        if cap > 0:
            served = total if total < cap else cap
            per = served / ready
            b = per * a / (1.0 - per * c) if per * c < 1.0 else big_b
            b = 1.0 if b < 1.0 else (big_b if b > big_b else b)
            s = 1000.0 * (a + c * b)
            lo = 1000.0 * backlog / cap + s
        else:
            served, s, lo, b = 0.0, 1000.0 * (a + c), math.inf, 1.0
        backlog = total - served
        out_served[t], out_q[t], out_ready[t], out_warm[t] = served, backlog, ready, len(warming)
        out_req[t], out_lo[t], out_w[t] = requested, lo, s
        total_served += served
        total_batches += served / b if cap > 0 else 0.0
        total_ready += ready
        cum_served[t + 1], cum_batches[t + 1], cum_ready[t + 1] = total_served, total_batches, total_ready
    return Run(policy.name, workload.name, workload.start, config, arr, arrays.served,
               arrays.backlog, arrays.ready, arrays.warming, arrays.requested, arrays.lo_ms,
               arrays.width_ms, events)


def _stores(*arrays: FloatArray) -> list[memoryview[float]]:
    """Writable views of float64 arrays as C doubles (cast raises on a non-contiguous one)."""
    views = [a.data.cast("B").cast("d") for a in arrays]
    if any(a.dtype != np.float64 or v.readonly for a, v in zip(arrays, views, strict=True)):
        raise ValueError("the run's arrays must be writable float64")
    return views


def _apply(target: int, ready: int, warming: deque[float], ready_at: float) -> int:
    """Add warming replicas, or remove replicas warming-first (newest first); returns ready."""
    current = ready + len(warming)
    if target > current:
        warming.extend([ready_at] * (target - current))
        return ready
    extra = current - target
    while extra and warming:
        warming.pop()
        extra -= 1
    return ready - extra
