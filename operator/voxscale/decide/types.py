"""Value types that flow into and out of decide(): observations, forecasts, policy, decisions.

All are frozen and hold plain numbers, so a decision is reproducible from its inputs alone.
"None" always means "no data" — never zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from voxscale.api import ClassKind, Mode, ScalerState, SpeechClusterSpec, Term
from voxscale.decide.capacity import CapacityModel, ServiceTime

NO_FORECAST_UTILIZATION = 0.7
"""Without a forecast nothing says how far load may rise before new pods are Ready, so the
observed rate keeps HPA's default headroom (0.7); with one, the forecast's bound is that rise."""


@dataclass(frozen=True)
class ShardMetrics:
    """What Prometheus said about one shard at `at` (unix seconds). None = no data."""

    at: float
    rate: float | None = None
    """Successful inference requests per second, summed over the shard's pods, over the stable
    window (the spec's prometheus.rateWindow, 1m)."""
    panic_rate: float | None = None
    """The same rate over the panic window (Policy.panic_window_seconds): Knative's panic
    metric. A step from 100 to 300 rps shows in full here after one panic window, in a 1m
    average only after a minute (a third of it after 20 s)."""
    latency_ms: float | None = None
    """The SLO percentile of request latency, in milliseconds."""
    queue: float | None = None
    """Requests waiting in Triton's queues (pending request count), summed."""
    batch_efficiency: float | None = None
    """Mean executed batch size (inferences per model execution)."""
    fallback_rate: float | None = None
    """spec.model.fallback: the smaller model's part of `rate` (its own series; None without one).
    `batch_efficiency` stays the main model's, so online calibration must tell the two apart."""
    fallback_batch: float | None = None
    """spec.model.fallback: the smaller model's mean executed batch size."""
    errors: tuple[str, ...] = ()
    """Why a value is missing (query failed, empty, NaN, stale, multi-series ...)."""

    @property
    def usable(self) -> bool:
        """Enough to decide on: a finite rate. Latency alone without a rate is not enough."""
        return self.rate is not None and math.isfinite(self.rate)


@dataclass(frozen=True)
class PodCounts:
    """The shard's pods as the Kubernetes API sees them."""

    asked: int
    """The count decide() moves from: what voxscale last asked for (the Deployment's
    spec.replicas until it has asked anything). A hand edit of spec.replicas is not this: the
    loop keeps that apart as `ShardPods.spec_replicas`, and undoes it as drift."""
    ready: int = 0
    warming: int = 0
    """Scheduled and running but not yet Ready: capacity that is coming."""
    pending: int = 0
    """Not scheduled (e.g. no GPU left): not coming until capacity appears."""
    terminating: int = 0


@dataclass(frozen=True)
class ClassMetrics:
    """What Prometheus said about one traffic class of one shard (spec.classes). None = no data."""

    name: str
    at: float
    rate: float | None = None
    """Requests of the class arriving per second, summed over the shard's pods."""
    backlog: float | None = None
    """Requests of the class received and not yet answered."""
    oldest_seconds: float | None = None
    """Age of the class's oldest queued request."""
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Observation:
    metrics: ShardMetrics
    """With spec.classes, the Interactive class's rate, latency and queue."""
    pods: PodCounts
    classes: tuple[ClassMetrics, ...] = ()
    """spec.classes: each Batch class's backlog, oldest age and arrivals."""
    streams: float | None = None
    """spec.streaming: live streams summed over the shard's pods that report them (None = no
    data, or not streaming)."""
    fallback_loaded: bool | None = None
    """spec.model.fallback: whether the shard's workers export series for the smaller model
    (Triton exports them for loaded models only); None = unknown (no fallback, or no answer)."""


@dataclass(frozen=True)
class FallbackPolicy:
    """spec.model.fallback as decide/fallback.py needs it."""

    model: str
    capacity_rps: float
    """μ_f: what one replica sustains at the SLO serving only the smaller model."""
    max_share: float = 0.5
    hold_seconds: float = 60.0
    step_down: float = 0.1
    service: ServiceTime | None = None
    """Its batch-time profile (spec.model.fallback.serviceTime); None when only a rate is declared."""

    @classmethod
    def from_spec(cls, spec: SpeechClusterSpec) -> FallbackPolicy | None:
        fb = spec.model.fallback
        if fb is None:
            return None
        capacity, service = fb.requests_per_second_per_replica or 0.0, None
        if fb.service_time is not None:
            service = ServiceTime(
                fixed_seconds=fb.service_time.batch_fixed_ms / 1000.0,
                per_request_seconds=fb.service_time.per_request_ms / 1000.0,
                max_batch=fb.max_batch_size or spec.batching.max_batch_size,
                max_queue_delay_seconds=spec.batching.max_queue_delay_microseconds / 1e6,
            )
            capacity = service.sustainable_rps(spec.slo.latency_ms, spec.slo.quantile)
        return cls(fb.name, capacity, fb.max_share, float(fb.hold_seconds), fb.step_down, service)


@dataclass(frozen=True)
class BatchClass:
    """A Batch class as decide() plans it."""

    name: str
    deadline_seconds: float


@dataclass(frozen=True)
class ClassNeed:
    """One class's need at this tick, for status, metrics and the reasons."""

    name: str
    kind: ClassKind
    replicas: int | None
    """None = no data (and nothing known before)."""
    rate: float | None = None
    backlog: float | None = None
    oldest_seconds: float | None = None
    required_rate: float | None = None
    at_risk: bool = False
    held: bool = False
    """No data this tick: `replicas` is the last known need."""
    reasons: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()


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
    current: float | None = None
    """Mean-path rate at `at` itself: what the forecast expects to be observed now."""
    calibrated: bool = False
    """The upper bound is scaled by this forecaster's own errors at this horizon (errors.py),
    so it measures how far load really rose within a horizon: only then is it headroom."""


@dataclass(frozen=True)
class Policy:
    """The knobs decide() needs for one shard, flattened from the SpeechCluster spec."""

    min_replicas: int = 1
    max_replicas: int = 50
    capacity_rps: float = 20.0
    """μ: what one replica sustains at the SLO (measured, or derived from `service`)."""
    target_utilization: float | None = None
    """An override: plan at μ × target. None derives the headroom from the SLO (capacity.py)."""
    slo_latency_ms: float = 500.0
    slo_percentile: float = 0.95
    service: ServiceTime | None = None
    """The replica's batch service-time profile, when the spec declares one."""
    no_forecast_utilization: float = NO_FORECAST_UTILIZATION
    interval_seconds: float = 10.0
    declared_warmup_seconds: float = 60.0
    tolerance: float = 0.1
    panic_threshold: float = 2.0
    panic_window_seconds: float = 30.0
    stable_window_seconds: float = 60.0
    scale_up_max_percent: float = 100.0
    scale_up_max_pods: int = 4
    scale_up_period_seconds: float = 15.0
    scale_down_stabilization_seconds: float = 300.0
    scale_down_max_percent: float = 50.0
    failure_threshold: int = 3
    fallback_replicas: int | None = None
    forecast_enabled: bool = True
    interactive_class: str | None = None
    """spec.classes' Interactive class; None without classes."""
    batch_classes: tuple[BatchClass, ...] = ()
    """spec.classes' Batch classes; empty without classes (and then nothing changes)."""
    streams_per_replica: int | None = None
    """spec.streaming.maxConcurrentSequencesPerReplica: a replica also holds at most this many
    live streams (Triton's sequence batcher slots); None without streaming."""
    fallback: FallbackPolicy | None = None
    """spec.model.fallback; None without a smaller model (and then nothing changes)."""

    @classmethod
    def from_spec(cls, spec: SpeechClusterSpec, shard_name: str) -> Policy:
        shard = spec.shard(shard_name)
        low, high = spec.bounds(shard)
        s = spec.scaling
        service = _service_time(spec)
        percentile = spec.slo.quantile
        capacity = spec.capacity.requests_per_second_per_replica
        if service is not None:
            capacity = service.sustainable_rps(spec.slo.latency_ms, percentile)
        return cls(
            min_replicas=low,
            max_replicas=high,
            capacity_rps=capacity,
            target_utilization=spec.capacity.target_utilization,
            slo_latency_ms=spec.slo.latency_ms,
            slo_percentile=percentile,
            service=service,
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
            interactive_class=spec.interactive_class.name if spec.interactive_class else None,
            batch_classes=tuple(BatchClass(c.name, float(c.deadline_seconds))
                                for c in spec.classes or () if c.deadline_seconds is not None),
            streams_per_replica=(spec.streaming.max_concurrent_sequences_per_replica
                                 if spec.streaming is not None else None),
            fallback=FallbackPolicy.from_spec(spec),
        )

    @property
    def capacity(self) -> CapacityModel:
        """Replicas an observed rate needs at the SLO: pooled headroom, or the target override."""
        return self._model(self.target_utilization)

    @property
    def plan_capacity(self) -> CapacityModel:
        """Replicas the forecast's bound needs. Under a target override the bound is planned at
        full capacity: the target's headroom is for a rise during the warm-up, and the bound at
        the quantile already is that rise (dividing it by 0.7 as well cost Twitter 2.45× the
        oracle's replica-hours instead of 1.59×)."""
        return self._model(None if self.target_utilization is None else 1.0)

    @property
    def capacity_without_forecast(self) -> CapacityModel:
        """The observed rate alone, with no forecast beside it, keeps growth headroom."""
        return self._model(self.target_utilization or self.no_forecast_utilization)

    def _model(self, target: float | None) -> CapacityModel:
        return CapacityModel(self.capacity_rps, self.slo_latency_ms, self.slo_percentile,
                             target, self.service)


def _service_time(spec: SpeechClusterSpec) -> ServiceTime | None:
    profile = spec.capacity.service_time
    if profile is None:
        return None
    return ServiceTime(
        fixed_seconds=profile.batch_fixed_ms / 1000.0,
        per_request_seconds=profile.per_request_ms / 1000.0,
        max_batch=spec.batching.max_batch_size,
        max_queue_delay_seconds=spec.batching.max_queue_delay_microseconds / 1e6,
    )


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
    planned_rate: float | None = None
    """The rate the plan sized for (forecast upper + carried miss), req/s."""
    degraded: tuple[str, ...] = field(default=())
    """Conditions to raise: e.g. 'metrics-unavailable', 'fallback-forecast-only',
    'fallback-floor'."""
    classes: tuple[ClassNeed, ...] = field(default=())
    """spec.classes: the Interactive need, then each Batch class's; empty without classes."""
    class_problems: tuple[tuple[str, str], ...] = field(default=())
    """(reason, message) of classes in trouble: DeadlineAtRisk, ClassMetricsUnavailable."""
    fallback_share: float | None = None
    """spec.model.fallback: the share of new interactive requests for the smaller model; None
    without one."""
    fallback_problems: tuple[tuple[str, str], ...] = field(default=())
    """(reason, message): ServingSmallerModel, FallbackModelUnavailable."""
