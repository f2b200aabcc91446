"""What a policy may look at during a replay: the shard's past, never its future."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from voxscale.series import FloatArray, History
from voxscale_lab.capacity import CapacityProfile

if TYPE_CHECKING:
    from voxscale_lab.replay.simulator import SimConfig
    from voxscale_lab.replay.workload import Workload


@dataclass
class RunArrays:
    """Per-second outputs, filled in as the simulation advances; cum_* have n + 1 entries."""

    served: FloatArray
    backlog: FloatArray
    ready: FloatArray
    warming: FloatArray
    requested: FloatArray
    lo_ms: FloatArray
    width_ms: FloatArray
    cum_arrivals: FloatArray
    cum_served: FloatArray
    cum_ready: FloatArray
    cum_batches: FloatArray
    """Model executions (served ÷ batch size), for Triton's batch efficiency."""

    @classmethod
    def empty(cls, workload: Workload, profile: CapacityProfile) -> RunArrays:
        n = workload.seconds
        cum = np.concatenate([[0.0], np.cumsum(workload.arrivals)])
        return cls(
            served=np.zeros(n), backlog=np.zeros(n), ready=np.zeros(n), warming=np.zeros(n),
            requested=np.zeros(n), lo_ms=np.zeros(n), width_ms=np.zeros(n),
            cum_arrivals=cum, cum_served=np.zeros(n + 1), cum_ready=np.zeros(n + 1),
            cum_batches=np.zeros(n + 1),
        )


