"""`voxscale demo`: the live closed loop (control plane, Prometheus, chart, operator, Triton, a trace)."""

from __future__ import annotations

import json
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml
from rich.console import Console
from rich.live import Live

from voxscale import names
from voxscale.k8s import Kube, KubeApiError
from voxscale.manifest import Manifest, load_manifest
from voxscale.series import History
from voxscale_lab.demo.bridge import Bridge, syncing
from voxscale_lab.demo.parts import OperatorProcess, backfill_history, install_chart, prometheus
from voxscale_lab.demo.report import Sample, Summary, summarize, write_plot
from voxscale_lab.demo.sessions import SessionMix, sessions_at
from voxscale_lab.demo.traffic import (
    STREAMS_PER_SHARD,
    TIME_SCALE,
    ShardTrace,
    Traffic,
    compressed_window,
    live_arrivals,
)
from voxscale_lab.demo.view import render_view
from voxscale_lab.devcluster import NodeShape, Topology, up
from voxscale_lab.devcluster.stages import WORKER_LOADED_ANNOTATION
from voxscale_lab.harness.ports import free_port
from voxscale_lab.worker.serve import DEFAULT_MODEL_DIR, worker_spec

# 2 regions x 2 zones x 2 nodes x 4 GPUs = 16 GPUs per region: room for 2 shards at maxReplicas 8.
TOPOLOGY = Topology(gpu_nodes_per_zone=2, cpu_nodes_per_region=0, gpu_shape=NodeShape(gpus=4))
# The stand-in's GPU-time profile for the demo: ~20 req/s per replica at p95 < 500 ms (measured).
PROFILE = {"fixed_seconds": 0.1, "per_item_seconds": 0.015}
LOAD_SECONDS = 12.0
HISTORY_SECONDS = 30 * 60.0
PEAK_LOAD_SHARE = 0.7
"""The trace's peak is 70 % of `peak_replicas` replicas' SLO capacity (as in the README runs)."""
SAMPLE_SECONDS = 2.0
READY_TIMEOUT_SECONDS = 180.0
NYC = "nyc_taxi.csv"
# Same city traffic in three places: different weeks and a 6-hour time-zone shift for the US.
DAY = 86400.0


@dataclass(frozen=True)
class DemoOptions:
    manifest: Path
    minutes: float
    out: Path
    traces: Path
    peak_replicas: float = 5.0
    seed: int = 0


