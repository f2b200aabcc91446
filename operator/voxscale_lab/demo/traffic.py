"""The demo's traffic: a real trace per shard, time-compressed, sent open-loop to the shard's Ready workers.

Each request belongs to a caller; a caller sticks to one worker by rendezvous hashing over the
shard's Ready workers, so when a worker joins only the callers it now wins move to it (~1/n of
them), and when one leaves only its own callers move.

A streaming shard (spec.streaming: Triton's sequence batcher, which refuses a request without a
sequence) gets each request as a one-chunk sequence, and live sessions beside them (see
sessions.py): a session picks its worker when it starts and sends every chunk there, a second
apart, on one sequence, until its END; a chunk refused, or its worker gone, cuts it.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxscale.series import FloatArray, History
from voxscale_lab.demo.sessions import Session, chunk_times
from voxscale_lab.traces import compress_time, load_trace, scale_to_peak
from voxscale_lab.worker.arrivals import rate_arrivals
from voxscale_lab.worker.loadgen import chunk_audio
from voxscale_lab.worker.results import Outcome, classify
from voxscale_lab.worker.streams import AudioStream, StreamRecord

# A day of trace in ten minutes: the manifest's `seasonality: 10m` matches it.
TIME_SCALE = 144.0
STREAMS_PER_SHARD = 400
CLIENT_TIMEOUT_SECONDS = 10.0
AUDIO_SECONDS = 0.1


@dataclass(frozen=True)
class ShardTrace:
    """Where a shard's traffic comes from: a trace file, the trace time it starts at, its peak."""

    shard: str
    path: Path
    offset_seconds: float
    peak_rps: float


def rate_series(trace: ShardTrace) -> History:
    """The shard's rate over the whole trace at its native step, scaled so its p99 = `peak_rps`."""
    loaded = load_trace(trace.path)
    native = loaded.rate(loaded.interval or 60.0)
    return scale_to_peak(native, trace.peak_rps, 1.0)


def compressed_window(trace: ShardTrace, start: float, before: float, after: float) -> History:
    """The compressed rate series placed on the wall clock so that trace time `offset` is at `start`.

    `before` and `after` are wall seconds kept either side of `start` (history, then the run).
    """
    full = rate_series(trace)
    anchor = full.start + trace.offset_seconds
    squeezed = compress_time(full, TIME_SCALE, start=start - (anchor - full.start) / TIME_SCALE)
    first = max(0, math.floor((start - before - squeezed.start) / squeezed.step))
    last = min(len(squeezed), math.ceil((start + after - squeezed.start) / squeezed.step) + 1)
    if last - first < 2:
        raise ValueError(f"{trace.path.name} has no data {trace.offset_seconds} s in")
    return History(squeezed.start + first * squeezed.step, squeezed.step, squeezed.values[first:last])


def live_arrivals(series: History, start: float, duration: float, rng: np.random.Generator) -> FloatArray:
    """Poisson arrivals (seconds after `start`) following `series` over `[start, start + duration)`."""
    offset = math.floor((start - series.start) / series.step)
    part = History(series.start + offset * series.step, series.step, series.values[offset:])
    arrivals = rate_arrivals(part, rng) + (part.start - start)
    return arrivals[(arrivals >= 0) & (arrivals < duration)]


def owner(stream: int, workers: list[str]) -> str:
    """Rendezvous hashing: the worker with the highest hash of (stream, worker) owns the stream."""
    def weight(w: str) -> bytes:
        return hashlib.blake2b(f"{stream}/{w}".encode(), digest_size=8).digest()

    return max(workers, key=weight)


@dataclass(frozen=True)
class Result:
    """One request: its shard, when it was due (s from the start), latency, outcome, worker."""

    shard: str
    due: float
    latency: float
    outcome: Outcome
    worker: str


@dataclass(frozen=True)
class SessionResult:
    """One session: its shard, the worker it was opened on ("" for none Ready), its chunks' answers."""

    shard: str
    worker: str
    chunks: int
    record: StreamRecord

    @property
    def cut(self) -> bool:
        """Opened, then a chunk failed (refused, or its worker gone) before its END was answered."""
        return self.record.cut


