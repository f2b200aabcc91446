"""Every name, label, annotation key and field manager the operator writes or reads, and the
syntax Kubernetes and Triton hold those names to."""

from __future__ import annotations

GROUP = "voxscale.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "SpeechCluster"
PLURAL = "speechclusters"
SINGULAR = "speechcluster"
# Not "sc": kubectl resolves that to the built-in StorageClass before any CRD.
SHORT_NAME = "spc"
CRD_NAME = f"{PLURAL}.{GROUP}"

FIELD_MANAGER = "voxscale"
# spec.replicas of shard Deployments is applied by a manager of its own: the rendered objects
# never carry replicas, so re-applying them can't reset a scale, and the scaler owns exactly one field.
FIELD_MANAGER_SCALER = "voxscale-scaler"
OPERATOR_NAME = "voxscale-operator"

# Standard Kubernetes recommended labels, plus our own keys for selection.
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_CLUSTER = f"{GROUP}/cluster"
LABEL_SHARD = f"{GROUP}/shard"
LABEL_REGION = f"{GROUP}/region"
LABEL_MODEL = f"{GROUP}/model"
WORKER_APP = "triton-worker"
COMPONENT_WORKER = "worker"

ANNOTATION_CONFIG_HASH = f"{GROUP}/config-hash"
ANNOTATION_WARMUP_SECONDS = f"{GROUP}/warmup-seconds"
ANNOTATION_LANGUAGES = f"{GROUP}/languages"
# Kubernetes' own key (beta since 1.22, on by default): the ReplicaSet controller removes the
# pods of lowest cost first on scale-in. An int32 written as a string; unset counts as 0.
ANNOTATION_POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"

TOPOLOGY_REGION = "topology.kubernetes.io/region"
TOPOLOGY_ZONE = "topology.kubernetes.io/zone"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"

# Triton's default ports; the Service and the Prometheus scrape use the names.
PORT_HTTP = 8000
PORT_GRPC = 8001
PORT_METRICS = 8002
PORT_NAME_HTTP = "http"
PORT_NAME_GRPC = "grpc"
PORT_NAME_METRICS = "metrics"

CONTAINER_NAME = "triton"
CONFIG_VOLUME = "model-config"
SHM_VOLUME = "dshm"
MODEL_CONFIG_FILE = "config.pbtxt"
FALLBACK_CONFIG_FILE = "fallback-config.pbtxt"
"""spec.model.fallback: the ConfigMap key mounted as the smaller model's config.pbtxt."""
FALLBACK_RULE_SUFFIX = "infer"
CONDITION_SMALLER_MODEL = "SmallerModel"
"""spec.model.fallback: True while some shard sends a share of its interactive requests to the
smaller model (docs/fallback.md)."""
REASON_SERVING_SMALLER_MODEL = "ServingSmallerModel"
"""A shard sends a share of new interactive requests to the smaller model (Warning on entry)."""
REASON_MAIN_MODEL_ONLY = "MainModelOnly"
"""Every shard serves the main model only (the Normal Event when a shard's share is back at 0)."""
REASON_FALLBACK_MODEL_UNAVAILABLE = "FallbackModelUnavailable"
"""The smaller model is not loaded on a shard's workers: the step is disabled."""
"""spec.model.fallback over HTTP: the route rule `<shard>-infer` splits the main model's infer
path between the two models by weight (docs/fallback.md)."""

# Condition types on SpeechCluster status.
CONDITION_READY = "Ready"
CONDITION_METRICS_AVAILABLE = "MetricsAvailable"
CONDITION_DEGRADED = "Degraded"

# Event reasons (documented in docs/runbook.md).
REASON_SCALED_UP = "ScaledUp"
REASON_SCALED_DOWN = "ScaledDown"
REASON_INVALID_SPEC = "InvalidSpec"
REASON_RECONCILED = "Reconciled"
REASON_SHARD_REMOVED = "ShardRemoved"
REASON_METRICS_UNAVAILABLE = "MetricsUnavailable"
REASON_FALLBACK = "FallbackActive"
REASON_DRIFT_CORRECTED = "DriftCorrected"
REASON_HPA_CONFLICT = "HPAConflict"
REASON_PODS_PENDING = "PodsPending"
REASON_ENDPOINT_NOT_ALLOWED = "MetricsEndpointNotAllowed"


