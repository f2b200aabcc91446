"""Load-test bookkeeping: failures sorted by cause, percentiles only over answered requests."""

from __future__ import annotations

import pytest

from voxscale_lab.worker.results import Record, classify, summarize


@pytest.mark.parametrize(
    ("status", "message", "outcome"),
    [
        ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded", "timeout"),
        ("StatusCode.UNAVAILABLE", "Request timeout expired", "rejected"),
        ("StatusCode.INTERNAL", "Request timeout expired", "rejected"),
        ("StatusCode.INVALID_ARGUMENT", "unexpected shape for input 'AUDIO'", "error"),
    ],
    ids=["client-deadline", "queue-policy-reject", "reject-by-message", "bad-request"],
)
def test_failures_are_sorted_by_cause(status: str, message: str, outcome: str) -> None:
    assert classify(status, message) == outcome


def test_percentiles_and_throughput_count_only_answered_requests() -> None:
    records = [Record(i * 0.1, 0.0, 0.1 * (i + 1), "ok") for i in range(10)]
    records.append(Record(1.0, 0.0, 5.0, "timeout"))
    s = summarize(records, wall_seconds=2.0, offered=11)
    assert (s["ok"], s["timeout"], s["completed"]) == (10, 1, 11)
    assert s["throughput_rps"] == 5.0
    assert s["p50_ms"] == pytest.approx(550.0)
    assert s["max_ms"] == pytest.approx(1000.0)


def test_no_answered_request_means_no_latency_not_zero() -> None:
    s = summarize([Record(0.0, 0.0, 1.0, "rejected")], wall_seconds=1.0, offered=1)
    assert s["p95_ms"] is None and s["max_ms"] is None
    assert s["throughput_rps"] == 0.0
