"""The pod-to-process bridge: one real local Triton worker per scheduled worker pod, Ready when it is.

kwok pods run nothing. For each worker pod of a shard the bridge starts a real tritonserver
(the stand-in model, free loopback ports, an artificial model-load delay = the demo's warm-up),
and when that server reports Ready it sets the pod's `WORKER_LOADED_ANNOTATION`; the demo's kwok
Ready stage keys on it (devcluster `ready_annotation`), so a pod is Ready exactly when its model
has loaded. Prometheus finds the workers through a file_sd file carrying the pod's labels, so
the operator's queries see real Triton series.

A pod being deleted leaves the routing table (`endpoints()`) for new streams at once. Its process
stops as the kubelet would stop the pod the operator rendered: a streaming worker (spec.streaming)
first waits, like the rendered preStop, out the preStop's pause and then until its
`voxscale_active_streams` gauge reads 0 or the pod's grace period (read from the pod) runs out,
and stays scraped meanwhile; then SIGTERM
(Triton finishes the requests in flight), SIGKILL at the end of the grace. Each such drain is
kept in `drains`. Without streaming the process is stopped at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from voxscale import names
from voxscale.api import SpeechClusterSpec
from voxscale.k8s import Kube
from voxscale.render.deployment import pre_stop_pause
from voxscale_lab.devcluster.stages import WORKER_LOADED_ANNOTATION
from voxscale_lab.harness.ports import free_port
from voxscale_lab.worker.serve import Worker
from voxscale_lab.worker.triton import Ports

log = logging.getLogger(__name__)

# Kubernetes' default terminationGracePeriodSeconds, for a pod object that does not say.
DEFAULT_GRACE_SECONDS = 30.0
# The rendered preStop reads the gauge every second; the bridge reads it twice as often.
DRAIN_POLL_SECONDS = 0.5
CLOSE_STOP_SECONDS = 5.0


@dataclass(frozen=True)
class PodRef:
    """What the bridge needs of a pod: identity, shard, and whether it is going away."""

    name: str
    uid: str
    shard: str
    scheduled: bool
    deleting: bool
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    """What the kubelet gives the pod to stop: the deletion's grace once deleted (a `--grace-period`
    overrides the spec), else spec.terminationGracePeriodSeconds."""


def pod_refs(pods: list[dict[str, Any]]) -> list[PodRef]:
    """PodRefs of pod objects (the API's JSON, as `kubectl get -o json` and Kube.list_pods give it)."""
    refs = []
    for p in pods:
        meta, spec = p["metadata"], p.get("spec", {})
        grace = meta.get("deletionGracePeriodSeconds", spec.get("terminationGracePeriodSeconds"))
        refs.append(PodRef(
            meta["name"], meta["uid"], meta.get("labels", {}).get(names.LABEL_SHARD, ""),
            bool(spec.get("nodeName")), meta.get("deletionTimestamp") is not None,
            DEFAULT_GRACE_SECONDS if grace is None else float(grace),
        ))
    return refs


def active_streams(metrics_text: str) -> float | None:
    """The worker's live streams from its /metrics text (the sum over the gauge's series, as the
    rendered preStop's awk sums them); None when the gauge is absent (unknown is not 0)."""
    values = []
    for line in metrics_text.splitlines():
        if "}" in line:  # name{labels} value [timestamp]; a label value may hold spaces
            head, tail = line.rsplit("}", 1)
            name, fields = head.split("{", 1)[0], tail.split()
        else:
            name, *fields = line.split() or [""]
        if name != names.ACTIVE_STREAMS_METRIC or not fields:
            continue
        try:
            values.append(float(fields[0]))
        except ValueError:
            continue
    return sum(values) if values else None


@dataclass
class Drain:
    """One deleted pod's way out: streams when its deletion was seen, when the gauge read 0 (None:
    it never did within the grace) and when its process had exited (wall-clock seconds)."""

    pod: str
    shard: str
    grace_seconds: float
    deleted_at: float
    streams_at_deletion: float | None = None
    drained_at: float | None = None
    exited_at: float | None = None

    @property
    def seconds_to_exit(self) -> float | None:
        return None if self.exited_at is None else self.exited_at - self.deleted_at


@dataclass
class Running:
    """One pod's worker process and whether its model has loaded."""

    pod: PodRef
    worker: Worker
    ready: bool = False
    future: Future[None] | None = None


class Bridge:
    """Keeps one Triton worker per live worker pod of `cluster` in `namespace`; call `sync()` often."""

    def __init__(self, kube: Kube, namespace: str, cluster: str, spec: SpeechClusterSpec, *,
                 model_dir: Path, workdir: Path, load_seconds: float, sd_file: Path) -> None:
        self.kube, self.namespace, self.cluster, self.spec = kube, namespace, cluster, spec
        self.model_dir, self.workdir, self.load_seconds = model_dir, workdir, load_seconds
        self.sd_file = sd_file
        self.closed = False
        self._lock = threading.Lock()
        self._sd_lock = threading.Lock()  # the sync loop and retiring workers both rewrite the file
        self._running: dict[str, Running] = {}
        self._leaving: dict[str, Running] = {}
        """Deleted pods whose process still runs (draining): scraped, but given no new streams."""
        self.drains: dict[str, Drain] = {}
        """Streaming pods' drains by pod name, from deletion seen to process exit."""
        self._closing = threading.Event()
        # Starts block on the model load (seconds); stops wait for in-flight requests, and a
        # streaming worker's drain for its streams (up to its grace period).
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="bridge")
        self.started = 0
        self.stopped = 0
        self._write_sd()

    def list_pods(self) -> list[PodRef]:
        selector = f"{names.LABEL_CLUSTER}={self.cluster},{names.LABEL_COMPONENT}={names.COMPONENT_WORKER}"
        return pod_refs(self.kube.list_pods(self.namespace, selector))

    def sync(self) -> None:
        """One pass: start workers for newly scheduled pods, retire those whose pod is going or gone."""
        pods = self.list_pods()
        live = {p.uid: p for p in pods if p.scheduled and not p.deleting}
        deleting = {p.uid: p for p in pods if p.deleting}
        with self._lock:
            if self.closed:
                return
            gone = [uid for uid in self._running if uid not in live]
            new = [p for uid, p in live.items() if uid not in self._running]
            leaving = [(self._running.pop(uid), deleting.get(uid)) for uid in gone]
            for run, _ in leaving:
                self._leaving[run.pod.uid] = run
            for pod in new:
                self._running[pod.uid] = self._launch(pod)
        for run, ref in leaving:
            # A pod gone without its deletion seen (force-deleted, or its grace already over in
            # kwok) gets no drain: the kubelet would have killed it by now.
            self._pool.submit(self._retire, run, ref.grace_seconds if ref is not None else 0.0)
        if new or leaving:
            self._write_sd()

    def _launch(self, pod: PodRef) -> Running:
        ports = Ports(free_port(), free_port(), free_port())
        workdir = self.workdir / pod.name
        workdir.mkdir(parents=True, exist_ok=True)
        worker = Worker(self.model_dir, self.spec, ports, load_seconds=self.load_seconds, workdir=workdir)
        run = Running(pod, worker)
        run.future = self._pool.submit(self._start, run)
        self.started += 1
        return run

    def _start(self, run: Running) -> None:
        try:
            seconds = run.worker.start(ready_timeout=300)
        except (RuntimeError, TimeoutError) as e:
            log.warning("worker for %s did not start: %s", run.pod.name, e)
            return
        with self._lock:
            if self._running.get(run.pod.uid) is not run:
                return  # the pod went away while the model loaded; _retire has it
            run.ready = True
        log.info("worker for %s Ready in %.1f s", run.pod.name, seconds)
        patch = {"metadata": {"annotations": {WORKER_LOADED_ANNOTATION: "true"}}}
        try:
            self.kube.patch_pod(self.namespace, run.pod.name, patch)
        except Exception as e:
            log.info("could not mark %s loaded: %s", run.pod.name, e)

    def _retire(self, run: Running, grace: float) -> None:
        """Stop a deleted pod's worker as the kubelet stops the rendered pod (see the module doc)."""
        deleted_at, deadline = time.time(), time.monotonic() + grace
        if run.future is not None:
            run.future.result()  # a start still loading finishes first
        # Not Ready: no model, no stream; the rendered preStop exits at once for it too.
        drain = None
        if self.spec.streaming is not None and run.ready and grace > 0:
            drain = Drain(run.pod.name, run.pod.shard, grace, deleted_at)
            self.drains[run.pod.name] = drain
            self._wait_streams(run, drain, deadline)
        # SIGKILL when the grace runs out (a closing bridge gives SIGTERM a few seconds only).
        left = CLOSE_STOP_SECONDS if self._closing.is_set() else deadline - time.monotonic()
        try:
            run.worker.stop(timeout=max(1.0, left))
        finally:
            with self._lock:
                self._leaving.pop(run.pod.uid, None)
            self.stopped += 1
            if drain is not None:
                drain.exited_at = time.time()
                log.info("worker for %s: %s streams at deletion, exited after %.1f s (%s)", run.pod.name,
                         drain.streams_at_deletion, drain.seconds_to_exit,
                         "drained" if drain.drained_at is not None else "grace ran out")
            self._write_sd()

    def _wait_streams(self, run: Running, drain: Drain, deadline: float) -> None:
        """Until the worker's gauge reads 0 or `deadline`; an unreadable gauge counts as busy.

        A 0 counts only after the preStop's pause (5 s), as in the rendered pod: a caller that
        picked this worker just before its deletion was seen may have its first chunk still in
        flight, and the gauge counts a stream only once that chunk has run; stopping at a 0 read
        in that gap would cut the stream at its second chunk."""
        earliest = time.monotonic() + pre_stop_pause(self.spec)
        while not self._closing.is_set() and time.monotonic() < deadline:
            streams = self.live_streams(run.worker.metrics_url)
            if drain.streams_at_deletion is None:
                drain.streams_at_deletion = streams
            if streams == 0 and time.monotonic() >= earliest:
                drain.drained_at = time.time()
                return
            self._closing.wait(DRAIN_POLL_SECONDS)

    def live_streams(self, metrics_url: str) -> float | None:
        """A worker's gauge now (None: no answer or no gauge)."""
        try:
            return active_streams(httpx.get(metrics_url, timeout=2.0).text)
        except httpx.HTTPError:
            return None

    def _stop(self, run: Running) -> None:
        if run.future is not None:
            run.future.result()  # a start still loading finishes first; then it is stopped
        run.worker.stop()
        self.stopped += 1

    def endpoints(self) -> dict[str, dict[str, str]]:
        """Ready workers by shard: {shard: {pod name: gRPC host:port}} (what traffic may use)."""
        out: dict[str, dict[str, str]] = {}
        with self._lock:
            for run in self._running.values():
                if run.ready:
                    out.setdefault(run.pod.shard, {})[run.pod.name] = run.worker.grpc_url
        return out

    def processes(self) -> dict[str, int]:
        """Worker processes per shard, loading or Ready: the GPUs the shard holds right now."""
        out: dict[str, int] = {}
        with self._lock:
            for run in self._running.values():
                out[run.pod.shard] = out.get(run.pod.shard, 0) + 1
        return out

    def _write_sd(self) -> None:
        with self._sd_lock:
            with self._lock:
                # A draining worker is still scraped: its gauge and counters are the pod's until it exits.
                groups = [{
                    "targets": [f"127.0.0.1:{run.worker.ports.metrics}"],
                    "labels": {names.PROM_LABEL_NAMESPACE: self.namespace, names.PROM_LABEL_POD: run.pod.name,
                               names.PROM_LABEL_CLUSTER: self.cluster, names.PROM_LABEL_SHARD: run.pod.shard},
                } for run in (*self._running.values(), *self._leaving.values())]
            # Rename is atomic: Prometheus never reads a half-written target list.
            tmp = self.sd_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(groups, indent=1))
            tmp.replace(self.sd_file)

    def close(self) -> None:
        """Stop every worker and wait for them (nothing is left running); drains end at once."""
        self._closing.set()
        with self._lock:
            self.closed = True
            runs = list(self._running.values())
            self._running.clear()
        for run in runs:
            self._pool.submit(self._stop, run)
        self._pool.shutdown(wait=True)
        self._write_sd()


@contextmanager
def syncing(bridge: Bridge, every: float = 1.0) -> Iterator[None]:
    """The bridge's sync loop on a thread, stopped (and joined) before the bridge closes."""
    stop = threading.Event()
    thread = threading.Thread(target=_sync_loop, args=(bridge, stop, every), name="bridge-sync", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def _sync_loop(bridge: Bridge, stop: threading.Event, every: float) -> None:
    while not stop.is_set():
        # An API hiccup must not end the bridge; the next pass retries.
        with contextlib.suppress(Exception):
            bridge.sync()
        stop.wait(every)
