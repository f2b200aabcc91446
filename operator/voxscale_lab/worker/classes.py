"""Class-aware load (spec.classes): interactive requests and a batch job queue with a deadline,
sent to one Triton at their classes' priority levels, exporting the voxscale_class_* series.

This is the lab's stand-in for the two sides that know a request's class (docs/classes.md):
the gateway that interactive callers reach, and the batch job submitter that holds the queue.
Triton 2.51 exports no per-priority series, so whoever tags requests with a priority also counts
them: arrivals, received → answered, and what is received but not yet answered (the backlog and
the age of its oldest request). A production gateway or job queue exports the same four series.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIServer

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from voxscale import names
from voxscale.series import FloatArray
from voxscale_lab.worker.arrivals import poisson_arrivals
from voxscale_lab.worker.results import Outcome, Record, classify, summarize
from voxscale_lab.worker.triton import INSTALL_HINT

# Interactive answers take tens of ms to a second, and the operator interpolates its percentile
# inside a bucket: edges every 100 ms around a 500 ms SLO keep that error under 100 ms. A batch
# request's received -> answered spans its wait in the job queue, up to a deadline of hours.
DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0,
                    60.0, 300.0, 900.0, 3600.0, 14_400.0, 86_400.0)  # fmt: skip


class ClassSeries:
    """The voxscale_class_* series of one model's classes, in a registry of their own.

    `labels` are constant labels on every series: a gateway or job queue that is not one of the
    shard's pods names the shard itself (namespace, voxscale_cluster, voxscale_shard) and is
    scraped with `honor_labels`; a sidecar in the pod leaves them to the scrape's relabeling.
    """

    def __init__(self, model: str, labels: Mapping[str, str] | None = None) -> None:
        self.model = model
        self.labels = {names.PROM_LABEL_MODEL: model, **(labels or {})}
        self.registry = CollectorRegistry()
        keys = [*self.labels, names.PROM_LABEL_CLASS]
        self._received = Counter(names.CLASS_REQUESTS_METRIC.removesuffix("_total"),
                                 "Requests of the class received (arrivals).", keys, registry=self.registry)
        self._duration = Histogram(names.CLASS_LATENCY_METRIC, "Received to answered, per request.", keys,
                                   buckets=DURATION_BUCKETS, registry=self.registry)
        self._pending: dict[str, dict[int, float]] = {}
        self._ids = itertools.count()
        self.registry.register(_Queued(self))

    def declare(self, traffic_class: str) -> None:
        """Export the class's series at zero before its first request: an empty queue is a 0,
        not a missing series (which the operator reads as no data)."""
        self._pending.setdefault(traffic_class, {})
        self._received.labels(**self.labels, **{names.PROM_LABEL_CLASS: traffic_class})

    def received(self, traffic_class: str, at: float) -> int:
        """One request of the class received at `at` (time.monotonic()); its ticket."""
        self.declare(traffic_class)
        self._received.labels(**self.labels, **{names.PROM_LABEL_CLASS: traffic_class}).inc()
        ticket = next(self._ids)
        self._pending[traffic_class][ticket] = at
        return ticket

    def answered(self, traffic_class: str, ticket: int, at: float) -> float:
        """The request answered (or failed) at `at`: it leaves the backlog; its seconds."""
        seconds = at - self._pending[traffic_class].pop(ticket)
        self._duration.labels(**self.labels, **{names.PROM_LABEL_CLASS: traffic_class}).observe(seconds)
        return seconds

    def classes(self) -> list[str]:
        return list(self._pending)

    def backlog(self, traffic_class: str) -> int:
        return len(self._pending.get(traffic_class, {}))

    def oldest(self, traffic_class: str, now: float) -> float:
        """Age of the class's oldest unanswered request; 0 with none."""
        pending = self._pending.get(traffic_class)
        return max(0.0, now - min(pending.values())) if pending else 0.0

    def serve(self, port: int, addr: str = "127.0.0.1") -> WSGIServer:
        """/metrics on `addr:port` from a daemon thread; `shutdown()` the answer to stop it."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return server


class _Queued(Collector):
    """The backlog and oldest-age gauges, computed at scrape time from the pending requests."""

    def __init__(self, series: ClassSeries) -> None:
        self._series = series

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self._series
        keys = [*s.labels, names.PROM_LABEL_CLASS]
        backlog = GaugeMetricFamily(names.CLASS_BACKLOG_METRIC, "Requests received, not yet answered.",
                                    labels=keys)
        oldest = GaugeMetricFamily(names.CLASS_OLDEST_METRIC, "Age of the oldest unanswered request, s.",
                                   labels=keys)
        now = time.monotonic()
        for traffic_class in s.classes():
            values = [*s.labels.values(), traffic_class]
            backlog.add_metric(values, s.backlog(traffic_class))
            oldest.add_metric(values, s.oldest(traffic_class, now))
        yield backlog
        yield oldest


@dataclass(frozen=True)
class ClassLoad:
    """One run: Poisson interactive arrivals beside a batch job of `batch_requests` submitted at
    the start, worked off by `batch_inflight` concurrent requests (the job runner's workers).

    Priority 0 sends a class untagged (Triton's default level; the only one without classes)."""

    duration: float
    interactive_rate: float
    batch_requests: int
    deadline_seconds: float
    interactive_priority: int = 0
    batch_priority: int = 0
    batch_inflight: int = 64
    interactive_class: str = "live"
    batch_class: str = "offline"


@dataclass
class ClassRun:
    """What a run did: every interactive request, and the batch job's progress."""

    interactive: list[Record] = field(default_factory=list)
    batch_done: int = 0
    batch_on_time: int = 0
    batch_failed: int = 0
    batch_left: int = 0
    wall_seconds: float = 0.0

    def summary(self, offered: int) -> dict[str, Any]:
        wall = self.wall_seconds
        return {
            "interactive": summarize(self.interactive, wall, offered),
            "batch": {
                "done": self.batch_done, "on_time": self.batch_on_time, "failed": self.batch_failed,
                "left": self.batch_left, "wall_seconds": round(wall, 3),
                "throughput_rps": round(self.batch_done / wall, 3) if wall > 0 else None,
            },
        }  # fmt: skip


class _Sender:
    """One gRPC client sending the stand-in's audio at a priority, counted in the class series."""

    def __init__(self, client: Any, model: str, audio: np.ndarray[Any, np.dtype[np.float32]],
                 series: ClassSeries) -> None:
        self.client, self.model, self.audio, self.series = client, model, audio, series

    async def send(self, traffic_class: str, priority: int, ticket: int) -> tuple[float, Outcome]:
        """(received → answered seconds, outcome) of the request behind `ticket`."""
        from tritonclient.grpc import InferInput
        from tritonclient.utils import InferenceServerException

        inp = InferInput("AUDIO", [1, len(self.audio)], "FP32")
        inp.set_data_from_numpy(self.audio[np.newaxis, :])
        outcome: Outcome = "ok"
        try:
            result = await self.client.infer(self.model, [inp], priority=priority)
            if result.as_numpy("TEXT") is None:
                outcome = "error"
        except InferenceServerException as e:
            outcome = classify(str(e.status()), str(e.message()))
        return self.series.answered(traffic_class, ticket, time.monotonic()), outcome


async def drive_classes(url: str, model: str, audio: np.ndarray[Any, np.dtype[np.float32]],
                        load: ClassLoad, *, arrivals: FloatArray, series: ClassSeries) -> ClassRun:
    """Interactive requests at `arrivals` (open loop) while the batch job is worked off; the
    batch runners stop taking new work at `load.duration` and what is left stays queued."""
    try:
        from tritonclient.grpc.aio import InferenceServerClient
    except ImportError as e:
        raise RuntimeError(f"tritonclient is not installed: {INSTALL_HINT}") from e
    series.declare(load.interactive_class)
    client = InferenceServerClient(url)
    sender = _Sender(client, model, audio, series)
    run = ClassRun()
    try:
        start = time.monotonic()
        queue = [series.received(load.batch_class, start) for _ in range(load.batch_requests)]
        queue.reverse()  # pop() takes the oldest first
        runners = [_batch_runner(sender, load, queue, run, start) for _ in range(load.batch_inflight)]
        await asyncio.gather(_interactive(sender, load, arrivals, run, start), *runners)
        run.wall_seconds = time.monotonic() - start
        run.batch_left = len(queue)
        return run
    finally:
        await client.close()


async def _interactive(sender: _Sender, load: ClassLoad, arrivals: FloatArray, run: ClassRun,
                       start: float) -> None:
    async def one(due: float) -> None:
        sent = time.monotonic()
        ticket = sender.series.received(load.interactive_class, sent)
        seconds, outcome = await sender.send(load.interactive_class, load.interactive_priority, ticket)
        run.interactive.append(Record(due, sent - start - due, seconds, outcome))

    tasks = []
    for due in arrivals:
        delay = start + float(due) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(float(due))))
    await asyncio.gather(*tasks)


