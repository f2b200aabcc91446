"""The live demo's closed loop, shortened: real control plane, Prometheus, chart, operator, Triton, trace.

One run (a few compressed hours of traffic) feeds every assertion below; the bounds come from
measured runs on the 2-core machine (see the module constants) and the figures are printed.
The demo's manifest streams: a fifth of each shard's load comes as live calls on Triton's
sequence batcher, and the operator scales in around them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from e2e.helpers import FIGURES, REPO
from voxscale_lab.demo.cli import LIVE_MANIFEST, leftover_processes
from voxscale_lab.demo.live import DemoOptions, run_live
from voxscale_lab.demo.report import Summary

MINUTES = 3.0
# Measured: 92.9 % and 98.6 % of requests within the SLO over 3-minute runs (the first minute of
# a run weighs most: the trace starts climbing while the first extra workers still load), 96.6-
# 98.3 % over full 10-minute demos; all with other jobs sharing the 2 cores. Streaming (sequence
# batcher, 14 req/s a replica): 98.1 % and 97.3 % over 3-minute runs at load averages 6-7 (the
# pre-streaming demo beside them: 98.1 %). 85 % leaves room for a busier CI machine and still
# fails a loop that lets a shard sit overloaded.
MIN_REQUEST_ATTAINMENT = 0.85
# scaleUp.periodSeconds 5 and a 30 s scale-down stabilization would allow hundreds; a compressed
# day (1 -> ~5 -> 1 replicas every 10 min) needs ~10 changes per shard per cycle. Measured: 48-68
# per shard-hour over full demos, 92-112 over 3-minute runs (the morning ramp is all they see).
MAX_EVENTS_PER_SHARD_HOUR = 150


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Summary, Path]]:
    pytest.importorskip("tritonclient", reason="needs the worker extra: pip install -e '.[worker]'")
    workdir = tmp_path_factory.mktemp("demo").resolve()
    opts = DemoOptions(REPO / LIVE_MANIFEST, MINUTES, workdir / "out", REPO / "examples" / "traces")
    summary = run_live(opts, Console(width=150, record=False, quiet=True), workdir)
    for line in summary.lines():
        name, value = line.split(":", 1)
        FIGURES[f"demo closed loop ({MINUTES:g} min): {name}"] = value.strip()
    yield summary, workdir


def test_requests_meet_the_latency_slo_over_the_run(demo_run: tuple[Summary, Path]) -> None:
    summary, _ = demo_run
    assert summary.requests > 0
    assert summary.request_attainment is not None
    assert summary.request_attainment >= MIN_REQUEST_ATTAINMENT


def test_scale_events_per_hour_stay_bounded(demo_run: tuple[Summary, Path]) -> None:
    summary, _ = demo_run
    assert summary.scale_events > 0, "a compressed day must move replicas"
    assert summary.scale_events_per_hour <= MAX_EVENTS_PER_SHARD_HOUR * 3


def test_no_ready_pod_is_scaled_away_while_capacity_is_short(demo_run: tuple[Summary, Path]) -> None:
    summary, _ = demo_run
    assert summary.unsafe_scale_downs == 0


def test_replica_minutes_stay_below_a_static_peak_allocation(demo_run: tuple[Summary, Path]) -> None:
    summary, _ = demo_run
    assert 0 < summary.replica_minutes < summary.static_replica_minutes


def test_the_view_showed_live_streams_and_scale_in_cut_none(demo_run: tuple[Summary, Path]) -> None:
    summary, _ = demo_run
    streams = summary.streams
    assert streams is not None, "the demo's manifest streams: its run sends sessions"
    assert streams.opened > 0 and streams.chunks > streams.opened
    # The view's streams column (the workers' gauges, from Prometheus) read a live count.
    assert any((live or 0) > 0 for live in streams.peak_live.values()), streams.peak_live
    # Stream-aware scale-in: every call opened ran to its END on the worker it started on.
    assert streams.cut == 0
    assert streams.ended == streams.opened


def test_teardown_leaves_no_process_and_the_plot_is_written(demo_run: tuple[Summary, Path]) -> None:
    _, workdir = demo_run
    assert leftover_processes(workdir) == []
    assert (workdir / "out" / "demo-live.png").stat().st_size > 0
