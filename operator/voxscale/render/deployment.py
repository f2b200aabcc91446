"""The shard's Deployment of Triton workers, rendered from typed spec fields (no shell strings)."""

from __future__ import annotations

import math
from typing import Any

from voxscale import names
from voxscale.api import ShardSpec, SpeechClusterSpec
from voxscale.render.common import Owner, labels, metadata
from voxscale.render.configmap import config_hash, render_model_config

# Seconds between the pod leaving the Service endpoints and SIGTERM, so that clients and
# kube-proxy stop sending new streams before Triton stops accepting them.
ENDPOINT_PROPAGATION_SECONDS = 5
PROBE_PERIOD_SECONDS = 5
# Non-root user of the NGC Triton image ("triton-server", uid 1000).
TRITON_UID = 1000


def triton_args(spec: SpeechClusterSpec) -> list[str]:
    """tritonserver's command line: explicit load of one model, strict readiness, metrics on."""
    model_dir = spec.model.repository.rstrip("/")
    args = [
        "tritonserver",
        f"--model-repository={model_dir}",
        "--model-control-mode=explicit",
        f"--load-model={spec.model.name}",
        # Ready only when every loaded model is ready: readiness == warm-up finished.
        "--strict-readiness=true",
        "--exit-on-error=true",
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


def _container(spec: SpeechClusterSpec) -> dict[str, Any]:
    model_config_path = f"{spec.model.repository.rstrip('/')}/{spec.model.name}/{names.MODEL_CONFIG_FILE}"
    drain = spec.scaling.scale_down.drain_seconds
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
            "/v2/health/ready", PROBE_PERIOD_SECONDS, _startup_failures(spec.model.warmup_seconds)
        ),
        "readinessProbe": _probe("/v2/health/ready", PROBE_PERIOD_SECONDS, 3),
        "livenessProbe": _probe("/v2/health/live", 10, 6),
        "lifecycle": {
            "preStop": {"exec": {"command": ["sleep", str(min(ENDPOINT_PROPAGATION_SECONDS, drain + 1))]}}
        },
        "volumeMounts": [
            {
                "name": names.CONFIG_VOLUME,
                "mountPath": model_config_path,
                "subPath": names.MODEL_CONFIG_FILE,
                "readOnly": True,
            },
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


def _scheduling(spec: SpeechClusterSpec, shard: ShardSpec, owner: Owner) -> dict[str, Any]:
    node_selector = {**spec.worker.node_selector, names.TOPOLOGY_REGION: shard.region}
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
    if spec.worker.tolerations:
        out["tolerations"] = [t.model_dump(by_alias=True, exclude_none=True) for t in spec.worker.tolerations]
    if spec.worker.priority_class_name:
        out["priorityClassName"] = spec.worker.priority_class_name
    return out


def _pod_template(owner: Owner, spec: SpeechClusterSpec, shard: ShardSpec) -> dict[str, Any]:
    drain = spec.scaling.scale_down.drain_seconds
    name = names.shard_resource_name(owner.name, shard.name)
    return {
        "metadata": {
            "labels": labels(owner, spec, shard),
            "annotations": {
                names.ANNOTATION_CONFIG_HASH: config_hash(render_model_config(spec)),
                names.ANNOTATION_WARMUP_SECONDS: str(spec.model.warmup_seconds),
                names.ANNOTATION_LANGUAGES: ",".join(shard.languages),
            },
        },
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": drain + ENDPOINT_PROPAGATION_SECONDS + 5,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": TRITON_UID,
                "runAsGroup": TRITON_UID,
                "fsGroup": TRITON_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [_container(spec)],
            "volumes": [
                {"name": names.CONFIG_VOLUME, "configMap": {"name": name}},
                # Triton's Python backend and pinned host buffers use shared memory; the
                # container runtime's default 64 MiB /dev/shm is too small for batches.
                {"name": names.SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            ],
            **_scheduling(spec, shard, owner),
        },
    }


def render_deployment(owner: Owner, spec: SpeechClusterSpec, shard: ShardSpec) -> dict[str, Any]:
    """The Deployment without spec.replicas: the scaler owns that one field (names.FIELD_MANAGER_SCALER)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, spec, shard),
        "spec": {
            "selector": {"matchLabels": names.selector_labels(owner.name, shard.name)},
            "revisionHistoryLimit": 3,
            # A rollout adds new pods before removing old ones: capacity never dips below
            # what the scaler decided while a config change rolls.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            },
            "progressDeadlineSeconds": max(600, 4 * spec.model.warmup_seconds),
            "template": _pod_template(owner, spec, shard),
        },
    }