@dataclass
class View:
    """The operator's view at `now_index` (seconds since the workload start).

    Window queries cover the last `seconds` *completed* seconds before now, as a Prometheus
    `rate(...[window])` evaluated at now would.
    """

    arrays: RunArrays
    workload: Workload
    config: SimConfig
    now_index: int = 0
    ready: int = 0
    warming: int = 0
    new_warmups: list[float] = field(default_factory=list)
    """Created→Ready durations of pods that became Ready since the policy last drained it."""
    _rates: dict[tuple[int, bool], _RateBuffer] = field(default_factory=dict, repr=False)
    """rate_history's whole steps so far, per (step, served): extended, never rebuilt."""

    def __post_init__(self) -> None:
        # The window queries read two entries of a running sum, five times a tick: through a
        # memoryview each read is a Python float (~30 ns) instead of a numpy scalar (~100 ns,
        # and its subtraction ~3x a float's). The same doubles, the same IEEE subtraction.
        a = self.arrays
        self._arrivals_sum, self._served_sum = _reader(a.cum_arrivals), _reader(a.cum_served)
        self._batches_sum, self._ready_sum = _reader(a.cum_batches), _reader(a.cum_ready)
        self._backlog = _reader(a.backlog)

    def _window(self, seconds: float) -> tuple[int, int]:
        end = self.now_index
        return max(0, end - max(1, round(seconds))), end

    def arrival_rate(self, seconds: float) -> float | None:
        """Requests arriving per second (ingress / queue-proxy count); None before any data."""
        lo, hi = self._window(seconds)
        c = self._arrivals_sum
        return None if hi <= lo else float(c[hi] - c[lo]) / (hi - lo)

    def served_rate(self, seconds: float) -> float | None:
        """Successful inferences per second (Triton's nv_inference_request_success)."""
        lo, hi = self._window(seconds)
        c = self._served_sum
        return None if hi <= lo else float(c[hi] - c[lo]) / (hi - lo)

    def batch_efficiency(self, seconds: float) -> float | None:
        """Inferences per model execution over the window (nv_inference_count ÷ exec_count)."""
        lo, hi = self._window(seconds)
        batches, served = self._batches_sum, self._served_sum
        executions = float(batches[hi] - batches[lo])
        if hi <= lo or executions <= 0:
            return None
        return float(served[hi] - served[lo]) / executions

    def utilisation(self, seconds: float, per_replica_rps: float) -> float | None:
        """Mean load of Ready replicas as a fraction of `per_replica_rps` (CPU-style)."""
        lo, hi = self._window(seconds)
        ready, cum = self._ready_sum, self._served_sum
        replica_seconds = float(ready[hi] - ready[lo])
        if hi <= lo or replica_seconds <= 0:
            return None
        served = float(cum[hi] - cum[lo])
        return served / (replica_seconds * per_replica_rps)

    def latency_ms(self, seconds: float, percentile: float) -> float | None:
        """Latency percentile of requests that arrived in the window; None without requests."""
        lo, hi = self._window(seconds)
        a = self.arrays
        weights = self.workload.arrivals[lo:hi]
        total = float(np.add.reduce(weights))  # weights.sum() without its Python wrapper
        if hi <= lo or total <= 0:
            return None
        return mixture_quantile(a.lo_ms[lo:hi], a.width_ms[lo:hi], weights, percentile, total=total)

    @property
    def queue(self) -> float:
        return float(self._backlog[self.now_index - 1]) if self.now_index else 0.0

    def rate_history(self, step: float, *, served: bool = True) -> History:
        """Observed rate at `step` seconds: the prior history, then whole steps of the run.

        Rebuilding 14 days of 1-minute rates every 10-s tick cost more than the policy's own
        maths; a buffer per (step, served) gets the steps completed since the last call
        appended, the same numbers as `np.diff(cum[::k]) / k` over the whole run.
        """
        k = max(1, round(step))
        buffer = self._rates.get((k, served))
        if buffer is None:
            buffer = self._rates[(k, served)] = _RateBuffer(self.workload, k)
        cum = self.arrays.cum_served if served else self.arrays.cum_arrivals
        return buffer.upto(cum, self.now_index // k)


def _reader(values: FloatArray) -> memoryview[float] | FloatArray:
    """`values` for element reads: a memoryview of the live buffer when it is contiguous
    float64 (the run's arrays always are), so later writes show through; else the array."""
    if values.dtype == np.float64 and values.flags.c_contiguous:
        return values.data.cast("B").cast("d")
    return values


class _RateBuffer:
    """The prior history (when its step is k) followed by the run's rate at whole k-s steps."""

    def __init__(self, workload: Workload, k: int) -> None:
        prior = workload.prior
        with_prior = len(prior) > 0 and round(prior.step) == k
        head = prior.values if with_prior else np.empty(0)
        self.start, self.step = (prior.start, prior.step) if with_prior else (workload.start, float(k))
        self.k, self.offset, self.whole = k, head.size, 0
        self.values = np.empty(head.size + workload.seconds // k)
        self.values[: head.size] = head
        self.history: History | None = None

    def upto(self, cum: FloatArray, whole: int) -> History:
        """History through step `whole` of the run (the same object while `whole` stands)."""
        if whole == self.whole and self.history is not None:
            return self.history
        k = self.k
        if whole > self.whole:
            lo = self.offset + self.whole
            self.values[lo : self.offset + whole] = np.diff(cum[self.whole * k : whole * k + 1 : k]) / k
        self.whole = whole
        # A view: later steps are written past its end, so what it shows never changes.
        self.history = History(self.start, self.step, self.values[: self.offset + whole])
        return self.history


def mixture_quantile(
    lo: FloatArray, width: FloatArray, weight: FloatArray, p: float, *, total: float | None = None
) -> float:
    """p-quantile of a weighted mixture of uniforms on [lo, lo + width]: exact, piecewise linear.

    `total` is `weight.sum()` when the caller has it. The ufuncs' own reduce and accumulate,
    not np.cumsum, ndarray.all or np.searchsorted: on the 60 seconds a policy asks about every
    tick their Python dispatch cost as much as their work (the same operations, the same bits).
    """
    if total is None:
        total = float(weight.sum())
    # One reduce says "all finite" in the usual case: an inf or NaN start makes the sum inf or
    # NaN. A non-finite sum (or a finite one overflowing) takes the exact test.
    if not math.isfinite(np.add.reduce(lo)):
        finite = np.isfinite(lo)
        if not np.logical_and.reduce(finite):
            lo, width, weight = lo[finite], width[finite], weight[finite]
            if weight.sum() < p * total:
                return float("inf")
    # Sorted breakpoints; a repeated one is harmless (equal CDF values).
    points = np.concatenate((lo, lo + width))
    order = points.argsort(kind="stable")
    points = points[order]
    # Between breakpoints the CDF is linear; its slope steps up by w/width where a uniform
    # starts and down where it ends, so the CDF at every breakpoint is a running sum: O(n log n)
    # instead of the n × 2n matrix of every uniform at every point (12 µs against 23 µs for
    # the 60 seconds a policy asks about every tick).
    rate = weight / width
    slope = np.add.accumulate(np.concatenate((rate, -rate))[order])
    cdf = np.empty(points.size)
    cdf[0] = 0.0
    np.add.accumulate(slope[:-1] * (points[1:] - points[:-1]), out=cdf[1:])
    cdf /= total
    i = int(cdf.searchsorted(p))
    # The two breakpoints around p as Python floats, read in one slice each: numpy scalars'
    # indexing and arithmetic cost ~5x a float's (the same IEEE operations, the same bits).
    near: list[float] = cdf[max(i - 1, 0) : i + 1].tolist()
    if abs(near[0] - p) < _LEVEL_TIE or abs(near[-1] - p) < _LEVEL_TIE:
        # p is (within rounding) the level of a flat stretch between two groups of seconds: the
        # quantile jumps across the gap there, so the running sum's last bits would decide which
        # side. The exact sums decide it, as they always did.
        return _dense_quantile(lo, width, weight, p, total)
    if i == 0 or i >= len(points):
        return _interpolate(points, cdf, i, p)
    ends: list[float] = points[i - 1 : i + 1].tolist()
    (x0, x1), (f0, f1) = ends, near
    return x0 + (x1 - x0) * (p - f0) / (f1 - f0) if f1 > f0 else x1


_LEVEL_TIE = 1e-9
"""A breakpoint's CDF this close to p is taken as p itself (the running sums err by ~1e-13)."""


def _dense_quantile(lo: FloatArray, width: FloatArray, weight: FloatArray, p: float, total: float) -> float:
    """The CDF of every uniform at every breakpoint at once, then summed by a matrix product."""
    points = np.sort(np.concatenate([lo, lo + width]))
    frac = np.clip((points[:, None] - lo[None, :]) / width[None, :], 0.0, 1.0)
    cdf = frac @ weight / total
    return _interpolate(points, cdf, int(np.searchsorted(cdf, p)), p)


def _interpolate(points: FloatArray, cdf: FloatArray, i: int, p: float) -> float:
    if i == 0:
        return float(points[0])
    if i >= len(points):
        return float(points[-1])
    x0, x1, f0, f1 = points[i - 1], points[i], cdf[i - 1], cdf[i]
    return float(x0 + (x1 - x0) * (p - f0) / (f1 - f0)) if f1 > f0 else float(x1)


def mixture_quantile_rows(
    lo: FloatArray, width: FloatArray, weight: FloatArray, p: float, iterations: int = 40
) -> FloatArray:
    """Row-wise `mixture_quantile` by bisection (vectorized); NaN for rows without weight."""
    total = weight.sum(axis=1)
    finite = np.isfinite(lo)
    safe_lo = np.where(finite, lo, 0.0)
    has_w = weight > 0
    low = np.where(has_w & finite, safe_lo, np.inf).min(axis=1)
    high = np.where(has_w & finite, safe_lo + width, -np.inf).max(axis=1)
    infinite_mass = np.where(finite, 0.0, weight).sum(axis=1)
    low = np.where(np.isfinite(low), low, 0.0)
    high = np.where(np.isfinite(high), high, 0.0)
    for _ in range(iterations):
        mid = (low + high) / 2
        frac = np.where(finite, np.clip((mid[:, None] - safe_lo) / width, 0.0, 1.0), 0.0)
        below = (frac * weight).sum(axis=1) >= p * total
        high = np.where(below, mid, high)
        low = np.where(below, low, mid)
    out = (low + high) / 2
    out = np.where(total - infinite_mass < p * total, np.inf, out)
    return np.where(total > 0, out, np.nan)
