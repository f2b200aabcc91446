"""What the live demo measured: SLO attainment from real request latencies, replica-minutes, scale events."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxscale.decide.types import Policy
from voxscale.manifest import Manifest
from voxscale_lab.demo.bridge import Drain
from voxscale_lab.demo.traffic import Result, SessionResult
from voxscale_lab.worker.results import percentile


@dataclass(frozen=True)
class Sample:
    """One shard at one moment of the run (t: seconds since the traffic started)."""

    t: float
    shard: str
    offered: float | None
    observed: float | None
    forecast: float | None
    latency_ms: float | None
    measured_p95_ms: float | None
    desired: int
    ready: int
    warming: int
    held: int
    mode: str
    term: str
    reason: str
    streams: float | None = None
    """Live streams on the shard's workers (their voxscale_active_streams); None: no gauge."""

    @classmethod
    def of(cls, t: float, shard: str,  # noqa: PLR0917
            status: dict[str, Any], offered: float | None, held: int,
           measured_p95_ms: float | None, streams: float | None = None) -> Sample:
        reasons = status.get("reasons") or [""]
        return cls(t, shard, offered, status.get("observedRate"), status.get("forecastRate"),
                   status.get("observedLatencyMs"), measured_p95_ms, int(status.get("replicas", 0)),
                   int(status.get("readyReplicas", 0)), int(status.get("warmingReplicas", 0)), held,
                   str(status.get("mode", "-")), str(status.get("winningTerm", "-")), str(reasons[-1]),
                   streams)


@dataclass(frozen=True)
class StreamFigures:
    """The run's sessions: opened (a worker was Ready), ended (END answered), cut (a chunk refused or
    its worker gone), chunks answered, and the live streams the view showed (its column, from the
    workers' gauges in Prometheus), highest per shard; None for a shard whose gauge never showed."""

    opened: int
    ended: int
    cut: int
    unopened: int
    chunks: int
    chunk_p95_ms: float | None
    peak_live: dict[str, float | None]
    drained: int = 0
    """Workers of deleted pods that waited for their streams (the bridge's drains)."""
    held_at_deletion: float = 0.0
    """Streams those workers held when their deletion was seen."""
    longest_exit_seconds: float | None = None

    def line(self) -> str:
        peaks = ", ".join(f"{k} {'-' if v is None else f'{v:.0f}'}" for k, v in self.peak_live.items())
        p95 = "-" if self.chunk_p95_ms is None else f"{self.chunk_p95_ms:.0f} ms"
        exit_s = self.longest_exit_seconds
        longest = "" if exit_s is None else f", the longest exited {exit_s:.1f} s after"
        return (f"streams: {self.opened} sessions started, {self.ended} completed, {self.cut} cut (a chunk "
                f"refused or its worker gone), {self.unopened} not opened (no Ready worker); {self.chunks} "
                f"chunks, p95 {p95}; live streams per shard peaked at {peaks}; scale-in drained "
                f"{self.drained} workers holding {self.held_at_deletion:.0f} streams at deletion{longest}")


def stream_figures(sessions: list[SessionResult], samples: list[Sample],
                   drains: Sequence[Drain] = ()) -> StreamFigures:
    opened = [s for s in sessions if s.worker]
    answers = [a for s in opened for a in s.record.answers]
    peaks: dict[str, float | None] = {}
    for sample in samples:
        last = peaks.get(sample.shard)
        peaks[sample.shard] = last if sample.streams is None else max(last or 0.0, sample.streams)
    exits = [d.seconds_to_exit for d in drains if d.seconds_to_exit is not None]
    return StreamFigures(
        len(opened), sum(s.record.ended for s in opened), sum(s.cut for s in opened),
        len(sessions) - len(opened), len(answers),
        percentile([a.latency * 1000 for a in answers if not a.error], 95), peaks,
        len(drains), sum(d.streams_at_deletion or 0.0 for d in drains), max(exits, default=None))


@dataclass(frozen=True)
class Summary:
    requests: int
    slo_ms: float
    request_attainment: float | None
    minute_attainment: float | None
    replica_minutes: float
    static_replica_minutes: float
    static_replicas: dict[str, int]
    scale_events: int
    scale_events_per_hour: float
    unsafe_scale_downs: int
    setup_seconds: float
    run_seconds: float
    workers_started: int
    streams: StreamFigures | None = None
    """None: the run sent no sessions (the manifest does not stream)."""

    def lines(self) -> list[str]:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{100 * x:.1f} %"

        saved = 1 - self.replica_minutes / self.static_replica_minutes if self.static_replica_minutes else 0.0
        return [
            f"requests sent: {self.requests}; SLO p95 <= {self.slo_ms:g} ms",
            f"SLO attainment: {pct(self.request_attainment)} of requests within {self.slo_ms:g} ms; "
            f"{pct(self.minute_attainment)} of shard-minutes with p95 within it",
            f"replica-minutes: {self.replica_minutes:.1f} (voxscale) vs {self.static_replica_minutes:.1f} "
            f"(static peak allocation {self.static_replicas}) -> {100 * saved:.0f} % fewer",
            f"scale events: {self.scale_events} ({self.scale_events_per_hour:.0f} per hour); "
            f"scale-downs below the Ready capacity needed: {self.unsafe_scale_downs}",
            *([self.streams.line()] if self.streams is not None else []),
            f"Triton workers started: {self.workers_started}; set-up {self.setup_seconds:.0f} s, "
            f"run {self.run_seconds:.0f} s",
        ]


