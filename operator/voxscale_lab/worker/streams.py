"""Stateful audio streams on a Triton worker: each stream one sequence (gRPC sequence_id, start, end).

A streaming ASR client sends a call's audio as equal chunks at the pace it is spoken; Triton's
sequence batcher keeps every chunk of one sequence ID on the model state it started, so the
answer to chunk k reflects chunks 1..k. `AudioStream` is one such stream; `drive_streams` opens
many at once (the load generator's `--streams`, the integration tests, the demo).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from voxscale_lab.worker.results import percentile
from voxscale_lab.worker.triton import INSTALL_HINT

Audio = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True)
class Answer:
    """One chunk's answer: when it was sent (s from the run's start), how long it took, what came back."""

    sent: float
    latency: float
    text: str = ""
    error: str = ""


@dataclass
class StreamRecord:
    sequence_id: int
    answers: list[Answer] = field(default_factory=list)
    ended: bool = False
    """The END chunk was answered: the worker freed the stream's state."""

    @property
    def cut(self) -> bool:
        """A chunk of this stream failed: the stream was dropped mid-call."""
        return any(a.error for a in self.answers)


class AudioStream:
    """One stream on an open client: the first `send` starts the sequence, `end=True` ends it."""

    def __init__(
        self, client: Any, model: str, sequence_id: int, *, client_timeout: float | None = None
    ) -> None:
        self.client = client
        self.model = model
        self.record = StreamRecord(sequence_id)
        self.client_timeout = client_timeout
        self.origin = time.monotonic()

    async def send(self, audio: Audio, *, end: bool = False) -> Answer:
        """Send one chunk and wait for its answer (a stream's chunks go one at a time, in order)."""
        from tritonclient.grpc import InferInput
        from tritonclient.utils import InferenceServerException

        inp = InferInput("AUDIO", [1, len(audio)], "FP32")
        inp.set_data_from_numpy(audio[np.newaxis, :])
        sent = time.monotonic()
        try:
            result = await self.client.infer(
                self.model,
                [inp],
                sequence_id=self.record.sequence_id,
                sequence_start=not self.record.answers,
                sequence_end=end,
                client_timeout=self.client_timeout,
            )
            text = result.as_numpy("TEXT").reshape(-1)[0]
            answer = Answer(sent - self.origin, time.monotonic() - sent, text=text.decode())
            self.record.ended = end
        except InferenceServerException as e:
            answer = Answer(sent - self.origin, time.monotonic() - sent, error=str(e.message())[:300])
        self.record.answers.append(answer)
        return answer


def grpc_client(url: str) -> Any:
    """tritonclient's asyncio gRPC client, or a RuntimeError that says what to install."""
    try:
        from tritonclient.grpc.aio import InferenceServerClient
    except ImportError as e:
        raise RuntimeError(f"tritonclient is not installed: {INSTALL_HINT}") from e
    return InferenceServerClient(url)


async def _play(stream: AudioStream, chunks: int, audio: Audio, pace: float, delay: float) -> None:
    """Send `chunks` chunks `pace` seconds apart (real time: pace = the chunk's length), END on the last."""
    await asyncio.sleep(delay)
    due = time.monotonic()
    for k in range(chunks):
        answer = await stream.send(audio, end=k == chunks - 1)
        if answer.error:
            return
        due += pace
        await asyncio.sleep(max(0.0, due - time.monotonic()))


async def drive_streams(
    url: str,
    model: str,
    chunks: Sequence[int],
    audio: Audio,
    *,
    pace: float,
    first_id: int = 1,
    stagger: float = 0.0,
    client_timeout: float | None = None,
) -> tuple[list[StreamRecord], float]:
    """Open one stream per entry of `chunks` (its chunk count), all at once or `stagger` s apart."""
    client = grpc_client(url)
    try:
        streams = [
            AudioStream(client, model, first_id + i, client_timeout=client_timeout)
            for i in range(len(chunks))
        ]
        start = time.monotonic()
        await asyncio.gather(*(_play(s, chunks[i], audio, pace, i * stagger) for i, s in enumerate(streams)))
        return [s.record for s in streams], time.monotonic() - start
    finally:
        await client.close()


def summarize_streams(records: list[StreamRecord], wall_seconds: float) -> dict[str, Any]:
    """Streams ended and cut, chunks answered, and chunk latency percentiles in ms."""
    latencies = [a.latency * 1000 for r in records for a in r.answers if not a.error]

    def ms(q: float) -> float | None:
        p = percentile(latencies, q)
        return None if p is None else round(p, 2)

    return {
        "streams": len(records),
        "ended": sum(r.ended for r in records),
        "cut": sum(r.cut for r in records),
        "chunks": sum(len(r.answers) for r in records),
        "wall_seconds": round(wall_seconds, 3),
        "chunk_p50_ms": ms(50),
        "chunk_p95_ms": ms(95),
        "chunk_p99_ms": ms(99),
    }


def run_streams(
    url: str, model: str, chunks: Sequence[int], audio: Audio, *, pace: float, **options: Any
) -> dict[str, Any]:
    """Drive the streams to their ends; the summary and every stream's answers."""
    records, wall = asyncio.run(drive_streams(url, model, chunks, audio, pace=pace, **options))
    return {"summary": summarize_streams(records, wall), "streams": [asdict(r) for r in records]}
