"""The shard's Deployment of Triton workers, rendered from typed spec fields (no shell strings)."""

from __future__ import annotations

import math
from typing import Any

from voxscale import names
from voxscale.api import PoolSpec, ShardSpec, SpeechClusterSpec
from voxscale.decide.drain import clamp_drain
from voxscale.render.common import Owner, labels, metadata
from voxscale.render.configmap import configs_hash
from voxscale.render.fallback_model import exit_on_error, fallback_args, fallback_mounts, ready_path

# Seconds between the pod leaving the Service endpoints and SIGTERM, so that clients and
# kube-proxy stop sending new streams before Triton stops accepting them.
ENDPOINT_PROPAGATION_SECONDS = 5
PROBE_PERIOD_SECONDS = 5
# Non-root user of the NGC Triton image ("triton-server", uid 1000).
TRITON_UID = 1000
# Grace beyond the preStop and Triton's exit timeout, for the process to exit after both.
EXIT_MARGIN_SECONDS = 5

# preStop of a streaming worker (/bin/sh; $1 endpoint-propagation pause, $2 drain seconds,
# $3 Triton's HTTP port, $4 its metrics port). Deleted, the pod leaves the Service's endpoints,
# so new streams go to other replicas while the live ones keep their gRPC stream; this waits
# until the worker's gauge says 0 live streams, at most the drain, and only then does the
# kubelet send SIGTERM (after which Triton refuses new requests, mid-stream chunks included).
# No gauge, no curl, no answer: unknown counts as busy and it waits the whole drain. A worker
# that is not Ready has not loaded the model, so it holds no stream and stops at once.
# `date +%s` counts whole seconds, so the loop runs while now <= end: the wait is the whole
# drain and at most a second more (inside EXIT_MARGIN_SECONDS), never up to a second short.
STREAM_DRAIN_SCRIPT = """\
sleep "$1"
command -v curl >/dev/null 2>&1 || exec sleep "$2"
curl -sf -m 2 -o /dev/null "http://127.0.0.1:$3/v2/health/ready" || exit 0
end=$(( $(date +%s) + $2 ))
while [ "$(date +%s)" -le "$end" ]; do
  n=$(curl -sf -m 2 "http://127.0.0.1:$4/metrics" |
      awk '$1 ~ /^METRIC([{]|$)/ {k++; s += $2} END {print k ? s : -1}')
  [ "$n" = 0 ] && exit 0
  sleep 1
done
""".replace("METRIC", names.ACTIVE_STREAMS_METRIC)


def triton_args(spec: SpeechClusterSpec) -> list[str]:
    """tritonserver's command line: explicit load of one model, strict readiness, metrics on."""
    model_dir = spec.model.repository.rstrip("/")
    args = [
        "tritonserver",
        f"--model-repository={model_dir}",
        "--model-control-mode=explicit",
        f"--load-model={spec.model.name}",
        *fallback_args(spec),
        # Ready only when every loaded model is ready: readiness == warm-up finished.
        "--strict-readiness=true",
        exit_on_error(spec),
        f"--http-port={names.PORT_HTTP}",
        f"--grpc-port={names.PORT_GRPC}",
        "--allow-metrics=true",
        f"--allow-gpu-metrics={'true' if spec.worker.gpus > 0 else 'false'}",
        f"--metrics-port={names.PORT_METRICS}",
        # In-flight requests get the drain time to finish after SIGTERM.
        f"--exit-timeout-secs={spec.scaling.scale_down.drain_seconds}",
    ]
    args += [f"--metrics-config={flag}" for flag in names.TRITON_METRICS_CONFIG]
    return args


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": names.PORT_NAME_HTTP},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }


def _startup_failures(warmup_seconds: int) -> int:
    # The startup probe must outlast the slowest plausible model load: three times the
    # declared warm-up plus a minute (e.g. 60 s declared -> 240 s -> 48 probes of 5 s),
    # or a slow node would be killed mid-load and loop forever.
    return max(6, math.ceil((3 * warmup_seconds + 60) / PROBE_PERIOD_SECONDS))


