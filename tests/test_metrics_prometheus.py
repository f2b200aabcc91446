"""PrometheusSource against canned Prometheus JSON at the HTTP layer: every bad answer is "no data"."""

from __future__ import annotations

import json
import logging
import math
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import requests
import responses

from voxscale.api import PrometheusSpec, QueryTemplates
from voxscale.metrics.prometheus import MAX_POINTS_PER_QUERY, PrometheusSource
from voxscale.metrics.promql import DEFAULT_PANIC_WINDOW
from voxscale.metrics.protocol import MetricsSource, ShardSelector

URL = "http://prom.test:9090"
NOW = 1_700_000_000.0
SHARD = ShardSelector(namespace="prod", cluster="asr", shard="eu-west", model="whisper")
TOKEN = "s3cr3t-t0ken-value"


def field_of(query: str) -> str:
    if "nv_inference_request_success" in query and f"[{DEFAULT_PANIC_WINDOW}]" in query:
        return "panic_rate"
    for needle, field in [
        ("nv_inference_exec_count", "batch_efficiency"),
        ("summary_us", "latency"),
        ("pending_request", "queue"),
        ("nv_inference_request_success", "rate"),
    ]:
        if needle in query:
            return field
    raise AssertionError(f"unexpected query {query}")


def vector(*values: str, at: float = NOW) -> dict[str, Any]:
    result = [{"metric": {"pod": f"p{i}"}, "value": [at, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


GOOD = {"rate": "42.5", "panic_rate": "61", "latency": "180", "queue": "7", "batch_efficiency": "3.5"}
ATTR = {"rate": "rate", "panic_rate": "panic_rate", "latency": "latency_ms", "queue": "queue",
        "batch_efficiency": "batch_efficiency"}


def answer(overrides: dict[str, Any]) -> Callable[[Any], tuple[int, dict[str, str], str]]:
    """A responses callback: good single-sample vectors, except fields given in `overrides`.

    An override is a JSON-able body, or (status, raw body) for non-JSON or HTTP errors.
    """

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)["query"][0]
        field = field_of(query)
        body = overrides.get(field, vector(GOOD[field]))
        if isinstance(body, tuple):
            return body[0], {}, body[1]
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    return callback


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def source(**kwargs: Any) -> PrometheusSource:
    return PrometheusSource(URL, **{"bearer_token": TOKEN, **kwargs})


def observe_with(mocked: responses.RequestsMock, overrides: dict[str, Any]) -> Any:
    mocked.add_callback(responses.GET, f"{URL}/api/v1/query", callback=answer(overrides))
    return source().observe(SHARD, NOW)


# name -> (field, canned answer, expected reason fragment)
INSTANT_SCENARIOS: dict[str, tuple[str, Any, str]] = {
    "empty vector": ("rate", vector(), "rate: empty result"),
    "panic window empty": ("panic_rate", vector(), "panic_rate: empty result"),
    "panic window NaN": ("panic_rate", vector("NaN"), "panic_rate: NaN"),
    "NaN sample": ("latency", vector("NaN"), "latency: NaN"),
    "+Inf sample": ("queue", vector("+Inf"), "queue: +Inf"),
    "-Inf sample": ("rate", vector("-Inf"), "rate: -Inf"),
    "stale sample": ("rate", vector("42.5", at=NOW - 600), "rate: stale: sample is 600s old"),
    "multi-series": ("latency", vector("120", "180"), "latency: 2 series where one was expected"),
    "HTTP 500": ("queue", (500, "internal error"), "queue: query failed: HTTP 500 from the metrics endpoint"),
    "HTTP 400 bad query": (
        "rate",
        (400, '{"status":"error"}'),
        "rate: query failed: HTTP 400 from the metrics endpoint",
    ),
    "malformed JSON": (
        "batch_efficiency", (200, "{not json"), "batch_efficiency: query failed: the answer is not valid JSON"
    ),
    "JSON without data": ("rate", {"status": "success"}, "rate: query failed: the answer has no data.result"),
    "scalar result": ("rate", {"data": {"result": [NOW, "1"]}}, "rate: unexpected result"),
    "sample not a pair": ("queue", {"data": {"result": [{"value": "7"}]}}, "queue: malformed"),
}


@pytest.mark.parametrize(
    ("field", "canned", "reason"), list(INSTANT_SCENARIOS.values()), ids=list(INSTANT_SCENARIOS)
)
def test_a_bad_answer_is_no_data_with_a_reason_and_the_others_still_count(
    mocked: responses.RequestsMock, field: str, canned: Any, reason: str
) -> None:
    m = observe_with(mocked, {field: canned})
    assert getattr(m, ATTR[field]) is None
    assert len(m.errors) == 1 and m.errors[0].startswith(reason), m.errors
    others = {f: float(v) for f, v in GOOD.items() if f != field}
    assert {f: getattr(m, ATTR[f]) for f in others} == others


def test_a_good_answer_gives_every_value_at_now(mocked: responses.RequestsMock) -> None:
    m = observe_with(mocked, {})
    assert (m.at, m.rate, m.panic_rate, m.latency_ms, m.queue, m.batch_efficiency, m.errors) == (
        NOW,
        42.5,
        61.0,
        180.0,
        7.0,
        3.5,
        (),
    )
    assert m.usable


def test_zero_traffic_is_a_real_zero_not_no_data(mocked: responses.RequestsMock) -> None:
    m = observe_with(mocked, {"rate": vector("0")})
    assert m.rate == 0.0 and m.usable and m.errors == ()


@pytest.mark.parametrize(
    "failure",
    [requests.ConnectionError("Connection refused"), requests.ReadTimeout("read timed out")],
    ids=["connection refused", "timeout"],
)
def test_an_unreachable_prometheus_is_asked_once_per_tick_and_gives_no_data(
    mocked: responses.RequestsMock, failure: Exception
) -> None:
    mocked.add(responses.GET, f"{URL}/api/v1/query", body=failure)
    m = source().observe(SHARD, NOW)
    assert (m.rate, m.panic_rate, m.latency_ms, m.queue, m.batch_efficiency) == (None,) * 5
    assert not m.usable
    assert len(mocked.calls) == 1
    assert m.errors[0].startswith("rate: query failed: ")
    skipped = ["panic_rate", "latency", "queue", "batch_efficiency"]
    assert all(
        e.startswith(f"{f}: skipped: ") for f, e in zip(skipped, m.errors[1:], strict=True)
    )


def test_a_real_refused_connection_is_no_data_not_an_exception() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the query: nothing listens there
    m = PrometheusSource(f"http://127.0.0.1:{port}", timeout_seconds=2).observe(SHARD, NOW)
    assert m.rate is None and m.errors[0] == "rate: query failed: connection refused"


def test_queries_are_evaluated_at_now_with_timeout_tls_and_the_bearer_token(
    mocked: responses.RequestsMock,
) -> None:
    observe_with(mocked, {})
    call = mocked.calls[0]
    params = parse_qs(urlsplit(call.request.url).query)
    assert params["time"] == [f"{NOW:.3f}"] and params["timeout"] == ["5s"]
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert call.request.req_kwargs["timeout"] == 5.0
    # requests turns verify=True into the CA bundle path it will verify against.
    verify = call.request.req_kwargs["verify"]
    assert verify is True or (isinstance(verify, str) and verify.endswith(".crt")), verify


def test_insecure_skip_verify_turns_tls_verification_off_only_when_asked(
    mocked: responses.RequestsMock,
) -> None:
    mocked.add_callback(responses.GET, f"{URL}/api/v1/query", callback=answer({}))
    PrometheusSource(URL, insecure_skip_verify=True, timeout_seconds=2).observe(SHARD, NOW)
    assert mocked.calls[0].request.req_kwargs["verify"] is False
    assert mocked.calls[0].request.req_kwargs["timeout"] == 2.0
    assert "Authorization" not in mocked.calls[0].request.headers


def test_the_token_never_appears_in_repr_errors_or_logs(
    mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    echo = (401, f"bad credentials: Bearer {TOKEN}")  # a proxy that echoes what it got
    with caplog.at_level(logging.DEBUG):
        m = observe_with(mocked, {f: echo for f in GOOD})
    src = source()
    texts = [repr(src), str(src), *m.errors, caplog.text]
    assert all(TOKEN not in t for t in texts)
    assert m.errors[0] == "rate: query failed: HTTP 401 from the metrics endpoint"
    assert "auth=bearer-token" in repr(src)


def test_repr_drops_user_and_password_from_the_url() -> None:
    src = PrometheusSource("https://user:pw@prom.example:9443/prometheus")
    assert repr(src).startswith("PrometheusSource(url='https://prom.example:9443/prometheus'")


def test_user_templates_from_the_spec_are_used(mocked: responses.RequestsMock) -> None:
    spec = PrometheusSpec(url=URL, queries=QueryTemplates(queue="sum(my_queue{selector})"), timeout_seconds=1)
    mocked.add(responses.GET, f"{URL}/api/v1/query", json=vector("3"))
    PrometheusSource.from_spec(spec, bearer_token=None, quantile=0.99).observe(SHARD, NOW)
    queries = [parse_qs(urlsplit(c.request.url).query)["query"][0] for c in mocked.calls]
    assert 'sum(my_queue{namespace="prod",' in queries[3]
    assert 'quantile="0.99"' in queries[2]


def test_a_template_that_escapes_the_selector_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match=r"no \{selector\}"):
        PrometheusSource(URL, templates=QueryTemplates(rate='sum(x{namespace="other"})'))


@pytest.mark.parametrize(
    "value", ['eu"} or vector(1e9) #', "eu\nwest", "eu\\w"], ids=["quote-brace", "newline", "backslash"]
)
def test_a_shard_selector_with_unsafe_values_cannot_be_built(value: str) -> None:
    with pytest.raises(ValueError, match="not a valid Kubernetes name"):
        ShardSelector(namespace="prod", cluster="asr", shard=value, model="whisper")


# ---------------------------------------------------------------- range queries: history


def matrix(points: list[tuple[float, str]], series: int = 1) -> dict[str, Any]:
    result = [{"metric": {"s": str(i)}, "values": points} for i in range(series)]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


START, STEP = 1_699_990_000.5, 60.0
GAPPY = [(START, "1"), (START + 60, "2"), (START + 240, "5"), (START + 300, "NaN")]

RANGE_SCENARIOS: dict[str, tuple[Any, list[float]]] = {
    "gaps are NaN": (matrix(GAPPY), [1, 2, math.nan, math.nan, 5, math.nan]),
    "empty": ({"data": {"result": []}}, [math.nan] * 6),
    "multi-series": (matrix(GAPPY, series=2), [math.nan] * 6),
    "off-grid points dropped": (
        matrix([(START + 30, "9"), (START + 120, "3")]),
        [math.nan, math.nan, 3, math.nan, math.nan, math.nan],
    ),
    "HTTP 503": ((503, "unavailable"), [math.nan] * 6),
    "malformed JSON": ((200, "[[["), [math.nan] * 6),
    "values not pairs": ({"data": {"result": [{"values": [[START]]}]}}, [math.nan] * 6),
}


@pytest.mark.parametrize(("canned", "expected"), list(RANGE_SCENARIOS.values()), ids=list(RANGE_SCENARIOS))
def test_history_puts_each_point_on_its_grid_slot_and_nan_where_there_is_none(
    mocked: responses.RequestsMock, canned: Any, expected: list[float]
) -> None:
    if isinstance(canned, tuple):
        mocked.add(responses.GET, f"{URL}/api/v1/query_range", status=canned[0], body=canned[1])
    else:
        mocked.add(responses.GET, f"{URL}/api/v1/query_range", json=canned)
    h = source().history(SHARD, START, START + 5 * STEP, STEP)
    assert (h.start, h.step, len(h)) == (START, STEP, 6)
    np.testing.assert_array_equal(h.values, np.array(expected, dtype=np.float64))


def test_history_asks_for_the_exact_grid_not_rounded_seconds(
    mocked: responses.RequestsMock,
) -> None:
    mocked.add(responses.GET, f"{URL}/api/v1/query_range", json=matrix(GAPPY))
    source().history(SHARD, START, START + 5 * STEP, STEP)
    params = parse_qs(urlsplit(mocked.calls[0].request.url).query)
    assert (params["start"], params["end"], params["step"]) == (
        [f"{START:.3f}"],
        [f"{START + 300:.3f}"],
        ["60"],
    )
    assert params["query"][0].startswith("sum(rate(nv_inference_request_success{namespace=")


def test_a_long_history_is_fetched_in_chunks_under_prometheus_point_limit(
    mocked: responses.RequestsMock,
) -> None:
    def echo_grid(request: Any) -> tuple[int, dict[str, str], str]:
        p = {
            k: float(v[0])
            for k, v in parse_qs(urlsplit(request.url).query).items()
            if k in ("start", "end", "step")
        }
        n = round((p["end"] - p["start"]) / p["step"]) + 1
        assert n <= MAX_POINTS_PER_QUERY
        pts = [
            (p["start"] + i * p["step"], str((p["start"] + i * p["step"] - START) / STEP)) for i in range(n)
        ]
        return 200, {}, json.dumps(matrix(pts))

    mocked.add_callback(responses.GET, f"{URL}/api/v1/query_range", callback=echo_grid)
    n = 2 * MAX_POINTS_PER_QUERY + 17
    h = source().history(SHARD, START, START + (n - 1) * STEP, STEP)
    assert len(mocked.calls) == 3
    np.testing.assert_array_equal(h.values, np.arange(n, dtype=np.float64))


def test_a_prometheus_source_is_a_metrics_source() -> None:
    assert isinstance(source(), MetricsSource)


def test_the_specs_rate_window_reaches_the_rate_and_latency_queries(mocked: responses.RequestsMock) -> None:
    spec = PrometheusSpec(url=URL, rate_window="20s", timeout_seconds=1)
    mocked.add(responses.GET, f"{URL}/api/v1/query", json=vector("3"))
    PrometheusSource.from_spec(spec, bearer_token=None, quantile=0.95).observe(SHARD, NOW)
    rate, panic, latency = (
        parse_qs(urlsplit(c.request.url).query)["query"][0] for c in mocked.calls[:3]
    )
    assert "[20s]" in rate and "[20s]" in latency
    assert f"[{DEFAULT_PANIC_WINDOW}]" in panic


def test_the_panic_window_reads_the_rate_template_over_the_specs_panic_window(
    mocked: responses.RequestsMock,
) -> None:
    spec = PrometheusSpec(url=URL, queries=QueryTemplates(rate="sum(rate(my_requests{selector}[{window}]))"),
                          timeout_seconds=1)
    mocked.add(responses.GET, f"{URL}/api/v1/query", json=vector("3"))
    src = PrometheusSource.from_spec(spec, bearer_token=None, quantile=0.95,
                                     panic_window_seconds=12)
    m = src.observe(SHARD, NOW)
    rate, panic = (parse_qs(urlsplit(c.request.url).query)["query"][0] for c in mocked.calls[:2])
    assert rate.startswith("sum(rate(my_requests{namespace=") and rate.endswith("[1m]))")
    assert panic == rate.replace("[1m]", "[12s]")
    assert (m.rate, m.panic_rate) == (3.0, 3.0)
