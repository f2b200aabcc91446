"""The only module that talks to the Kubernetes API: server-side apply, scaling, pods, status.

Every call goes through `kubernetes.dynamic.DynamicClient`, the generic client that the
kubernetes Python client project maintains inside the package we already depend on: it has a
real `server_side_apply` (field manager, forced), reaches our SpeechCluster and the built-in
kinds by apiVersion + kind, and raises the client's own ApiException. kr8s or lightkube would
do the same for the nine kinds used here at the cost of a second client library with its own
kubeconfig, auth and error types. (Before, this module drove the generated ApiClient's private
`call_api`, whose signature changed in kubernetes 35 and broke every apply.)
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import kubernetes
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from voxscale import names
from voxscale.decide.types import PodCounts
from voxscale.pods import ShardPods, classify_pods

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
# The client keeps discovery in $TMPDIR/osrcp-<host hash>.json, read at start by every process
# that talks to the same host. A path under a device file can never exist: nothing is read, the
# client's writes fail (which it ignores by design), and discovery stays in this Kube's memory.
_NO_DISCOVERY_FILE = os.path.join(os.devnull, "voxscale-discovery.json")


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


class KindNotServedError(ResourceNotFoundError):
    """The API server serves no such kind: its CRD is not installed (e.g. Gateway API routes)."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(f"the API server serves no {kind} in {api_version}")
        self.api_version, self.kind = api_version, kind


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


class _Dynamic(DynamicClient):
    """The dynamic client with a deadline on every request, discovery's included."""

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        params.setdefault("_request_timeout", REQUEST_TIMEOUT_SECONDS)
        return super().request(method, path, body, **params)


def _json(response: Any) -> dict[str, Any]:
    """The body of a `serialize=False` answer as plain JSON (ResourceInstance is no dict and costs
    a wrapper per field: a 40-pod list is ~2,000 of them)."""
    data = json.loads(response.data) if response.data else {}
    return data if isinstance(data, dict) else {}