# Name syntax, unanchored: api.py anchors each for the CRD's `pattern`, promql.py fullmatches
# them before a value may enter PromQL. One copy, so the two can never disagree.
DNS_1035_LABEL_PATTERN = r"[a-z]([-a-z0-9]*[a-z0-9])?"
"""A Service name (and our shard and priority-class names): starts with a letter."""
DNS_1123_LABEL_PATTERN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
"""A namespace name: may start with a digit."""
LABEL_VALUE_PATTERN = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
"""A non-empty Kubernetes label value (cluster, shard, region and zone become labels)."""
MODEL_NAME_PATTERN = r"[A-Za-z0-9_][-A-Za-z0-9_.]*"
"""A Triton model name as it appears in the model repository and in the `model` label."""
NAME_MAX_LENGTH = 63
"""The longest DNS label and label value."""


def shard_resource_name(cluster: str, shard: str) -> str:
    """Name of every per-shard child object: `<cluster>-<shard>` (DNS-1035 label, ≤ 63)."""
    return f"{cluster}-{shard}"


def selector_labels(cluster: str, shard: str) -> dict[str, str]:
    """The immutable pod selector of a shard's Deployment, Service and PDB."""
    return {LABEL_CLUSTER: cluster, LABEL_SHARD: shard}


def common_labels(cluster: str, shard: str, region: str, model: str) -> dict[str, str]:
    return {
        LABEL_NAME: WORKER_APP,
        LABEL_INSTANCE: cluster,
        LABEL_COMPONENT: COMPONENT_WORKER,
        LABEL_MANAGED_BY: FIELD_MANAGER,
        LABEL_CLUSTER: cluster,
        LABEL_SHARD: shard,
        LABEL_REGION: region,
        LABEL_MODEL: model,
    }


# Prometheus label names on scraped Triton series. The scrape config (Helm chart, e2e, demo)
# relabels the pod's labels into these, so the operator's queries can select one shard.
PROM_LABEL_NAMESPACE = "namespace"
PROM_LABEL_POD = "pod"
PROM_LABEL_CLUSTER = "voxscale_cluster"
PROM_LABEL_SHARD = "voxscale_shard"
PROM_LABEL_MODEL = "model"  # Triton's own label on nv_inference_* series

# Stateful streams (spec.streaming). The sequence batcher hands the model these control inputs
# (names the model reads; workers/models/asr-standin keeps a copy a test compares), and the
# rendered config passes the session limit as a model parameter.
SEQUENCE_START_INPUT = "START"
SEQUENCE_END_INPUT = "END"
SEQUENCE_READY_INPUT = "READY"
SEQUENCE_CORRID_INPUT = "CORRID"
MODEL_PARAM_MAX_SESSION_SECONDS = "max_session_seconds"
# The worker's per-pod stream metrics. Triton 2.51 exports no sequence metrics of its own, so
# these come from the model, through the Python backend's metrics API (labels: model, version).
ACTIVE_STREAMS_METRIC = "voxscale_active_streams"
"""Gauge: streams open on this worker now (started and not yet ended, idle-dropped or expired)."""
STREAM_DURATION_METRIC = "voxscale_stream_duration_seconds"
"""Histogram (_bucket/_sum/_count): first to last chunk of every closed stream, in seconds."""
STREAMS_CLOSED_METRIC = "voxscale_streams_closed_total"
"""Counter of closed streams by `reason`: end, idle, max_session, restart."""

# Triton flags the rendered Deployment passes so the default queries have what they read:
# per-request latency summaries with the SLO quantiles (Triton >= 23.10, `--metrics-config`).
TRITON_METRICS_CONFIG = (
    "summary_latencies=true",
    "summary_quantiles=0.5:0.05,0.9:0.01,0.95:0.001,0.99:0.001",
)

