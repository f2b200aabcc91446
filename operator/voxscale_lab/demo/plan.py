"""`voxscale demo --plan`: what the operator would create for a manifest, and what it would have
decided, tick by tick, for each shard over a bundled real trace (the operator's own decide() and
forecaster, driven through the replay simulator)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from voxscale.api import SpeechClusterSpec
from voxscale.decide.types import NO_FORECAST_UTILIZATION, Decision, Forecast, Policy
from voxscale.manifest import Manifest
from voxscale.render import render_model_config, render_shard
from voxscale_lab.capacity import CapacityProfile, load_profile
from voxscale_lab.replay.plot import plot_runs
from voxscale_lab.replay.policies.base import PolicyContext
from voxscale_lab.replay.policies.voxscale import VoxscalePolicy
from voxscale_lab.replay.report import Score, score
from voxscale_lab.replay.simulator import Run, SimConfig, simulate
from voxscale_lab.replay.view import View
from voxscale_lab.replay.workload import DAY, Workload, build_workload

# The reason line that explains each winning term (decide/ prefixes every line with its step).
TERM_STEP = {
    "predictive": "predictive",
    "reactive": "reactive",
    "current": "stabilize",
    "floor": "clamp",
    "ceiling": "clamp",
    "hold": "metrics",
    "fallback": "fallback",
}
# One bundled trace per shard, in order, so the shards see different shapes of traffic.
SHARD_TRACES = ("nyc_taxi.csv", "elb_request_count_8c0756.csv", "Twitter_volume_AAPL.csv")
# The busiest shard's p99 needs this share of its maxReplicas: headroom stays visible.
PEAK_SHARE_OF_MAX = 0.6
PEAK_LOAD_SHARE = 0.7
"""The trace's peak is 70 % of the peak replicas' SLO capacity."""


@dataclass(frozen=True)
class Tick:
    at: float
    decision: Decision
    forecast: Forecast | None


class RecordingPolicy:
    """The replay's voxscale policy, keeping every Decision (and its Forecast) for the timeline."""

    def __init__(self, inner: VoxscalePolicy) -> None:
        self.inner = inner
        self.name = inner.name
        self.interval_seconds = inner.interval_seconds
        self.ticks: list[Tick] = []

    def step(self, now: float, view: View) -> int:
        replicas = self.inner.step(now, view)
        if self.inner.last_decision is not None:
            self.ticks.append(Tick(now, self.inner.last_decision, self.inner.last_forecast))
        return replicas


@dataclass(frozen=True)
class ShardReplay:
    shard: str
    trace: str
    run: Run
    score: Score
    ticks: list[Tick]
    static_peak_replicas: int


def print_plan(console: Console, manifest: Manifest) -> None:
    spec = manifest.spec
    console.rule(f"[bold]SpeechCluster {manifest.namespace}/{manifest.name}")
    console.print(
        f"model [bold]{spec.model.name}[/] v{spec.model.version}, SLO {spec.slo.percentile} ≤ "
        f"{spec.slo.latency_ms:g} ms, {_capacity_line(spec)}, tick every "
        f"{spec.scaling.interval_seconds} s, declared warm-up {spec.model.warmup_seconds} s"
    )
    table = Table(title="Objects per shard (voxscale render shows them in full)")
    for col in ("shard", "region / zones", "languages", "replicas", "objects"):
        table.add_column(col)
    owner = manifest.owner(uid="<uid>")
    for shard in spec.shards:
        low, high = spec.bounds(shard)
        objects = ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in render_shard(owner, spec, shard))
        table.add_row(
            shard.name,
            f"{shard.region} / {','.join(shard.zones) or 'any'}",
            ",".join(shard.languages),
            f"{low}–{high}",
            objects,
        )
    console.print(table)
    console.print("[dim]config.pbtxt:[/]\n" + render_model_config(spec))


def replay_shard(spec: SpeechClusterSpec, shard_name: str, trace: Path, hours: float) -> ShardReplay:
    """One day-shaped replay of `trace` for one shard, at the spec's policy and capacity."""
    policy = Policy.from_spec(spec, shard_name)
    profile = _profile_for(spec)
    peak = max(1.0, PEAK_SHARE_OF_MAX * policy.max_replicas)
    workload = build_workload(
        trace,
        peak_rps=peak * profile.sustainable_rps * PEAK_LOAD_SHARE,
        span_seconds=hours * 3600,
        prior_seconds=7 * DAY,
    )
    initial = _initial_replicas(workload, policy)
    ctx = PolicyContext(
        capacity_rps=policy.capacity_rps,
        warmup_seconds=policy.declared_warmup_seconds,
        target_utilization=policy.target_utilization or NO_FORECAST_UTILIZATION,
        max_replicas=policy.max_replicas,
        slo_ms=spec.slo.latency_ms,
        percentile=spec.slo.quantile,
        initial_replicas=initial,
        min_replicas=policy.min_replicas,
    )
    recorder = RecordingPolicy(VoxscalePolicy(ctx, policy))
    config = SimConfig(
        profile,
        policy.declared_warmup_seconds,
        min_replicas=policy.min_replicas,
        max_replicas=policy.max_replicas,
        initial_replicas=initial,
    )
    run = simulate(recorder, workload, config)
    static = policy.capacity.replicas_for(float(np.percentile(workload.rate, 99.9)))
    return ShardReplay(
        shard_name,
        trace.name,
        run,
        score(run, spec.slo.latency_ms, spec.slo.quantile),
        recorder.ticks,
        min(static, policy.max_replicas),
    )