def shard_traces(m: Manifest, traces: Path, peak_rps: float) -> list[ShardTrace]:
    """One trace window per shard (nyc_taxi at different days and hours), all peaking at `peak_rps`."""
    # The trace clock runs from the end of the backfill; set-up takes 30-50 s (1-2 h of trace)
    # before traffic starts, so each run opens in its night trough (04:00-06:00) on 1-2 replicas.
    offsets = [3 * DAY + 4 * 3600, 10 * DAY + 2 * 3600, 17 * DAY + 3 * 3600]
    return [ShardTrace(s.name, traces / NYC, offsets[i % len(offsets)] + 7 * DAY * (i // 3), peak_rps)
            for i, s in enumerate(m.spec.shards)]


def demo_model(workdir: Path) -> Path:
    """The stand-in model with the demo's slower GPU-time profile."""
    target = workdir / "asr-standin"
    shutil.copytree(DEFAULT_MODEL_DIR, target, ignore=shutil.ignore_patterns("__pycache__"),
                    dirs_exist_ok=True)
    profile = target / "1" / "profile.json"
    profile.write_text(json.dumps({**json.loads(profile.read_text()), **PROFILE}, indent=2))
    return target


def speechcluster_doc(path: Path, prometheus_url: str) -> dict[str, Any]:
    docs = yaml.safe_load_all(path.read_text())
    doc: dict[str, Any] = next(d for d in docs if isinstance(d, dict) and d.get("kind") == names.KIND)
    doc["spec"].setdefault("prometheus", {})["url"] = prometheus_url
    return doc


@dataclass
class Parts:
    """The running parts of one demo, stopped in reverse order by the ExitStack that holds them."""

    m: Manifest
    series: dict[str, History]
    bridge: Bridge
    kube: Kube
    operator: OperatorProcess
    prometheus_url: str


def run_live(opts: DemoOptions, console: Console, workdir: Path) -> Summary:
    """Bring every part up, run the trace for `opts.minutes`, then tear all down; returns the summary."""
    m = load_manifest(opts.manifest)
    duration = opts.minutes * 60.0
    console.print(f"[bold]voxscale demo[/]: {len(m.spec.shards)} shards, a day of traffic every "
                  f"{DAY / TIME_SCALE / 60:.0f} min, {opts.minutes:g} min; work files in {workdir}")
    t0 = time.monotonic()
    with ExitStack() as stack:
        parts = _bring_up(stack, m, opts, workdir, console)
        _wait_settled(parts.bridge, parts.kube, m, console)
        setup = time.monotonic() - t0
        start = time.time()
        traffic = plan_traffic(m, parts, start, duration, opts.seed)
        stack.callback(traffic.stop)
        traffic.start()
        samples = _watch(traffic, parts, duration, console)
        traffic.stop()
        peaks = {s: _peak(h, start, duration) for s, h in parts.series.items()}
        summary = summarize(m, samples, traffic.results, parts.operator.metrics(), peaks, setup_seconds=setup,
                            run_seconds=time.monotonic() - t0 - setup, bridge_started=parts.bridge.started,
                            sessions=traffic.session_results if traffic.streaming else None,
                            drains=list(parts.bridge.drains.values()))
        write_plot(m, samples, opts.out / "demo-live.png")
    return summary


def plan_traffic(m: Manifest, parts: Parts, start: float, duration: float, seed: int) -> Traffic:
    """Each shard's trace as requests; with spec.streaming, a share of it as live sessions (sessions.py)."""
    rng = np.random.default_rng(seed)
    if m.spec.streaming is None:
        arrivals = {s: live_arrivals(h, start, duration, rng) for s, h in parts.series.items()}
        return Traffic(arrivals, parts.bridge.endpoints, m.spec.model.name, seed=seed)
    mix = SessionMix()
    series = parts.series
    arrivals = {s: live_arrivals(mix.request_series(h), start, duration, rng) for s, h in series.items()}
    sessions = {s: sessions_at(live_arrivals(mix.session_series(h), start, duration, rng), mix, rng,
                               STREAMS_PER_SHARD) for s, h in series.items()}
    return Traffic(arrivals, parts.bridge.endpoints, m.spec.model.name, seed=seed, streaming=True,
                   sessions=sessions, pace=mix.pace_seconds)


def _peak(series: History, start: float, duration: float) -> float:
    t = series.times()
    return float(np.nanmax(series.values[(t >= start - series.step) & (t <= start + duration)]))


def _bring_up(stack: ExitStack, m: Manifest, opts: DemoOptions, workdir: Path, console: Console) -> Parts:
    cluster = up(workdir / "cluster", TOPOLOGY, ready_annotation=WORKER_LOADED_ANNOTATION)
    stack.callback(cluster.down)
    console.print(f"control plane + kwok GPU nodes in {len(TOPOLOGY.regions)} regions up in "
                  f"{cluster.start_seconds} s")
    cap = m.spec.capacity
    peak = opts.peak_replicas * cap.requests_per_second_per_replica * PEAK_LOAD_SHARE
    wall0, run_span = time.time(), opts.minutes * 60.0 + READY_TIMEOUT_SECONDS + 60
    series = {t.shard: compressed_window(t, wall0, HISTORY_SECONDS, run_span)
              for t in shard_traces(m, opts.traces, peak)}
    data_dir, sd_file = workdir / "prometheus" / "data", workdir / "prometheus" / "workers.json"
    sd_file.parent.mkdir(parents=True, exist_ok=True)
    sd_file.write_text("[]")
    backfill_history(data_dir, m.namespace, m.name, m.spec.model.name, series, wall0)
    op_metrics = free_port()
    prom = stack.enter_context(prometheus(data_dir, sd_file, op_metrics))
    console.print(f"Prometheus {prom.url}: {HISTORY_SECONDS / 60:.0f} min of history backfilled per shard")
    cluster.kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": m.namespace}})
    sa_config = install_chart(cluster, m.namespace, workdir / "helm.log")
    cluster.kubectl.apply(speechcluster_doc(opts.manifest, prom.url))
    # The demo's Prometheus is a loopback port, which the default allow-list refuses.
    operator = OperatorProcess(sa_config, m.namespace, workdir / "operator.log", op_metrics, (prom.url,))
    stack.callback(operator.stop)
    operator.start()
    console.print(f"chart installed (namespaced); the operator runs as its ServiceAccount; "
                  f"log {operator.log_path}")
    kube = Kube.from_kubeconfig(cluster.kubeconfig)
    stack.callback(kube.close)
    bridge = Bridge(kube, m.namespace, m.name,
                    worker_spec(m.spec.model.name, m.spec), model_dir=demo_model(workdir),
                    workdir=workdir / "workers", load_seconds=LOAD_SECONDS, sd_file=sd_file)
    stack.callback(bridge.close)
    stack.enter_context(syncing(bridge))
    return Parts(m, series, bridge, kube, operator, prom.url)


def _read_status(kube: Kube, m: Manifest) -> dict[str, Any]:
    try:
        obj = kube.read_speechcluster(m.namespace, m.name)
    except KubeApiError:  # a hiccup of the API server: the next sample reads it again
        return {}
    status: dict[str, Any] = (obj or {}).get("status", {})
    return status


def _status(kube: Kube, m: Manifest) -> dict[str, dict[str, Any]]:
    return shard_statuses(_read_status(kube, m))


def shard_statuses(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in status.get("shards", [])}


def streams_query(m: Manifest) -> str:
    """PromQL: live streams per shard of this SpeechCluster, summed over its workers' gauges."""
    selector = f'{names.PROM_LABEL_NAMESPACE}="{m.namespace}",{names.PROM_LABEL_CLUSTER}="{m.name}"'
    return f"sum by ({names.PROM_LABEL_SHARD}) ({names.ACTIVE_STREAMS_METRIC}{{{selector}}})"


def shard_streams(answer: dict[str, Any]) -> dict[str, float]:
    """{shard: live streams} from Prometheus' answer to `streams_query`; empty without the gauge
    (a shard that is not streaming has no row: the view shows "-", not 0)."""
    result = answer.get("data", {}).get("result", []) if answer.get("status") == "success" else []
    return {r["metric"].get(names.PROM_LABEL_SHARD, ""): float(r["value"][1]) for r in result}


def _streams(prometheus_url: str, m: Manifest) -> dict[str, float]:
    try:
        answer = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": streams_query(m)}, timeout=2.0)
        return shard_streams(answer.json())
    except (httpx.HTTPError, ValueError):  # no answer this sample: the next one asks again
        return {}


def _wait_settled(bridge: Bridge, kube: Kube, m: Manifest, console: Console) -> None:
    """Until every shard has the operator's first decision Ready (its minimum at least), as in steady
    state: traffic sent to one replica while the forecast already asked for three would only
    measure the start-up."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    with console.status("waiting for each shard's first decision to be Ready (real Triton, model loading)"):
        while time.monotonic() < deadline:
            ready, status = bridge.endpoints(), _status(kube, m)
            if all(s.name in status and len(ready.get(s.name, {})) >= max(m.spec.bounds(s)[0],
                   int(status[s.name].get("replicas", 0))) for s in m.spec.shards):
                return
            time.sleep(1.0)
    raise RuntimeError(f"shards not Ready within {READY_TIMEOUT_SECONDS:.0f} s: {bridge.endpoints()}")


def _watch(traffic: Traffic, parts: Parts, duration: float, console: Console) -> list[Sample]:
    """Sample the loop every couple of seconds and show it, until the traffic has been sent."""
    samples: list[Sample] = []
    m = parts.m
    end = time.monotonic() + duration + traffic.tail_seconds + 5
    with Live(console=console, refresh_per_second=1, transient=False) as live:
        while time.monotonic() < end and not traffic.done:
            now = time.time()
            full = _read_status(parts.kube, m)
            status, streams = shard_statuses(full), _streams(parts.prometheus_url, m)
            held = parts.bridge.processes()
            for shard in m.spec.shards:
                samples.append(Sample.of(now - (traffic.started_at or now), shard.name,
                                         status.get(shard.name, {}),
                                         traffic.offered_rate(shard.name, now), held.get(shard.name, 0),
                                         traffic.recent_p95(shard.name, now), streams.get(shard.name)))
            failovers = (full.get("routing") or {}).get("failovers") or []
            live.update(render_view(m, samples, now - (traffic.started_at or now), duration, failovers))
            time.sleep(SAMPLE_SECONDS)
    return samples
