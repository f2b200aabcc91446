"""The pod-to-process bridge: one real local Triton worker per scheduled worker pod, Ready when it is.

kwok pods run nothing. For each worker pod of a shard the bridge starts a real tritonserver
(the stand-in model, free loopback ports, an artificial model-load delay = the demo's warm-up),
and when that server reports Ready it sets the pod's `WORKER_LOADED_ANNOTATION`; the demo's kwok
Ready stage keys on it (devcluster `ready_annotation`), so a pod is Ready exactly when its model
has loaded. A pod being deleted leaves the routing table at once and its process is stopped
(SIGTERM: Triton finishes the requests in flight). Prometheus finds the workers through a
file_sd file carrying the pod's labels, so the operator's queries see real Triton series.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxscale import names
from voxscale.api import SpeechClusterSpec
from voxscale.k8s import Kube
from voxscale_lab.devcluster.stages import WORKER_LOADED_ANNOTATION
from voxscale_lab.harness.ports import free_port
from voxscale_lab.worker.serve import Worker
from voxscale_lab.worker.triton import Ports

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PodRef:
    """What the bridge needs of a pod: identity, shard, and whether it is going away."""

    name: str
    uid: str
    shard: str
    scheduled: bool
    deleting: bool


def pod_refs(pods: list[dict[str, Any]]) -> list[PodRef]:
    """PodRefs of pod objects (the API's JSON, as `kubectl get -o json` and Kube.list_pods give it)."""
    refs = []
    for p in pods:
        meta = p["metadata"]
        refs.append(PodRef(
            meta["name"], meta["uid"], meta.get("labels", {}).get(names.LABEL_SHARD, ""),
            bool(p.get("spec", {}).get("nodeName")), meta.get("deletionTimestamp") is not None,
        ))
    return refs


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
        self._running: dict[str, Running] = {}
        # Starts block on the model load (seconds); stops wait for in-flight requests.
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="bridge")
        self.started = 0
        self.stopped = 0
        self._write_sd()

    def list_pods(self) -> list[PodRef]:
        selector = f"{names.LABEL_CLUSTER}={self.cluster},{names.LABEL_COMPONENT}={names.COMPONENT_WORKER}"
        return pod_refs(self.kube.list_pods(self.namespace, selector))

    def sync(self) -> None:
        """One pass: start workers for newly scheduled pods, stop those whose pod is going or gone."""
        live = {p.uid: p for p in self.list_pods() if p.scheduled and not p.deleting}
        with self._lock:
            if self.closed:
                return
            gone = [uid for uid in self._running if uid not in live]
            new = [p for uid, p in live.items() if uid not in self._running]
            stopping = [self._running.pop(uid) for uid in gone]
            for pod in new:
                self._running[pod.uid] = self._launch(pod)
        for run in stopping:
            self._pool.submit(self._stop, run)
        if gone or new:
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
                return  # the pod went away while the model loaded; _stop has it
            run.ready = True
        log.info("worker for %s Ready in %.1f s", run.pod.name, seconds)
        patch = {"metadata": {"annotations": {WORKER_LOADED_ANNOTATION: "true"}}}
        try:
            self.kube.patch_pod(self.namespace, run.pod.name, patch)
        except Exception as e:
            log.info("could not mark %s loaded: %s", run.pod.name, e)

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
        with self._lock:
            groups = [{
                "targets": [f"127.0.0.1:{run.worker.ports.metrics}"],
                "labels": {names.PROM_LABEL_NAMESPACE: self.namespace, names.PROM_LABEL_POD: run.pod.name,
                           names.PROM_LABEL_CLUSTER: self.cluster, names.PROM_LABEL_SHARD: run.pod.shard},
            } for run in self._running.values()]
        # Rename is atomic: Prometheus never reads a half-written target list.
        tmp = self.sd_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups, indent=1))
        tmp.replace(self.sd_file)

    def close(self) -> None:
        """Stop every worker and wait for them (nothing is left running)."""
        with self._lock:
            self.closed = True
            runs = list(self._running.values())
            self._running.clear()
        for run in runs:
            self._pool.submit(self._stop, run)
        self._pool.shutdown(wait=True)
        self._write_sd()
