"""The SpeechCluster API (spec and status) as pydantic models: the one source of truth.

The CRD in `crds/` is generated from these models (`voxscale crd`), so every bound, default,
enum and CEL rule lives here, next to the field it constrains.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from voxscale import names

# DNS-1035 label: what Kubernetes accepts as a Service name. Shard objects are named
# `<cluster>-<shard>`, so a shard name is kept short enough that the pair stays ≤ 63.
DNS_LABEL = rf"^{names.DNS_1035_LABEL_PATTERN}$"
# A Kubernetes label value (region, zone and language values become labels and PromQL matchers).
LABEL_VALUE = rf"^({names.LABEL_VALUE_PATTERN})?$"
# Go-style durations limited to whole units, e.g. "90s", "15m", "24h", "7d", "1h30m".
DURATION = r"^([0-9]{1,6}(s|m|h|d))+$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"

ShortName = Annotated[str, Field(min_length=1, max_length=20, pattern=DNS_LABEL)]
LabelValue = Annotated[str, Field(min_length=1, max_length=names.NAME_MAX_LENGTH, pattern=LABEL_VALUE)]
Duration = Annotated[str, Field(min_length=2, max_length=16, pattern=DURATION)]
Text = Annotated[str, Field(max_length=1024)]

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """'1h30m' -> 5400. The pattern above has already rejected anything else."""
    return sum(int(n) * _DURATION_UNITS[u] for n, u in re.findall(r"([0-9]+)([smhd])", text))


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error, not a surprise."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


# ---------------------------------------------------------------------------- spec: model


class ModelSpec(_Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.fallback) || self.fallback.name != self.name",
                    "message": "model.fallback.name must differ from model.name",
                }
            ]
        }
    )

    name: Annotated[str, Field(min_length=1, max_length=names.NAME_MAX_LENGTH,
                               pattern=rf"^{names.MODEL_NAME_PATTERN}$")]
    """Triton model name, as in the model repository and in Triton's metric labels."""
    repository: Annotated[str, Field(min_length=1, max_length=512)] = "/models"
    """Model repository path (or s3://, gs://, as://) that Triton loads from."""
    version: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    backend: Annotated[str, Field(max_length=64, pattern=r"^[a-z][a-z0-9_]*$")] | None = None
    """Triton backend (python, onnxruntime, tensorrt, pytorch ...); unset lets Triton infer it."""
    warmup_seconds: Annotated[int, Field(ge=0, le=3600)] = 60
    """Declared time from pod start to model loaded; the learned warm-up never goes below it."""
    fallback: FallbackModelSpec | None = None
    """A smaller model loaded beside this one in the same Triton: when interactive demand
    exceeds what maxReplicas or the GPUs available can serve at the SLO, a bounded share of new
    interactive requests goes to it (docs/fallback.md). Unset: no fallback."""

    @model_validator(mode="after")
    def _fallback_differs(self) -> ModelSpec:
        if self.fallback is not None and self.fallback.name == self.name:
            raise ValueError(f"model.fallback.name {self.name!r} is the main model's name")
        return self


def _fallback_schema(schema: JsonDict) -> None:
    """The CEL rule, and descriptions on one line each (`kubectl explain` keeps line breaks)."""
    schema["x-kubernetes-validations"] = [
        {
            "rule": "has(self.requestsPerSecondPerReplica) || has(self.serviceTime)",
            "message": "model.fallback needs its capacity: requestsPerSecondPerReplica or serviceTime",
        }
    ]
    properties = schema.get("properties")
    for node in [schema, *(properties.values() if isinstance(properties, dict) else [])]:
        if isinstance(node, dict) and isinstance(node.get("description"), str):
            node["description"] = " ".join(str(node["description"]).split())


class FallbackModelSpec(_Model):
    """The smaller model of spec.model.fallback: its name, capacity, and how far and how long
    traffic may move to it (docs/fallback.md)."""

    model_config = ConfigDict(use_attribute_docstrings=True, json_schema_extra=_fallback_schema)

    name: Annotated[str, Field(min_length=1, max_length=names.NAME_MAX_LENGTH,
                               pattern=rf"^{names.MODEL_NAME_PATTERN}$")]
    """Triton model name of the smaller model, in the same model repository as the main one."""
    version: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    max_batch_size: Annotated[int, Field(ge=1, le=1024)] | None = None
    """Its config.pbtxt max_batch_size; unset, batching.maxBatchSize."""
    requests_per_second_per_replica: Annotated[float, Field(gt=0, le=1_000_000)] | None = None
    """What one replica sustains at the SLO serving only this model. Ignored when serviceTime
    is set."""
    service_time: ServiceTimeSpec | None = None
    """Its batch service time: a batch of b takes batchFixedMs + perRequestMs·b."""
    max_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    """The most of the interactive requests ever sent to it: the bound on the accuracy cost."""
    hold_seconds: Annotated[int, Field(ge=0, le=3600)] = 60
    """The share falls only after the Ready capacity has needed less of it for this long
    (never less than two ticks)."""
    step_down: Annotated[float, Field(gt=0, le=1)] = 0.1
    """After the hold, the share falls by at most this much per tick."""

    @model_validator(mode="after")
    def _has_capacity(self) -> FallbackModelSpec:
        if self.requests_per_second_per_replica is None and self.service_time is None:
            raise ValueError("model.fallback needs its capacity: requestsPerSecondPerReplica or serviceTime")
        return self


