"""Synthetic Triton traffic for e2e: a loopback /metrics server per test, scraped by a real Prometheus.

A scenario sets each shard's total request rate (a number or a function of time) and its
latency; the counters grow at that rate in real time, integrated at every scrape, so
`rate(nv_inference_request_success[1m])` reads back what was set. Series carry exactly the
labels the operator's PromQL selects: namespace, pod, voxscale_cluster, voxscale_shard, model.
The load is reported as given on one stand-in pod per shard (`<cluster>-<shard>-load`): kwok pods
serve nothing, so spreading a made-up number over them would add nothing but noise.
`history_openmetrics` (a backfilled past for a rate function) is the lab harness's, re-exported.

Streaming scenarios add the worker's own stream metrics: live streams per real pod
(`voxscale_active_streams`, one series per pod name given) and the closed streams' lengths
(`voxscale_stream_duration_seconds`, a histogram on the stand-in pod).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml

from voxscale import names
from voxscale_lab.harness import prometheus
from voxscale_lab.harness.backfill import history_openmetrics  # noqa: F401 (the scenarios' import)
from voxscale_lab.harness.ports import free_port
from voxscale_lab.harness.prometheus import PrometheusServer, backfill, require_binary_for_test
from voxscale_lab.harness.waiting import eventually

Rate = float | Callable[[float], float]
Latency = float | Callable[[float], float]
"""Milliseconds, fixed or a function of time (e.g. of the offered rate ÷ the Ready replicas)."""
SCRAPE_SECONDS = 1.0
QUANTILES = (0.5, 0.9, 0.95, 0.99)
# Mean batch size Triton would report (inferences per execution): a constant, as no test reads it.
BATCH = 4.0


@dataclass
class ShardLoad:
    """One shard's offered load and the Triton counters it has produced so far."""

    labels: dict[str, str]
    rate: Rate = 0.0
    latency_ms: Latency = 100.0
    queue: float = 0.0
    requests: float = 0.0
    last: float = field(default_factory=time.time)

    def rate_at(self, t: float) -> float:
        return max(0.0, self.rate(t) if callable(self.rate) else self.rate)

    def latency_at(self, t: float) -> float:
        return max(0.0, self.latency_ms(t) if callable(self.latency_ms) else self.latency_ms)

    def advance(self, now: float) -> None:
        """Integrate the rate up to `now` (trapezoids of at most 1 s, so a ramp is followed)."""
        t = self.last
        while t < now:
            step = min(1.0, now - t)
            self.requests += step * (self.rate_at(t) + self.rate_at(t + step)) / 2
            t += step
        self.last = max(self.last, now)


# The worker's duration buckets (workers/models/asr-standin/1/model.py).
SESSION_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)


@dataclass
class ShardSessions:
    """Closed streams of one shard: `per_second` close, their lengths drawn evenly from `lengths`."""

    labels: dict[str, str]
    lengths: tuple[float, ...]
    per_second: float
    since: float = field(default_factory=time.time)

    def lines(self, now: float) -> list[str]:
        closed = self.per_second * max(0.0, now - self.since)
        name = names.STREAM_DURATION_METRIC
        out = []
        for le in (*SESSION_BUCKETS, math.inf):
            share = sum(length <= le for length in self.lengths) / len(self.lengths)
            bound = "+Inf" if math.isinf(le) else f"{le:g}"
            out.append(f"{name}_bucket{_fmt({**self.labels, 'le': bound})} {closed * share:.3f}")
        mean = sum(self.lengths) / len(self.lengths)
        out.append(f"{name}_sum{_fmt(self.labels)} {closed * mean:.3f}")
        out.append(f"{name}_count{_fmt(self.labels)} {closed:.3f}")
        return out


@dataclass
class ClassLoad:
    """One traffic class of a shard (spec.classes), as the gateway and the job queue export it:
    arrivals (a counter growing at `rate`), the backlog and the oldest queued request's age."""

    labels: dict[str, str]
    rate: float = 0.0
    backlog: float = 0.0
    oldest_seconds: float = 0.0
    requests: float = 0.0
    last: float = field(default_factory=time.time)

    def advance(self, now: float) -> None:
        self.requests += self.rate * max(0.0, now - self.last)
        self.last = now

    def values(self) -> dict[str, float]:
        return {names.CLASS_REQUESTS_METRIC: self.requests, names.CLASS_BACKLOG_METRIC: self.backlog,
                names.CLASS_OLDEST_METRIC: self.oldest_seconds}


