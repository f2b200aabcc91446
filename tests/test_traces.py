"""Loading the bundled traces: formats, rates in req/s, missing rows as NaN, scaling helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voxscale.series import History
from voxscale_lab.traces import compress_time, load_trace, scale_to_peak

TRACES = Path(__file__).resolve().parents[1] / "examples" / "traces"


def test_nab_counts_per_30_minutes_become_requests_per_second() -> None:
    trace = load_trace(TRACES / "nyc_taxi.csv")
    history = trace.rate(1800)
    assert not trace.per_request
    assert trace.interval == 1800
    assert len(history) == 10320
    # First row: 10,844 passengers in 30 minutes = 6.02 per second.
    assert history.values[0] == pytest.approx(10844 / 1800)
    assert history.start == pytest.approx(1404172800.0)  # 2014-07-01 00:00 UTC


def test_missing_nab_rows_are_nan_not_zero() -> None:
    history = load_trace(TRACES / "elb_request_count_8c0756.csv").rate(300)
    assert np.count_nonzero(np.isnan(history.values)) == 8
    assert np.nanmin(history.values) > 0


def test_coarser_steps_average_the_intervals_present() -> None:
    trace = load_trace(TRACES / "nyc_taxi.csv")
    fine, coarse = trace.rate(1800), trace.rate(3600)
    assert coarse.values[0] == pytest.approx((fine.values[0] + fine.values[1]) / 2)
    assert len(coarse) == len(fine) // 2


def test_finer_steps_repeat_the_interval_rate() -> None:
    history = load_trace(TRACES / "nyc_taxi.csv").rate(600)
    assert history.values[:3] == pytest.approx([10844 / 1800] * 3)
    assert history.values[3] == pytest.approx(8127 / 1800)


@pytest.mark.parametrize(
    ("name", "requests"),
    [("AzureLLMInferenceTrace_code.csv", 8819), ("AzureLLMInferenceTrace_conv.csv", 19366)],
    ids=["code", "conv"],
)
def test_azure_requests_become_arrivals_and_a_rate(name: str, requests: int) -> None:
    trace = load_trace(TRACES / name)
    arrivals = trace.arrivals
    assert trace.per_request
    assert arrivals.size == requests
    assert np.all(np.diff(arrivals) >= 0)
    history = trace.rate(60)
    # Every request lands in exactly one bin: rate × step sums back to the request count.
    assert float(np.sum(history.values) * 60) == pytest.approx(requests)
    assert not np.isnan(history.values).any()


def test_interval_traces_have_no_arrivals() -> None:
    with pytest.raises(ValueError, match="no arrivals"):
        _ = load_trace(TRACES / "nyc_taxi.csv").arrivals


def test_an_unknown_format_is_rejected_with_the_expected_columns(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("when,howmany\n2020-01-01 00:00:00,3\n")
    with pytest.raises(ValueError, match="timestamp,value"):
        load_trace(path)


def test_scale_to_peak_puts_the_percentile_at_capacity_times_replicas() -> None:
    history = History.of(0, 60, np.arange(1.0, 101.0))
    scaled = scale_to_peak(history, per_replica_rps=14.0, peak_replicas=40, percentile=99)
    assert float(np.percentile(scaled.values, 99)) == pytest.approx(560.0)
    assert scaled.values[0] / scaled.values[1] == pytest.approx(0.5)


def test_scale_to_peak_refuses_an_all_zero_trace() -> None:
    with pytest.raises(ValueError, match="p99"):
        scale_to_peak(History.of(0, 60, np.zeros(10)), 14.0, 40)


def test_compress_time_turns_a_day_into_ten_minutes() -> None:
    day = History.of(1000.0, 300.0, np.arange(288.0))
    short = compress_time(day, 144)
    assert short.step * len(short) == pytest.approx(600.0)
    assert short.start == 1000.0
    np.testing.assert_array_equal(short.values, day.values)