def _resources(spec: SpeechClusterSpec) -> dict[str, Any]:
    requests = dict(spec.worker.resources.requests)
    limits = dict(spec.worker.resources.limits)
    if spec.worker.gpus > 0:
        # Extended resources must have request == limit.
        requests[names.GPU_RESOURCE] = str(spec.worker.gpus)
        limits[names.GPU_RESOURCE] = str(spec.worker.gpus)
    return {"requests": requests, "limits": limits}


def pre_stop_pause(spec: SpeechClusterSpec) -> int:
    """Seconds between leaving the endpoints and SIGTERM (at most drainSeconds + 1)."""
    return min(ENDPOINT_PROPAGATION_SECONDS, spec.scaling.scale_down.drain_seconds + 1)


def _pre_stop(spec: SpeechClusterSpec, drain: int) -> dict[str, Any]:
    """A pause for the endpoints to update; a streaming worker then waits out its streams."""
    if spec.streaming is None:
        return {"exec": {"command": ["sleep", str(pre_stop_pause(spec))]}}
    ports = (str(names.PORT_HTTP), str(names.PORT_METRICS))
    script = ["/bin/sh", "-c", STREAM_DRAIN_SCRIPT, "pre-stop", str(pre_stop_pause(spec)), str(drain), *ports]
    return {"exec": {"command": script}}


def termination_grace_seconds(spec: SpeechClusterSpec, drain: int) -> int:
    """The pause, the streams' drain (streaming only), Triton's exit timeout for requests in
    flight after SIGTERM (drainSeconds), and a margin: e.g. 5 + 240 + 30 + 5 = 280 s."""
    streams = drain if spec.streaming is not None else 0
    exit_timeout = spec.scaling.scale_down.drain_seconds
    return ENDPOINT_PROPAGATION_SECONDS + streams + exit_timeout + EXIT_MARGIN_SECONDS


def _container(spec: SpeechClusterSpec, drain: int) -> dict[str, Any]:
    model_config_path = f"{spec.model.repository.rstrip('/')}/{spec.model.name}/{names.MODEL_CONFIG_FILE}"
    return {
        "name": names.CONTAINER_NAME,
        "image": spec.worker.image,
        "command": triton_args(spec)[:1],
        "args": triton_args(spec)[1:],
        "ports": [
            {"name": names.PORT_NAME_HTTP, "containerPort": names.PORT_HTTP},
            {"name": names.PORT_NAME_GRPC, "containerPort": names.PORT_GRPC},
            {"name": names.PORT_NAME_METRICS, "containerPort": names.PORT_METRICS},
        ],
        "resources": _resources(spec),
        "startupProbe": _probe(
            ready_path(spec), PROBE_PERIOD_SECONDS, _startup_failures(spec.model.warmup_seconds)
        ),
        "readinessProbe": _probe(ready_path(spec), PROBE_PERIOD_SECONDS, 3),
        "livenessProbe": _probe("/v2/health/live", 10, 6),
        "lifecycle": {"preStop": _pre_stop(spec, drain)},
        "volumeMounts": [
            {
                "name": names.CONFIG_VOLUME,
                "mountPath": model_config_path,
                "subPath": names.MODEL_CONFIG_FILE,
                "readOnly": True,
            },
            *fallback_mounts(spec),
            {"name": names.SHM_VOLUME, "mountPath": "/dev/shm"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": TRITON_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def _scheduling(
    spec: SpeechClusterSpec, shard: ShardSpec, owner: Owner, pool: PoolSpec | None
) -> dict[str, Any]:
    node_selector = {**spec.worker.node_selector, names.TOPOLOGY_REGION: shard.region}
    if pool is not None:
        node_selector.update(pool.node_selector)
    out: dict[str, Any] = {
        "nodeSelector": node_selector,
        "topologySpreadConstraints": [
            {
                # ScheduleAnyway: when one zone runs out of GPUs, a replica in another zone
                # is worth more to the SLO than perfect balance.
                "maxSkew": 1,
                "topologyKey": names.TOPOLOGY_ZONE,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": names.selector_labels(owner.name, shard.name)},
            }
        ],
    }
    if shard.zones:
        out["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": names.TOPOLOGY_ZONE,
                                    "operator": "In",
                                    "values": list(shard.zones),
                                }
                            ]
                        }
                    ]
                }
            }
        }
    tolerations = [*spec.worker.tolerations, *(pool.tolerations if pool is not None else ())]
    if tolerations:
        out["tolerations"] = [t.model_dump(by_alias=True, exclude_none=True) for t in tolerations]
    if spec.worker.priority_class_name:
        out["priorityClassName"] = spec.worker.priority_class_name
    return out