@dataclass
class Kube:
    """Thin wrapper over the official client. Synchronous: call from a worker thread."""

    api: Any = field(default=None)

    def __post_init__(self) -> None:
        if self.api is None:
            self.api = kubernetes.client.ApiClient()
        self._lock = threading.Lock()
        self._dynamic: Any = None
        self._resources: dict[tuple[str, str], Any] = {}

    @classmethod
    def from_environment(cls) -> Kube:
        """In-cluster service account if present, else the current kubeconfig."""
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        return cls()

    @classmethod
    def from_kubeconfig(cls, path: Path | str) -> Kube:
        """A Kube for one kubeconfig file; the process-wide default client is left alone."""
        return cls(api=kubernetes.config.new_client_from_config(config_file=str(path)))  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.api.close()

    def _resource(self, api_version: str, kind: str) -> Any:
        """The API resource of a kind, discovered on first use and kept for this Kube's life.

        Keeping it is safe: a resource is a URL template and verbs, and the GA built-in versions
        and our CRD's served version do not move under a running operator. A kind not found (CRD
        not installed yet) raises and is not kept, so the next call looks again. Discovery is one
        request per API group (5 here) instead of one per call, and the lock keeps concurrent
        shard ticks from discovering twice.
        """
        with self._lock:
            if self._dynamic is None:
                self._dynamic = _Dynamic(self.api, cache_file=_NO_DISCOVERY_FILE)  # type: ignore[no-untyped-call]
            key = (api_version, kind)
            if key not in self._resources:
                try:
                    self._resources[key] = self._dynamic.resources.get(api_version=api_version, kind=kind)
                except ResourceNotFoundError:
                    raise KindNotServedError(api_version, kind) from None
            return self._resources[key]

    def _get(self, api_version: str, kind: str, namespace: str, name: str | None = None,
             selector: str | None = None) -> dict[str, Any]:
        resource = self._resource(api_version, kind)
        return _json(resource.get(name=name, namespace=namespace, label_selector=selector, serialize=False))

    # ------------------------------------------------------------------ apply / delete

    @_plain_errors
    def apply(self, obj: dict[str, Any], *, manager: str = names.FIELD_MANAGER) -> dict[str, Any]:
        """Server-side apply, forced: the operator is the owner of what it renders."""
        meta = obj["metadata"]
        answer = self._resource(obj["apiVersion"], obj["kind"]).server_side_apply(
            body=obj, name=meta["name"], namespace=meta["namespace"], field_manager=manager,
            force_conflicts=True, serialize=False,
        )
        return _json(answer)

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
    def delete_shards_except(self, namespace: str, cluster: str, keep: set[str],
                             deployments: set[str] | None = None) -> list[str]:
        """Delete the children of shards no longer in the spec; returns the shard names removed.

        `deployments`: the Deployment names rendered now; another Deployment of a kept shard (a
        pool that left spec.placement, or the one-pool Deployment when placement was added) goes too.
        """
        removed: set[str] = set()
        selector = f"{names.LABEL_CLUSTER}={cluster}"
        for kind, (path, _) in CHILD_KINDS.items():
            api_version = path.split("/", 1)[1]  # "apis/apps/v1" -> "apps/v1", "api/v1" -> "v1"
            for item in self._get(api_version, kind, namespace, selector=selector).get("items", []):
                shard = item["metadata"].get("labels", {}).get(names.LABEL_SHARD)
                name = item["metadata"]["name"]
                if shard is not None and shard not in keep:
                    self._delete(api_version, kind, namespace, name)
                    removed.add(shard)
                elif kind == "Deployment" and deployments is not None and name not in deployments:
                    self._delete(api_version, kind, namespace, name)
        return sorted(removed)

    @_plain_errors
    def delete_object(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Delete one object; one that is gone already, or a kind not served, is no error."""
        with contextlib.suppress(KindNotServedError):
            self._delete(api_version, kind, namespace, name)

    def _delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        resource = self._resource(api_version, kind)
        try:
            resource.delete(name=name, namespace=namespace, propagation_policy="Background", serialize=False)
        except ApiException as err:
            if err.status != 404:
                raise

    # ------------------------------------------------------------------ reads

    @_plain_errors
    def read_shard(self, namespace: str, cluster: str, shard: str) -> ShardPods:
        return self._read_deployment(namespace, names.shard_resource_name(cluster, shard),
                                     names.selector_labels(cluster, shard))

    @_plain_errors
    def read_pool(self, namespace: str, cluster: str, shard: str, pool: str) -> ShardPods:
        """A shard's Deployment on one pool (spec.placement) and its pods."""
        return self._read_deployment(namespace, names.pool_resource_name(cluster, shard, pool),
                                     names.pool_selector_labels(cluster, shard, pool))

    def _read_deployment(self, namespace: str, name: str, labels: dict[str, str]) -> ShardPods:
        try:
            dep = self._get("apps/v1", "Deployment", namespace, name)
        except ApiException as err:
            if err.status == 404:
                return ShardPods(exists=False, counts=PodCounts(asked=0))
            raise
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        spec_replicas = int(dep.get("spec", {}).get("replicas") or 0)
        pods = self.list_pods(namespace, selector)
        counts, warmups, reasons = classify_pods(pods, spec_replicas, time.time())
        uid = dep.get("metadata", {}).get("uid")
        return ShardPods(True, counts, tuple(warmups), tuple(reasons), uid)

    @_plain_errors
    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """Pods matching a label selector, as the API's JSON."""
        items: list[dict[str, Any]] = self._get("v1", "Pod", namespace, selector=selector).get("items", [])
        return items

    @_plain_errors
    def hpa_targets(self, namespace: str) -> dict[str, str]:
        """Deployment name -> HPA name, for every HPA in the namespace that targets a Deployment."""
        hpas = self._get("autoscaling/v2", "HorizontalPodAutoscaler", namespace).get("items", [])
        refs = [(h.get("spec", {}).get("scaleTargetRef", {}), h.get("metadata", {})) for h in hpas]
        return {ref["name"]: str(m.get("name", "?")) for ref, m in refs if ref.get("kind") == "Deployment"}

    @_plain_errors
    def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        """One key of one Secret (the operator's RBAC allows get on named Secrets only)."""
        data = (self._get("v1", "Secret", namespace, name).get("data") or {}).get(key)
        if data is None:
            raise KeyError(f"Secret {namespace}/{name} has no key {key!r}")
        try:
            return base64.b64decode(data).decode().strip()
        except ValueError:  # binascii's and the codec's texts can quote bytes of the secret
            raise ValueError(f"Secret {namespace}/{name} key {key!r} is not base64 of UTF-8 text") from None

    @_plain_errors
    def read_speechcluster(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The SpeechCluster as the API's JSON, or None if there is none by that name."""
        try:
            return self._get(names.API_VERSION, names.KIND, namespace, name)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    # ------------------------------------------------------------------ writes: status, pods, events

    @_plain_errors
    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge-patch the SpeechCluster's status subresource."""
        self._resource(names.API_VERSION, names.KIND).status.patch(
            body={"status": status}, name=name, namespace=namespace, content_type=MERGE, serialize=False
        )

    @_plain_errors
    def patch_pod(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """Merge-patch one pod (the lab's bridge marks a pod's model loaded this way)."""
        self._resource("v1", "Pod").patch(
            body=patch, name=name, namespace=namespace, content_type=MERGE, serialize=False
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
            self._resource("v1", "Event").create(body=body, namespace=meta["namespace"], serialize=False)
        except ApiException as err:  # an Event is a courtesy; losing one must not fail a tick
            log.warning("could not post Event %s: %s", reason, err.reason)
