"""The stand-in's per-stream state on a fake clock, its copies of the operator's names, and the
stream client's summary: everything about streams that needs no running Triton."""

from __future__ import annotations

import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

import pytest

from voxscale import names
from voxscale.render.configmap import render_model_config
from voxscale_lab.worker.serve import DEFAULT_MODEL_DIR, worker_spec
from voxscale_lab.worker.streams import Answer, StreamRecord, summarize_streams

from .helpers import spec_with

SECOND = 16_000  # samples in one second of audio


def _standin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("standin_streams", DEFAULT_MODEL_DIR / "1" / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


STANDIN = _standin()


def _streams(idle: float = 10.0, max_session: float = 3600.0) -> Any:
    return STANDIN.Streams(idle, max_session)


def test_the_model_reads_the_control_inputs_and_metrics_by_the_operators_names() -> None:
    assert (STANDIN.START, STANDIN.END, STANDIN.READY, STANDIN.CORRID) == (
        names.SEQUENCE_START_INPUT,
        names.SEQUENCE_END_INPUT,
        names.SEQUENCE_READY_INPUT,
        names.SEQUENCE_CORRID_INPUT,
    )
    assert STANDIN.MAX_SESSION_PARAM == names.MODEL_PARAM_MAX_SESSION_SECONDS
    assert STANDIN.ACTIVE_STREAMS_METRIC == names.ACTIVE_STREAMS_METRIC
    assert STANDIN.STREAM_DURATION_METRIC == names.STREAM_DURATION_METRIC
    assert STANDIN.STREAMS_CLOSED_METRIC == names.STREAMS_CLOSED_METRIC


def test_each_chunk_adds_to_its_own_streams_state() -> None:
    streams = _streams()
    streams.chunk(1, SECOND, 0.0, start=True, end=False)
    streams.chunk(2, SECOND // 2, 0.1, start=True, end=False)
    one, why, closed = streams.chunk(1, SECOND, 1.0, start=False, end=False)
    assert (one.chunks, one.samples, why, closed) == (2, 2 * SECOND, "", [])
    assert streams.open[2].samples == SECOND // 2
    assert "2.00 s of audio so far" in STANDIN.stream_transcript(1, one, SECOND, 2)


def test_end_frees_the_stream_and_records_how_long_it_lived() -> None:
    streams = _streams()
    streams.chunk(7, SECOND, 10.0, start=True, end=False)
    last, _, closed = streams.chunk(7, SECOND, 12.5, start=False, end=True)
    assert last.chunks == 2 and 7 not in streams.open
    assert [(c.corrid, c.reason, c.stream.seconds) for c in closed] == [(7, "end", 2.5)]


def test_start_on_a_live_stream_resets_it() -> None:
    streams = _streams()
    streams.chunk(3, SECOND, 0.0, start=True, end=False)
    streams.chunk(3, SECOND, 1.0, start=False, end=False)
    fresh, _, closed = streams.chunk(3, SECOND, 2.0, start=True, end=False)
    assert (fresh.chunks, fresh.samples) == (1, SECOND)
    assert [c.reason for c in closed] == ["restart"]


def test_a_chunk_for_a_stream_that_is_not_open_is_refused_with_what_to_do() -> None:
    stream, why, _ = _streams().chunk(9, SECOND, 0.0, start=False, end=False)
    assert stream is None and "sequence_start" in why


@pytest.mark.parametrize(
    ("last_chunk_at", "now", "open_after"),
    [(0.0, 9.9, {1}), (0.0, 10.1, set()), (5.0, 14.9, {1})],
    ids=["inside-timeout", "idle-past-timeout", "a-chunk-rearms-the-timer"],
)
def test_an_idle_stream_is_dropped_after_the_idle_timeout(
    last_chunk_at: float, now: float, open_after: set[int]
) -> None:
    streams = _streams(idle=10.0)
    streams.chunk(1, SECOND, 0.0, start=True, end=False)
    if last_chunk_at:
        streams.chunk(1, SECOND, last_chunk_at, start=False, end=False)
    closed = streams.expire(now)
    assert set(streams.open) == open_after
    assert all(c.reason == "idle" for c in closed)


def test_a_stream_past_the_session_limit_is_ended_even_while_it_talks() -> None:
    streams = _streams(idle=10.0, max_session=60.0)
    streams.chunk(1, SECOND, 0.0, start=True, end=False)
    for t in range(5, 60, 5):
        streams.chunk(1, SECOND, float(t), start=False, end=False)
    stream, why, closed = streams.chunk(1, SECOND, 61.0, start=False, end=False)
    assert stream is None and "60 s session limit" in why
    assert [c.reason for c in closed] == ["max_session"]
    assert streams.open == {}


def test_the_model_reads_its_limits_from_the_config_the_operator_rendered() -> None:
    # Triton hands the model its config as protobuf JSON: uint64 fields arrive as strings.
    config = {
        "sequence_batching": {"max_sequence_idle_microseconds": "7000000", "oldest": {}},
        "parameters": {names.MODEL_PARAM_MAX_SESSION_SECONDS: {"string_value": "900"}},
    }
    assert STANDIN.stream_limits(json.loads(json.dumps(config))) == (7.0, 900.0)
    assert STANDIN.stream_limits({"dynamic_batching": {}}) is None


def test_a_streaming_worker_renders_the_sequence_batcher_from_its_options() -> None:
    spec = worker_spec("asr-standin", streaming={"maxConcurrentSequencesPerReplica": 8})
    config = render_model_config(spec)
    assert "sequence_batching {" in config and "dynamic_batching" not in config
    assert "max_candidate_sequences: 8" in config
    assert "kind: KIND_CPU" in config
    assert worker_spec("asr-standin").streaming is None


def test_the_summary_counts_ended_and_cut_streams_and_chunk_latency() -> None:
    ok = StreamRecord(1, [Answer(0.0, 0.1, "a"), Answer(1.0, 0.3, "b")], ended=True)
    cut = StreamRecord(2, [Answer(0.0, 0.2, "a"), Answer(1.0, 0.0, error="not open")])
    summary = summarize_streams([ok, cut], 2.0)
    assert (summary["streams"], summary["ended"], summary["cut"], summary["chunks"]) == (2, 1, 1, 4)
    assert summary["chunk_p50_ms"] == pytest.approx(200.0)


def test_a_manifests_streaming_section_reaches_the_worker_the_demo_starts() -> None:
    manifest = spec_with(streaming={"maxConcurrentSequencesPerReplica": 24, "sessionIdleTimeoutSeconds": 5})
    spec = worker_spec("asr-standin", manifest)
    assert spec.streaming == manifest.streaming
    assert "max_sequence_idle_microseconds: 5000000" in render_model_config(spec)
