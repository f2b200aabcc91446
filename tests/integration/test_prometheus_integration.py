"""PrometheusSource against a real Prometheus backfilled with known Triton series."""

from __future__ import annotations

import math

import numpy as np
import pytest
from triton_history import TritonHistory

from voxscale.metrics.prometheus import PrometheusSource
from voxscale.metrics.protocol import ShardSelector
from voxscale_lab.harness.prometheus import PrometheusServer

pytestmark = pytest.mark.integration

SHARD = ShardSelector(namespace="prod", cluster="asr", shard="eu-west", model="whisper")


def test_observe_reads_rate_latency_queue_and_batching_of_exactly_one_shard(
    prometheus: PrometheusServer, triton_history: TritonHistory
) -> None:
    m = PrometheusSource(prometheus.url).observe(SHARD, triton_history.end)
    assert m.errors == ()
    assert m.rate == pytest.approx(triton_history.last_rate(), rel=1e-9)  # 3 + 1 req/s
    assert m.latency_ms == 180.0  # max over pods of p95: 120 ms and 180 ms
    assert m.queue == 7.0  # 3 + 4 pending
    assert m.batch_efficiency == pytest.approx(triton_history.last_batch_efficiency(), rel=1e-9)


def test_the_slo_quantile_selects_tritons_matching_summary_series(
    prometheus: PrometheusServer, triton_history: TritonHistory
) -> None:
    m = PrometheusSource(prometheus.url, quantile=0.5).observe(SHARD, triton_history.end)
    assert m.latency_ms == 60.0


def test_data_that_stopped_ten_minutes_ago_is_no_data_not_zero(
    prometheus: PrometheusServer, triton_history: TritonHistory
) -> None:
    m = PrometheusSource(prometheus.url).observe(SHARD, triton_history.end + 600)
    assert (m.rate, m.panic_rate, m.latency_ms, m.queue, m.batch_efficiency) == (None,) * 5
    reads = ["rate", "panic_rate", "latency", "queue", "batch_efficiency"]
    assert [e.split(":")[0] for e in m.errors] == reads
    assert all("empty result" in e for e in m.errors)


def test_a_shard_nobody_scrapes_is_no_data(
    prometheus: PrometheusServer, triton_history: TritonHistory
) -> None:
    ghost = ShardSelector(namespace="prod", cluster="asr", shard="ap-south", model="whisper")
    m = PrometheusSource(prometheus.url).observe(ghost, triton_history.end)
    assert m.rate is None and not m.usable


def test_a_user_template_that_prometheus_rejects_is_no_data_with_its_error(
    prometheus: PrometheusServer, triton_history: TritonHistory
) -> None:
    from voxscale.api import QueryTemplates

    bad = QueryTemplates(queue="sum(rate(nv_inference_pending_request_count{selector}))")
    m = PrometheusSource(prometheus.url, templates=bad).observe(SHARD, triton_history.end)
    assert m.queue is None and m.rate is not None
    # Prometheus's own error text is a response body: withheld like any other (docs/runbook.md).
    assert m.errors[0] == "queue: query failed: HTTP 400 from the metrics endpoint"


def test_history_matches_the_written_rates_with_nan_in_the_scrape_gap(
    prometheus: PrometheusServer, triton_history: TritonHistory
) -> None:
    h = PrometheusSource(prometheus.url).history(
        SHARD, triton_history.start, triton_history.end, 60.0
    )
    assert (h.start, h.step, len(h)) == (triton_history.start, 60.0, 180)
    exact = nan = 0
    for t, got in zip(h.times(), h.values, strict=True):
        want = triton_history.expected_rate(float(t))
        if want is None:
            assert not triton_history.surely_defined(float(t)) or math.isfinite(got)
            continue
        if math.isnan(want):
            assert math.isnan(got), f"at {t}: {got} where no samples were written"
            nan += 1
        else:
            assert got == pytest.approx(want, rel=1e-9), f"at {t}"
            exact += 1
    print(f"history: {exact} exact points, {nan} NaN points, {len(h) - exact - nan} in between")
    assert exact >= 150 and nan >= 9


def test_history_of_a_long_range_is_assembled_from_chunks(
    prometheus: PrometheusServer, triton_history: TritonHistory
) -> None:
    """3 h at 1 s is 10,801 points: more than one range query may return."""
    src = PrometheusSource(prometheus.url, timeout_seconds=30)
    start = triton_history.end - 3 * 3600
    h = src.history(SHARD, start, triton_history.end, 1.0)
    coarse = src.history(SHARD, start, triton_history.end, 60.0)
    assert len(h) == 10_801
    np.testing.assert_array_equal(h.values[::60], coarse.values)