# ---------------------------------------------------------------------------- spec: worker


class Toleration(_Model):
    key: Annotated[str, Field(max_length=253)] | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: Annotated[str, Field(max_length=names.NAME_MAX_LENGTH)] | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: Annotated[int, Field(ge=0)] | None = None


class Resources(_Model):
    requests: Annotated[
        dict[Annotated[str, Field(max_length=253)], Annotated[str, Field(max_length=32, pattern=QUANTITY)]],
        Field(max_length=16),
    ] = Field(default_factory=lambda: {"cpu": "4", "memory": "16Gi"})
    limits: Annotated[
        dict[Annotated[str, Field(max_length=253)], Annotated[str, Field(max_length=32, pattern=QUANTITY)]],
        Field(max_length=16),
    ] = Field(default_factory=lambda: {"memory": "16Gi"})


class WorkerSpec(_Model):
    image: Annotated[str, Field(min_length=1, max_length=512)] = "nvcr.io/nvidia/tritonserver:24.10-py3"
    gpus: Annotated[int, Field(ge=0, le=16)] = 1
    resources: Resources = Field(default_factory=Resources)
    node_selector: Annotated[
        dict[Annotated[str, Field(max_length=253)], Annotated[str, Field(max_length=names.NAME_MAX_LENGTH)]],
        Field(max_length=16),
    ] = Field(default_factory=dict)
    tolerations: Annotated[list[Toleration], Field(max_length=16)] = Field(default_factory=list)
    priority_class_name: Annotated[str, Field(max_length=253, pattern=DNS_LABEL)] | None = None


# ---------------------------------------------------------------------------- spec: batching


class BatchingSpec(_Model):
    """Triton dynamic batching, rendered into the model's config.pbtxt."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.preferredBatchSizes) || "
                    "self.preferredBatchSizes.all(b, b <= self.maxBatchSize)",
                    "message": "every preferredBatchSizes entry must be <= maxBatchSize",
                }
            ]
        }
    )

    max_batch_size: Annotated[int, Field(ge=1, le=1024)] = 32
    preferred_batch_sizes: Annotated[list[Annotated[int, Field(ge=1, le=1024)]], Field(max_length=8)] = Field(
        default_factory=lambda: [8, 16]
    )
    max_queue_delay_microseconds: Annotated[int, Field(ge=0, le=10_000_000)] = 5000
    instance_count: Annotated[int, Field(ge=1, le=16)] = 1
    queue_timeout_microseconds: Annotated[int, Field(ge=0, le=600_000_000)] = 0
    """0 = requests wait in Triton's queue without a deadline."""

    @model_validator(mode="after")
    def _preferred_fit_max(self) -> BatchingSpec:
        too_big = [b for b in self.preferred_batch_sizes if b > self.max_batch_size]
        if too_big:
            raise ValueError(f"preferredBatchSizes {too_big} exceed maxBatchSize {self.max_batch_size}")
        return self


# ---------------------------------------------------------------------------- spec: streaming


def _streaming_schema(schema: JsonDict) -> None:
    """The CEL rule, and descriptions on one line each (`kubectl explain` keeps line breaks)."""
    schema["x-kubernetes-validations"] = [
        {
            "rule": "self.sessionIdleTimeoutSeconds <= self.maxSessionSeconds",
            "message": "sessionIdleTimeoutSeconds must be <= maxSessionSeconds",
        }
    ]
    properties = schema.get("properties")
    for node in [schema, *(properties.values() if isinstance(properties, dict) else [])]:
        if isinstance(node, dict) and isinstance(node.get("description"), str):
            node["description"] = " ".join(str(node["description"]).split())


class StreamingSpec(_Model):
    """Stateful audio streams: Triton's sequence batcher instead of the dynamic batcher.

    Each stream is a sequence (one correlation ID, a START on its first chunk and an END on its
    last) whose state lives on one worker between chunks. Absent, every request stands alone."""

    # The field docstrings below become the CRD's descriptions of these fields.
    model_config = ConfigDict(use_attribute_docstrings=True, json_schema_extra=_streaming_schema)

    max_concurrent_sequences_per_replica: Annotated[int, Field(ge=1, le=4096)]
    """Streams one replica serves at once (Triton's max_candidate_sequences): a replica's
    capacity in streams, as requestsPerSecondPerReplica is its capacity in requests. Streams
    beyond it wait in Triton's backlog until one ends. No default: it depends on the model
    and the GPU's memory."""
    session_idle_timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 10
    """A stream with no chunk for this long is dropped (Triton's
    max_sequence_idle_microseconds) and its state freed; its next chunk must start anew."""
    max_session_seconds: Annotated[int, Field(ge=1, le=86_400)] = 3600
    """The longest a stream may live; the worker ends it after this, idle or not."""

    @model_validator(mode="after")
    def _idle_within_session(self) -> StreamingSpec:
        if self.session_idle_timeout_seconds > self.max_session_seconds:
            raise ValueError(
                f"sessionIdleTimeoutSeconds {self.session_idle_timeout_seconds} > maxSessionSeconds"
                f" {self.max_session_seconds}: a stream could idle longer than it may live"
            )
        return self


# ---------------------------------------------------------------------------- spec: slo, capacity

Percentile = Literal["p50", "p90", "p95", "p99"]


