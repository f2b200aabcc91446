"""A metrics endpoint's answer is never read back: a canary in the body, a header, a redirect or an
exception text appears in no log record (at DEBUG), status, Event or exported metric."""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import prometheus_client
import pytest
import requests
import responses

from tests.helpers import RecordingKube, spec_with
from voxscale import handlers
from voxscale.loop import Loop
from voxscale.metrics.prometheus import PrometheusSource
from voxscale.metrics.protocol import ShardSelector
from voxscale.sources import SourceCache

CANARY = "TOP-SECRET-INTERNAL-DATA db_password=canary-7f3a"
URL = "http://internal-api.payments.svc:8080"  # on the default allow-list: reachable, not Prometheus
NOW = 1_700_000_000.0
Answer = Callable[[Any], tuple[int, dict[str, str], str]]


def _raise(exc: Exception) -> Answer:
    def answer(_: Any) -> tuple[int, dict[str, str], str]:
        raise exc

    return answer


def _fixed(status: int, body: str, headers: dict[str, str] | None = None) -> Answer:
    return lambda _: (status, headers or {}, body)


# name -> (the endpoint's answer, the phrase the status must show instead)
HOSTILE: dict[str, tuple[Answer, str]] = {
    "403 with a JSON body": (_fixed(403, json.dumps({"internal": CANARY})), "HTTP 403 from the metrics"),
    "500 with an HTML page": (_fixed(500, f"<html><pre>{CANARY}</pre></html>"), "HTTP 500 from the metrics"),
    "200 that is not JSON": (_fixed(200, f"<html>{CANARY}</html>"), "the answer is not valid JSON"),
    "200 JSON without data": (_fixed(200, json.dumps({"status": CANARY})), "the answer has no data.result"),
    "a redirect to the canary": (
        _fixed(302, "", {"Location": f"http://169.254.169.254/{CANARY.replace(' ', '')}"}),
        "HTTP 302 from the metrics endpoint (redirects are not followed)",
    ),
    "a connection error quoting it": (_raise(requests.ConnectionError(CANARY)), "connection failed"),
    "a timeout quoting it": (_raise(requests.ReadTimeout(CANARY)), "timeout after 2 s"),
}


def _body() -> dict[str, Any]:
    spec = spec_with(prometheus={"url": URL, "timeoutSeconds": 2})
    raw = spec.model_dump(by_alias=True, mode="json", exclude_none=True)
    meta = {"name": "asr", "namespace": "speech", "uid": "u-canary", "generation": 1}
    return {"apiVersion": "voxscale.io/v1alpha1", "kind": "SpeechCluster", "metadata": meta, "spec": raw}


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.mark.parametrize(("answer", "phrase"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_the_canary_is_in_no_log_status_event_or_metric_only_the_failure_class_is(
    answer: Answer, phrase: str, mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for path in ("/api/v1/query", "/api/v1/query_range"):
        mocked.add_callback(responses.GET, URL + path, callback=answer)
    kube, body = RecordingKube(secrets=defaultdict(lambda: "token")), _body()
    loop, sources = Loop(kube=kube), SourceCache()
    # Past the fallback threshold (3): MetricsUnavailable and FallbackActive Events quote reasons.
    for _ in range(5):
        asyncio.run(handlers._tick_once(body, kube, loop, sources))
    sources.close()
    assert len(mocked.calls) > 0
    assert all(c.request.url.startswith(URL) for c in mocked.calls), "a redirect was followed"
    written = json.dumps([kube.statuses, kube.events])
    assert phrase in written, written[:2000]
    assert {reason for _, reason, _ in kube.events} >= {"MetricsUnavailable"}
    exported = prometheus_client.generate_latest().decode()
    for text in (written, caplog.text, exported, *(str(r.args) for r in caplog.records)):
        assert CANARY not in text
        assert "canary-7f3a" not in text


@contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Quiet(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []  # noqa: RUF012 - per-class record of the paths asked for

    def log_message(self, *_: Any) -> None:
        pass


SHARD = ShardSelector("speech", "asr", "eu-en", "whisper")


def test_a_real_403_with_a_secret_body_is_reported_as_its_status_code_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Forbidden(Quiet):
        def do_GET(self) -> None:
            body = json.dumps({"internal": CANARY}).encode()
            self.send_response(403)
            self.send_header("X-Debug", CANARY.replace(" ", "_"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    caplog.set_level(logging.DEBUG)
    with serving(Forbidden) as url:
        metrics = PrometheusSource(url, timeout_seconds=2).observe(SHARD, NOW)
    assert metrics.errors[0] == "rate: query failed: HTTP 403 from the metrics endpoint"
    assert all("canary-7f3a" not in t for t in (*metrics.errors, caplog.text))


def test_a_real_redirect_is_not_followed_to_its_target() -> None:
    class Target(Quiet):
        hits: list[str] = []  # noqa: RUF012

        def do_GET(self) -> None:
            Target.hits.append(self.path)
            self.send_response(200)
            self.end_headers()

    with serving(Target) as target:

        class Redirect(Quiet):
            def do_GET(self) -> None:
                self.send_response(307)
                self.send_header("Location", f"{target}/api/v1/query")
                self.send_header("Content-Length", "0")
                self.end_headers()

        with serving(Redirect) as url:
            metrics = PrometheusSource(url, timeout_seconds=2).observe(SHARD, NOW)
    assert Target.hits == []
    assert metrics.errors[0] == (
        "rate: query failed: HTTP 307 from the metrics endpoint (redirects are not followed)"
    )