class TrafficServer:
    """A ThreadingHTTPServer on a free loopback port answering `/metrics` in Prometheus text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shards: dict[tuple[str, str, str], ShardLoad] = {}
        self._streams: dict[tuple[str, str, str, str], tuple[dict[str, str], float]] = {}
        self._sessions: dict[tuple[str, str, str], ShardSessions] = {}
        self._classes: dict[tuple[str, str, str, str], ClassLoad] = {}
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    @property
    def target(self) -> str:
        host, port = self._http.server_address[:2]
        return f"{host!s}:{port}"

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def set(self, namespace: str, cluster: str, shard: str, *, model: str, rate: Rate | None = None,
            latency_ms: Latency | None = None, queue: float | None = None,
            start_requests: float | None = None) -> None:
        """Change a shard's load from now on; counters keep what they counted so far."""
        now = time.time()
        with self._lock:
            key = (namespace, cluster, shard)
            load = self._shards.get(key)
            if load is None:
                load = self._shards[key] = ShardLoad(shard_labels(namespace, cluster, shard, model))
            load.advance(now)
            if rate is not None:
                load.rate = rate
            if latency_ms is not None:
                load.latency_ms = latency_ms
            if queue is not None:
                load.queue = queue
            if start_requests is not None:
                load.requests = start_requests

    def set_streams(self, namespace: str, cluster: str, shard: str, *, model: str,
                    streams: dict[str, float]) -> None:
        """Live streams per pod name from now on (a pod left out exports no series)."""
        base = shard_labels(namespace, cluster, shard, model)
        with self._lock:
            for key in [k for k in self._streams if k[:3] == (namespace, cluster, shard)]:
                del self._streams[key]
            for pod, n in streams.items():
                self._streams[(namespace, cluster, shard, pod)] = ({**base, "pod": pod}, n)

    def set_sessions(self, namespace: str, cluster: str, shard: str, *, model: str,
                     lengths: tuple[float, ...], per_second: float) -> None:
        """Streams closing from now on, `per_second`, with lengths drawn evenly from `lengths`."""
        with self._lock:
            self._sessions[(namespace, cluster, shard)] = ShardSessions(
                shard_labels(namespace, cluster, shard, model), lengths, per_second)

    def set_class(self, namespace: str, cluster: str, shard: str, traffic_class: str, *, model: str,
                  rate: float | None = None, backlog: float | None = None,
                  oldest_seconds: float | None = None) -> None:
        """A class's voxscale_class_* series from now on (docs/classes.md); arrivals keep counting."""
        with self._lock:
            key = (namespace, cluster, shard, traffic_class)
            load = self._classes.get(key)
            if load is None:
                labels = shard_labels(namespace, cluster, shard, model)
                load = self._classes[key] = ClassLoad({**labels, names.PROM_LABEL_CLASS: traffic_class})
            load.advance(time.time())
            load.rate = load.rate if rate is None else rate
            load.backlog = load.backlog if backlog is None else backlog
            load.oldest_seconds = load.oldest_seconds if oldest_seconds is None else oldest_seconds

    def forget(self, namespace: str) -> None:
        with self._lock:
            for key in [k for k in self._classes if k[0] == namespace]:
                del self._classes[key]
            for key in [k for k in self._shards if k[0] == namespace]:
                del self._shards[key]
            for pod in [k for k in self._streams if k[0] == namespace]:
                del self._streams[pod]
            for shard in [k for k in self._sessions if k[0] == namespace]:
                del self._sessions[shard]

    def exposition(self) -> str:
        now = time.time()
        lines: list[str] = []
        with self._lock:
            loads = list(self._shards.values())
            for load in loads:
                load.advance(now)
            streams = list(self._streams.values())
            sessions = list(self._sessions.values())
            classes = list(self._classes.values())
            for c in classes:
                c.advance(now)
            class_values = [(c.labels, c.values()) for c in classes]
        latencies = [load.latency_at(now) for load in loads]
        for name, kind in _FAMILIES:
            lines.append(f"# TYPE {name} {kind}")
            for load, latency_ms in zip(loads, latencies, strict=True):
                lines.extend(_series(name, load, latency_ms))
        if streams:
            lines.append(f"# TYPE {names.ACTIVE_STREAMS_METRIC} gauge")
            lines += [f"{names.ACTIVE_STREAMS_METRIC}{_fmt(labels)} {n:g}" for labels, n in streams]
        if sessions:
            lines.append(f"# TYPE {names.STREAM_DURATION_METRIC} histogram")
            for s in sessions:
                lines += s.lines(now)
        for family, kind in _CLASS_FAMILIES if class_values else ():
            lines.append(f"# TYPE {family} {kind}")
            lines += [f"{family}{_fmt(labels)} {values[family]:.3f}" for labels, values in class_values]
        return "\n".join(lines) + "\n"


_CLASS_FAMILIES = (
    (names.CLASS_REQUESTS_METRIC, "counter"),
    (names.CLASS_BACKLOG_METRIC, "gauge"),
    (names.CLASS_OLDEST_METRIC, "gauge"),
)
_FAMILIES = (
    ("nv_inference_request_success", "counter"),
    ("nv_inference_count", "counter"),
    ("nv_inference_exec_count", "counter"),
    ("nv_inference_pending_request_count", "gauge"),
    ("nv_inference_request_summary_us", "summary"),
)


