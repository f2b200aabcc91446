"""A real tritonserver running the stand-in under the sequence batcher the operator renders for
spec.streaming: per-stream state across chunks, the per-pod stream metrics, the idle timeout."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_triton_worker import require_worker_extra, series

from voxscale import names
from voxscale_lab.worker.loadgen import chunk_audio
from voxscale_lab.worker.serve import DEFAULT_MODEL_DIR, Worker, worker_spec
from voxscale_lab.worker.streams import AudioStream, grpc_client
from voxscale_lab.worker.triton import free_ports

pytestmark = pytest.mark.integration
MODEL = "asr-standin"
IDLE_SECONDS = 2
STREAMS = 8
STREAMING = {"maxConcurrentSequencesPerReplica": 16, "sessionIdleTimeoutSeconds": IDLE_SECONDS}


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    require_worker_extra()
    w = Worker(DEFAULT_MODEL_DIR, worker_spec(MODEL, streaming=STREAMING), free_ports(), load_seconds=0.5)
    try:
        seconds = w.start(ready_timeout=120)
        print(f"\n{MODEL} (streaming): start -> Ready in {seconds:.2f} s")
        yield w
    finally:
        w.stop()


def value(w: Worker, name: str, **labels: str) -> float:
    """Sum of the model's samples of `name` whose labels include `labels`."""
    want = {names.PROM_LABEL_MODEL: MODEL, **labels}
    return sum(v for n, lab, v in series(w) if n == name and want.items() <= lab.items())