# The front door (spec.routing): Gateway API routes, one per SpeechCluster, named after it.
# The Gateway API release the routes are rendered for and tested against (e2e/cluster/gateway-api.sh
# reads this line): its experimental channel, the one with sessionPersistence on route rules.
GATEWAY_API_RELEASE = "v1.6.3"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
GATEWAY_API_VERSION = f"{GATEWAY_API_GROUP}/v1"
# protocol -> (route kind, plural): the chart's RBAC and tests/test_chart.py read the plurals.
ROUTE_KINDS = {"grpc": ("GRPCRoute", "grpcroutes"), "http": ("HTTPRoute", "httproutes")}
COMPONENT_ROUTING = "routing"
CONDITION_ROUTED = "Routed"
REASON_ROUTES_APPLIED = "RoutesApplied"
REASON_ROUTES_REMOVED = "RoutesRemoved"
REASON_ROUTING_CONFLICT = "RoutingConflict"
"""Two shards of one region serve a language: the route is left as it was."""
REASON_LANGUAGE_UNSERVED = "LanguageUnserved"
"""spec.routing.languages names a language no shard serves: the others are routed."""
REASON_ROUTING_UNAVAILABLE = "RoutingUnavailable"
"""The cluster serves no route kind (the Gateway API CRDs are not installed)."""
REASON_ROUTE_REJECTED = "RouteRejected"
"""The API server refused the route (schema, CEL, RBAC) or it exceeds Gateway API's limits."""
# Regional failover (docs/routing.md): a shard that cannot serve sends its languages' new
# streams to a shard of another region. The condition is True while any language is away.
CONDITION_FAILED_OVER = "FailedOver"
REASON_FAILED_OVER = "FailedOver"
"""A shard cannot serve (no Ready replica, or its region is in regionsDown): its languages'
new streams go to a healthy shard of another region."""
REASON_FAILED_BACK = "FailedBack"
"""The home shard served again for the hold: its languages' new streams go home."""
REASON_FAILOVER_IMPOSSIBLE = "FailoverImpossible"
"""A shard cannot serve and no healthy shard of another region serves its language: the route
keeps sending that language home (never dropped)."""
REASON_AT_HOME = "AtHome"
"""No failover: every shard serves its own languages."""


def route_name(cluster: str) -> str:
    """The SpeechCluster's one route (GRPCRoute or HTTPRoute): the cluster's own name."""
    return cluster


# Traffic classes (spec.classes; docs/classes.md). Triton 2.51 exports no per-priority metrics,
# so each class is read from voxscale's own series, labelled with the class's name: the stand-in
# worker, a gateway or a batch job queue exports them (scraped with the shard's pod labels).
PROM_LABEL_CLASS = "class"
CLASS_REQUESTS_METRIC = "voxscale_class_requests_total"
"""Counter: requests of the class received (arrivals), by `class`."""
CLASS_LATENCY_METRIC = "voxscale_class_request_duration_seconds"
"""Histogram (_bucket/_sum/_count): received → answered per request of the class, seconds."""
CLASS_BACKLOG_METRIC = "voxscale_class_backlog_requests"
"""Gauge: requests of the class received and not yet answered (queued work), by `class`."""
CLASS_OLDEST_METRIC = "voxscale_class_oldest_queued_seconds"
"""Gauge: age in seconds of the class's oldest queued request (0 with nothing queued)."""
REASON_DEADLINE_AT_RISK = "DeadlineAtRisk"
"""A Batch class's queued work cannot complete within its deadline at maxReplicas, or its
oldest request is already closer to the deadline than new capacity can warm up."""
REASON_CLASS_METRICS_UNAVAILABLE = "ClassMetricsUnavailable"
"""A Batch class has no backlog data: its last need is held and the shard is not scaled down."""

# Cost-aware placement (spec.placement; docs/placement.md): a shard runs one Deployment per pool,
# `<cluster>-<shard>-<pool>`, whose pods carry the pool label beside the shard's selector labels
# (so the shard's Service and PDB, which select on cluster + shard, cover every pool).
LABEL_POOL = f"{GROUP}/pool"


def pool_resource_name(cluster: str, shard: str, pool: str) -> str:
    """The Deployment of a shard on one pool: `<cluster>-<shard>-<pool>`."""
    return f"{cluster}-{shard}-{pool}"


def pool_selector_labels(cluster: str, shard: str, pool: str) -> dict[str, str]:
    """The immutable selector of a shard's Deployment on one pool."""
    return {**selector_labels(cluster, shard), LABEL_POOL: pool}


REASON_POOL_PENDING = "PoolPending"
"""A pool's pods stay Pending (spot taken back, or a nodeSelector no node matches)."""
REASON_OVERFLOW = "PlacementOverflow"
"""A class runs replicas beyond its first pool (e.g. batch on on-demand while spot is exhausted)."""
REASON_OVERFLOW_CAPPED = "DeadlineCannotBeMet"
"""A Batch class's deadline is at risk and maxOnDemandReplicas stops the overflow that would meet it."""
REASON_PLACEMENT_INVALID = "PlacementInvalid"
"""spec.placement is accepted but wrong in a way the schema cannot say (a Spot pool priced above an
OnDemand one)."""
