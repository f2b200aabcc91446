"""Scale-in under live streams with real Triton workers: 6 → 2, 0 streams cut, the idlest pods go.

The control plane is the real one (kwok nodes), the operator runs as a process, and every pod
the ReplicaSet controller schedules gets a real tritonserver (the stand-in model under the
sequence batcher the operator renders for spec.streaming) from the demo's bridge, which also
plays the kubelet of a deleted pod as rendered: the worker leaves the routing table at once,
waits until its `voxscale_active_streams` gauge reads 0 (or the pod's grace runs out), then stops.
Prometheus scrapes the workers through the bridge's file_sd, so the operator sees real series.

Load: one-chunk sequences at 60 rps bring the shard to 6 (15 rps × 0.7 a replica); then 40
streams of 2-11 chunks, one every 2.5 s (2.5-25 s long), are kept live, spread unevenly over
the six pods. The one-chunk load stops: 40 × 0.4 = 16 rps needs 2 (16 / 10.5), and 40 streams
need 2 by slots (40 / (32 × 0.7)), so the operator scales in while the streams run. A stream
is cut when a chunk fails: its worker gone, or Triton refusing a chunk of a sequence it does
not hold; every answer also carries the worker's count of the stream's chunks.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from e2e.helpers import FIGURES, E2ECluster, background, eventually
from e2e.operator_process import (
    BridgedOperator,
    e2e_spec,
    operator_namespace,
    operator_on_bridged_workers,
    shard_status,
    speechcluster,
)
from voxscale import names
from voxscale.api import parse_spec
from voxscale.k8s import Kube
from voxscale_lab.demo.bridge import Bridge, Drain, syncing
from voxscale_lab.devcluster import Kubectl
from voxscale_lab.harness.prometheus import PrometheusServer
from voxscale_lab.worker.loadgen import chunk_audio
from voxscale_lab.worker.serve import DEFAULT_MODEL_DIR, worker_spec
from voxscale_lab.worker.streams import AudioStream, StreamRecord

TAG = "zerocut"
MODEL = "asr-standin"
CLUSTER = "asr"
SHARD = "eu-en"
SELECTOR = ",".join(f"{k}={v}" for k, v in names.selector_labels(CLUSTER, SHARD).items())
STREAMING = {"maxConcurrentSequencesPerReplica": 32, "sessionIdleTimeoutSeconds": 10, "maxSessionSeconds": 30}
# drainSeconds 30 = the learned drain's floor and (maxSessionSeconds 30) its ceiling: the grace
# is 5 + 30 + 30 + 5 = 70 s from the first render, so no learned value rolls the pods mid-test.
SCALING = {"minReplicas": 2, "maxReplicas": 6, "reactive": {"panicThreshold": 100},
           "scaleDown": {"drainSeconds": 30, "stabilizationSeconds": 6, "maxPercent": 100}}
CAPACITY = {"requestsPerSecondPerReplica": 15, "targetUtilization": 0.7}
BUSY_RPS = 60.0  # one-chunk sequences: 60 / 10.5 → 6 replicas
LIVE_STREAMS = 40
PACE_SECONDS = 2.5
CHUNKS = (2, 11)  # per stream, inclusive: 2.5-25 s from first to last chunk, under maxSessionSeconds
# Streams per pod in these proportions (pods by name): the four lightest hold ~12 of 40.
WEIGHTS = (1.0, 1.0, 2.0, 3.0, 8.0, 9.0)
LOAD_SECONDS = 1.0



@pytest.fixture(scope="module")
def env(cluster: E2ECluster, speechcluster_crd: dict[str, Any],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgedOperator]:
    pytest.importorskip("tritonclient", reason="needs the worker extra: pip install -e '.[worker]'")
    base = tmp_path_factory.mktemp("zerocut-prometheus")
    with operator_on_bridged_workers(cluster.kubectl, cluster.workdir, TAG, base) as bridged:
        yield bridged


@pytest.fixture
def ns(kubectl: Kubectl, env: BridgedOperator, request: pytest.FixtureRequest) -> Iterator[str]:
    yield from operator_namespace(kubectl, env.op, request, TAG)


# ---------------------------------------------------------------------------- the load


@dataclass
class Call:
    """One stream: the pod it was opened on (picked from the bridge's routing table) and its answers."""

    pod: str
    chunks: int
    opened: float
    record: StreamRecord | None = None
    closed: float | None = None
    mismatched: int = 0
    """Answers whose chunk count was not the stream's own: the state was not the stream's."""


@dataclass
class Load:
    """One-chunk sequences at `busy_rps` and `keep` live streams, on an event loop in a thread."""

    bridge: Bridge
    busy_rps: float = 0.0
    keep: int = 0
    weights: dict[str, float] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    one_shots: int = 0
    one_shot_errors: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(12))

    def live_by_pod(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in list(self.calls):
            if c.closed is None:
                out[c.pod] = out.get(c.pod, 0) + 1
        return out

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from voxscale_lab.worker.streams import grpc_client

        clients: dict[str, Any] = {}
        tasks: set[asyncio.Task[None]] = set()
        audio = chunk_audio(0.25)
        next_shot, next_open, shot_id, rr = time.monotonic(), 0.0, 10_000_000, 0

        def client(url: str) -> Any:
            if url not in clients:
                clients[url] = grpc_client(url)
            return clients[url]

        def spawn(coro: Any) -> None:
            task = asyncio.create_task(coro)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if self.busy_rps <= 0:
                    next_shot = now
                while self.busy_rps > 0 and next_shot <= now:
                    urls = sorted(self.bridge.endpoints().get(SHARD, {}).values())
                    if urls:
                        shot_id, rr = shot_id + 1, rr + 1
                        spawn(self._one_shot(client(urls[rr % len(urls)]), shot_id, audio))
                    next_shot += 1 / self.busy_rps
                # Streams open one per 0.1 s at most: 40 fill in 4 s, not in one burst.
                if sum(c.closed is None for c in self.calls) < self.keep and now >= next_open:
                    opened = time.time()  # before the routing table is read: see the drain assert
                    routes = self.bridge.endpoints().get(SHARD, {})
                    pods = [p for p in sorted(self.weights) if p in routes]
                    if pods:
                        w = np.array([self.weights[p] for p in pods])
                        pod = str(self.rng.choice(pods, p=w / w.sum()))
                        call = Call(pod, int(self.rng.integers(CHUNKS[0], CHUNKS[1] + 1)), opened)
                        self.calls.append(call)
                        spawn(self._stream(client(routes[pod]), len(self.calls), call, audio))
                        next_open = now + 0.1
                await asyncio.sleep(0.02)
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for c in clients.values():
                await c.close()

    async def _one_shot(self, client: Any, sequence_id: int, audio: Any) -> None:
        answer = await AudioStream(client, MODEL, sequence_id, client_timeout=10).send(audio, end=True)
        self.one_shots += 1
        self.one_shot_errors += bool(answer.error)

    async def _stream(self, client: Any, sequence_id: int, call: Call, audio: Any) -> None:
        stream = AudioStream(client, MODEL, sequence_id, client_timeout=10)
        call.record = stream.record
        due = time.monotonic()
        for k in range(call.chunks):
            answer = await stream.send(audio, end=k == call.chunks - 1)
            if answer.error:
                break
            if f"stream {sequence_id} chunk {k + 1}:" not in answer.text:
                call.mismatched += 1
            due += PACE_SECONDS
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        call.closed = time.time()


# ---------------------------------------------------------------------------- the pods


@dataclass
class Deletion:
    """A pod first seen terminating: its deletion cost then (the operator's streams at decision),
    the costs of the pods kept at that moment, and the streams the clients had on each pod."""

    at: float
    cost: int | None
    kept: dict[str, int | None]
    client_streams: dict[str, int]


@dataclass
class PodWatch:
    kube: Kube
    ns: str
    load: Load
    deletions: dict[str, Deletion] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def poll(self) -> None:
        while not self.stop.is_set():
            try:
                pods = self.kube.list_pods(self.ns, SELECTOR)
            except Exception:  # an API hiccup: the next poll reads them again
                pods = []
            costs = {p["metadata"]["name"]: _cost(p) for p in pods}
            kept = {p["metadata"]["name"] for p in pods if "deletionTimestamp" not in p["metadata"]}
            for p in pods:
                name = p["metadata"]["name"]
                if name not in kept and name not in self.deletions:
                    self.deletions[name] = Deletion(time.time(), costs[name], {k: costs[k] for k in kept},
                                                    self.load.live_by_pod())
            self.stop.wait(0.25)


def _cost(pod: dict[str, Any]) -> int | None:
    value = (pod["metadata"].get("annotations") or {}).get(names.ANNOTATION_POD_DELETION_COST)
    return None if value is None else int(value)


def _ready_pods(kube: Kube, ns: str) -> list[str]:
    ready = []
    for p in kube.list_pods(ns, SELECTOR):
        conditions = p.get("status", {}).get("conditions") or []
        if "deletionTimestamp" not in p["metadata"] and any(
                c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            ready.append(p["metadata"]["name"])
    return sorted(ready)


def _scraped_streams(prom: PrometheusServer, ns: str) -> float:
    query = f'sum({names.ACTIVE_STREAMS_METRIC}{{{names.PROM_LABEL_NAMESPACE}="{ns}"}})'
    answer = httpx.get(f"{prom.url}/api/v1/query", params={"query": query}, timeout=2).json()
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def _spec(ns: str, prom_url: str) -> dict[str, Any]:
    doc = e2e_spec(ns, prom_url, shards=[SHARD], scaling=SCALING)
    spec = doc["spec"]
    spec["capacity"] = CAPACITY
    spec["streaming"] = STREAMING
    # 2 s scrapes: a 10 s rate sees the load stop within a tick or two, not a minute.
    spec["prometheus"]["rateWindow"] = "10s"
    spec["shards"][0].update({"minReplicas": SCALING["minReplicas"], "maxReplicas": SCALING["maxReplicas"]})
    return doc


# ---------------------------------------------------------------------------- the scenario


@dataclass
class Outcome:
    six: list[str]
    victims: list[str]
    survivors: list[str]
    deletions: dict[str, Deletion]
    drains: dict[str, Drain]
    load: Load
    dropped_to_scaled_in: float


def _scale_in(kubectl: Kubectl, env: BridgedOperator, ns: str, workdir: Path) -> Outcome:
    """Phases: the floor of 2 → busy to 6 → 40 live streams → busy load off → 4 victims → all ended."""
    doc = _spec(ns, env.prom.url)
    kubectl.apply(doc)
    kube = Kube.from_kubeconfig(kubectl.kubeconfig)
    with ExitStack() as stack:
        stack.callback(kube.close)
        bridge = Bridge(kube, ns, CLUSTER, worker_spec(MODEL, parse_spec(doc["spec"])),
                        model_dir=DEFAULT_MODEL_DIR, workdir=workdir, load_seconds=LOAD_SECONDS,
                        sd_file=env.sd_file)
        stack.callback(bridge.close)
        stack.enter_context(syncing(bridge, every=0.5))
        load = Load(bridge)
        background(stack, load.run, load.stop, "zerocut-load")

        def workers() -> int:
            return len(bridge.endpoints().get(SHARD, {}))

        def replicas() -> int:
            return int((shard_status(speechcluster(kubectl, ns, CLUSTER), SHARD) or {}).get("replicas", 0))

        eventually("2 workers serving", lambda: workers() >= 2, timeout=120)
        load.busy_rps = BUSY_RPS
        eventually("6 Ready pods, each with a serving worker",
                   lambda: len(_ready_pods(kube, ns)) == 6 and workers() == 6 and replicas() == 6,
                   timeout=180)
        six = _ready_pods(kube, ns)
        grace = max(p["spec"]["terminationGracePeriodSeconds"] for p in kube.list_pods(ns, SELECTOR))

        load.weights = dict(zip(six, WEIGHTS, strict=True))
        load.keep = LIVE_STREAMS
        eventually("40 streams live and scraped",
                   lambda: _scraped_streams(env.prom, ns) >= LIVE_STREAMS * 0.9, timeout=60)

        watch = PodWatch(kube, ns, load)
        background(stack, watch.poll, watch.stop, "zerocut-pods")
        dropped = time.time()
        load.busy_rps = 0.0
        eventually("4 pods terminating", lambda: len(watch.deletions) == 4, timeout=150, interval=0.5)
        scaled_in = time.time()
        load.keep = 0  # streams kept arriving on the routed pods until now; the live ones run out
        victims = sorted(watch.deletions)
        eventually("every stream ended", lambda: all(c.closed is not None for c in load.calls), timeout=60)
        eventually("every victim's worker exited",
                   lambda: all(bridge.drains.get(v) and bridge.drains[v].exited_at for v in victims),
                   timeout=grace + 30, interval=0.5)
        return Outcome(six, victims, _ready_pods(kube, ns), dict(watch.deletions),
                       {v: bridge.drains[v] for v in victims}, load, scaled_in - dropped)


def _cut(load: Load) -> list[Call]:
    """Streams that lost a chunk, never ended, or got an answer from state that was not theirs."""
    return [c for c in load.calls if c.record is None or c.record.cut or not c.record.ended
            or len(c.record.answers) != c.chunks or c.mismatched]


def _figures(out: Outcome, cut: list[Call], wall: float) -> None:
    load, per_pod = out.load, {p: sum(c.pod == p for c in out.load.calls) for p in out.six}
    chunks = sum(len(c.record.answers) for c in load.calls if c.record)
    FIGURES["zero-cut 6 → 2: streams, chunks, cut"] = (
        f"{len(load.calls)} streams of {CHUNKS[0]}-{CHUNKS[1]} chunks every {PACE_SECONDS:g} s ({chunks} "
        f"chunks), {len(cut)} cut; one-chunk load {load.one_shots} sequences ({load.one_shot_errors} errors)")
    FIGURES["zero-cut 6 → 2: streams opened per pod (* = removed)"] = ", ".join(
        f"{p[-5:]}={per_pod[p]}{'*' if p in out.victims else ''}" for p in out.six)
    for v in out.victims:
        d, drain = out.deletions[v], out.drains[v]
        kept = ", ".join(f"{k[-5:]}={c}" for k, c in sorted(d.kept.items()))
        zero = "never" if drain.drained_at is None else f"after {drain.drained_at - drain.deleted_at:.1f} s"
        FIGURES[f"zero-cut 6 → 2: victim {v[-5:]}"] = (
            f"streams at decision (deletion cost) {d.cost}, on its worker at deletion "
            f"{drain.streams_at_deletion}, clients' {d.client_streams.get(v, 0)}; kept then: {kept}; "
            f"gauge 0 {zero}, process exit {drain.seconds_to_exit:.1f} s after deletion "
            f"(grace {drain.grace_seconds:g} s)")
    FIGURES["zero-cut 6 → 2: load drop → 4 terminating, test wall time"] = (
        f"{out.dropped_to_scaled_in:.0f} s, {wall:.0f} s")
    for name, value in FIGURES.items():
        if name.startswith("zero-cut"):
            print(f"{name}: {value}")


def test_scale_in_under_40_live_streams_cuts_none_and_removes_the_pods_with_fewest(
    kubectl: Kubectl, env: BridgedOperator, ns: str, tmp_path: Path,
) -> None:
    t0 = time.monotonic()
    out = _scale_in(kubectl, env, ns, tmp_path / "workers")
    cut = _cut(out.load)
    _figures(out, cut, time.monotonic() - t0)

    assert len(out.load.calls) >= LIVE_STREAMS
    first_errors = [a.error for c in cut if c.record for a in c.record.answers if a.error][:3]
    assert cut == [], (len(cut), first_errors)
    assert sorted(out.survivors) == sorted(set(out.six) - set(out.victims))
    for v in out.victims:
        d, drain = out.deletions[v], out.drains[v]
        # The operator's ranking at that decision: no kept pod held fewer streams than a removed one.
        assert d.cost is not None and all(c is not None and d.cost <= c for c in d.kept.values()), (v, d)
        # Drained before exit: the gauge read 0 within the grace, and only then did the process stop.
        assert drain.drained_at is not None and drain.exited_at is not None, (v, drain)
        assert drain.drained_at <= drain.exited_at
        # Out of the routing table at once: no stream was opened on it after its deletion was seen.
        assert all(c.opened < drain.deleted_at for c in out.load.calls if c.pod == v), v
    # Not vacuous: the victims held live streams when they were removed, and drained them.
    assert sum(out.drains[v].streams_at_deletion or 0 for v in out.victims) > 0
