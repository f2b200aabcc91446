"""Secrets hygiene: the Prometheus bearer token reaches the Authorization header and nothing else."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from tests.helpers import RecordingKube, spec_with
from voxscale import handlers
from voxscale.loop import ClusterRef, Loop
from voxscale.metrics.protocol import ShardSelector
from voxscale.sources import SourceCache, metrics_source

TOKEN = "vx-9f3c1e7a-TOKEN-do-not-log"
URL = "http://prometheus.monitoring.svc:9090"  # on the default metrics-endpoint allow-list
SECRET = {"name": "prometheus-token", "key": "token"}
Answer = Callable[[Any], tuple[int, dict[str, str], str]]


def _params(request: Any) -> dict[str, str]:
    body = request.body if isinstance(request.body, str) else (request.body or b"").decode()
    query = parse_qs(urlsplit(request.url).query) | parse_qs(body)
    return {k: v[0] for k, v in query.items()}


def echo_in_401(request: Any) -> tuple[int, dict[str, str], str]:
    # A misbehaving proxy that quotes the credentials it refused.
    return 401, {}, f"unauthorized: {request.headers['Authorization']}"


def echo_in_garbage(request: Any) -> tuple[int, dict[str, str], str]:
    return 200, {}, f"<html>debug: headers={dict(request.headers)}</html>"


def refuse_with_echo(request: Any) -> tuple[int, dict[str, str], str]:
    raise requests.ConnectionError(f"refused; request had {request.headers['Authorization']}")


def good_data(request: Any) -> tuple[int, dict[str, str], str]:
    params = _params(request)
    if "time" not in params:  # a range query for the forecaster's history: no data yet
        return 200, {}, json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}})
    sample = [{"metric": {}, "value": [float(params["time"]), "12"]}]
    return 200, {}, json.dumps({"status": "success", "data": {"resultType": "vector", "result": sample}})


ANSWERS: dict[str, Answer] = {
    "a-401-that-echoes-the-token": echo_in_401,
    "a-garbage-200-that-echoes-the-headers": echo_in_garbage,
    "a-connection-error-that-quotes-the-token": refuse_with_echo,
    "good-data": good_data,
}


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def _serve(mock: responses.RequestsMock, answer: Answer) -> None:
    for path in ("/api/v1/query", "/api/v1/query_range"):
        for method in (responses.GET, responses.POST):
            mock.add_callback(method, URL + path, callback=answer)


def _body() -> dict[str, Any]:
    spec = {"prometheus": {"url": URL, "bearerTokenSecretRef": SECRET, "timeoutSeconds": 2}}
    raw = spec_with(**spec).model_dump(by_alias=True, mode="json", exclude_none=True)
    meta = {"name": "asr", "namespace": "speech", "uid": "u-1", "generation": 1}
    return {"apiVersion": "voxscale.io/v1alpha1", "kind": "SpeechCluster", "metadata": meta, "spec": raw}


def _kube() -> RecordingKube:
    return RecordingKube(secrets={("speech", SECRET["name"], SECRET["key"]): TOKEN})


def _sent_tokens(mock: responses.RequestsMock) -> set[str]:
    return {call.request.headers.get("Authorization", "") for call in mock.calls}


@pytest.mark.parametrize("answer", list(ANSWERS.values()), ids=list(ANSWERS))
def test_the_token_is_in_no_log_record_repr_or_error_even_at_debug(
    answer: Answer, mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _serve(mocked, answer)
    body = _body()
    spec = handlers.validated_spec(body, _kube())
    assert spec is not None
    ref = ClusterRef("speech", "asr", "u-1", 1, body)
    source = metrics_source(spec, ref, _kube())
    selector = ShardSelector("speech", "asr", spec.shards[0].name, spec.model.name)
    metrics = source.observe(selector, now=1_700_000_000.0)
    history = source.history(selector, 1_700_000_000.0 - 600, 1_700_000_000.0, 60)
    assert _sent_tokens(mocked) == {f"Bearer {TOKEN}"}  # the token was used, so the test means something
    texts = [caplog.text, repr(source), str(source), *metrics.errors, repr(metrics), repr(history)]
    texts += [str(r.args) for r in caplog.records]
    assert all(TOKEN not in text for text in texts)


@pytest.mark.parametrize("answer", list(ANSWERS.values()), ids=list(ANSWERS))
def test_ticks_never_put_the_token_in_status_events_or_logs(
    answer: Answer, mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _serve(mocked, answer)
    kube, body = _kube(), _body()
    loop = Loop(kube=kube)
    # Enough ticks to pass the fallback threshold (3) when every read fails.
    sources = SourceCache()
    for _ in range(5):
        asyncio.run(handlers._tick_once(body, kube, loop, sources))
    sources.close()
    assert _sent_tokens(mocked) == {f"Bearer {TOKEN}"}
    assert kube.statuses, "every tick patches status"
    written = json.dumps([kube.statuses, kube.events])
    assert TOKEN not in written
    assert TOKEN not in caplog.text


def test_a_failing_read_is_reported_in_status_with_the_token_redacted(
    mocked: responses.RequestsMock,
) -> None:
    _serve(mocked, echo_in_401)
    kube, body = _kube(), _body()
    sources = SourceCache()
    asyncio.run(handlers._tick_once(body, kube, Loop(kube=kube), sources))
    sources.close()
    last = json.dumps(kube.statuses[-1])
    # The operator still says *why* metrics are missing: the failure is visible, the secret is not.
    assert "401" in last or "Unauthorized" in last or "HTTPError" in last
    assert TOKEN not in last
