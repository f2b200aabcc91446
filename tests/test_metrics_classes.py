"""Per-class reads (spec.classes) at the HTTP layer: canned Prometheus JSON, no data is None."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from voxscale import names
from voxscale.metrics.prometheus import PrometheusSource
from voxscale.metrics.promql import build_class_queries, build_queries
from voxscale.metrics.protocol import ShardSelector

URL = "http://prom.test:9090"
NOW = 1_700_000_000.0
SHARD = ShardSelector(namespace="prod", cluster="asr", shard="eu-west", model="whisper")
LIVE = ShardSelector(namespace="prod", cluster="asr", shard="eu-west", model="whisper",
                     traffic_class="live")


def vector(*values: str, at: float = NOW) -> dict[str, Any]:
    result = [{"metric": {"pod": f"p{i}"}, "value": [at, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def kind_of(query: str) -> str:
    for needle, kind in [(names.CLASS_OLDEST_METRIC, "oldest"), (names.CLASS_BACKLOG_METRIC, "backlog"),
                         (names.CLASS_LATENCY_METRIC, "latency"), (names.CLASS_REQUESTS_METRIC, "rate")]:
        if needle in query:
            return kind
    raise AssertionError(f"a query outside the class series: {query}")


@pytest.fixture
def asked() -> Iterator[list[str]]:
    """Serve canned class answers; the list collects every query sent."""
    queries: list[str] = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        def callback(request: Any) -> tuple[int, dict[str, str], str]:
            query = parse_qs(urlsplit(request.url).query)["query"][0]
            queries.append(query)
            body = ANSWERS.get(kind_of(query), vector("1"))
            if isinstance(body, tuple):
                return body[0], {}, body[1]
            return 200, {"Content-Type": "application/json"}, json.dumps(body)

        mocked.add_callback(responses.GET, f"{URL}/api/v1/query", callback=callback)
        yield queries


ANSWERS: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def _reset_answers() -> Iterator[None]:
    ANSWERS.clear()
    yield
    ANSWERS.clear()


def test_a_batch_class_reads_its_backlog_oldest_age_and_arrivals(asked: list[str]) -> None:
    ANSWERS.update(backlog=vector("9000"), oldest=vector("1800"), rate=vector("40"))
    m = PrometheusSource(URL).class_metrics(SHARD, "offline", NOW)
    assert (m.name, m.backlog, m.oldest_seconds, m.rate, m.errors) == ("offline", 9000, 1800, 40, ())
    assert all('class="offline"' in q and 'voxscale_shard="eu-west"' in q for q in asked)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(vector(), "backlog: empty result"), (vector("NaN"), "backlog: NaN"),
     (vector("5", at=NOW - 600), "backlog: stale"), (vector("1", "2"), "backlog: 2 series"),
     ((503, "unavailable"), "backlog: query failed")],
    ids=["no-series", "nan", "stale", "two-series", "http-503"],
)
def test_a_missing_backlog_is_no_data_never_zero(asked: list[str], answer: Any, reason: str) -> None:
    ANSWERS["backlog"] = answer
    m = PrometheusSource(URL).class_metrics(SHARD, "offline", NOW)
    assert m.backlog is None
    assert any(reason in e for e in m.errors), m.errors


def test_a_real_zero_backlog_is_zero() -> None:
    with responses.RequestsMock() as mocked:
        mocked.add(responses.GET, f"{URL}/api/v1/query", json=vector("0"))
        m = PrometheusSource(URL).class_metrics(SHARD, "offline", NOW)
    assert (m.backlog, m.oldest_seconds, m.rate) == (0.0, 0.0, 0.0)


def test_the_interactive_selector_reads_its_class_series_and_no_batch_efficiency(asked: list[str]) -> None:
    ANSWERS.update(rate=vector("30"), latency=vector("210"), backlog=vector("4"))
    m = PrometheusSource(URL).observe(LIVE, NOW)
    assert (m.rate, m.panic_rate, m.latency_ms, m.queue, m.batch_efficiency) == (30, 30, 210, 4, None)
    assert m.errors == ()
    assert len(asked) == 4 and all('class="live"' in q for q in asked)
    assert not any("nv_inference" in q for q in asked)


def test_the_interactive_history_is_its_class_rate() -> None:
    rate = build_queries("prod", "asr", "eu-west", "whisper", traffic_class="live").rate
    assert rate.startswith(f"sum(rate({names.CLASS_REQUESTS_METRIC}{{")
    assert rate.endswith('class="live"}[1m]))')


def test_class_latency_is_a_histogram_quantile_in_milliseconds() -> None:
    q = build_queries("prod", "asr", "eu-west", "whisper", traffic_class="live", quantile=0.99)
    assert q.latency.startswith("histogram_quantile(0.99, sum by (le) (rate(")
    assert f"{names.CLASS_LATENCY_METRIC}_bucket{{" in q.latency and q.latency.endswith(" * 1000")


def test_a_class_name_that_is_not_a_label_value_never_reaches_promql() -> None:
    with pytest.raises(ValueError, match="refusing to build PromQL"):
        build_class_queries("prod", "asr", "eu-west", "whisper", 'x"} or vector(1) #')
    with pytest.raises(ValueError, match="refusing to build PromQL"):
        ShardSelector("prod", "asr", "eu-west", "whisper", traffic_class="a b")