class SLOSpec(_Model):
    percentile: Percentile = "p95"
    latency_ms: Annotated[float, Field(gt=0, le=600_000)] = 500.0

    @property
    def quantile(self) -> float:
        """'p95' -> 0.95 (the PromQL histogram_quantile argument)."""
        return int(self.percentile[1:]) / 100


class ServiceTimeSpec(_Model):
    """A replica's measured batch service time: a batch of b takes batchFixedMs + perRequestMs·b."""

    batch_fixed_ms: Annotated[float, Field(gt=0, le=600_000)]
    per_request_ms: Annotated[float, Field(ge=0, le=600_000)]


class CapacitySpec(_Model):
    requests_per_second_per_replica: Annotated[float, Field(gt=0, le=1_000_000)] = 20.0
    """What one replica sustains at the SLO (from the worker's measured capacity profile).
    Ignored when serviceTime is set: the rate is then derived from it, the batching and the SLO."""
    service_time: ServiceTimeSpec | None = None
    """The worker's batch service-time profile (bench/worker_capacity.py measures it)."""
    target_utilization: Annotated[float, Field(gt=0, le=1)] | None = None
    """An override: plan every shard at this share of its SLO capacity. Unset (the default),
    the headroom is derived from the SLO and shrinks as a shard grows (square-root staffing)."""


# ---------------------------------------------------------------------------- spec: scaling


class ForecastSpec(_Model):
    enabled: bool = True
    method: Literal["holt-winters", "seasonal-naive"] = "holt-winters"
    seasonality: Duration = "24h"
    """The daily period; weekly seasonality (7x) is added where the history covers two weeks."""
    history: Duration = "7d"
    resolution: Duration = "1m"
    """Step of the history series the model is fitted on."""
    refit_every: Duration = "1h"
    quantile: Annotated[float, Field(ge=0.5, le=0.999)] = 0.95
    """Upper bound of the prediction interval the plan sizes for. 0.95 was chosen leave-one-
    trace-out over the bundled traces (bench/policies.py): without each trace, the cheapest
    setting that held the others to 1 % violation minutes (or near their best) was 0.95."""


class ReactiveSpec(_Model):
    tolerance: Annotated[float, Field(ge=0, le=1)] = 0.1
    panic_threshold: Annotated[float, Field(ge=1, le=100)] = 2.0
    panic_window_seconds: Annotated[int, Field(ge=1, le=3600)] = 30
    """Range of the short-window request rate (Knative's panic window): a burst inside it asks
    for replicas at once instead of waiting for the prometheus.rateWindow average, and panics
    at panicThreshold × the ready pods. Prometheus needs two samples inside it: 30 s is two of
    the chart's 15 s worker scrapes (Knative's 6 s assumes 1 s metrics). With no answer
    (empty or NaN) the stable rate decides alone."""
    stable_window_seconds: Annotated[int, Field(ge=1, le=3600)] = 60


class ScaleUpSpec(_Model):
    max_percent: Annotated[int, Field(ge=1, le=10_000)] = 100
    max_pods: Annotated[int, Field(ge=1, le=10_000)] = 4
    period_seconds: Annotated[int, Field(ge=1, le=3600)] = 15


class ScaleDownSpec(_Model):
    stabilization_seconds: Annotated[int, Field(ge=0, le=86_400)] = 300
    max_percent: Annotated[int, Field(ge=1, le=100)] = 50
    drain_seconds: Annotated[int, Field(ge=0, le=3600)] = 30


class FallbackSpec(_Model):
    failure_threshold: Annotated[int, Field(ge=1, le=1000)] = 3
    replicas: Annotated[int, Field(ge=0, le=10_000)] | None = None
    """Floor of the last fallback step; unset = hold the current count."""


_MIN_LE_MAX: JsonDict = {
    "rule": "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
    "message": "minReplicas must be <= maxReplicas",
}


class ScalingSpec(_Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [_MIN_LE_MAX]})

    interval_seconds: Annotated[int, Field(ge=1, le=3600)] = 10
    min_replicas: Annotated[int, Field(ge=0, le=10_000)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=10_000)] = 50
    forecast: ForecastSpec = Field(default_factory=ForecastSpec)
    reactive: ReactiveSpec = Field(default_factory=ReactiveSpec)
    scale_up: ScaleUpSpec = Field(default_factory=ScaleUpSpec)
    scale_down: ScaleDownSpec = Field(default_factory=ScaleDownSpec)
    fallback: FallbackSpec = Field(default_factory=FallbackSpec)

    @model_validator(mode="after")
    def _min_le_max(self) -> ScalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas {self.min_replicas} > maxReplicas {self.max_replicas}")
        return self


# ---------------------------------------------------------------------------- spec: shards


