"""The demo bridge retires a deleted pod's worker as the kubelet stops the pod the operator rendered."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from voxscale import names
from voxscale_lab.demo.bridge import Bridge, PodRef, Running, active_streams, pod_refs
from voxscale_lab.worker.serve import worker_spec
from voxscale_lab.worker.triton import Ports

from .helpers import spec_with

SHARD = "eu-en"
STREAMING = {"maxConcurrentSequencesPerReplica": 8, "sessionIdleTimeoutSeconds": 5}


def _pod(name: str, uid: str, *, deleting: bool = False, grace: int | None = 70,
         deletion_grace: int | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": uid, "labels": {names.LABEL_SHARD: SHARD}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if deletion_grace is not None:
        meta["deletionGracePeriodSeconds"] = deletion_grace
    spec: dict[str, Any] = {"nodeName": "gpu-1"}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"metadata": meta, "spec": spec}


@dataclass
class FakeKube:
    pods: list[dict[str, Any]] = field(default_factory=list)

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self.pods


@dataclass
class FakeWorker:
    """What the bridge uses of a worker: its URLs and ports, and stop()."""

    ports: Ports = field(default_factory=lambda: Ports(1, 2, 3))
    metrics_url: str = "http://127.0.0.1:3/metrics"
    grpc_url: str = "127.0.0.1:2"
    stopped_at: float | None = None
    stop_timeout: float | None = None

    def stop(self, timeout: float = 30.0) -> None:
        self.stopped_at, self.stop_timeout = time.time(), timeout


class GaugeBridge(Bridge):
    """A bridge whose workers' gauges read from a script (one value per read, the last repeats)."""

    readings: list[float | None]

    def live_streams(self, metrics_url: str) -> float | None:
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


def _bridge(kube: FakeKube, tmp_path: Path, readings: list[float | None], *,
            streaming: bool = True) -> tuple[GaugeBridge, FakeWorker]:
    base = spec_with(streaming=STREAMING) if streaming else spec_with()
    bridge = GaugeBridge(kube, "ns", "asr", worker_spec("asr-standin", base),  # type: ignore[arg-type]
                         model_dir=tmp_path, workdir=tmp_path, load_seconds=0.0, sd_file=tmp_path / "sd.json")
    bridge.readings = readings
    worker = FakeWorker()
    pod = PodRef("asr-eu-en-a", "u1", SHARD, scheduled=True, deleting=False)
    bridge._running["u1"] = Running(pod, worker, ready=True)  # type: ignore[arg-type]
    return bridge, worker


@pytest.fixture
def closing() -> Iterator[list[Bridge]]:
    made: list[Bridge] = []
    yield made
    for b in made:
        b.close()


def _wait(what: str, probe: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_pod_refs_read_the_grace_the_deletion_gave_else_the_pods_own() -> None:
    pods = [_pod("a", "1"), _pod("b", "2", deleting=True, deletion_grace=1), _pod("c", "3", grace=None)]
    assert [r.grace_seconds for r in pod_refs(pods)] == [70.0, 1.0, 30.0]


GAUGE = names.ACTIVE_STREAMS_METRIC


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(f'# TYPE {GAUGE} gauge\n{GAUGE}{{model="asr",version="1"}} 3\n'
                 f'{GAUGE}{{model="small",version="1"}} 2\n', 5.0, id="summed-over-series"),
    pytest.param(f'{GAUGE} 0\nnv_inference_count{{model="a b"}} 9\n', 0.0, id="no-labels"),
    pytest.param(f'{GAUGE}_other 4\nnv_inference_count 9\n', None, id="absent-is-unknown"),
])
def test_the_live_stream_gauge_is_read_as_the_rendered_prestop_reads_it(
    text: str, expected: float | None
) -> None:
    assert active_streams(text) == expected


def test_a_deleted_streaming_pod_leaves_the_routing_table_at_once_and_stops_when_its_streams_end(
    kube: FakeKube, tmp_path: Path, closing: list[Bridge],
) -> None:
    bridge, worker = _bridge(kube, tmp_path, [3.0, 2.0, 1.0, 0.0])
    closing.append(bridge)
    kube.pods = [_pod("asr-eu-en-a", "u1", deleting=True)]
    bridge.sync()
    assert bridge.endpoints() == {}
    targets = [g["labels"][names.PROM_LABEL_POD] for g in json.loads(bridge.sd_file.read_text())]
    assert targets == ["asr-eu-en-a"]  # still scraped while it drains
    _wait("the worker stopped", lambda: worker.stopped_at is not None)
    drain = bridge.drains["asr-eu-en-a"]
    assert drain.streams_at_deletion == 3.0
    assert drain.drained_at is not None and drain.drained_at <= (worker.stopped_at or 0)
    assert drain.grace_seconds == 70.0
    _wait("the worker off the scrape list", lambda: json.loads(bridge.sd_file.read_text()) == [])


def test_a_drain_that_never_reaches_zero_stops_the_worker_when_the_pods_grace_runs_out(
    kube: FakeKube, tmp_path: Path, closing: list[Bridge],
) -> None:
    bridge, worker = _bridge(kube, tmp_path, [None, 4.0])
    closing.append(bridge)
    kube.pods = [_pod("asr-eu-en-a", "u1", deleting=True, deletion_grace=1)]
    bridge.sync()
    _wait("the worker stopped", lambda: worker.stopped_at is not None)
    drain = bridge.drains["asr-eu-en-a"]
    assert drain.drained_at is None
    assert drain.streams_at_deletion == 4.0  # the first answer: no answer is unknown, never 0
    assert worker.stop_timeout == 1.0  # SIGKILL follows at once: the grace is spent


def test_without_streaming_a_deleted_pods_worker_is_stopped_at_once(
    kube: FakeKube, tmp_path: Path, closing: list[Bridge],
) -> None:
    bridge, worker = _bridge(kube, tmp_path, [5.0], streaming=False)
    closing.append(bridge)
    kube.pods = [_pod("asr-eu-en-a", "u1", deleting=True)]
    bridge.sync()
    _wait("the worker stopped", lambda: worker.stopped_at is not None, timeout=2.0)
    assert bridge.drains == {}


def test_a_pod_gone_without_its_deletion_seen_is_not_drained(
    kube: FakeKube, tmp_path: Path, closing: list[Bridge],
) -> None:
    bridge, worker = _bridge(kube, tmp_path, [5.0])
    closing.append(bridge)
    bridge.sync()  # no pods listed: its grace is over (kwok removed it at deletionTimestamp)
    _wait("the worker stopped", lambda: worker.stopped_at is not None, timeout=2.0)
    assert bridge.drains == {}
