"""Issue 12 item 3's proof: a real HAProxy runs the operator's rendered route in front of real
Triton stand-in workers. Streams of one session land on one worker for their whole life, also
when a worker is added to its shard or drained, each language reaches only its own shard's
workers, and a language no shard serves is refused.

Each session is a call: stream A (3 chunks), then stream B (2 chunks), under Triton's sequence
batcher over the KServe v2 HTTP API. A chunk that reached another worker than its stream's first
would be refused by Triton (no START there), so the answers prove it too, not only X-Served-By.
Figures are printed with the prefix "front-door:" for the closing note.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from test_triton_worker import require_worker_extra

from voxscale.api import SpeechClusterSpec, parse_spec
from voxscale.render import Owner
from voxscale.render.routes import render_route
from voxscale_lab.harness.front_door import SERVED_BY_HEADER, SERVED_SHARD_HEADER, Endpoint
from voxscale_lab.harness.haproxy import HAProxyError, check_config, require_haproxy, run_front_door
from voxscale_lab.worker.loadgen import chunk_audio
from voxscale_lab.worker.serve import DEFAULT_MODEL_DIR, Worker, worker_spec
from voxscale_lab.worker.triton import free_ports

pytestmark = pytest.mark.integration
MODEL = "asr-standin"
OWNER = Owner(name="asr", namespace="speech", uid="00000000-0000-0000-0000-000000000001")
# Every session of a shard is open at once between the phases: room for all of them per worker,
# and an idle timeout longer than a phase.
STREAMING = {"maxConcurrentSequencesPerReplica": 160, "sessionIdleTimeoutSeconds": 30}
SHARDS = {"en": ["en-0", "en-1"], "de": ["de-0"]}
"""Shard (named after the one language it serves) -> its workers at the start."""
SPARE = "en-2"
"""Started with the others, added to shard en mid-run."""
SESSIONS = {"en": 140, "de": 70}
LATE = 40
"""Sessions opened after each change (one stream of 2 chunks each)."""
CONCURRENCY = 24
AUDIO = chunk_audio(0.1).tolist()


def require_haproxy_for_test() -> None:
    try:
        require_haproxy()
    except HAProxyError as e:
        pytest.fail(str(e), pytrace=False)


def _spec(protocol: str) -> SpeechClusterSpec:
    return parse_spec({
        "model": {"name": MODEL, "backend": "python"},
        "shards": [{"name": shard, "region": "local", "languages": [shard]} for shard in SHARDS],
        "routing": {"parentRefs": [{"name": "speech-gateway"}], "protocol": protocol},
    })


def _route(protocol: str) -> dict[str, Any]:
    spec = _spec(protocol)
    assert spec.routing is not None
    return render_route(OWNER, spec, spec.routing)


@pytest.fixture(scope="module")
def workers() -> Iterator[dict[str, Worker]]:
    require_worker_extra()
    require_haproxy_for_test()
    started: dict[str, Worker] = {}
    try:
        for name in [*(n for names in SHARDS.values() for n in names), SPARE]:
            started[name] = Worker(DEFAULT_MODEL_DIR, worker_spec(MODEL, streaming=STREAMING), free_ports(),
                                   load_seconds=0.0)
            started[name].start(ready_timeout=120)
        yield started
    finally:
        for w in started.values():
            w.stop()


def _http(workers: dict[str, Worker], name: str) -> Endpoint:
    return Endpoint(name, f"127.0.0.1:{workers[name].ports.http}")


# --------------------------------------------------------------------------- sessions


@dataclass
class Call:
    """One session: its language, its streams' sequence IDs, and where each request landed."""

    key: str
    language: str
    streams: list[int]
    served_by: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def _chunk(client: httpx.AsyncClient, call: Call, stream: int, k: int, *, end: bool) -> None:
    body = {
        "parameters": {"sequence_id": stream, "sequence_start": k == 1, "sequence_end": end},
        "inputs": [{"name": "AUDIO", "shape": [1, len(AUDIO)], "datatype": "FP32", "data": AUDIO}],
    }
    headers = {"x-language": call.language, "x-voxscale-session": call.key}
    r = await client.post(f"/v2/models/{MODEL}/infer", json=body, headers=headers)
    call.served_by.append(r.headers.get(SERVED_BY_HEADER, "?"))
    text = r.json()["outputs"][0]["data"][0] if r.status_code == 200 else r.text
    # The worker's own state: chunk k of this stream, on the worker that started it.
    if r.status_code == 200 and r.headers.get(SERVED_SHARD_HEADER) != call.language:
        call.problems.append(f"{call.language} answered by shard {r.headers.get(SERVED_SHARD_HEADER)}")
    if not re.search(rf"stream {stream} chunk {k}: ", text):
        call.problems.append(f"stream {stream} chunk {k}: {r.status_code} {text[:200]}")