def shard_labels(namespace: str, cluster: str, shard: str, model: str) -> dict[str, str]:
    """The labels of a shard's live series (add the scrape's job/instance to continue it)."""
    return {"namespace": namespace, "pod": f"{cluster}-{shard}-load", "voxscale_cluster": cluster,
            "voxscale_shard": shard, "model": model, "version": "1"}


def _fmt(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _series(name: str, load: ShardLoad, latency_ms: float) -> list[str]:
    lab = load.labels
    if name == "nv_inference_request_success":
        return [f"{name}{_fmt(lab)} {load.requests:.3f}"]
    if name == "nv_inference_count":
        return [f"{name}{_fmt(lab)} {load.requests * BATCH:.3f}"]
    if name == "nv_inference_exec_count":
        return [f"{name}{_fmt(lab)} {load.requests:.3f}"]
    if name == "nv_inference_pending_request_count":
        return [f"{name}{_fmt(lab)} {load.queue:g}"]
    # A summary: quantiles (all at the set latency: the tests drive p95 only), _sum and _count.
    us = latency_ms * 1000.0
    out = [f"{name}{_fmt({**lab, 'quantile': repr(q)})} {us:.1f}" for q in QUANTILES]
    out.append(f"{name}_sum{_fmt(lab)} {load.requests * us:.1f}")
    out.append(f"{name}_count{_fmt(lab)} {load.requests:.3f}")
    return out


def _handler(server: TrafficServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = server.exposition().encode() if self.path.startswith("/metrics") else b""
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:  # one line per scrape is noise
            pass

    return Handler


def queueing_latency_ms(rate: float, ready: int, *, capacity_rps: float, slo_ms: float,
                        service_ms: float = 100.0, ceiling_ms: float = 10_000.0) -> float:
    """p95 of a shard whose `ready` replicas share `rate`: service ÷ (1 − ρ), an M/M/1-like queue.

    Each replica saturates where the SLO is met at exactly `capacity_rps` (the spec's
    requestsPerSecondPerReplica: what one replica sustains at the SLO). E.g. service 100 ms,
    SLO 500 ms, capacity 20 rps: saturation 20 ÷ (1 − 100/500) = 25 rps, so 14 rps on one
    replica is 100 ÷ (1 − 0.56) = 227 ms, 20 rps is 500 ms and 21 rps 625 ms: a replica
    count that falls behind the load shows as a breach. No Ready replica, or ρ ≥ 1: the ceiling.
    """
    saturation = capacity_rps / (1.0 - service_ms / slo_ms)
    rho = rate / (ready * saturation) if ready > 0 else float("inf")
    return min(ceiling_ms, service_ms / (1.0 - rho)) if rho < 1.0 else ceiling_ms


@dataclass
class Telemetry:
    """The traffic server and the Prometheus scraping it every second (stoppable, same port)."""

    traffic: TrafficServer
    data_dir: Path
    port: int
    server: PrometheusServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_prometheus(self) -> None:
        config = self.data_dir.parent / "prometheus.yml"
        config.write_text(yaml.safe_dump(_scrape_config(self.traffic.target)))
        log = self.data_dir.parent / "prometheus.log"
        self.server = prometheus.start(self.data_dir, config, self.port, log)
        if not prometheus.wait_ready(self.server, 60):
            raise RuntimeError(f"prometheus did not become ready:\n{self.server.log_tail()}")
        eventually("Prometheus to scrape the traffic server", self._scraping, timeout=30)

    def stop_prometheus(self) -> None:
        if self.server is not None:
            self.server.stop()

    def _scraping(self) -> bool:
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": 'up{job="traffic"}'},
                              timeout=2).json()
        return any(r["value"][1] == "1" for r in answer["data"]["result"])


def _scrape_config(target: str) -> dict[str, Any]:
    every = f"{SCRAPE_SECONDS:g}s"
    return prometheus.config([{
        "job_name": "traffic", "honor_labels": True, "scrape_interval": every, "scrape_timeout": every,
        "static_configs": [{"targets": [target]}],
    }], scrape_interval=every)


@contextmanager
def telemetry(workdir: Path,
              history: Callable[[TrafficServer], str] | None = None) -> Iterator[Telemetry]:
    """A traffic server and its Prometheus; `history(traffic)` (OpenMetrics) is backfilled first.

    `history` gets the server so that it can label the backfilled series with the scrape's own
    job/instance: the live counter then continues the backfilled one as a single series.
    """
    require_binary_for_test("prometheus")
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True)
    traffic = TrafficServer()
    if history is not None:
        require_binary_for_test("promtool")
        backfill(history(traffic), data_dir)
    tel = Telemetry(traffic, data_dir, free_port())
    try:
        tel.start_prometheus()
        yield tel
    finally:
        tel.stop_prometheus()
        traffic.close()
