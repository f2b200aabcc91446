"""Value types that flow into and out of decide(): observations, forecasts, policy, decisions.

All are frozen and hold plain numbers, so a decision is reproducible from its inputs alone.
"None" always means "no data" — never zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from voxscale.api import Mode, ScalerState, SpeechClusterSpec, Term, duration_seconds


@dataclass(frozen=True)
class ShardMetrics:
    """What Prometheus said about one shard at `at` (unix seconds). None = no data."""

    at: float
    rate: float | None = None
    """Successful inference requests per second, summed over the shard's pods."""
    latency_ms: float | None = None
    """The SLO percentile of request latency, in milliseconds."""
    queue: float | None = None
    """Requests waiting in Triton's queues (pending request count), summed."""
    batch_efficiency: float | None = None
    """Mean executed batch size (inferences per model execution)."""
    errors: tuple[str, ...] = ()
    """Why a value is missing (query failed, empty, NaN, stale, multi-series ...)."""

    @property
    def usable(self) -> bool:
        """Enough to decide on: a finite rate. Latency alone without a rate is not enough."""
        return self.rate is not None and math.isfinite(self.rate)


@dataclass(frozen=True)
class PodCounts:
    """The shard's pods as the Kubernetes API sees them."""

    desired: int
    """spec.replicas of the shard's Deployment (what we asked for last)."""
    ready: int = 0
    warming: int = 0
    """Scheduled and running but not yet Ready: capacity that is coming."""
    pending: int = 0
    """Not scheduled (e.g. no GPU left): not coming until capacity appears."""
    terminating: int = 0


@dataclass(frozen=True)
class Observation:
    metrics: ShardMetrics
    pods: PodCounts


@dataclass(frozen=True)
class Forecast:
    """Forecast of the request rate over [at, at + horizon_seconds]."""

    at: float
    horizon_seconds: float
    mean: float
    """Highest mean-path rate over the horizon (req/s)."""
    upper: float
    """Highest upper-bound rate over the horizon at the policy's quantile (req/s)."""
    method: str
    """Which model produced it, e.g. 'holt-winters(daily)' or 'seasonal-naive'."""


@dataclass(frozen=True)
class Policy:
    """The knobs decide() needs for one shard, flattened from the SpeechCluster spec."""

    min_replicas: int = 1
    max_replicas: int = 50
    capacity_rps: float = 20.0
    target_utilization: float = 0.7
    slo_latency_ms: float = 500.0
    interval_seconds: float = 10.0
    declared_warmup_seconds: float = 60.0
    tolerance: float = 0.1
    panic_threshold: float = 2.0
    panic_window_seconds: float = 6.0
    stable_window_seconds: float = 60.0
    scale_up_max_percent: float = 100.0
    scale_up_max_pods: int = 4
    scale_up_period_seconds: float = 15.0
    scale_down_stabilization_seconds: float = 300.0
    scale_down_max_percent: float = 50.0
    failure_threshold: int = 3
    fallback_replicas: int | None = None
    forecast_enabled: bool = True

    @classmethod
    def from_spec(cls, spec: SpeechClusterSpec, shard_name: str) -> Policy:
        shard = spec.shard(shard_name)
        low, high = spec.bounds(shard)
        s = spec.scaling
        return cls(
            min_replicas=low,
            max_replicas=high,
            capacity_rps=spec.capacity.requests_per_second_per_replica,
            target_utilization=spec.capacity.target_utilization,
            slo_latency_ms=spec.slo.latency_ms,
            interval_seconds=s.interval_seconds,
            declared_warmup_seconds=spec.model.warmup_seconds,
            tolerance=s.reactive.tolerance,
            panic_threshold=s.reactive.panic_threshold,
            panic_window_seconds=s.reactive.panic_window_seconds,
            stable_window_seconds=s.reactive.stable_window_seconds,
            scale_up_max_percent=s.scale_up.max_percent,
            scale_up_max_pods=s.scale_up.max_pods,
            scale_up_period_seconds=s.scale_up.period_seconds,
            scale_down_stabilization_seconds=s.scale_down.stabilization_seconds,
            scale_down_max_percent=s.scale_down.max_percent,
            failure_threshold=s.fallback.failure_threshold,
            fallback_replicas=s.fallback.replicas,
            forecast_enabled=s.forecast.enabled,
        )

    @property
    def per_replica_rps(self) -> float:
        """Load one replica should carry: capacity × target utilisation."""
        return self.capacity_rps * self.target_utilization


@dataclass(frozen=True)
class Decision:
    replicas: int
    mode: Mode
    term: Term
    """Which term set the replica count."""
    reasons: tuple[str, ...]
    """Human-readable, one line per step that mattered,
    e.g. 'predictive: upper 412 rps / 14 rps = 30'."""
    state: ScalerState
    horizon_seconds: float
    learned_warmup_seconds: float
    predictive: int | None = None
    reactive: int | None = None
    degraded: tuple[str, ...] = field(default=())
    """Conditions to raise: e.g. 'metrics-unavailable', 'fallback-forecast-only',
    'fallback-floor'."""


def forecast_config(spec: SpeechClusterSpec) -> dict[str, float]:
    """Forecast durations in seconds, for the forecaster and the metrics history query."""
    f = spec.scaling.forecast
    return {
        "seasonality": duration_seconds(f.seasonality),
        "history": duration_seconds(f.history),
        "resolution": duration_seconds(f.resolution),
        "refit_every": duration_seconds(f.refit_every),
        "quantile": f.quantile,
    }
