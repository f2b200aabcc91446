"""The MetricsSource protocol: what the control loop asks of any metrics backend, per shard."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from voxscale.decide.types import ClassMetrics, ShardMetrics
from voxscale.metrics.promql import check_value
from voxscale.series import History


@dataclass(frozen=True)
class ShardSelector:
    """One shard's series: the SpeechCluster's namespace and name, the shard, the Triton model.

    Every value is checked against the Kubernetes name / label-value charset on construction,
    so a selector that exists can always be turned into a safe PromQL matcher.
    """

    namespace: str
    cluster: str
    shard: str
    model: str
    traffic_class: str | None = None
    """spec.classes: the Interactive class, whose series observe() and history() read instead
    of Triton's shard-wide ones (which count batch requests too)."""

    def __post_init__(self) -> None:
        check_value("namespace", self.namespace)
        check_value("cluster", self.cluster)
        check_value("shard", self.shard)
        check_value("model", self.model)
        if self.traffic_class is not None:
            check_value("class", self.traffic_class)


@dataclass(frozen=True)
class PodStreams:
    """Live streams per pod of one shard at `at` (unix seconds), from the worker's gauge.

    A pod absent from `by_pod` has no data (no series, NaN, stale or a failed query): it is
    unknown, never 0. `errors` says why pods or the whole answer are missing."""

    at: float
    by_pod: Mapping[str, float] = field(default_factory=dict)
    errors: tuple[str, ...] = ()


@runtime_checkable
class MetricsSource(Protocol):
    """Blocking, never raising for backend failures: a failed read is "no data" plus a reason.

    The kopf loop is asyncio, so it calls these through `asyncio.to_thread` (loop.py)."""

    def observe(self, selector: ShardSelector, now: float) -> ShardMetrics:
        """The shard's rate over the stable and the panic window, latency percentile, queue and
        batch efficiency at `now`."""
        ...

    def history(self, selector: ShardSelector, start: float, end: float, step: float) -> History:
        """Request rate on the grid start, start+step, ... <= end; NaN where there is no data."""
        ...

    def pod_streams(self, selector: ShardSelector, now: float) -> PodStreams:
        """Live streams on each of the shard's pods at `now` (spec.streaming)."""
        ...

    def session_seconds(self, selector: ShardSelector, now: float) -> float | None:
        """The p99 length in seconds of the shard's recently closed streams; None = no data."""
        ...

    def class_metrics(self, selector: ShardSelector, traffic_class: str, now: float) -> ClassMetrics:
        """One Batch class of the shard at `now` (spec.classes): backlog, the age of its oldest
        queued request and its arrival rate; each None when there is no data."""
        ...

