"""Each cluster's Prometheus source reads the spec's own windows and is rebuilt when they change."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import responses

from tests.helpers import FakeMetrics, RecordingKube, example_doc
from voxscale.api import SpeechClusterSpec, parse_spec
from voxscale.loop import ClusterRef
from voxscale.metrics.protocol import ShardSelector
from voxscale.sources import ClosableSource, SourceCache, prometheus_source

NOW = 1_700_000_000.0


def _spec(panic_window_seconds: int) -> SpeechClusterSpec:
    raw = copy.deepcopy(example_doc()["spec"])
    raw["scaling"].setdefault("reactive", {})["panicWindowSeconds"] = panic_window_seconds
    return parse_spec(raw)


def _queries(mock: responses.RequestsMock) -> list[str]:
    sent = []
    for call in mock.calls:
        raw = call.request.body
        body = raw if isinstance(raw, str) else (raw or b"").decode()
        params = parse_qs(urlsplit(call.request.url).query) | parse_qs(body)
        sent += params.get("query", [])
    return sent


def test_the_source_asks_prometheus_for_the_rate_over_the_specs_panic_window() -> None:
    spec = _spec(45)
    empty = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in (responses.GET, responses.POST):
            mock.add(method, spec.prometheus.url + "/api/v1/query", body=empty)
        source = prometheus_source(spec, None)
        metrics = source.observe(ShardSelector("speech", "asr", spec.shards[0].name, spec.model.name), NOW)
        source.close()
        sent = _queries(mock)
    assert metrics.panic_rate is None  # an empty answer is no data, not zero
    assert any("[45s]" in q for q in sent), sent


def test_a_new_panic_window_rebuilds_the_cached_source_and_closes_the_old_one() -> None:
    built: list[tuple[int, FakeMetrics]] = []

    def build(spec: SpeechClusterSpec, token: str | None) -> ClosableSource:
        built.append((spec.scaling.reactive.panic_window_seconds, FakeMetrics({})))
        return built[-1][1]

    cache, kube = SourceCache(build=build), RecordingKube()
    ref = ClusterRef("speech", "asr", "u-1", 1, _body())
    first = cache.get(_spec(30), ref, kube)
    assert cache.get(_spec(30), ref, kube) is first
    cache.get(_spec(60), ref, kube)
    assert [seconds for seconds, _ in built] == [30, 60]
    assert built[0][1].closed and not built[1][1].closed


def _body() -> dict[str, Any]:
    doc = example_doc()
    doc["metadata"].update(namespace="speech", uid="u-1", generation=1)
    return doc
