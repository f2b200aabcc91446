"""Stream-aware scale-in on a real API server: the idlest pods go, and they drain for the learned time.

The worker pods are kwok's; their live streams come through the traffic server's /metrics as
`voxscale_active_streams{pod=...}` (what the Triton worker exports per pod), scraped by a real
Prometheus. The real kube-controller-manager's ReplicaSet controller picks the pods to delete:
what the operator controls is only each pod's deletion cost, set before it lowers replicas.
kwok plays the kubelet of a container that drains for its whole grace period (it removes a
deleted pod at deletionTimestamp, i.e. deletion + grace), so the grace period is what shows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests

from e2e.helpers import FIGURES, eventually
from e2e.operator_process import e2e_spec, events, shard_status, speechcluster
from e2e.traffic import Telemetry
from voxscale import names
from voxscale_lab.devcluster import Kubectl

TAG = "scalein"
MODEL = "asr-standin"
SHARD = "eu-en"
DEPLOYMENT = names.shard_resource_name("asr", SHARD)
SELECTOR = ",".join(f"{k}={v}" for k, v in names.selector_labels("asr", SHARD).items())
# Closed sessions: 98 % last 12 s, 2 % 25 s; all within the worker's (10 s, 30 s] bucket, so
# histogram_quantile puts the p99 at 10 + 20 × 0.99 = 29.8 s, and the drain steps up to 30 s.
SESSIONS = (12.0,) * 49 + (25.0,)
LEARNED_DRAIN = 30
# 5 s off the endpoints + 30 s for the streams + Triton's exit timeout (drainSeconds 1) + 5 s.
GRACE = 5 + LEARNED_DRAIN + 1 + 5
# Live streams given to the six pods, by name order: the four with 0, 1, 3, 5 must go.
STREAMS = (7.0, 0.0, 3.0, 12.0, 1.0, 5.0)
BUSY_RPS, QUIET_RPS = 80.0, 5.0  # 80 / 14 rps per replica -> 6; 5 -> the floor of 2


def _shard(kubectl: Kubectl, ns: str) -> dict[str, Any]:
    return shard_status(speechcluster(kubectl, ns, "asr"), SHARD) or {}


def _pods(kubectl: Kubectl, ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", "pods", "-n", ns, "-l", SELECTOR)["items"]
    return items


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _settled(kubectl: Kubectl, ns: str, replicas: int) -> list[dict[str, Any]] | None:
    """The shard's pods once exactly `replicas` exist, all Ready, none terminating, all with the
    learned grace period, and the operator stable at that count."""
    pods = _pods(kubectl, ns)
    s = _shard(kubectl, ns)
    done = (
        len(pods) == replicas
        and all(_ready(p) and "deletionTimestamp" not in p["metadata"] for p in pods)
        and all(p["spec"]["terminationGracePeriodSeconds"] == GRACE for p in pods)
        and (s.get("replicas"), s.get("mode")) == (replicas, "stable")
    )
    return pods if done else None


@dataclass
class PodWatch:
    """Polls the shard's pods in the background: each pod's last deletion cost seen before its
    deletion, and when it was first seen terminating and last seen at all."""

    kubectl: Kubectl
    ns: str
    cost: dict[str, str | None] = field(default_factory=dict)
    deleted_at: dict[str, float] = field(default_factory=dict)
    last_seen: dict[str, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def poll(self) -> None:
        while not self.stop.is_set():
            now = time.time()
            for pod in _pods(self.kubectl, self.ns):
                meta = pod["metadata"]
                name = meta["name"]
                self.last_seen[name] = now
                if "deletionTimestamp" in meta:
                    self.deleted_at.setdefault(name, now)
                self.cost[name] = (meta.get("annotations") or {}).get(names.ANNOTATION_POD_DELETION_COST)
            self.stop.wait(0.25)


@contextmanager
def watching(kubectl: Kubectl, ns: str) -> Iterator[PodWatch]:
    watch = PodWatch(kubectl, ns)
    thread = threading.Thread(target=watch.poll, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        watch.stop.set()
        thread.join(timeout=10)


def _streams_scraped(tel: Telemetry, ns: str) -> bool:
    query = f'count(last_over_time({names.ACTIVE_STREAMS_METRIC}{{namespace="{ns}"}}[1m]))'
    answer = requests.get(f"{tel.url}/api/v1/query", params={"query": query}, timeout=2).json()
    result = answer["data"]["result"]
    return bool(result) and result[0]["value"][1] == str(len(STREAMS))


def test_scale_in_removes_the_pods_with_fewest_live_streams_and_they_drain_for_the_learned_time(
    kubectl: Kubectl, tel: Telemetry, ns: str,
) -> None:
    # 1. A streaming shard at its floor of 2; closed sessions teach a 30 s drain, and the pods
    #    roll to the learned grace period (the periodic re-apply renders it from status).
    tel.traffic.set(ns, "asr", SHARD, model=MODEL, rate=QUIET_RPS, latency_ms=100.0)
    tel.traffic.set_sessions(ns, "asr", SHARD, model=MODEL, lengths=SESSIONS, per_second=2.0)
    doc = e2e_spec(ns, tel.url, shards=[SHARD], scaling={"scaleDown": {"maxPercent": 100}})
    # 64 slots a replica: the 28 live streams below need 1 (28 / (64 × 0.7)), under the floor of
    # 2, so the scale-in is the quiet rate's and the test is about which pods go.
    doc["spec"]["streaming"] = {"maxConcurrentSequencesPerReplica": 64, "sessionIdleTimeoutSeconds": 1}
    doc["spec"]["shards"][0]["minReplicas"] = 2
    kubectl.apply(doc)
    learned = eventually("the drain learned into status",
                         lambda: _shard(kubectl, ns).get("drainSeconds") == LEARNED_DRAIN, timeout=60)
    assert learned
    eventually("2 Ready pods with the learned grace period", lambda: _settled(kubectl, ns, 2), timeout=150)

    # 2. Load that needs 6; once they are Ready, each pod reports its own live streams.
    tel.traffic.set(ns, "asr", SHARD, model=MODEL, rate=BUSY_RPS)
    six = eventually("6 Ready pods", lambda: _settled(kubectl, ns, 6), timeout=120)
    streams = dict(zip(sorted(p["metadata"]["name"] for p in six), STREAMS, strict=True))
    tel.traffic.set_streams(ns, "asr", SHARD, model=MODEL, streams=streams)
    eventually("Prometheus has every pod's streams", lambda: _streams_scraped(tel, ns), timeout=30)

    # 3. The load drops. The 1m rate falls over a minute, so the operator may follow it down in
    #    several steps (6 -> 4 -> 2, each after the window); every step ranks the pods left.
    with watching(kubectl, ns) as watch:
        dropped = time.time()
        tel.traffic.set(ns, "asr", SHARD, model=MODEL, rate=QUIET_RPS)
        eventually("scaled in to 2", lambda: _shard(kubectl, ns).get("replicas") == 2, timeout=150)
        settled = time.time()
        eventually("4 pods terminating", lambda: len(watch.deleted_at) == 4, timeout=30, interval=0.25)
        victims = sorted(watch.deleted_at)
        eventually("the victims gone", lambda: all(time.time() - watch.last_seen[v] > 1.0 for v in victims),
                   timeout=GRACE + 30, interval=0.5)

    by_streams = sorted(streams, key=lambda p: streams[p])
    assert victims == sorted(by_streams[:4]), (victims, streams)
    assert {v: watch.cost[v] for v in victims} == {v: f"{streams[v]:g}" for v in victims}
    cost = names.ANNOTATION_POD_DELETION_COST
    survivors = {p["metadata"]["name"]: p["metadata"]["annotations"][cost] for p in _pods(kubectl, ns)}
    assert survivors == {p: f"{streams[p]:g}" for p in by_streams[4:]}
    steps = sorted(events(kubectl, ns, names.REASON_SCALED_DOWN), key=lambda e: e["firstTimestamp"])
    lines = [_scale_in_line(e["message"]) for e in steps]
    assert sorted(n for line in lines for n in _victim_streams(line)) == [0, 1, 3, 5], lines
    drained = {v: watch.last_seen[v] - watch.deleted_at[v] for v in victims}
    assert all(GRACE - 3 <= seconds <= GRACE + 5 for seconds in drained.values()), drained

    FIGURES["scale-in 6 → 2: live streams per pod (* = removed)"] = ", ".join(
        f"{p[-5:]}={streams[p]:g}{'*' if p in victims else ''}" for p in by_streams)
    per_victim = [f"{v[-5:]}: {watch.cost[v]} / {drained[v]:.1f} s" for v in by_streams[:4]]
    FIGURES["scale-in 6 → 2: per victim, streams at decision (deletion cost) / s terminating"] = (
        ", ".join(per_victim))
    FIGURES["scale-in 6 → 2: the operator's lines"] = " | ".join(lines)
    FIGURES["scale-in 6 → 2: learned drain, grace, load drop → replicas 2"] = (
        f"{LEARNED_DRAIN} s (p99 of sessions), {GRACE} s, {settled - dropped:.0f} s")


def _scale_in_line(message: str) -> str:
    """The 'scale-in a → b: removing pods with ...' part of a ScaledDown Event."""
    start = message.find("scale-in ")
    assert start >= 0, message
    return message[start:]


def _victim_streams(line: str) -> list[int]:
    """'scale-in 6 → 4: removing pods with 0, 1 live streams' -> [0, 1]."""
    listed = line.split("removing pods with ", 1)[1].split(" live streams", 1)[0]
    return [int(n) for n in listed.split(", ")]
