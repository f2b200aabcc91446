"""A real tritonserver with the priority levels the operator renders for spec.classes: interactive
requests overtake a batch flood; the same load on the config without classes, side by side; the
lab's class exporter scraped by a real Prometheus and read through the operator's own queries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from test_triton_worker import require_worker_extra

from voxscale import names
from voxscale.api import SpeechClusterSpec
from voxscale.manifest import load_manifest
from voxscale.metrics.prometheus import PrometheusSource
from voxscale.metrics.protocol import ShardSelector
from voxscale_lab.harness.ports import free_port
from voxscale_lab.harness.prometheus import PrometheusServer, require_binary_for_test, run_prometheus
from voxscale_lab.worker.arrivals import poisson_arrivals
from voxscale_lab.worker.classes import ClassLoad, ClassRun, ClassSeries, drive_classes
from voxscale_lab.worker.loadgen import chunk_audio
from voxscale_lab.worker.serve import DEFAULT_MODEL_DIR, Worker, worker_spec
from voxscale_lab.worker.triton import free_ports

pytestmark = pytest.mark.integration
MODEL = "asr-standin"
MANIFEST = Path(__file__).resolve().parents[2] / "examples" / "classes-speechcluster.yaml"
SHARD = {names.PROM_LABEL_NAMESPACE: "speech", names.PROM_LABEL_CLUSTER: "asr-mixed",
         names.PROM_LABEL_SHARD: "eu-en"}  # fmt: skip
# 8 interactive req/s beside a batch job far larger than 12 s can serve, worked off 96 requests at
# a time: 6 full batches of 16 ahead of any request that joins a first-come queue.
DURATION = 12.0
INTERACTIVE_RATE = 8.0
BATCH_REQUESTS = 4000
BATCH_INFLIGHT = 96
DEADLINE = 3600.0


def classes_spec() -> SpeechClusterSpec:
    """examples/classes-speechcluster.yaml as the local worker runs it (the operator's render)."""
    return worker_spec(MODEL, load_manifest(MANIFEST).spec)


def _load(spec: SpeechClusterSpec) -> ClassLoad:
    """The class's priorities with spec.classes; untagged (0) without, as a cluster sends them."""
    by_kind = {c.kind: c for c in spec.classes or ()}
    interactive, batch = by_kind.get("Interactive"), by_kind.get("Batch")
    return ClassLoad(
        duration=DURATION, interactive_rate=INTERACTIVE_RATE, batch_requests=BATCH_REQUESTS,
        deadline_seconds=DEADLINE, batch_inflight=BATCH_INFLIGHT,
        interactive_priority=interactive.priority if interactive else 0,
        batch_priority=batch.priority if batch else 0,
    )  # fmt: skip


def _run(spec: SpeechClusterSpec, series: ClassSeries) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start a worker on `spec`, drive the load, return (its served config, the run's summary)."""
    with Worker(DEFAULT_MODEL_DIR, spec, free_ports(), load_seconds=0.5) as w:
        w.start(ready_timeout=120)
        config = httpx.get(f"{w.http_url}/v2/models/{MODEL}/config").json()
        load = _load(spec)
        arrivals = poisson_arrivals(load.interactive_rate, load.duration, np.random.default_rng(7))
        run: ClassRun = asyncio.run(drive_classes(w.grpc_url, MODEL, chunk_audio(0.25), load,
                                                  arrivals=arrivals, series=series))
        return config, run.summary(len(arrivals))


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _scrape(port: int) -> list[dict[str, Any]]:
    return [{"job_name": "class-exporter", "honor_labels": True, "scrape_interval": "1s",
             "scrape_timeout": "1s", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]  # fmt: skip


@pytest.fixture(scope="module")
def exporter() -> Iterator[tuple[ClassSeries, int]]:
    series = ClassSeries(MODEL, SHARD)
    port = free_port()
    server = series.serve(port)
    try:
        yield series, port
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def prometheus(exporter: tuple[ClassSeries, int], tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[PrometheusServer]:
    require_binary_for_test("prometheus")
    data_dir = tmp_path_factory.mktemp("prometheus-classes") / "data"
    with run_prometheus(data_dir, scrape_configs=_scrape(exporter[1])) as server:
        yield server


@pytest.fixture(scope="module")
def runs(exporter: tuple[ClassSeries, int], prometheus: PrometheusServer) -> dict[str, Any]:
    """The same load on the rendered config with classes, then on the one without."""
    require_worker_extra()
    spec = classes_spec()
    with_classes = _run(spec, exporter[0])
    read_at = time.time()  # the operator's tick, read once the second run has given Prometheus time
    without = _run(worker_spec(MODEL, spec.model_copy(update={"classes": None})), ClassSeries(MODEL, SHARD))
    return {"classes": with_classes, "none": without, "read_at": read_at}


def test_the_worker_serves_the_priority_levels_the_operator_rendered(runs: dict[str, Any]) -> None:
    batching = runs["classes"][0]["dynamic_batching"]
    assert int(batching["priority_levels"]) == 3
    assert int(batching["default_priority_level"]) == 1
    assert set(batching["priority_queue_policy"]) == {"1", "2", "3"}
    assert int(runs["none"][0]["dynamic_batching"].get("priority_levels", 0)) == 0


def test_interactive_requests_overtake_a_batch_flood_only_with_priority_levels(runs: dict[str, Any]) -> None:
    rows = {"priority levels (classes)": runs["classes"][1], "no classes (one FIFO)": runs["none"][1]}
    print(f"\n{INTERACTIVE_RATE:g} interactive req/s for {DURATION:g} s beside a batch job of"
          f" {BATCH_REQUESTS} requests, {BATCH_INFLIGHT} in flight"
          " (asr-standin: 50 ms + 6 ms per request per batch)")
    heads = f"{'interactive p50':>16}{'p95':>10}{'p99':>10}{'ok':>9}{'batch req/s':>13}{'done':>6}"
    print(f"{'config':<27}{heads}")
    for label, s in rows.items():
        i, b = s["interactive"], s["batch"]
        print(f"{label:<27}{i['p50_ms']:>13.0f} ms{i['p95_ms']:>7.0f} ms{i['p99_ms']:>7.0f} ms"
              f"{i['ok']:>5}/{i['offered']:<3}{b['throughput_rps']:>13.1f}{b['done']:>6}")  # fmt: skip
    for s in rows.values():
        assert s["interactive"]["ok"] == s["interactive"]["offered"] > 0
        assert s["batch"]["failed"] == 0 and s["batch"]["done"] > 0 and s["batch"]["left"] > 0
    with_classes, without = (s["interactive"] for s in rows.values())
    assert with_classes["p95_ms"] < without["p95_ms"]


def test_the_operator_reads_the_interactive_rate_and_latency_and_the_batch_backlog(
    runs: dict[str, Any], prometheus: PrometheusServer, exporter: tuple[ClassSeries, int]
) -> None:
    series, _ = exporter
    spec = classes_spec()
    interactive, batch = (c.name for c in sorted(spec.classes or (), key=lambda c: c.priority)[:2])
    now = runs["read_at"]
    source = PrometheusSource(prometheus.url, window="10s", panic_window="10s")
    try:
        selector = ShardSelector(SHARD["namespace"], SHARD[names.PROM_LABEL_CLUSTER],
                                 SHARD[names.PROM_LABEL_SHARD], MODEL, traffic_class=interactive)
        shard = source.observe(selector, now)
        queued = source.class_metrics(selector, batch, now)
    finally:
        source.close()
    print(f"\noperator's reading at the end of the classes run ({prometheus.url}):")
    print(f"  {interactive}: rate {_r(shard.rate)} req/s, p95 {_r(shard.latency_ms)} ms, queue {shard.queue}")
    print(f"  {batch}: backlog {queued.backlog} (exporter now: {series.backlog(batch)}),"
          f" oldest {_r(queued.oldest_seconds)} s, arrivals {_r(queued.rate)} req/s")
    assert shard.rate is not None and shard.rate > 0
    assert shard.latency_ms is not None and shard.latency_ms > 0
    assert shard.batch_efficiency is None  # not read under classes
    assert queued.backlog is not None and queued.backlog > 0
    assert queued.oldest_seconds is not None and queued.oldest_seconds > 0
