"""A SpeechCluster whose Prometheus URL is off the operator's allow-list: Ready=False naming the
setting to change, nothing applied, and no request (nor Secret read) from the daemon."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from tests.helpers import RecordingKube, example_doc
from voxscale import handlers, names
from voxscale.cli import build_parser
from voxscale.loop import ClusterRef, Loop
from voxscale.metrics.endpoints import AllowList
from voxscale.sources import EndpointNotAllowedError, SourceCache

APISERVER = "https://127.0.0.1:6443"


def _body(url: str) -> dict[str, Any]:
    doc = copy.deepcopy(example_doc())
    doc["spec"]["prometheus"] = {"url": url, "bearerTokenSecretRef": {"name": "prom-token"}}
    doc["metadata"].update({"uid": "u-1", "generation": 4})
    return doc


@pytest.fixture
def no_http() -> Iterator[responses.RequestsMock]:
    """Any HTTP request made under it is recorded (and fails): the tests expect none."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_a_url_off_the_allow_list_is_ready_false_naming_the_setting_and_applies_nothing() -> None:
    kube = RecordingKube()
    assert handlers.validated_spec(_body(APISERVER), kube, AllowList.default()) is None
    [status] = kube.statuses
    [ready] = status["conditions"]
    assert (ready["type"], ready["status"]) == (names.CONDITION_READY, "False")
    assert ready["reason"] == names.REASON_ENDPOINT_NOT_ALLOWED
    assert ready["observedGeneration"] == 4
    message = ready["message"]
    for words in ("spec.prometheus.url", "https://127.0.0.1:6443 matches no allowed entry",
                  "*.svc, *.svc.cluster.local", "prometheus.allowedEndpoints",
                  "--allowed-metrics-endpoint", "no request was sent"):
        assert words in message, message
    assert kube.events == [("Warning", names.REASON_ENDPOINT_NOT_ALLOWED, message)]
    assert kube.applied == [] and kube.secret_reads == []


def test_an_operator_that_lists_the_url_accepts_the_same_spec() -> None:
    kube = RecordingKube()
    allowed = AllowList.parse([APISERVER])
    assert handlers.validated_spec(_body(APISERVER), kube, allowed) is not None
    assert kube.statuses == [] and kube.events == []


def test_the_daemon_sends_no_request_and_reads_no_secret_for_a_refused_url(
    no_http: responses.RequestsMock,
) -> None:
    kube = RecordingKube()
    sources = SourceCache(AllowList.default())
    for _ in range(3):
        interval = asyncio.run(handlers._tick_once(_body(APISERVER), kube, Loop(kube), sources))
        assert interval == 30.0
    assert len(no_http.calls) == 0
    assert kube.secret_reads == [] and kube.calls == [] and kube.statuses == []
    assert sources.source is None


def test_the_source_cache_refuses_to_build_a_source_for_a_refused_url() -> None:
    kube = RecordingKube()
    body = _body("http://169.254.169.254/latest/meta-data")
    spec, _ = handlers.checked_spec(body)
    assert spec is not None
    ref = ClusterRef("speech", "asr", "u-1", 4, body)
    with pytest.raises(EndpointNotAllowedError, match=r"169\.254\.169\.254:80 matches no"):
        SourceCache(AllowList.default()).get(spec, ref, kube)
    assert kube.secret_reads == []


def test_voxscale_run_defaults_to_in_cluster_services_and_takes_repeated_entries() -> None:
    parser = build_parser()
    assert parser.parse_args(["run"]).allowed_metrics_endpoint == []
    args = parser.parse_args(["run", "--allowed-metrics-endpoint", "http://127.0.0.1:9090",
                              "--allowed-metrics-endpoint=*.svc"])
    assert args.allowed_metrics_endpoint == ["http://127.0.0.1:9090", "*.svc"]


def test_voxscale_run_stops_on_a_bad_allow_list_entry(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--allowed-metrics-endpoint", "*"])
    assert "allowed metrics endpoint '*'" in capsys.readouterr().err
