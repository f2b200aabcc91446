"""Small builders shared by the unit tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from voxscale import names
from voxscale.api import SpeechClusterSpec, parse_spec
from voxscale.decide.types import ClassMetrics, PodCounts, ShardMetrics
from voxscale.metrics.protocol import PodStreams, ShardSelector
from voxscale.pods import ShardPods
from voxscale.series import History

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "speechcluster.yaml"


def example_doc() -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    assert isinstance(doc, dict)
    return doc


def pod_json(name: str, labels: dict[str, str], *, ready: bool = True,
             annotations: dict[str, str] | None = None, terminating: bool = False) -> dict[str, Any]:
    """A worker pod as the API returns it: Running, Ready or not, maybe terminating."""
    meta: dict[str, Any] = {"name": name, "labels": dict(labels), "annotations": dict(annotations or {})}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    ready_condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {"metadata": meta, "status": {"phase": "Running", "conditions": [ready_condition]}}


def spec_with(**overrides: Any) -> SpeechClusterSpec:
    """The example spec with top-level sections replaced, e.g. spec_with(slo={...})."""
    raw = copy.deepcopy(example_doc()["spec"])
    raw.update(overrides)
    return parse_spec(raw)


@dataclass
class RecordingKube:
    """The one fake of the operator's Kubernetes seam (handlers.OperatorAPI, which includes the
    loop's ClusterAPI): in-memory Deployments and HPAs, and a record of every call and write.

    A Deployment it has not seen has `default_replicas` (all Ready unless `ready` says fewer);
    a shard in `broken` fails its read like an apiserver 500.
    """

    secrets: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """(namespace, Secret, key) -> value."""
    replicas: dict[str, int] = field(default_factory=dict)
    """Deployment name -> spec.replicas."""
    ready: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    """Deployment name -> pods the scheduler cannot place (read_pool only)."""
    hpas: dict[str, str] = field(default_factory=dict)
    """Deployment name -> name of an HPA targeting it."""
    broken: set[str] = field(default_factory=set)
    existing_shards: set[str] = field(default_factory=set)
    """Shards with child objects, as delete_shards_except lists them (apply adds to it)."""
    default_replicas: int = 2
    calls: list[str] = field(default_factory=list)
    applied: list[dict[str, Any]] = field(default_factory=list)
    scaled: list[tuple[str, int]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    secret_reads: list[str] = field(default_factory=list)
    deleted: list[tuple[str, str]] = field(default_factory=list)
    """(kind, name) of every delete_object call."""
    apply_errors: dict[str, Exception] = field(default_factory=dict)
    """kind -> what applying an object of that kind raises (e.g. KindNotServedError)."""
    pods: list[dict[str, Any]] = field(default_factory=list)
    """Pod JSON that list_pods filters by label selector; patch_pod merges into it."""
    patched: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(pod, patch) of every patch_pod call."""
    patch_error: Exception | None = None
    """What patch_pod raises (e.g. a 403 when RBAC lacks pods patch)."""

    def read_shard(self, namespace: str, cluster: str, shard: str) -> ShardPods:
        self.calls.append("read_shard")
        if shard in self.broken:
            raise RuntimeError("apiserver said 500")
        name = names.shard_resource_name(cluster, shard)
        desired = self.replicas.setdefault(name, self.default_replicas)
        ready = min(desired, self.ready.get(name, desired))
        return ShardPods(True, PodCounts(desired, ready=ready, warming=desired - ready))

    def read_pool(self, namespace: str, cluster: str, shard: str, pool: str) -> ShardPods:
        """A shard's Deployment on a pool: `pending[name]` of its pods unplaced, the rest Ready
        (or `ready[name]` of them)."""
        self.calls.append("read_pool")
        name = names.pool_resource_name(cluster, shard, pool)
        desired = self.replicas.setdefault(name, 0)
        pending = min(desired, self.pending.get(name, 0))
        ready = min(desired - pending, self.ready.get(name, desired - pending))
        reasons = ("0/8 nodes are available: 8 Insufficient nvidia.com/gpu.",) if pending else ()
        counts = PodCounts(desired, ready=ready, warming=desired - pending - ready, pending=pending)
        return ShardPods(True, counts, pending_reasons=reasons)

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        self.calls.append("scale")
        self.replicas[deployment] = replicas
        self.scaled.append((deployment, replicas))

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.calls.append("list_pods")
        wanted = dict(pair.split("=", 1) for pair in selector.split(",") if pair)
        return [copy.deepcopy(p) for p in self.pods
                if wanted.items() <= (p["metadata"].get("labels") or {}).items()]

    def patch_pod(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append("patch_pod")
        if self.patch_error is not None:
            raise self.patch_error
        self.patched.append((name, patch))
        pod = next(p for p in self.pods if p["metadata"]["name"] == name)
        annotations = pod["metadata"].setdefault("annotations", {})
        annotations.update(patch.get("metadata", {}).get("annotations", {}))

    def hpa_targets(self, namespace: str) -> dict[str, str]:
        self.calls.append("hpa_targets")
        return self.hpas

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.calls.append("patch_status")
        self.statuses.append(status)

    def event(self, owner: dict[str, Any], type_: str, reason: str, message: str, now: datetime) -> None:
        self.calls.append("event")
        self.events.append((type_, reason, message))

    def apply(self, obj: dict[str, Any], *, manager: str = names.FIELD_MANAGER) -> dict[str, Any]:
        self.calls.append("apply")
        if obj["kind"] in self.apply_errors:
            raise self.apply_errors[obj["kind"]]
        self.applied.append(obj)
        shard = obj["metadata"].get("labels", {}).get(names.LABEL_SHARD)
        if shard is not None:
            self.existing_shards.add(shard)
        return obj

    def delete_shards_except(self, namespace: str, cluster: str, keep: set[str],
                             deployments: set[str] | None = None) -> list[str]:
        self.calls.append("delete_shards_except")
        removed = sorted(self.existing_shards - keep)
        self.existing_shards &= keep
        return removed

    def delete_object(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.calls.append("delete_object")
        self.deleted.append((kind, name))

    def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        self.calls.append("read_secret_key")
        self.secret_reads.append(name)
        return self.secrets[(namespace, name, key)]


@dataclass
class FakeMetrics:
    """A metrics source (sources.ClosableSource) with a fixed rate (req/s) and latency per shard;
    a shard's rate None = Prometheus has no data for it. History repeats the current rate."""

    rate: dict[str, float | None]
    latency_ms: float | None = 100.0
    closed: bool = False
    streams: dict[str, dict[str, float]] = field(default_factory=dict)
    """shard -> {pod: live streams}; a pod left out has no data."""
    session_p99: dict[str, float] = field(default_factory=dict)
    """shard -> p99 stream length in seconds; a shard left out has no data."""
    classes: dict[tuple[str, str], ClassMetrics] = field(default_factory=dict)
    """(shard, class) -> that Batch class's reading; a pair left out has no data."""

    def observe(self, selector: ShardSelector, now: float) -> ShardMetrics:
        rate = self.rate.get(selector.shard)
        latency = self.latency_ms if rate is not None else None
        errors = () if rate is not None else ("empty answer",)
        return ShardMetrics(at=now, rate=rate, latency_ms=latency, errors=errors)

    def history(self, selector: ShardSelector, start: float, end: float, step: float) -> History:
        n = int((end - start) // step) + 1
        rate = self.rate.get(selector.shard)
        return History.of(start, step, np.full(n, np.nan if rate is None else rate))

    def pod_streams(self, selector: ShardSelector, now: float) -> PodStreams:
        by_pod = self.streams.get(selector.shard, {})
        return PodStreams(now, dict(by_pod), () if by_pod else ("active_streams: empty result",))

    def session_seconds(self, selector: ShardSelector, now: float) -> float | None:
        return self.session_p99.get(selector.shard)

    def class_metrics(self, selector: ShardSelector, traffic_class: str, now: float) -> ClassMetrics:
        known = self.classes.get((selector.shard, traffic_class))
        return known or ClassMetrics(traffic_class, now, errors=("backlog: empty result",))

    def close(self) -> None:
        self.closed = True