class ShardSpec(_Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _MIN_LE_MAX,
                {
                    "rule": "self.region == oldSelf.region",
                    "message": "a shard's region is immutable: add a new shard and remove this one",
                },
            ]
        }
    )

    name: ShortName
    region: LabelValue
    zones: Annotated[list[LabelValue], Field(max_length=8)] = Field(default_factory=list)
    languages: Annotated[
        list[Annotated[str, Field(min_length=2, max_length=16, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]],
        Field(min_length=1, max_length=32),
    ]
    min_replicas: Annotated[int, Field(ge=0, le=10_000)] | None = None
    max_replicas: Annotated[int, Field(ge=1, le=10_000)] | None = None

    @model_validator(mode="after")
    def _min_le_max(self) -> ShardSpec:
        if (
            self.min_replicas is not None
            and self.max_replicas is not None
            and self.min_replicas > self.max_replicas
        ):
            raise ValueError(
                f"shard {self.name}: minReplicas {self.min_replicas} > maxReplicas {self.max_replicas}"
            )
        return self


# ---------------------------------------------------------------------------- spec: classes

ClassKind = Literal["Interactive", "Batch"]


def _class_schema(schema: JsonDict) -> None:
    """The per-class CEL rule, and descriptions on one line each (`kubectl explain`)."""
    schema["x-kubernetes-validations"] = [
        {
            "rule": "self.kind == 'Batch' ? has(self.deadlineSeconds) : !has(self.deadlineSeconds)",
            "message": "a Batch class needs deadlineSeconds; an Interactive class has none"
            " (it is planned on spec.slo)",
        }
    ]
    properties = schema.get("properties")
    for node in [schema, *(properties.values() if isinstance(properties, dict) else [])]:
        if isinstance(node, dict) and isinstance(node.get("description"), str):
            node["description"] = " ".join(str(node["description"]).split())


class TrafficClassSpec(_Model):
    """One class of traffic on every shard: a Triton priority level and how it is planned."""

    model_config = ConfigDict(use_attribute_docstrings=True, json_schema_extra=_class_schema)

    name: ShortName
    """The class's name: the `class` label of its metrics (docs/classes.md) and of the
    operator's per-class series."""
    kind: ClassKind
    """Interactive: planned on spec.slo, as a cluster without classes is (exactly one class).
    Batch: planned so that its queued work completes within deadlineSeconds."""
    priority: Annotated[int, Field(ge=1, le=16)]
    """Triton priority level of the class (1 is served first); clients send it with each
    request. Requests without a priority count as the Interactive class."""
    deadline_seconds: Annotated[int, Field(ge=1, le=604_800)] | None = None
    """Batch only: every queued request completes within this long of arriving."""
    pools: Annotated[list[ShortName], Field(min_length=1, max_length=4)] | None = None
    """spec.placement: the pools this class's replicas go to, in order of preference (the first
    until its pods stay Pending, then the next; docs/placement.md). Unset: the first pool."""
    max_on_demand_replicas: Annotated[int, Field(ge=0, le=10_000)] | None = None
    """Batch with spec.placement: at most this many replicas of the class on OnDemand pools when
    its Spot pools are exhausted and its deadline is at risk. Unset: no cap."""

    @model_validator(mode="after")
    def _deadline_for_batch(self) -> TrafficClassSpec:
        if (self.kind == "Batch") != (self.deadline_seconds is not None):
            raise ValueError(f"class {self.name}: a Batch class needs deadlineSeconds; an"
                             " Interactive class has none (it is planned on spec.slo)")
        return self


_CLASS_RULES: list[JsonDict] = [
    {
        "rule": "!has(self.classes) || self.classes.all(c, self.classes.exists_one(d, d.name == c.name))",
        "message": "class names must be unique",
    },
    {
        "rule": "!has(self.classes) || self.classes.all(c,"
        " self.classes.exists_one(d, d.priority == c.priority))",
        "message": "class priorities must be unique: one Triton priority level per class",
    },
    {
        "rule": "!has(self.classes) || self.classes.exists_one(c, c.kind == 'Interactive')",
        "message": "classes need exactly one Interactive class (untagged requests go to it;"
        " a batch-only cluster declares one that receives nothing)",
    },
    {
        "rule": "!has(self.classes) || self.classes.all(c, c.kind == 'Interactive' ||"
        " self.classes.exists(i, i.kind == 'Interactive' && i.priority < c.priority))",
        "message": "the Interactive class must have the highest priority (the lowest number)",
    },
    {
        "rule": "!has(self.classes) || !has(self.streaming)",
        "message": "classes and streaming cannot be combined: Triton's sequence batcher has no"
        " priority levels",
    },
    {
        "rule": "!has(self.classes) || !has(self.prometheus) || !has(self.prometheus.queries) ||"
        " (!has(self.prometheus.queries.rate) && !has(self.prometheus.queries.latency) &&"
        " !has(self.prometheus.queries.queue))",
        "message": "with classes, the interactive rate, latency and queue come from the"
        " voxscale_class_* series (docs/classes.md): remove prometheus.queries rate, latency"
        " and queue",
    },
]


def check_classes(spec: SpeechClusterSpec) -> SpeechClusterSpec:
    """The CEL rules above, for manifests parsed without an API server (`voxscale render`)."""
    classes = spec.classes
    if classes is None:
        return spec
    problems = []
    given = [c.name for c in classes]
    if dupes := sorted({n for n in given if given.count(n) > 1}):
        problems.append(f"class names must be unique; repeated: {', '.join(dupes)}")
    levels = [c.priority for c in classes]
    if dupes_p := sorted({p for p in levels if levels.count(p) > 1}):
        problems.append(f"class priorities must be unique; repeated: {dupes_p}")
    interactive = [c for c in classes if c.kind == "Interactive"]
    if len(interactive) != 1:
        problems.append(f"classes need exactly one Interactive class, got {len(interactive)}")
    elif any(c.priority <= interactive[0].priority for c in classes if c.kind == "Batch"):
        problems.append("the Interactive class must have the highest priority (the lowest number)")
    if spec.streaming is not None:
        problems.append("classes and streaming cannot be combined: Triton's sequence batcher"
                        " has no priority levels")
    q = spec.prometheus.queries
    if q.rate or q.latency or q.queue:
        problems.append("with classes, remove prometheus.queries rate, latency and queue: the"
                        " interactive class is read from the voxscale_class_* series")
    if problems:
        raise ValueError("; ".join(problems))
    return spec


# ---------------------------------------------------------------------------- spec: placement

CapacityType = Literal["OnDemand", "Spot"]


class PoolSpec(_Model):
    """A node pool the shards' workers may run on, and what one of its GPU replicas costs."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    name: ShortName
    """The pool's name: the suffix of each shard's Deployment on it (`<cluster>-<shard>-<name>`)."""
    node_selector: Annotated[
        dict[Annotated[str, Field(max_length=253)], Annotated[str, Field(max_length=names.NAME_MAX_LENGTH)]],
        Field(min_length=1, max_length=16),
    ]
    """Labels of the pool's nodes, added to worker.nodeSelector and the shard's region."""
    tolerations: Annotated[list[Toleration], Field(max_length=16)] = Field(default_factory=list)
    """Taints of the pool's nodes the workers tolerate (added to worker.tolerations)."""
    price_per_hour: Annotated[float, Field(ge=0, le=100_000)]
    """What one replica costs per hour on this pool, in the currency you account in."""
    capacity_type: CapacityType = "OnDemand"
    """Spot capacity can be taken back at any time; Batch work goes there first."""


class PlacementSpec(_Model):
    """Node pools per class (docs/placement.md): batch to spot first, on-demand within a cap."""

    pools: Annotated[list[PoolSpec], Field(min_length=1, max_length=8)]
    currency: Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")] = "USD"
    """ISO 4217 code of pricePerHour (status and the replay print it)."""


_PLACEMENT_RULES: list[JsonDict] = [
    {
        "rule": "!has(self.placement) || self.placement.pools.all(p,"
        " self.placement.pools.exists_one(q, q.name == p.name))",
        "message": "placement pool names must be unique",
    },
    {
        "rule": "!has(self.placement) || !has(self.classes) || self.classes.all(c, !has(c.pools) ||"
        " c.pools.all(n, self.placement.pools.exists(p, p.name == n)))",
        "message": "every pool a class names must be declared in spec.placement.pools",
    },
    {
        "rule": "has(self.placement) || !has(self.classes) ||"
        " self.classes.all(c, !has(c.pools) && !has(c.maxOnDemandReplicas))",
        "message": "class pools and maxOnDemandReplicas need spec.placement",
    },
]


def check_placement(spec: SpeechClusterSpec) -> SpeechClusterSpec:
    """The CEL rules above, for manifests parsed without an API server (`voxscale render`)."""
    placement = spec.placement
    problems = []
    if placement is not None:
        given = [p.name for p in placement.pools]
        if dupes := sorted({n for n in given if given.count(n) > 1}):
            problems.append(f"placement pool names must be unique; repeated: {', '.join(dupes)}")
    for c in spec.classes or ():
        if placement is None and (c.pools is not None or c.max_on_demand_replicas is not None):
            problems.append(f"class {c.name}: pools and maxOnDemandReplicas need spec.placement")
        elif placement is not None and (unknown := [n for n in c.pools or () if n not in given]):
            problems.append(f"class {c.name}: pool(s) {', '.join(unknown)} not in spec.placement.pools")
    if problems:
        raise ValueError("; ".join(problems))
    return spec


# ---------------------------------------------------------------------------- spec: prometheus


class SecretKeyRef(_Model):
    name: Annotated[str, Field(min_length=1, max_length=253)]
    key: Annotated[str, Field(min_length=1, max_length=253)] = "token"


class QueryTemplates(_Model):
    """PromQL overrides. Placeholders: {selector} (the shard's escaped label matchers, always
    including the operator's namespace), {window}, {quantile}, {model}."""

    rate: Annotated[str, Field(max_length=2048)] | None = None
    latency: Annotated[str, Field(max_length=2048)] | None = None
    queue: Annotated[str, Field(max_length=2048)] | None = None
    batch_efficiency: Annotated[str, Field(max_length=2048)] | None = None


class PrometheusSpec(_Model):
    url: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^https?://[^\s]+$")] = (
        "http://prometheus-operated.monitoring.svc:9090"
    )
    bearer_token_secret_ref: SecretKeyRef | None = None
    insecure_skip_verify: bool = False
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    rate_window: Duration = "1m"
    """PromQL range of the rate and latency look-backs. A shorter window sees a burst sooner (a
    1m rate lags a ramp by ~30 s) but is noisier; keep it >= 4 scrape intervals."""
    queries: QueryTemplates = Field(default_factory=QueryTemplates)