def settled(w: Worker, name: str, expected: float, within: float = 2.0) -> float:
    """The metric once it equals `expected` (or its last value after `within` s)."""
    deadline = time.monotonic() + within
    while (seen := value(w, name)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen


def test_the_served_model_runs_the_sequence_batcher_the_operator_rendered(worker: Worker) -> None:
    config = httpx.get(f"{worker.http_url}/v2/models/{MODEL}/config").json()
    assert "dynamic_batching" not in config
    sequence = config["sequence_batching"]
    assert int(sequence["max_sequence_idle_microseconds"]) == IDLE_SECONDS * 1_000_000
    assert sequence["oldest"]["max_candidate_sequences"] == 16
    controls = {c["name"]: c["control"][0]["kind"] for c in sequence["control_input"]}
    assert controls == {
        names.SEQUENCE_START_INPUT: "CONTROL_SEQUENCE_START",
        names.SEQUENCE_END_INPUT: "CONTROL_SEQUENCE_END",
        names.SEQUENCE_READY_INPUT: "CONTROL_SEQUENCE_READY",
        names.SEQUENCE_CORRID_INPUT: "CONTROL_SEQUENCE_CORRID",
    }
    # The control inputs are Triton's to add: the model declares only its own I/O.
    assert [i["name"] for i in config["input"]] == ["AUDIO"]


async def _open_streams(worker: Worker, chunks: int) -> tuple[list[list[str]], float, float]:
    """8 streams at once, `chunks` chunks and an END each; the answers, the gauge while open and after."""
    audio = chunk_audio(1.0)
    client = grpc_client(worker.grpc_url)
    try:
        streams = [AudioStream(client, MODEL, 100 + i) for i in range(STREAMS)]

        async def talk(s: AudioStream) -> list[str]:
            return [(await s.send(audio)).text or s.record.answers[-1].error for _ in range(chunks)]

        answers = await asyncio.gather(*(talk(s) for s in streams))
        gauge_open = await asyncio.to_thread(settled, worker, names.ACTIVE_STREAMS_METRIC, STREAMS)
        ends = await asyncio.gather(*(s.send(audio, end=True) for s in streams))
        assert all(not e.error for e in ends), [e.error for e in ends]
        gauge_after = await asyncio.to_thread(settled, worker, names.ACTIVE_STREAMS_METRIC, 0)
        return answers, gauge_open, gauge_after
    finally:
        await client.close()


def test_each_stream_keeps_its_own_state_and_the_gauge_counts_the_open_streams(worker: Worker) -> None:
    before = {
        n: value(worker, n)
        for n in ("nv_inference_count", "nv_inference_exec_count", names.STREAM_DURATION_METRIC + "_count")
    }
    ended_before = value(worker, names.STREAMS_CLOSED_METRIC, reason="end")
    answers, gauge_open, gauge_after = asyncio.run(_open_streams(worker, chunks=3))
    for i, texts in enumerate(answers):
        # Chunk k of stream i reports k seconds so far: its own chunks, none of the others'.
        for k, text in enumerate(texts, start=1):
            assert f"stream {100 + i} chunk {k}: {k}.00 s of audio so far" in text, text
    inferences = value(worker, "nv_inference_count") - before["nv_inference_count"]
    executions = value(worker, "nv_inference_exec_count") - before["nv_inference_exec_count"]
    closed = (
        value(worker, names.STREAM_DURATION_METRIC + "_count")
        - before[names.STREAM_DURATION_METRIC + "_count"]
    )
    ended = value(worker, names.STREAMS_CLOSED_METRIC, reason="end") - ended_before
    print(
        f"\n{STREAMS} streams x 4 chunks: {names.ACTIVE_STREAMS_METRIC} {gauge_open:g} while open, "
        f"{gauge_after:g} after the ENDs; {inferences:g} chunks ran in {executions:g} executions; "
        f"{names.STREAM_DURATION_METRIC}_count +{closed:g}, closed(end) +{ended:g}"
    )
    print(f"stream 100, chunk 3: {answers[0][2]}")
    assert gauge_open == STREAMS
    assert gauge_after == 0
    assert closed == ended == STREAMS
    # The oldest strategy batches chunks of different streams together.
    assert inferences == STREAMS * 4 and executions < inferences


async def _idle_stream(worker: Worker) -> tuple[float, float, float, str]:
    audio = chunk_audio(0.5)
    client = grpc_client(worker.grpc_url)
    try:
        stream = AudioStream(client, MODEL, 900)
        await stream.send(audio)
        last_chunk = time.monotonic()
        opened = await asyncio.to_thread(value, worker, names.ACTIVE_STREAMS_METRIC)
        await asyncio.sleep(IDLE_SECONDS / 2 - (time.monotonic() - last_chunk))
        half = await asyncio.to_thread(value, worker, names.ACTIVE_STREAMS_METRIC)
        while await asyncio.to_thread(value, worker, names.ACTIVE_STREAMS_METRIC) > 0:
            assert time.monotonic() - last_chunk < IDLE_SECONDS + 5, "the idle stream was never dropped"
            await asyncio.sleep(0.05)
        dropped_after = time.monotonic() - last_chunk
        await asyncio.sleep(0.5)  # past Triton's own idle check as well
        late = await stream.send(audio)
        return opened, half, dropped_after, late.error
    finally:
        await client.close()


def test_an_idle_stream_is_dropped_after_the_idle_timeout(worker: Worker) -> None:
    idle_before = value(worker, names.STREAMS_CLOSED_METRIC, reason="idle")
    opened, half, dropped_after, late_error = asyncio.run(_idle_stream(worker))
    idle = value(worker, names.STREAMS_CLOSED_METRIC, reason="idle") - idle_before
    print(
        f"\nidle stream: gauge {opened:g} after its chunk, {half:g} at {IDLE_SECONDS / 2:g} s, "
        f"0 after {dropped_after:.2f} s (timeout {IDLE_SECONDS} s); closed(idle) +{idle:g}; "
        f"its next chunk: {late_error}"
    )
    assert opened == half == 1
    assert IDLE_SECONDS <= dropped_after <= IDLE_SECONDS + 1.5
    assert idle == 1
    # Triton freed the sequence too: a chunk without START is refused, not served on stale state.
    assert "must specify the START flag" in late_error


def test_triton_exports_no_sequence_metrics_of_its_own_so_the_stream_gauge_is_the_models(
    worker: Worker,
) -> None:
    exported = {n for n, _, _ in series(worker)}
    assert not {n for n in exported if n.startswith("nv_") and "sequence" in n}
    assert {names.ACTIVE_STREAMS_METRIC, names.STREAM_DURATION_METRIC + "_bucket"} <= exported


def test_the_loadgen_drives_streams_of_mixed_length_to_their_ends(worker: Worker, tmp_path: Path) -> None:
    out = tmp_path / "streams.json"
    argv = [sys.executable, "-m", "voxscale_lab.worker.loadgen", "--url", worker.grpc_url,
            "--streams", "6", "--chunks", "2", "--chunks-max", "5", "--audio-seconds", "0.5",
            "--first-sequence-id", "5000", "--out", str(out)]  # fmt: skip
    printed = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    print(f"\n{printed.strip()}")
    summary = json.loads(out.read_text())["summary"]
    assert re.search(r"6 streams, \d+ chunks", printed), printed
    assert summary["ended"] == 6 and summary["cut"] == 0
    assert settled(worker, names.ACTIVE_STREAMS_METRIC, 0) == 0
