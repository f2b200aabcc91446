"""The live demo's pure parts: sticky stream routing, trace windows, backfill text, pod refs, the figures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxscale.series import History
from voxscale_lab.demo.bridge import pod_refs
from voxscale_lab.demo.parts import history_openmetrics
from voxscale_lab.demo.report import Sample, attainment, scale_events, unsafe_scale_downs
from voxscale_lab.demo.traffic import TIME_SCALE, Result, ShardTrace, compressed_window, live_arrivals, owner
from voxscale_lab.devcluster.stages import WORKER_LOADED_ANNOTATION, pod_stages

ROOT = Path(__file__).resolve().parents[1]
NYC = ROOT / "examples" / "traces" / "nyc_taxi.csv"
WORKERS = [f"w{i}" for i in range(6)]


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=2, max_value=len(WORKERS)))
def test_a_new_worker_takes_streams_only_from_others_and_about_its_share(n: int) -> None:
    before = {s: owner(s, WORKERS[: n - 1]) for s in range(2000)}
    after = {s: owner(s, WORKERS[:n]) for s in range(2000)}
    moved = [s for s in before if before[s] != after[s]]
    assert all(after[s] == WORKERS[n - 1] for s in moved)
    assert abs(len(moved) / 2000 - 1 / n) < 0.05


def test_a_removed_worker_moves_only_its_own_streams() -> None:
    before = {s: owner(s, WORKERS) for s in range(2000)}
    after = {s: owner(s, WORKERS[1:]) for s in range(2000)}
    assert {s for s in before if before[s] != after[s]} == {s for s in before if before[s] == "w0"}


def test_the_compressed_window_plays_a_day_in_ten_minutes_around_the_start() -> None:
    trace = ShardTrace("eu-en", NYC, offset_seconds=3 * 86400, peak_rps=60.0)
    series = compressed_window(trace, start=1_000_000.0, before=1800.0, after=600.0)
    assert series.step == pytest.approx(1800 / TIME_SCALE)
    assert series.start <= 1_000_000.0 - 1800 + series.step
    assert series.end >= 1_000_000.0 + 600 - series.step
    assert np.nanmax(series.values) < 60.0 * 1.5


def test_live_arrivals_follow_the_series_rate_from_the_start() -> None:
    series = History.of(100.0, 10.0, [5.0] * 10 + [50.0] * 10)
    arrivals = live_arrivals(series, start=200.0, duration=50.0, rng=np.random.default_rng(0))
    assert arrivals.min() >= 0 and arrivals.max() < 50
    assert len(arrivals) == pytest.approx(50 * 50, rel=0.1)


def test_the_backfilled_counter_grows_by_rate_times_step_and_ends_before_now() -> None:
    labels = {"pod": "p"}
    text = history_openmetrics(labels, History.of(0.0, 10.0, [2.0] * 10), end=100.0)
    rows = [line.split() for line in text.splitlines() if not line.startswith("#")]
    assert [float(r[1]) for r in rows[:3]] == [0.0, 10.0, 20.0]
    assert float(rows[-1][2]) < 100.0


def test_pod_refs_read_shard_scheduling_and_deletion() -> None:
    pods = [
        {"metadata": {"name": "a", "uid": "1", "labels": {"voxscale.io/shard": "eu-en"}},
         "spec": {"nodeName": "gpu-1"}},
        {"metadata": {"name": "b", "uid": "2", "labels": {"voxscale.io/shard": "eu-en"},
                      "deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"nodeName": "gpu-1"}},
        {"metadata": {"name": "c", "uid": "3", "labels": {}}, "spec": {}},
    ]
    refs = pod_refs(pods)
    assert [(r.name, r.shard, r.scheduled, r.deleting) for r in refs] == [
        ("a", "eu-en", True, False), ("b", "eu-en", True, True), ("c", "", False, False)]


def test_the_ready_stage_waits_for_the_bridge_annotation_instead_of_a_timer() -> None:
    _, ready, _ = pod_stages(ready_annotation=WORKER_LOADED_ANNOTATION)
    keys = [e["jq"]["key"] for e in ready["spec"]["selector"]["matchExpressions"]]
    assert f'.metadata.annotations["{WORKER_LOADED_ANNOTATION}"]' in keys
    assert "durationFrom" not in ready["spec"]["delay"]


@pytest.mark.parametrize(("latencies", "outcomes", "expected"), [
    pytest.param([0.1, 0.2, 0.3, 0.6], ["ok"] * 4, (0.75, 0.0), id="one-slow-request-of-four"),
    pytest.param([0.1, 0.1], ["ok", "timeout"], (0.5, 0.0), id="a-failure-is-never-within-the-slo"),
    pytest.param([0.1] * 20, ["ok"] * 20, (1.0, 1.0), id="all-fast"),
])
def test_attainment_counts_requests_and_shard_minutes_within_the_slo(
    latencies: list[float], outcomes: list[str], expected: tuple[float, float]
) -> None:
    results = [Result("s", float(i), lat, out, "w") for i, (lat, out) in  # type: ignore[arg-type]
               enumerate(zip(latencies, outcomes, strict=True))]
    assert attainment(results, 500.0) == expected


def test_no_results_is_no_attainment_rather_than_zero() -> None:
    assert attainment([], 500.0) == (None, None)


def _sample(t: float, ready: int, offered: float) -> Sample:
    return Sample(t, "s", offered, None, None, None, None, ready, ready, 0, ready, "stable", "reactive", "")


def test_a_scale_down_below_the_needed_ready_capacity_is_counted() -> None:
    safe = [_sample(0, 4, 30.0), _sample(2, 3, 30.0)]  # 30 rps needs 2 of 20 rps
    unsafe = [_sample(0, 4, 70.0), _sample(2, 3, 70.0)]  # 70 rps needs 4
    assert unsafe_scale_downs(safe, 20.0) == 0
    assert unsafe_scale_downs(unsafe, 20.0) == 1


def test_scale_events_sum_the_operators_counters() -> None:
    text = ('# TYPE voxscale_scale_events_total counter\n'
            'voxscale_scale_events_total{namespace="n",cluster="c",shard="a",direction="up"} 3.0\n'
            'voxscale_scale_events_total{namespace="n",cluster="c",shard="a",direction="down"} 2.0\n'
            'voxscale_scale_events_created{namespace="n",cluster="c",shard="a",direction="up"} 1.7e9\n')
    assert scale_events(text) == 5
    assert not math.isnan(scale_events(""))
