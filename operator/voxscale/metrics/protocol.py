"""The MetricsSource protocol: what the control loop asks of any metrics backend, per shard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from voxscale.decide.types import ShardMetrics
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

    def __post_init__(self) -> None:
        check_value("namespace", self.namespace)
        check_value("cluster", self.cluster)
        check_value("shard", self.shard)
        check_value("model", self.model)


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