@dataclass
class Traffic:
    """Sends every shard's arrivals (and sessions) to `endpoints()` (shard → {worker: grpc url}) on a thread.

    `streaming`: the model runs Triton's sequence batcher, so each request goes as a one-chunk
    sequence; `sessions` are only sent then, a chunk every `pace` seconds."""

    arrivals: dict[str, FloatArray]
    endpoints: Callable[[], dict[str, dict[str, str]]]
    model: str
    seed: int = 0
    streaming: bool = False
    sessions: dict[str, list[Session]] = field(default_factory=dict)
    pace: float = 1.0
    results: list[Result] = field(default_factory=list)
    session_results: list[SessionResult] = field(default_factory=list)
    started_at: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    """Sequence (correlation) IDs: one per request or session, never reused in a run."""
    _offered: dict[str, FloatArray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sessions and not self.streaming:
            raise ValueError("sessions need a streaming model (Triton's sequence batcher)")
        # What each shard is offered: its requests and its sessions' chunks, when due.
        self._offered = {shard: np.sort(np.concatenate([times, chunk_times(self.sessions.get(shard, []),
                                                                           self.pace)]))
                         for shard, times in self.arrivals.items()}

    @property
    def tail_seconds(self) -> float:
        """After the last arrival: the longest session still running, then a client timeout."""
        longest = max((s.chunks - 1) * self.pace for ss in self.sessions.values() for s in ss) \
            if any(self.sessions.values()) else 0.0
        return longest + CLIENT_TIMEOUT_SECONDS

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._drive()), name="traffic",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """No new request or session; the sessions already open run to their END (or are cut)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.tail_seconds + 5 if timeout is None else timeout)

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def offered_rate(self, shard: str, now: float, window: float = 10.0) -> float | None:
        """Requests and chunks per second due in the trailing `window` seconds (what the trace offers)."""
        if self.started_at is None:
            return None
        t = now - self.started_at
        a = self._offered[shard]
        lo, hi = np.searchsorted(a, [max(0.0, t - window), t])
        return float(hi - lo) / min(window, max(t, 1e-9))

    def recent_p95(self, shard: str, now: float, window: float = 10.0) -> float | None:
        """p95 latency in ms of the shard's requests due in the trailing `window` (failures count as late)."""
        if self.started_at is None:
            return None
        t = now - self.started_at
        lat = []
        for r in reversed(self.results[-5000:]):
            if r.due < t - window - CLIENT_TIMEOUT_SECONDS:
                break
            if r.shard == shard and r.due >= t - window:
                lat.append(r.latency * 1000 if r.outcome == "ok" else math.inf)
        return float(np.percentile(lat, 95, method="higher")) if lat else None

    def schedule(self) -> list[tuple[float, str, int, Session | None]]:
        """Every request (None) and session in order: when due, shard, caller."""
        rng = np.random.default_rng(self.seed)
        merged: list[tuple[float, str, int, Session | None]] = [
            (float(t), shard, int(rng.integers(STREAMS_PER_SHARD)), None)
            for shard, times in self.arrivals.items() for t in times]
        merged += [(s.due, shard, s.caller, s) for shard, ss in self.sessions.items() for s in ss]
        return sorted(merged, key=lambda e: e[0])

    async def _drive(self) -> None:
        from tritonclient.grpc.aio import InferenceServerClient

        clients: dict[str, Any] = {}
        audio = chunk_audio(AUDIO_SECONDS)
        pending: set[asyncio.Task[None]] = set()
        self.started_at = time.time()
        start = time.monotonic()
        for due, shard, caller, session in self.schedule():
            if self._stop.is_set():
                break
            delay = start + due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            workers = self.endpoints().get(shard, {})
            if not workers:
                if session is None:
                    self.results.append(Result(shard, due, math.nan, "rejected", ""))
                else:  # never opened: not a stream that was cut
                    self.session_results.append(SessionResult(shard, "", session.chunks, StreamRecord(0)))
                continue
            name = owner(caller, sorted(workers))
            url = workers[name]
            if url not in clients:
                clients[url] = InferenceServerClient(url)
            work = (self._one(clients[url], audio, shard, due, name) if session is None
                    else self._session(clients[url], audio, shard, name, session))
            task = asyncio.create_task(work)
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending)
        for client in clients.values():
            await client.close()

    async def _one(self, client: Any, audio: Any, shard: str, due: float, worker: str) -> None:
        from tritonclient.grpc import InferInput
        from tritonclient.utils import InferenceServerException

        sent = time.monotonic()
        inp = InferInput("AUDIO", [1, len(audio)], "FP32")
        inp.set_data_from_numpy(audio[np.newaxis, :])
        outcome: Outcome = "ok"
        # A one-chunk sequence for the sequence batcher: START and END on the one request.
        sequence = ({"sequence_id": next(self._ids), "sequence_start": True, "sequence_end": True}
                    if self.streaming else {})
        try:
            await client.infer(self.model, [inp], client_timeout=CLIENT_TIMEOUT_SECONDS, **sequence)
        except InferenceServerException as e:
            outcome = classify(str(e.status()), str(e.message()))
        self.results.append(Result(shard, due, time.monotonic() - sent, outcome, worker))

    async def _session(self, client: Any, audio: Any, shard: str, worker: str, session: Session) -> None:
        """Every chunk of `session` to the worker it started on, each when due (or once the last is
        answered, if later), END on the last; the first failed chunk ends it (cut)."""
        stream = AudioStream(client, self.model, next(self._ids), client_timeout=CLIENT_TIMEOUT_SECONDS)
        self.session_results.append(SessionResult(shard, worker, session.chunks, stream.record))
        due = time.monotonic()
        for k in range(session.chunks):
            last = k == session.chunks - 1
            answer = await stream.send(audio, end=last)
            if answer.error or last:
                return
            due += self.pace
            await asyncio.sleep(max(0.0, due - time.monotonic()))