def _capacity_line(spec: SpeechClusterSpec) -> str:
    cap = spec.capacity
    line = f"{cap.requests_per_second_per_replica:g} req/s per replica at the SLO"
    if cap.service_time is not None:
        line = (f"batches of b take {cap.service_time.batch_fixed_ms:g} +"
                f" {cap.service_time.per_request_ms:g}·b ms")
    if cap.target_utilization is not None:
        return f"{line}, planned at {cap.target_utilization:.0%} target"
    return f"{line}, headroom from the SLO"


def _profile_for(spec: SpeechClusterSpec) -> CapacityProfile:
    """The packaged profile, at the spec's SLO; the spec's per-replica capacity is what the
    operator *believes*, the profile is what the simulated worker *does*."""
    base = load_profile(None)
    return base.model_copy(update={"slo_ms": spec.slo.latency_ms, "percentile": spec.slo.quantile})


def _initial_replicas(workload: Workload, policy: Policy) -> int:
    head = float(workload.rate[:300].max(initial=0.0))
    return min(policy.max_replicas, max(policy.min_replicas, policy.capacity.replicas_for(head)))


def print_timeline(console: Console, result: ShardReplay, every_seconds: float) -> None:
    table = Table(
        title=f"shard {result.shard}: decisions over {result.trace} (one row per "
        f"{every_seconds / 60:.0f} min)"
    )
    for col in ("time", "demand", "forecast", "desired", "ready", "latency", "mode", "term"):
        table.add_column(col, justify="right" if col not in ("time", "mode", "term") else "left")
    table.add_column("why", overflow="ellipsis", no_wrap=True, max_width=70)
    start = result.run.start
    minute_latency = result.run.minute_latency_ms(result.run.config.profile.percentile)
    shown = -math.inf
    for tick in result.ticks:
        if tick.at - shown < every_seconds:
            continue
        shown, d = tick.at, tick.decision
        i = int(tick.at - start)
        lat = minute_latency[min(i // 60, len(minute_latency) - 1)] if len(minute_latency) else math.nan
        table.add_row(
            datetime.fromtimestamp(tick.at, tz=UTC).strftime("%a %H:%M"),
            f"{result.run.arrivals[max(0, i - 60) : i + 1].mean():.0f}",
            "-" if tick.forecast is None else f"{tick.forecast.upper:.0f}",
            str(d.replicas),
            str(int(result.run.ready[i])),
            "-" if math.isnan(lat) else f"{lat:.0f}",
            d.mode,
            d.term,
            d.reasons[0] if d.reasons else "",
        )
    console.print(table)


def headline(decision: Decision) -> str:
    """The reason of the step that set the count (panic wins when active)."""
    step = "panic" if decision.mode == "panic" else TERM_STEP.get(decision.term, "")
    return next(
        (r for r in decision.reasons if r.startswith(f"{step}:")),
        decision.reasons[-1] if decision.reasons else "",
    )


def print_summary(console: Console, results: Sequence[ShardReplay], interval: float) -> None:
    table = Table(title="Summary: voxscale vs a static allocation sized for each shard's peak")
    for col in (
        "shard",
        "trace",
        "SLO attainment",
        "replica-hours",
        "static peak replica-hours",
        "saved",
        "scale events/h",
    ):
        table.add_column(col)
    for r in results:
        hours = r.run.seconds / 3600
        static = r.static_peak_replicas * hours
        table.add_row(
            r.shard,
            r.trace,
            f"{100 - r.score.violation_minutes_pct:.2f} %",
            f"{r.score.replica_hours:.1f}",
            f"{static:.1f}",
            f"{100 * (1 - r.score.replica_hours / static):.0f} %" if static else "-",
            f"{r.score.scale_events_per_hour:.1f}",
        )
    console.print(table)
    console.print(
        f"[dim]Each shard ticked every {interval:g} s through the operator's own decide() and "
        "forecast cache; the simulated worker follows the packaged capacity profile.[/]"
    )


def run_plan(manifest: Manifest, *, traces: Path, hours: float, out: Path, console: Console) -> int:
    print_plan(console, manifest)
    spec = manifest.spec
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for i, shard in enumerate(spec.shards):
        trace = traces / SHARD_TRACES[i % len(SHARD_TRACES)]
        with console.status(f"replaying {hours:g} h of {trace.name} for shard {shard.name} ..."):
            result = replay_shard(spec, shard.name, trace, hours)
        results.append(result)
        print_timeline(console, result, every_seconds=max(600.0, hours * 3600 / 24))
        png = plot_runs(
            [result.run],
            out / f"{shard.name}.png",
            capacity_rps=_profile_for(spec).sustainable_rps,
            slo_ms=spec.slo.latency_ms,
            percentile=spec.slo.quantile,
        )
        console.print(f"[dim]plot: {png}[/]")
    print_summary(console, results, spec.scaling.interval_seconds)
    return 0