async def _batch_runner(sender: _Sender, load: ClassLoad, queue: list[int], run: ClassRun,
                        start: float) -> None:
    while queue and time.monotonic() - start < load.duration:
        seconds, outcome = await sender.send(load.batch_class, load.batch_priority, queue.pop())
        if outcome != "ok":
            run.batch_failed += 1
            continue
        run.batch_done += 1
        run.batch_on_time += seconds <= load.deadline_seconds


def run_classes_mode(args: argparse.Namespace) -> int:
    """`voxscale loadgen --batch-requests N ...`: the class-aware load, printed and exported."""
    from voxscale_lab.worker.loadgen import chunk_audio

    load = ClassLoad(
        duration=args.duration or 30.0, interactive_rate=args.rate, batch_requests=args.batch_requests,
        deadline_seconds=args.deadline, interactive_priority=args.interactive_priority,
        batch_priority=args.batch_priority, batch_inflight=args.batch_inflight,
        interactive_class=args.interactive_class, batch_class=args.batch_class,
    )  # fmt: skip
    series = ClassSeries(args.model, dict(label.split("=", 1) for label in args.label))
    if args.metrics_port:
        series.serve(args.metrics_port)
    arrivals = poisson_arrivals(load.interactive_rate, load.duration, np.random.default_rng(args.seed))
    audio = chunk_audio(args.audio_seconds, args.seed)
    run = asyncio.run(drive_classes(args.url, args.model, audio, load, arrivals=arrivals, series=series))
    summary = run.summary(len(arrivals))
    i, b = summary["interactive"], summary["batch"]
    print(f"interactive ({load.interactive_class}, priority {load.interactive_priority}):"
          f" {i['ok']}/{i['offered']} ok, p50 {i['p50_ms']} ms, p95 {i['p95_ms']} ms;"
          f" batch ({load.batch_class}, priority {load.batch_priority}): {b['done']} done"
          f" ({b['throughput_rps']} req/s), {b['on_time']} within"
          f" {load.deadline_seconds:g} s, {b['left']} left, {b['failed']} failed")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1))
    return 0 if i["error"] == 0 and b["failed"] == 0 else 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("classes (a worker rendered with spec.classes; --rate is the interactive rate)")
    g.add_argument("--batch-requests", type=int, help="class mode: a batch job of this many requests")
    g.add_argument("--batch-inflight", type=int, default=64, help="batch requests in flight at once")
    g.add_argument("--deadline", type=float, default=3600.0, help="the batch class's deadlineSeconds")
    g.add_argument("--interactive-priority", type=int, default=1, help="0 = untagged")
    g.add_argument("--batch-priority", type=int, default=2, help="0 = untagged")
    g.add_argument("--interactive-class", default="live")
    g.add_argument("--batch-class", default="offline")
    g.add_argument("--metrics-port", type=int, help="export the voxscale_class_* series here")
    g.add_argument("--label", action="append", default=[], metavar="K=V",
                   help="a constant label on every series, e.g. voxscale_shard=eu-en (repeat)")