# ---------------------------------------------------------------------------- spec: routing

# A header name as Gateway API matches it (RFC 7230 token characters); lower case by convention,
# since HTTP/2 sends header names in lower case and a match ignores case.
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$"
# Gateway API's Duration (GEP-2257): up to four whole units of h, m, s or ms, e.g. "1h30m".
GATEWAY_DURATION = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"
DNS_SUBDOMAIN = rf"^{names.DNS_1123_LABEL_PATTERN}(\.{names.DNS_1123_LABEL_PATTERN})*$"
LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"

HeaderName = Annotated[str, Field(min_length=1, max_length=128, pattern=HEADER_NAME)]
Language = Annotated[str, Field(min_length=2, max_length=16, pattern=LANGUAGE)]


class GatewayRef(_Model):
    """A Gateway (or one of its listeners) the route attaches to: a Gateway API parentRef."""

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
    namespace: Annotated[str, Field(min_length=1, max_length=63,
                                    pattern=rf"^{names.DNS_1123_LABEL_PATTERN}$")] | None = None
    """Unset: the SpeechCluster's namespace."""
    section_name: Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)] | None = None
    """One listener of the Gateway; unset attaches to every listener that allows the route."""


class SessionSpec(_Model):
    """Gateway API session persistence on every rule: one caller's session stays on one worker."""

    type: Literal["Header", "Cookie"] = "Header"
    """Header suits gRPC clients (the gateway returns a token header the client sends back);
    Cookie suits browsers."""
    name: HeaderName = "x-voxscale-session"
    """The header or cookie that carries the session token (Gateway API's sessionName)."""
    absolute_timeout: Annotated[str, Field(min_length=2, max_length=24,
                                           pattern=GATEWAY_DURATION)] | None = None
    """After this a session may move to another worker (Gateway API Duration, e.g. "1h")."""


