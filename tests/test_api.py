"""The API models: defaults, bounds and cross-field rules; every valid spec renders to valid objects."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.helpers import example_doc
from voxscale.api import duration_seconds, parse_spec
from voxscale.render import Owner, render_shard

OWNER = Owner(name="c", namespace="ns", uid="00000000-0000-0000-0000-000000000002")


def _spec(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(example_doc()["spec"])
    raw.update(changes)
    return raw


def test_minimal_spec_gets_every_default() -> None:
    spec = parse_spec(
        {"model": {"name": "asr"}, "shards": [{"name": "a", "region": "r", "languages": ["en"]}]}
    )
    assert spec.slo.percentile == "p95"
    assert spec.scaling.scale_up.max_pods == 4
    assert spec.scaling.scale_down.stabilization_seconds == 300
    assert spec.scaling.reactive.tolerance == 0.1
    assert spec.prometheus.insecure_skip_verify is False
    assert spec.bounds(spec.shards[0]) == (1, 50)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scaling": {"minReplicas": 5, "maxReplicas": 2}}, "minReplicas 5 > maxReplicas 2"),
        (
            {
                "shards": [
                    {"name": "a", "region": "r", "languages": ["en"], "minReplicas": 3, "maxReplicas": 1}
                ]
            },
            "minReplicas 3 > maxReplicas 1",
        ),
        ({"shards": []}, "at least 1 item"),
        ({"shards": [{"name": "a", "region": "r", "languages": ["en"]}] * 2}, "shard names must be unique"),
        ({"shards": [{"name": "Bad_Name", "region": "r", "languages": ["en"]}]}, "should match pattern"),
        ({"slo": {"percentile": "p42"}}, "'p50', 'p90', 'p95' or 'p99'"),
        ({"batching": {"maxBatchSize": 4, "preferredBatchSizes": [8]}}, "exceed maxBatchSize"),
        ({"surprise": 1}, "Extra inputs are not permitted"),
        ({"scaling": {"forecast": {"history": "a week"}}}, "should match pattern"),
        ({"prometheus": {"url": "ftp://x"}}, "should match pattern"),
        ({"model": {"name": "x" * 100}}, "at most 63 characters"),
    ],
    ids=[
        "min-gt-max",
        "shard-min-gt-max",
        "no-shards",
        "duplicate-shard",
        "bad-shard-name",
        "absurd-percentile",
        "preferred-gt-max",
        "unknown-field",
        "bad-duration",
        "bad-url",
        "oversized-string",
    ],
)
def test_bad_spec_is_rejected_with_a_message_naming_the_problem(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_spec(_spec(**change))
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("24h", 86400), ("7d", 604800), ("1h30m", 5400)]
)
def test_durations_read_as_seconds(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


names_st = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
shard_st = st.fixed_dictionaries(
    {
        "name": names_st,
        "region": st.sampled_from(["eu-west", "us-east", "ap-south"]),
        "languages": st.lists(
            st.sampled_from(["en", "de", "fr", "es", "pt-BR"]), min_size=1, max_size=3, unique=True
        ),
    },
    optional={
        "zones": st.lists(st.sampled_from(["a", "b", "c"]), max_size=3, unique=True),
        "maxReplicas": st.integers(10, 100),
        "minReplicas": st.integers(0, 10),
    },
)
spec_st = st.fixed_dictionaries(
    {
        "model": st.fixed_dictionaries(
            {"name": names_st, "warmupSeconds": st.integers(0, 600)},
            optional={"backend": st.sampled_from(["python", "onnxruntime", "tensorrt"])},
        ),
        "shards": st.lists(shard_st, min_size=1, max_size=4, unique_by=lambda s: s["name"]),
    },
    optional={
        "worker": st.fixed_dictionaries({"gpus": st.integers(0, 8)}),
        "batching": st.integers(1, 64).flatmap(
            lambda m: st.fixed_dictionaries(
                {
                    "maxBatchSize": st.just(m),
                    "preferredBatchSizes": st.lists(st.integers(1, m), max_size=3, unique=True),
                },
                optional={"queueTimeoutMicroseconds": st.integers(0, 10_000_000)},
            )
        ),
        "slo": st.fixed_dictionaries(
            {"percentile": st.sampled_from(["p50", "p90", "p95", "p99"]), "latencyMs": st.floats(1, 10_000)}
        ),
        "scaling": st.fixed_dictionaries(
            {"scaleDown": st.fixed_dictionaries({"drainSeconds": st.integers(0, 600)})}
        ),
    },
)


@given(spec_st)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_valid_spec_renders_to_objects_kubernetes_accepts(raw: dict[str, Any]) -> None:
    spec = parse_spec(raw)
    for shard in spec.shards:
        for obj in render_shard(OWNER, spec, shard):
            kubernetes_validate.validate(obj, "1.32.0", strict=True)
            assert len(obj["metadata"]["name"]) <= 63


def test_streaming_is_off_unless_the_spec_asks_and_then_gets_its_defaults() -> None:
    assert parse_spec(_spec()).streaming is None
    streaming = parse_spec(_spec(streaming={"maxConcurrentSequencesPerReplica": 64})).streaming
    assert streaming is not None
    assert (streaming.session_idle_timeout_seconds, streaming.max_session_seconds) == (10, 3600)


@pytest.mark.parametrize(
    ("streaming", "scaling", "message"),
    [
        ({}, None, "maxConcurrentSequencesPerReplica\n  Field required"),
        ({"maxConcurrentSequencesPerReplica": 0}, None, "greater than or equal to 1"),
        (
            {"maxConcurrentSequencesPerReplica": 8, "sessionIdleTimeoutSeconds": 120, "maxSessionSeconds": 9},
            {"scaleDown": {"drainSeconds": 300}},
            "sessionIdleTimeoutSeconds 120 > maxSessionSeconds 9",
        ),
        (
            {"maxConcurrentSequencesPerReplica": 8, "sessionIdleTimeoutSeconds": 60},
            {"scaleDown": {"drainSeconds": 30}},
            "streaming.sessionIdleTimeoutSeconds 60 > scaling.scaleDown.drainSeconds 30",
        ),
    ],
    ids=["no-sequences-per-replica", "zero-sequences", "idle-longer-than-session", "idle-longer-than-drain"],
)
def test_a_bad_streaming_spec_is_rejected_with_a_message_naming_the_problem(
    streaming: dict[str, Any], scaling: dict[str, Any] | None, message: str
) -> None:
    raw = _spec(streaming=streaming)
    if scaling is not None:
        raw["scaling"] = {**raw["scaling"], **scaling}
    with pytest.raises(ValidationError) as err:
        parse_spec(raw)
    assert message in str(err.value)


def test_a_streaming_spec_renders_to_objects_kubernetes_accepts() -> None:
    spec = parse_spec(_spec(streaming={"maxConcurrentSequencesPerReplica": 64}))
    for shard in spec.shards:
        for obj in render_shard(OWNER, spec, shard):
            kubernetes_validate.validate(obj, "1.32.0", strict=True)
