"""Stream metrics: live streams per pod and the p99 session length, from canned Prometheus JSON.
A pod without a usable sample is unknown (absent), never 0; a session answer without one is None."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from tests.helpers import FakeMetrics
from voxscale import names
from voxscale.metrics.prometheus import PrometheusSource
from voxscale.metrics.promql import build_stream_queries
from voxscale.metrics.protocol import MetricsSource, ShardSelector

URL = "http://prom.test:9090"
NOW = 1_700_000_000.0
SHARD = ShardSelector(namespace="prod", cluster="asr", shard="eu-en", model="asr-standin")
MATCHERS = 'namespace="prod",voxscale_cluster="asr",voxscale_shard="eu-en",model="asr-standin"'


def by_pod(*pairs: tuple[str | None, str], at: float = NOW) -> dict[str, Any]:
    result = [{"metric": {} if pod is None else {"pod": pod}, "value": [at, v]} for pod, v in pairs]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def serve(mocked: responses.RequestsMock, streams: Any, session: Any = None) -> list[str]:
    """Answer the streams query with `streams` and the session query with `session`; (status,
    text) tuples are raw answers. Returns the queries sent."""
    sent: list[str] = []

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)["query"][0]
        sent.append(query)
        body = streams if names.ACTIVE_STREAMS_METRIC in query else session
        if isinstance(body, tuple):
            return body[0], {}, body[1]
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    mocked.add_callback(responses.GET, f"{URL}/api/v1/query", callback=callback)
    return sent


def test_the_stream_queries_select_one_shard_per_pod_and_merge_session_buckets() -> None:
    q = build_stream_queries("prod", "asr", "eu-en", "asr-standin")
    assert q.active_streams == (
        f"sum by (pod) (last_over_time(voxscale_active_streams{{{MATCHERS}}}[1m]))"
    )
    assert q.session_p99 == (
        "histogram_quantile(0.99, sum by (le) "
        f"(rate(voxscale_stream_duration_seconds_bucket{{{MATCHERS}}}[1h])))"
    )


def test_live_streams_are_read_per_pod(mocked: responses.RequestsMock) -> None:
    sent = serve(mocked, by_pod(("w0", "3"), ("w1", "0"), ("w2", "12")))
    got = PrometheusSource(URL).pod_streams(SHARD, NOW)
    assert dict(got.by_pod) == {"w0": 3.0, "w1": 0.0, "w2": 12.0} and got.errors == ()
    assert sent == [build_stream_queries("prod", "asr", "eu-en", "asr-standin").active_streams]


# name -> (canned answer, pods expected, reason fragment)
UNKNOWN: dict[str, tuple[Any, dict[str, float], str]] = {
    "a NaN pod is unknown, not 0": (
        by_pod(("w0", "NaN"), ("w1", "2")), {"w1": 2.0}, "active_streams[w0]: NaN"),
    "a stale pod is unknown": (by_pod(("w0", "1"), at=NOW - 600), {}, "stale"),
    "a series without a pod label": (
        by_pod((None, "4"), ("w1", "2")), {"w1": 2.0}, "without the 'pod' label"),
    "one pod twice: neither is trusted": (by_pod(("w0", "1"), ("w0", "5")), {}, "'w0' appears twice"),
    "no series at all": (by_pod(), {}, "active_streams: empty result"),
    "HTTP 500": ((500, "oops"), {}, "active_streams: query failed: HTTP 500"),
    "not JSON": ((200, "{nope"), {}, "active_streams: query failed"),
    "a scalar": ({"data": {"result": [NOW, "1"]}}, {}, "unexpected result shape"),
}


@pytest.mark.parametrize("name", UNKNOWN)
def test_a_pod_without_a_usable_answer_is_unknown(mocked: responses.RequestsMock, name: str) -> None:
    answer, expected, reason = UNKNOWN[name]
    serve(mocked, answer)
    got = PrometheusSource(URL).pod_streams(SHARD, NOW)
    assert dict(got.by_pod) == expected
    assert any(reason in e for e in got.errors), got.errors


@pytest.mark.parametrize(
    ("answer", "seconds"),
    [(by_pod(("x", "212.5")), 212.5), (by_pod(("x", "NaN")), None), (by_pod(), None), ((503, ""), None)],
    ids=["value", "NaN: no session closed in the window", "empty", "HTTP 503"],
)
def test_the_p99_session_length_is_a_number_or_no_data(
    mocked: responses.RequestsMock, answer: Any, seconds: float | None
) -> None:
    serve(mocked, by_pod(), answer)
    assert PrometheusSource(URL).session_seconds(SHARD, NOW) == seconds


def test_every_metrics_source_answers_the_stream_questions() -> None:
    assert isinstance(PrometheusSource(URL), MetricsSource)
    fake = FakeMetrics({"eu-en": 1.0}, streams={"eu-en": {"w0": 2.0}}, session_p99={"eu-en": 30.0})
    assert isinstance(fake, MetricsSource)
    assert dict(fake.pod_streams(SHARD, NOW).by_pod) == {"w0": 2.0}
    assert fake.session_seconds(SHARD, NOW) == 30.0
