"""The only module that talks to the Kubernetes API: server-side apply, scaling, pods, status."""

from __future__ import annotations

import base64
import functools
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar, cast

import kubernetes
from kubernetes.client.exceptions import ApiException

from voxscale import names
from voxscale.decide.types import PodCounts

log = logging.getLogger(__name__)

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
# Every call has a deadline: a hung apiserver must not stall the control loop.
REQUEST_TIMEOUT_SECONDS = 10.0
# Child kinds per shard, in apply order, with the API group/version path they live under.
CHILD_KINDS: dict[str, tuple[str, str]] = {
    "ConfigMap": ("api/v1", "configmaps"),
    "Service": ("api/v1", "services"),
    "PodDisruptionBudget": ("apis/policy/v1", "poddisruptionbudgets"),
    "Deployment": ("apis/apps/v1", "deployments"),
}


P = ParamSpec("P")
R = TypeVar("R")


class KubeApiError(ApiException):
    """An ApiException whose text is `HTTP <code> <reason>` and the API server's Status message.

    The client's own text adds every response header and the raw body: a proxy's HTML page or
    audit ids in logs, Events (kopf posts handler errors) and `tick failed` reasons in status.
    """

    def __init__(self, err: ApiException) -> None:
        super().__init__(status=err.status, reason=err.reason)
        self.message = _status_message(err.body)

    def __str__(self) -> str:
        line = f"HTTP {self.status} {self.reason or ''}".rstrip()
        return f"{line}: {self.message}" if self.message else line


def _status_message(body: Any) -> str:
    """`message` of a metav1.Status body (what kubectl prints too); nothing from any other body."""
    try:
        status = json.loads(body) if isinstance(body, str | bytes) else None
    except ValueError:
        return ""
    if not isinstance(status, dict) or status.get("kind") != "Status":
        return ""
    message = status.get("message")
    return message[:300] if isinstance(message, str) else ""


def _plain_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Re-raise the client's ApiException as KubeApiError (same status, plain text)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except KubeApiError:
            raise
        except ApiException as err:
            raise KubeApiError(err) from None

    return wrapper


@dataclass(frozen=True)
class ShardPods:
    """A shard's Deployment and pods as the API sees them now."""

    exists: bool
    counts: PodCounts
    warmups: tuple[tuple[float, float], ...] = ()
    """(became-Ready unix time, created->Ready seconds) for each Ready pod."""
    pending_reasons: tuple[str, ...] = ()
    deployment_uid: str | None = None