def attainment(results: list[Result], slo_ms: float) -> tuple[float | None, float | None]:
    """Share of requests answered within the SLO, and of (shard, minute)s whose p95 was within it."""
    if not results:
        return None, None
    ok = [r.outcome == "ok" and r.latency * 1000 <= slo_ms for r in results]
    minutes: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in results:
        minutes[(r.shard, int(r.due // 60))].append(r.latency * 1000 if r.outcome == "ok" else math.inf)
    good = [float(np.percentile(v, 95, method="higher")) <= slo_ms for v in minutes.values()]
    return sum(ok) / len(ok), sum(good) / len(good)


def scale_events(metrics_text: str) -> int:
    """Sum of the operator's `voxscale_scale_events_total` counters (from its /metrics)."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("voxscale_scale_events_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def unsafe_scale_downs(samples: list[Sample], per_replica_rps: float) -> int:
    """Times a shard's Ready count fell while the offered rate needed more Ready replicas than were left."""
    last: dict[str, Sample] = {}
    bad = 0
    for s in samples:
        prev = last.get(s.shard)
        if prev is not None and s.ready < prev.ready and s.offered is not None:
            need = math.ceil(s.offered / per_replica_rps)
            bad += s.ready < need
        last[s.shard] = s
    return bad


def summarize(m: Manifest, samples: list[Sample], results: list[Result], operator_metrics: str,
              peaks: dict[str, float], *, setup_seconds: float, run_seconds: float,
              bridge_started: int, sessions: list[SessionResult] | None = None,
              drains: Sequence[Drain] = ()) -> Summary:
    """The run's figures; `peaks` is each shard's highest trace rate over the run (what a static
    allocation sized with the same capacity plan must hold all the time)."""
    cap = m.spec.capacity
    slo = m.spec.slo.latency_ms
    req, minute = attainment(results, slo)
    held = _integrate(samples, "held")
    static = {k: max(1, Policy.from_spec(m.spec, k).capacity.replicas_for(v))
              for k, v in peaks.items()}
    span = max((s.t for s in samples), default=0.0) / 60
    events = scale_events(operator_metrics)
    return Summary(len(results), slo, req, minute, held, sum(static.values()) * span, static, events,
                   events / max(run_seconds / 3600, 1e-9),
                   unsafe_scale_downs(samples, cap.requests_per_second_per_replica),
                   setup_seconds, run_seconds, bridge_started,
                   stream_figures(sessions, samples, drains) if sessions is not None else None)


def _integrate(samples: list[Sample], attr: str) -> float:
    """Replica-minutes of `attr` (a step function between samples), summed over shards."""
    by_shard: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_shard[s.shard].append(s)
    total = 0.0
    for rows in by_shard.values():
        for a, b in itertools.pairwise(rows):
            total += getattr(a, attr) * (b.t - a.t) / 60
    return total


def write_plot(m: Manifest, samples: list[Sample], path: Path) -> Path:
    """Per shard: offered/observed/forecast rate and replicas (top), measured p95 vs SLO and, for a
    streaming shard, its live streams (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shards = [s.name for s in m.spec.shards]
    fig, axes = plt.subplots(2, len(shards), figsize=(6 * len(shards), 7), sharex=True, squeeze=False)
    for i, shard in enumerate(shards):
        rows = [s for s in samples if s.shard == shard]
        t = [s.t / 60 for s in rows]
        top, bottom = axes[0][i], axes[1][i]
        for attr, label in (("offered", "offered (trace)"), ("observed", "observed (Prometheus)"),
                            ("forecast", "forecast upper")):
            values = [getattr(s, attr) for s in rows]
            top.plot(t, [np.nan if v is None else v for v in values], label=label)
        top.set_title(shard)
        top.set_ylabel("req/s")
        right = top.twinx()
        right.step(t, [s.desired for s in rows], where="post", color="k", label="desired")
        right.step(t, [s.ready for s in rows], where="post", color="g", linestyle="--", label="ready")
        right.set_ylabel("replicas")
        if i == 0:
            top.legend(loc="upper left", fontsize=8)
            right.legend(loc="upper right", fontsize=8)
        bottom.plot(t, [s.measured_p95_ms if s.measured_p95_ms is not None else np.nan for s in rows],
                    label="measured p95 (10 s)")
        bottom.axhline(m.spec.slo.latency_ms, color="r", linestyle=":", label="SLO")
        if any(s.streams is not None for s in rows):  # the view's streams column, over the run
            live = bottom.twinx()
            live.plot(t, [np.nan if s.streams is None else s.streams for s in rows], color="tab:purple",
                      label="live streams")
            live.set_ylabel("streams")
            live.set_ylim(bottom=0)
            live.legend(loc="upper right", fontsize=8)
        bottom.set_xlabel("minutes")
        bottom.set_ylabel("ms")
        bottom.set_ylim(0, m.spec.slo.latency_ms * 2)
        bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