def _pod_template(
    owner: Owner, spec: SpeechClusterSpec, shard: ShardSpec, drain: int, pool: PoolSpec | None
) -> dict[str, Any]:
    name = names.shard_resource_name(owner.name, shard.name)
    return {
        "metadata": {
            "labels": _labels(owner, spec, shard, pool),
            "annotations": {
                names.ANNOTATION_CONFIG_HASH: configs_hash(spec),
                names.ANNOTATION_WARMUP_SECONDS: str(spec.model.warmup_seconds),
                names.ANNOTATION_LANGUAGES: ",".join(shard.languages),
            },
        },
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": termination_grace_seconds(spec, drain),
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": TRITON_UID,
                "runAsGroup": TRITON_UID,
                "fsGroup": TRITON_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [_container(spec, drain)],
            "volumes": [
                {"name": names.CONFIG_VOLUME, "configMap": {"name": name}},
                # Triton's Python backend and pinned host buffers use shared memory; the
                # container runtime's default 64 MiB /dev/shm is too small for batches.
                {"name": names.SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            ],
            **_scheduling(spec, shard, owner, pool),
        },
    }


def _labels(owner: Owner, spec: SpeechClusterSpec, shard: ShardSpec, pool: PoolSpec | None) -> dict[str, str]:
    base = labels(owner, spec, shard)
    return base if pool is None else {**base, names.LABEL_POOL: pool.name}


def render_deployment(
    owner: Owner, spec: SpeechClusterSpec, shard: ShardSpec, *, drain_seconds: int | None = None,
    pool: PoolSpec | None = None,
) -> dict[str, Any]:
    """The Deployment without spec.replicas: the scaler owns that one field (names.FIELD_MANAGER_SCALER).

    `drain_seconds` is the shard's learned drain (status.shards[].drainSeconds; None = not
    learned yet), kept within the spec's bounds (decide/drain.py). With `pool` (spec.placement)
    it is the shard's Deployment on that pool, `<cluster>-<shard>-<pool>`: the same pods plus the
    pool's nodeSelector, tolerations and label; its selector adds the pool label, so the pools'
    Deployments never select each other's pods while the shard's Service selects them all."""
    drain = clamp_drain(drain_seconds, spec)
    meta = metadata(owner, spec, shard)
    selector = names.selector_labels(owner.name, shard.name)
    if pool is not None:
        meta = {**meta, "name": names.pool_resource_name(owner.name, shard.name, pool.name),
                "labels": _labels(owner, spec, shard, pool)}
        selector = names.pool_selector_labels(owner.name, shard.name, pool.name)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": selector},
            "revisionHistoryLimit": 3,
            # A rollout adds new pods before removing old ones: capacity never dips below
            # what the scaler decided while a config change rolls.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            },
            "progressDeadlineSeconds": max(600, 4 * spec.model.warmup_seconds),
            "template": _pod_template(owner, spec, shard, drain, pool),
        },
    }