def _ts(value: datetime | str | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(tzinfo=value.tzinfo or UTC).timestamp()


def classify_pods(
    pods: Iterable[Any], desired: int
) -> tuple[PodCounts, list[tuple[float, float]], list[str]]:
    """Count ready / warming / pending / terminating pods (kubernetes V1Pod objects).

    A pod the scheduler could not place is *pending*, not warming: it is not coming until
    capacity appears, so it must not stop the operator from reporting a GPU shortage.
    """
    ready = warming = pending = terminating = 0
    warmups: list[tuple[float, float]] = []
    reasons: list[str] = []
    for pod in pods:
        if pod.metadata.deletion_timestamp is not None:
            terminating += 1
            continue
        conditions = {c.type: c for c in (pod.status.conditions or [])}
        scheduled = conditions.get("PodScheduled")
        is_ready = conditions.get("Ready")
        if is_ready is not None and is_ready.status == "True":
            ready += 1
            created, became = _ts(pod.metadata.creation_timestamp), _ts(is_ready.last_transition_time)
            if created is not None and became is not None and became >= created:
                warmups.append((became, became - created))
        elif scheduled is not None and scheduled.status == "False":
            pending += 1
            if scheduled.message:
                reasons.append(str(scheduled.message))
        else:
            warming += 1
    return PodCounts(desired, ready, warming, pending, terminating), warmups, reasons


@dataclass
class Kube:
    """Thin wrapper over the official client. Synchronous: call from a worker thread."""

    api: Any = field(default=None)

    def __post_init__(self) -> None:
        if self.api is None:
            self.api = kubernetes.client.ApiClient()
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.apps = kubernetes.client.AppsV1Api(self.api)
        self.autoscaling = kubernetes.client.AutoscalingV2Api(self.api)
        self.custom = kubernetes.client.CustomObjectsApi(self.api)

    @classmethod
    def from_environment(cls) -> Kube:
        """In-cluster service account if present, else the current kubeconfig."""
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        return cls()

    # ------------------------------------------------------------------ apply / delete

    def _call(
        self, method: str, path: str, body: Any, content_type: str, query: Sequence[tuple[str, Any]]
    ) -> Any:
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if not hasattr(self.api, "param_serialize"):  # kubernetes < 35
            return self.api.call_api(
                path,
                method,
                query_params=list(query),
                header_params=headers,
                body=body,
                response_type="object",
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        # kubernetes >= 35 (openapi-generator 7) split call_api into serialize, send, read; the
        # old keyword call fails with TypeError on every apply, so no child was ever created.
        method, url, headers, body, post = self.api.param_serialize(
            method,
            path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(
            method,
            url,
            header_params=headers,
            body=body,
            post_params=post,
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
        )
        response.read()
        if not 200 <= response.status <= 299:
            raise ApiException(http_resp=response)
        return json.loads(response.data) if response.data else {}

    @_plain_errors
    def apply(self, obj: dict[str, Any], *, manager: str = names.FIELD_MANAGER) -> dict[str, Any]:
        """Server-side apply, forced: the operator is the owner of what it renders."""
        group, plural = CHILD_KINDS[obj["kind"]]
        meta = obj["metadata"]
        path = f"/{group}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"
        result: dict[str, Any] = self._call(
            "PATCH", path, obj, APPLY, [("fieldManager", manager), ("force", True)]
        )
        return result

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        """Apply only spec.replicas under the scaler's own field manager."""
        self.apply(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": deployment, "namespace": namespace},
                "spec": {"replicas": replicas},
            },
            manager=names.FIELD_MANAGER_SCALER,
        )

    @_plain_errors
    def delete_shards_except(self, namespace: str, cluster: str, keep: set[str]) -> list[str]:
        """Delete the children of shards no longer in the spec; returns the shard names removed."""
        removed: set[str] = set()
        selector = f"{names.LABEL_CLUSTER}={cluster}"
        for group, plural in CHILD_KINDS.values():
            listing = self._call(
                "GET", f"/{group}/namespaces/{namespace}/{plural}", None, MERGE, [("labelSelector", selector)]
            )
            for item in listing.get("items", []):
                shard = item["metadata"].get("labels", {}).get(names.LABEL_SHARD)
                if shard is not None and shard not in keep:
                    self._delete(f"/{group}/namespaces/{namespace}/{plural}/{item['metadata']['name']}")
                    removed.add(shard)
        return sorted(removed)

    def _delete(self, path: str) -> None:
        try:
            self._call("DELETE", path, {"propagationPolicy": "Background"}, "application/json", [])
        except ApiException as err:
            if err.status != 404:
                raise

    # ------------------------------------------------------------------ reads

    @_plain_errors
    def read_shard(self, namespace: str, cluster: str, shard: str) -> ShardPods:
        name = names.shard_resource_name(cluster, shard)
        try:
            dep = self.apps.read_namespaced_deployment(
                name, namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        except ApiException as err:
            if err.status == 404:
                return ShardPods(exists=False, counts=PodCounts(desired=0))
            raise
        selector = ",".join(f"{k}={v}" for k, v in names.selector_labels(cluster, shard).items())
        pods = self.core.list_namespaced_pod(
            namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT_SECONDS
        ).items
        counts, warmups, reasons = classify_pods(pods, int(dep.spec.replicas or 0))
        uid = dep.metadata.uid if dep.metadata else None
        return ShardPods(True, counts, tuple(warmups), tuple(reasons), uid)

    @_plain_errors
    def hpa_targets(self, namespace: str) -> dict[str, str]:
        """Deployment name -> HPA name, for every HPA in the namespace that targets a Deployment."""
        hpas = self.autoscaling.list_namespaced_horizontal_pod_autoscaler(
            namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS
        ).items
        return {
            h.spec.scale_target_ref.name: str(h.metadata.name if h.metadata else "?")
            for h in hpas
            if h.spec.scale_target_ref.kind == "Deployment"
        }

    @_plain_errors
    def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        """One key of one Secret (the operator's RBAC allows get on named Secrets only)."""
        secret = self.core.read_namespaced_secret(name, namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS)
        data = (secret.data or {}).get(key)
        if data is None:
            raise KeyError(f"Secret {namespace}/{name} has no key {key!r}")
        try:
            return base64.b64decode(data).decode().strip()
        except ValueError:  # binascii's and the codec's texts can quote bytes of the secret
            raise ValueError(f"Secret {namespace}/{name} key {key!r} is not base64 of UTF-8 text") from None

    # ------------------------------------------------------------------ status and events

    @_plain_errors
    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            names.GROUP,
            names.VERSION,
            namespace,
            names.PLURAL,
            name,
            {"status": status},
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
        )

    def event(self, owner: dict[str, Any], type_: str, reason: str, message: str, now: datetime) -> None:
        """A core/v1 Event on the SpeechCluster (kubectl describe sc shows it)."""
        meta = owner["metadata"]
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": names.API_VERSION,
                "kind": names.KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
            "source": {"component": names.OPERATOR_NAME},
            "reportingComponent": names.OPERATOR_NAME,
        }
        try:
            self.core.create_namespaced_event(
                meta["namespace"], cast(Any, body), _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        except ApiException as err:  # an Event is a courtesy; losing one must not fail a tick
            log.warning("could not post Event %s: %s", reason, err.reason)