_HEADERS_DIFFER: JsonDict = {
    "rule": "self.languageHeader.lowerAscii() != self.regionHeader.lowerAscii()",
    "message": "languageHeader and regionHeader must be different headers",
}


class RoutingSpec(_Model):
    """The front door: one Gateway API route, a rule per shard matching its languages and region."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [_HEADERS_DIFFER]})

    parent_refs: Annotated[list[GatewayRef], Field(min_length=1, max_length=32)]
    protocol: Literal["grpc", "http"] = "grpc"
    """grpc renders a GRPCRoute to the shards' gRPC port (Triton's streaming API); http an
    HTTPRoute to their HTTP port."""
    language_header: HeaderName = "x-language"
    region_header: HeaderName = "x-region"
    """With it a caller picks the region of a language served in several; without it, the
    first shard in spec order that serves the language."""
    session: SessionSpec = Field(default_factory=SessionSpec)
    languages: Annotated[list[Language], Field(max_length=64)] = Field(default_factory=list)
    """Languages the front door must route; one that no shard serves is reported
    (LanguageUnserved). Empty: whatever the shards serve."""
    regions_down: Annotated[list[LabelValue], Field(max_length=16)] = Field(default_factory=list)
    """Regions taken out of service by hand (maintenance, an outage the metrics cannot see): their
    shards' languages are failed over to shards of other regions, as when they have no Ready
    replica (docs/routing.md, Regional failover)."""

    @model_validator(mode="after")
    def _headers_differ(self) -> RoutingSpec:
        if self.language_header.lower() == self.region_header.lower():
            raise ValueError(f"languageHeader and regionHeader are both {self.language_header!r}")
        return self


# ---------------------------------------------------------------------------- spec

_FALLBACK_NOT_STREAMING: JsonDict = {
    "rule": "!has(self.model.fallback) || !has(self.streaming)",
    "message": "model.fallback and streaming cannot be combined: a stream's chunks must stay on the"
    " model that holds its state",
}


class SpeechClusterSpec(_Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.shards.all(s, self.shards.exists_one(t, t.name == s.name))",
                    "message": "shard names must be unique",
                },
                {
                    "rule": "size(self.shards) >= 1",
                    "message": "at least one shard is required",
                },
                *_CLASS_RULES,
                _FALLBACK_NOT_STREAMING,
                *_PLACEMENT_RULES,
            ]
        }
    )

    model: ModelSpec
    worker: WorkerSpec = Field(default_factory=WorkerSpec)
    batching: BatchingSpec = Field(default_factory=BatchingSpec)
    streaming: StreamingSpec | None = None
    """Stateful streams under Triton's sequence batcher; unset, requests are batched one by one
    by the dynamic batcher (and batching's queue timeout applies, which streams do not have)."""
    slo: SLOSpec = Field(default_factory=SLOSpec)
    capacity: CapacitySpec = Field(default_factory=CapacitySpec)
    scaling: ScalingSpec = Field(default_factory=ScalingSpec)
    shards: Annotated[list[ShardSpec], Field(min_length=1, max_length=32)]
    prometheus: PrometheusSpec = Field(default_factory=PrometheusSpec)
    routing: RoutingSpec | None = None
    """Gateway API routes to the shards; unset, the operator renders none (and removes its own)."""
    classes: Annotated[list[TrafficClassSpec], Field(min_length=1, max_length=8)] | None = None
    """Traffic classes (docs/classes.md): Triton priority levels, and a plan per class. Unset,
    every request is one class planned on spec.slo."""
    placement: PlacementSpec | None = None
    """Node pools with prices (docs/placement.md): each shard runs one Deployment per pool and
    the classes' replicas are split over them. Unset, one Deployment per shard as always."""

    @field_validator("shards")
    @classmethod
    def _unique_shards(cls, shards: list[ShardSpec]) -> list[ShardSpec]:
        given = [s.name for s in shards]
        dupes = sorted({n for n in given if given.count(n) > 1})
        if dupes:
            raise ValueError(f"shard names must be unique; repeated: {', '.join(dupes)}")
        return shards

    @model_validator(mode="after")
    def _slo_reachable(self) -> SpeechClusterSpec:
        # The CRD cannot relate two sections; a batch of one that already breaks the SLO
        # leaves no rate at which any number of replicas would meet it.
        profile = self.capacity.service_time
        if profile is None:
            return self
        one = (1 + self.slo.quantile) * (profile.batch_fixed_ms + profile.per_request_ms)
        one += self.batching.max_queue_delay_microseconds / 1000.0
        if one > self.slo.latency_ms:
            raise ValueError(
                f"capacity.serviceTime: even a batch of one takes {one:.0f} ms at"
                f" {self.slo.percentile} (with the batcher's max queue delay), above the"
                f" {self.slo.latency_ms:g} ms SLO: raise slo.latencyMs or check the profile"
            )
        return self

    @model_validator(mode="after")
    def _idle_streams_drain(self) -> SpeechClusterSpec:
        # A draining replica waits at least drainSeconds for its streams. A caller who went
        # silent keeps a stream open until the idle timeout: with a 60 s timeout and a 30 s
        # drain, that stream would still be open when the pod is stopped, and cut.
        drain = self.scaling.scale_down.drain_seconds
        if self.streaming and self.streaming.session_idle_timeout_seconds > drain:
            raise ValueError(
                f"streaming.sessionIdleTimeoutSeconds {self.streaming.session_idle_timeout_seconds}"
                f" > scaling.scaleDown.drainSeconds {drain}: a silent stream would outlive a"
                " draining replica and be cut; raise drainSeconds or lower the idle timeout"
            )
        return self

    @model_validator(mode="after")
    def _fallback_not_streaming(self) -> SpeechClusterSpec:
        if self.model.fallback is not None and self.streaming is not None:
            raise ValueError(_FALLBACK_NOT_STREAMING["message"])
        return self

    @model_validator(mode="after")
    def _classes_consistent(self) -> SpeechClusterSpec:
        return check_classes(self)

    @model_validator(mode="after")
    def _placement_consistent(self) -> SpeechClusterSpec:
        return check_placement(self)

    @property
    def interactive_class(self) -> TrafficClassSpec | None:
        """The one Interactive class of spec.classes; None without classes."""
        return next((c for c in self.classes or () if c.kind == "Interactive"), None)

    def shard(self, name: str) -> ShardSpec:
        for s in self.shards:
            if s.name == name:
                return s
        raise KeyError(name)

    def bounds(self, shard: ShardSpec) -> tuple[int, int]:
        """A shard's [min, max]: its own where set, else the cluster-wide scaling bounds."""
        low = shard.min_replicas if shard.min_replicas is not None else self.scaling.min_replicas
        high = shard.max_replicas if shard.max_replicas is not None else self.scaling.max_replicas
        return low, max(low, high)


# ---------------------------------------------------------------------------- status

Mode = Literal["stable", "panic", "hold", "fallback"]
Term = Literal["predictive", "reactive", "floor", "ceiling", "hold", "fallback", "current"]


class Condition(_Model):
    type: Annotated[str, Field(max_length=64)]
    status: Literal["True", "False", "Unknown"]
    reason: Annotated[str, Field(max_length=64)]
    message: Text = ""
    last_transition_time: datetime | None = None
    observed_generation: int | None = None


class Recommendation(_Model):
    """One past recommendation, kept for the scale-down stabilization window."""

    at: float
    replicas: int


class ScalerState(_Model):
    """Everything decide() needs from previous ticks; stored in status so a restart resumes."""

    recommendations: Annotated[list[Recommendation], Field(max_length=2000)] = Field(default_factory=list)
    panic_until: float | None = None
    panic_since: float | None = None
    failures: Annotated[int, Field(ge=0)] = 0
    last_scale_up_at: float | None = None
    last_scale_down_at: float | None = None
    last_replicas: Annotated[int, Field(ge=0)] | None = None
    warmup_samples: Annotated[list[float], Field(max_length=64)] = Field(default_factory=list)
    """Recent pod created->Ready durations in seconds, newest last."""
    forecast_miss: Annotated[float, Field(ge=0)] = 0.0
    """Req/s the forecast last fell short of the observed rate, carried until the time below."""
    forecast_miss_until: float | None = None
    service_time_scale: Annotated[float, Field(gt=0)] | None = None
    """Measured ÷ modelled batch service time (from Triton's batch efficiency), smoothed."""
    batch_needs: Annotated[dict[Annotated[str, Field(max_length=20)], Annotated[int, Field(ge=0)]],
                           Field(max_length=8)] | None = None
    """spec.classes: each Batch class's last need, held while its metrics have no data."""
    fallback_share: Annotated[float, Field(ge=0, le=1)] = 0.0
    """spec.model.fallback: the share of new interactive requests sent to the smaller model."""
    fallback_lower_since: float | None = None
    """Since when the Ready capacity has needed a lower share than the one in force (the hold)."""
    overflow: Annotated[dict[Annotated[str, Field(max_length=20)], Annotated[int, Field(ge=0)]],
                        Field(max_length=8)] | None = None
    """spec.placement: replicas of each class placed beyond its first pool (0 or absent: none),
    so the overflow is released only once the first pool's pods are Ready (docs/placement.md)."""


class ClassStatus(_Model):
    """One traffic class of a shard this tick: what was observed and what it needs."""

    name: ShortName
    kind: ClassKind
    replicas: Annotated[int, Field(ge=0)] | None = None
    """Replicas this class needs (the shard runs the Interactive need + every Batch need,
    before the shard's clamp and stabilization); None = no data."""
    observed_rate: float | None = None
    """Requests arriving per second."""
    backlog: float | None = None
    """Batch: requests queued and not yet completed."""
    oldest_seconds: float | None = None
    """Batch: age of the oldest queued request."""
    required_rate: float | None = None
    """Batch: the throughput that completes the backlog and the arrivals before the deadline."""
    deadline_at_risk: bool = False
    pools: Annotated[dict[Annotated[str, Field(max_length=20)], Annotated[int, Field(ge=0)]],
                     Field(max_length=8)] | None = None
    """spec.placement: replicas of this class asked per pool."""
    cost_per_hour: float | None = None
    """spec.placement: what this class's scheduled replicas cost per hour."""


class PoolStatus(_Model):
    """One pool of a shard (spec.placement): what runs there and what it costs."""

    name: ShortName
    capacity_type: CapacityType
    replicas: Annotated[int, Field(ge=0)] = 0
    """spec.replicas of the shard's Deployment on this pool."""
    ready_replicas: Annotated[int, Field(ge=0)] = 0
    pending_replicas: Annotated[int, Field(ge=0)] = 0
    price_per_hour: float = 0.0
    cost_per_hour: float = 0.0
    """price × scheduled pods (Ready + warming): a Pending pod holds no node and costs nothing."""


class ShardStatus(_Model):
    name: ShortName
    replicas: int = 0
    ready_replicas: int = 0
    warming_replicas: int = 0
    pending_replicas: int = 0
    observed_rate: float | None = None
    observed_latency_ms: float | None = None
    forecast_rate: float | None = None
    planned_rate: float | None = None
    """The rate the plan sized for: forecast upper over the horizon + the miss it carries."""
    horizon_seconds: float | None = None
    learned_warmup_seconds: float | None = None
    drain_seconds: Annotated[int, Field(ge=0)] | None = None
    """Streaming shards: how long a removed replica may drain its streams, learned from the
    p99 session length within [scaleDown.drainSeconds, streaming.maxSessionSeconds]; the
    worker pods' terminationGracePeriodSeconds is rendered from it."""
    mode: Mode = "hold"
    winning_term: Term = "current"
    reasons: Annotated[list[Text], Field(max_length=16)] = Field(default_factory=list)
    last_scale_time: datetime | None = None
    scaler_state: ScalerState = Field(default_factory=ScalerState)
    classes: Annotated[list[ClassStatus], Field(max_length=8)] | None = None
    """spec.classes: each class's observation and need; absent without classes."""
    pools: Annotated[list[PoolStatus], Field(max_length=8)] | None = None
    """spec.placement: per pool, replicas and cost."""
    cost_per_hour: float | None = None
    """spec.placement: the shard's scheduled replicas × their pool's price, per hour."""
    fallback_share: Annotated[float, Field(ge=0, le=1)] | None = None
    """spec.model.fallback: the share of new interactive requests sent to the smaller model
    (0 when none); absent without a fallback model."""


class FailoverStatus(_Model):
    """A shard that cannot serve, and where its languages' new streams go (docs/routing.md)."""

    from_shard: ShortName = Field(alias="from")
    to: ShortName | None = None
    """The shard of another region that takes the languages; None when no healthy shard serves
    them: the route keeps sending them home (FailoverImpossible)."""
    languages: Annotated[list[Language], Field(min_length=1, max_length=32)]
    reason: Text = ""
    """Why the shard cannot serve, e.g. "0 of 2 replicas Ready (2 Pending)"."""
    since: datetime
    home_ready_since: datetime | None = None
    """The shard serves again since then; its languages go home once it has for the hold."""


class FallbackWeight(_Model):
    """One shard's weight for the smaller model in the applied HTTPRoute (docs/fallback.md)."""

    shard: ShortName
    weight: Annotated[int, Field(ge=1, le=100)]
    """Percent of the shard's infer requests rewritten to the smaller model."""


class RoutingStatus(_Model):
    """What became of spec.routing; every tick mirrors it into the Routed condition."""

    kind: Annotated[str, Field(max_length=64)]
    name: Annotated[str, Field(max_length=253)]
    routed: bool
    reason: Annotated[str, Field(max_length=64)]
    message: Text = ""
    observed_generation: int | None = None
    failovers: Annotated[list[FailoverStatus], Field(max_length=64)] = Field(default_factory=list)
    """Active regional failovers; empty when every shard serves its own languages."""
    fallback_weights: Annotated[list[FallbackWeight], Field(max_length=32)] = Field(default_factory=list)
    """spec.model.fallback over HTTP: the shards whose applied route rewrites a share of their
    infer requests to the smaller model; empty when none does."""


class SpeechClusterStatus(_Model):
    observed_generation: int | None = None
    conditions: Annotated[list[Condition], Field(max_length=16)] = Field(default_factory=list)
    shards: Annotated[list[ShardStatus], Field(max_length=32)] = Field(default_factory=list)
    # Cluster-wide roll-ups for `kubectl get spc` printer columns.
    shard_count: int = 0
    desired_replicas: int = 0
    ready_replicas: int = 0
    worst_latency_ms: float | None = None
    mode: Mode | None = None
    routing: RoutingStatus | None = None


def parse_spec(spec: dict[str, Any]) -> SpeechClusterSpec:
    """Validate a manifest's `.spec` (raises pydantic.ValidationError with field paths)."""
    return SpeechClusterSpec.model_validate(spec)