Step = tuple[int, int, bool]
"""(index of the call's stream, chunk number, last chunk)."""


async def _phase(client: httpx.AsyncClient, steps: list[Step], calls: list[Call]) -> None:
    """Each call sends its steps in order; calls run concurrently, CONCURRENCY at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def run(call: Call) -> None:
        async with gate:
            for stream, k, end in steps:
                await _chunk(client, call, call.streams[stream], k, end=end)

    await asyncio.gather(*(run(c) for c in calls))


def _calls(prefix: str, counts: dict[str, int], first_id: int, streams: int) -> list[Call]:
    out, sid = [], first_id
    for language, n in counts.items():
        for i in range(n):
            out.append(Call(f"{prefix}-{language}-{i}", language, list(range(sid, sid + streams))))
            sid += streams
    return out


def _summary(label: str, calls: list[Call]) -> dict[str, Any]:
    moves = [c.key for c in calls if len(set(c.served_by)) > 1]
    spread: dict[str, Counter[str]] = defaultdict(Counter)
    for c in calls:
        spread[c.language][c.served_by[0]] += 1
    requests = sum(len(c.served_by) for c in calls)
    figures = ", ".join(f"{lang}: {dict(sorted(s.items()))}" for lang, s in sorted(spread.items()))
    print(f"front-door: {label}: {len(calls)} sessions, {requests} requests, {len(moves)} moves;"
          f" sessions per worker {figures}")
    return {"moves": moves, "spread": spread}


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_haproxy_accepts_the_config_translated_from_the_rendered_route(protocol: str, tmp_path: Path) -> None:
    require_haproxy_for_test()
    from voxscale_lab.harness.front_door import haproxy_config, plan

    endpoints = {"en": [Endpoint("en-0", "127.0.0.1:9000"), Endpoint("en-1", "127.0.0.1:9001")],
                 "de": [Endpoint("de-0", "127.0.0.1:9002")]}
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(plan(_route(protocol)), endpoints, listen="127.0.0.1:1",
                                     admin_socket=str(tmp_path / "s.sock")))
    assert "Configuration file is valid" in check_config(config)
    config.write_text(config.read_text().replace("hash-type consistent", "hash-type sideways"))
    with pytest.raises(HAProxyError, match="only supports 'consistent' and 'map-based'"):
        check_config(config)


async def _proof(door: Any, workers: dict[str, Worker]) -> tuple[list[Call], list[Call], list[Call]]:
    calls = _calls("call", SESSIONS, 1000, streams=2)
    late = _calls("late", {"en": LATE}, 5000, streams=1)
    after_drain = _calls("drained", {"en": LATE}, 6000, streams=1)
    async with httpx.AsyncClient(base_url=door.url, timeout=60,
                                 limits=httpx.Limits(max_connections=CONCURRENCY)) as client:
        # Phase 1: stream A's first two chunks.
        await _phase(client, [(0, 1, False), (0, 2, False)], calls)
        # A worker joins shard en: stream A ends, stream B starts; new sessions open.
        door.set_endpoints("en", [_http(workers, n) for n in (*SHARDS["en"], SPARE)])
        await _phase(client, [(0, 3, True), (1, 1, False)], calls)
        await _phase(client, [(0, 1, False)], late)
        # en-0 drains (a scale-in victim): it finishes its sessions and takes no new ones.
        door.drain("en", "en-0")
        await _phase(client, [(1, 2, True)], calls)
        await _phase(client, [(0, 2, True)], late)
        await _phase(client, [(0, 1, False), (0, 2, True)], after_drain)
        for language in ("ja", None):
            headers = {"x-voxscale-session": "call-nowhere"} | ({"x-language": language} if language else {})
            refused = await client.post(f"/v2/models/{MODEL}/infer", json={}, headers=headers)
            assert refused.status_code == 404 and "no rule of HTTPRoute speech/asr" in refused.text
            assert SERVED_BY_HEADER not in refused.headers
            print(f"front-door: x-language {language or '(none)'} -> {refused.status_code}"
                  f" {refused.text.strip()}")
    return calls, late, after_drain


def test_sessions_stay_on_one_worker_and_each_language_reaches_only_its_shard(
    workers: dict[str, Worker], tmp_path: Path
) -> None:
    endpoints = {shard: [_http(workers, n) for n in names] for shard, names in SHARDS.items()}
    with run_front_door(_route("http"), endpoints, tmp_path / "front-door") as door:
        calls, late, after_drain = asyncio.run(_proof(door, workers))
        assert door.servers("en") == ["en-0", "en-1", "en-2"]
    opened = _summary(f"sessions open across the add of {SPARE} and the drain of en-0", calls)
    joined = _summary(f"sessions opened after {SPARE} joined", late)
    drained = _summary("sessions opened after en-0 began draining", after_drain)
    everyone = calls + late + after_drain
    assert not [p for c in everyone for p in c.problems]
    assert opened["moves"] == joined["moves"] == drained["moves"] == []
    for call in everyone:
        assert set(call.served_by) <= set(SHARDS[call.language] + ([SPARE] if call.language == "en" else []))
    assert len(calls) >= 200
    # Both en workers carried sessions before the add; the new one takes new sessions only.
    assert set(opened["spread"]["en"]) == {"en-0", "en-1"}
    assert joined["spread"]["en"][SPARE] > 0
    assert drained["spread"]["en"]["en-0"] == 0
    # en-0's sessions finished on en-0 while it drained (their last chunks are in the 0 moves).
    assert opened["spread"]["en"]["en-0"] > 0


async def _grpc_sessions(address: str, sessions: int, chunks: int) -> list[str]:
    """`sessions` en streams of `chunks` chunks through the front door over gRPC; the errors."""
    from tritonclient.grpc import InferInput
    from tritonclient.grpc.aio import InferenceServerClient

    audio = np.asarray(AUDIO, dtype=np.float32)[np.newaxis, :]
    client = InferenceServerClient(address)
    errors: list[str] = []

    async def call(i: int) -> None:
        headers = {"x-language": "en", "x-voxscale-session": f"grpc-{i}"}
        for k in range(1, chunks + 1):
            inp = InferInput("AUDIO", list(audio.shape), "FP32")
            inp.set_data_from_numpy(audio)
            try:
                result = await client.infer(MODEL, [inp], sequence_id=9000 + i, sequence_start=k == 1,
                                            sequence_end=k == chunks, headers=headers)
                text = result.as_numpy("TEXT").reshape(-1)[0].decode()
                if f"stream {9000 + i} chunk {k}: " not in text:
                    errors.append(text)
            except Exception as e:  # every failure is a finding to report
                errors.append(f"session {i} chunk {k}: {e}")

    try:
        await asyncio.gather(*(call(i) for i in range(sessions)))
    finally:
        await client.close()
    return errors


def test_grpc_streams_keep_their_worker_through_the_front_door(
    workers: dict[str, Worker], tmp_path: Path
) -> None:
    # The operator's default: a GRPCRoute, HTTP/2 cleartext on both sides of HAProxy. Every chunk
    # after the first is answered only by the worker holding its stream, so 0 errors = 0 moves.
    endpoints = {"en": [Endpoint(n, workers[n].grpc_url) for n in SHARDS["en"]],
                 "de": [Endpoint("de-0", workers["de-0"].grpc_url)]}
    with run_front_door(_route("grpc"), endpoints, tmp_path / "front-door-grpc") as door:
        errors = asyncio.run(_grpc_sessions(door.address, sessions=40, chunks=3))
    print(f"front-door: gRPC: 40 sessions x 3 chunks through a GRPCRoute, {len(errors)} errors")
    assert errors == []


def test_a_removed_worker_leaves_at_once_and_only_its_sessions_move(
    workers: dict[str, Worker], tmp_path: Path
) -> None:
    # Stateless requests (Triton's readiness) show where each session lands before and after.
    endpoints = {"en": [_http(workers, n) for n in SHARDS["en"]]}
    with run_front_door(_route("http"), endpoints, tmp_path / "front-door") as door, \
            httpx.Client(base_url=door.url, timeout=10) as client:

        def landed() -> dict[str, str]:
            out = {}
            for i in range(40):
                headers = {"x-language": "en", "x-voxscale-session": f"s{i}"}
                r = client.get("/v2/health/ready", headers=headers)
                assert r.status_code == 200
                out[f"s{i}"] = r.headers[SERVED_BY_HEADER]
            return out

        before = landed()
        door.set_endpoints("en", [_http(workers, "en-1")])
        after = landed()
        assert door.servers("en") == ["en-1"]
        assert "en-0" not in door.config_file.read_text()
        check_config(door.config_file)
    moved = [s for s in before if before[s] != after[s]]
    print(f"front-door: en-0 removed: {len(moved)} of {len(before)} sessions moved, all of them en-0's"
          f" ({Counter(before.values())['en-0']})")
    assert set(after.values()) == {"en-1"}
    assert moved == [s for s in before if before[s] == "en-0"] != []
