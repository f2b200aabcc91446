"""A shard's pods as the warm-up rule sees them: ready, warming, pending, terminating (pure).

`classify_pods` turns the API's pod JSON and `now` into counts, warm-up samples and the
scheduler's reasons; `voxscale.k8s` fetches the pods and calls it, and nothing here does I/O,
so every case is a row in a table test (tests/test_k8s_classify_pods.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from voxscale import names
from voxscale.decide.types import PodCounts
from voxscale.decide.victims import PodLoad


@dataclass(frozen=True)
class ShardPods:
    """A shard's Deployment and pods as the API sees them now."""

    exists: bool
    counts: PodCounts
    """Ready / warming / pending / terminating, `asked` = spec_replicas (until the loop knows what
    it asked for)."""
    warmups: tuple[tuple[float, float], ...] = ()
    """(became-Ready unix time, created->Ready seconds) for each Ready pod."""
    pending_reasons: tuple[str, ...] = ()
    deployment_uid: str | None = None

    @property
    def spec_replicas(self) -> int:
        """The Deployment's spec.replicas as read, a hand edit included."""
        return self.counts.asked


def _ts(value: Any) -> float | None:
    """Unix seconds of an API timestamp ("2026-01-01T00:00:00Z"); None if absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=parsed.tzinfo or UTC).timestamp()


def _warmup(pod: Mapping[str, Any], ready: Mapping[str, Any], now: float) -> tuple[float, float] | None:
    """(became Ready, created->Ready seconds) if this pod's Ready time is its start-up time.

    A container restart makes Ready's lastTransitionTime the latest recovery: a pod that served
    for 3 days and restarted would teach a 259,200 s warm-up, and four of those among the 32
    samples kept move the p90 there. A Ready time after `now` (the node's clock ahead of ours)
    is taken on a later tick, once, instead of on every tick until our clock passes it.
    """
    statuses = pod.get("status", {}).get("containerStatuses") or []
    if any(int(c.get("restartCount") or 0) > 0 for c in statuses):
        return None
    created = _ts(pod.get("metadata", {}).get("creationTimestamp"))
    became = _ts(ready.get("lastTransitionTime"))
    if created is None or became is None or not created <= became <= now:
        return None
    return became, became - created


def classify_pods(
    pods: Iterable[Mapping[str, Any]], spec_replicas: int, now: float
) -> tuple[PodCounts, list[tuple[float, float]], list[str]]:
    """Count ready / warming / pending / terminating pods (API JSON), with warm-up samples and
    the scheduler's messages for pending ones; `now` is unix seconds.

    A pod the scheduler could not place is *pending*, not warming: it is not coming until
    capacity appears, so it must not stop the operator from reporting a GPU shortage. A pod
    that has ended (Failed, e.g. evicted, or Succeeded) is nothing: its ReplicaSet has already
    made the replacement, which is counted.
    """
    ready = warming = pending = terminating = 0
    warmups: list[tuple[float, float]] = []
    reasons: list[str] = []
    for pod in pods:
        status = pod.get("status") or {}
        if pod.get("metadata", {}).get("deletionTimestamp") is not None:
            terminating += 1
            continue
        if status.get("phase") in {"Failed", "Succeeded"}:
            continue
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        scheduled, is_ready = conditions.get("PodScheduled", {}), conditions.get("Ready", {})
        if is_ready.get("status") == "True":
            ready += 1
            if (sample := _warmup(pod, is_ready, now)) is not None:
                warmups.append(sample)
        elif scheduled.get("status") == "False":
            pending += 1
            if scheduled.get("message"):
                reasons.append(str(scheduled["message"]))
        else:
            warming += 1
    return PodCounts(spec_replicas, ready, warming, pending, terminating), warmups, reasons


def scale_in_candidates(pods: Iterable[Mapping[str, Any]], streams: Mapping[str, float]) -> list[PodLoad]:
    """The pods a scale-in can still remove (not terminating, not ended), each with its live
    streams from `streams` (pod name -> streams; a pod absent has no data), readiness and
    current deletion-cost annotation."""
    out: list[PodLoad] = []
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        name = meta.get("name")
        if not name or meta.get("deletionTimestamp") is not None:
            continue
        if status.get("phase") in {"Failed", "Succeeded"}:
            continue
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in status.get("conditions") or [])
        cost = (meta.get("annotations") or {}).get(names.ANNOTATION_POD_DELETION_COST)
        out.append(PodLoad(str(name), streams.get(str(name)), ready, cost))
    return out
