"""Mixed class load over a shard's real Triton workers: interactive arrivals and a batch job queue.

The lab's class load generator (voxscale_lab.worker.classes) drives one Triton; an e2e shard has
as many as the bridge runs, and they come and go (scale-up, a spot reclaim). This client sends
each request to the next Ready worker of the shard, round robin over all of them, as the
shard's one Service does over every pool's pods, at its class's Triton priority level, and
counts it in the lab's voxscale_class_* series (ClassSeries: the gateway's and the job queue's),
which the test's Prometheus scrapes and the operator reads.

- Interactive: Poisson arrivals at `rate` (open loop). A request whose worker went away (reclaimed
  with its node) is retried on the next worker once or twice, as a gateway does; its latency is
  received → answered, retries included, so a reclaim's cost shows in the percentile.
- Batch: `submit(n, deadline)` queues a job of n requests at once (received now); `inflight`
  runners work it off oldest first; a failed request goes back to the queue (the job queue
  retries it), so the job finishes only when every request has an answer.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxscale_lab.worker.classes import ClassSeries
from voxscale_lab.worker.loadgen import chunk_audio
from voxscale_lab.worker.results import Outcome, classify

ATTEMPTS = 3
CLIENT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Answer:
    """One interactive request as its caller saw it (wall-clock `at`: when it was received)."""

    at: float
    seconds: float
    outcome: Outcome
    attempts: int
    error: str = ""
    """The last attempt's error, when it failed."""


@dataclass
class Job:
    """A batch job: submitted at once, done when every request is answered."""

    size: int
    deadline_seconds: float
    submitted: float
    """time.time() of the submission (every request received then)."""
    answered: int = 0
    on_time: int = 0
    retried: int = 0
    done_at: float | None = None
    queue: list[int] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        return None if self.done_at is None else self.done_at - self.submitted


@dataclass
class MixedLoad:
    """Interactive at `rate` req/s and the batch jobs given to `submit`, on an event loop in a thread."""

    endpoints: Callable[[], list[str]]
    series: ClassSeries
    interactive: tuple[str, int]
    """(class, Triton priority)."""
    batch: tuple[str, int]
    model: str = "asr-standin"
    inflight: int = 64
    rate: float = 0.0
    answers: list[Answer] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(13))
    _rr: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, size: int, deadline_seconds: float) -> Job:
        """A job of `size` requests, all received now (thread-safe; the runners pick it up)."""
        now = time.monotonic()
        with self._lock:
            tickets = [self.series.received(self.batch[0], now) for _ in range(size)]
            tickets.reverse()  # pop() takes the oldest first
            job = Job(size, deadline_seconds, time.time(), queue=tickets)
            self.jobs.append(job)
        return job

    def answers_between(self, start: float, end: float) -> list[Answer]:
        return [a for a in list(self.answers) if start <= a.at < end]

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from tritonclient.grpc.aio import InferenceServerClient

        self.series.declare(self.interactive[0])
        self.series.declare(self.batch[0])
        clients: dict[str, Any] = {}
        audio = chunk_audio(0.25)

        def client(url: str) -> Any:
            if url not in clients:
                clients[url] = InferenceServerClient(url)
            return clients[url]

        sender = _Sender(self, client, audio)
        try:
            await asyncio.gather(self._interactive(sender),
                                 *(self._runner(sender) for _ in range(self.inflight)))
        finally:
            for c in clients.values():
                await c.close()

    def _next(self) -> str | None:
        urls = self.endpoints()
        if not urls:
            return None
        self._rr += 1
        return urls[self._rr % len(urls)]

    async def _interactive(self, sender: _Sender) -> None:
        tasks: set[asyncio.Task[None]] = set()
        due = time.monotonic()
        while not self.stop.is_set():
            if self.rate <= 0:
                due = time.monotonic()
                await asyncio.sleep(0.05)
                continue
            due += float(self.rng.exponential(1 / self.rate))
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            task = asyncio.create_task(self._one(sender))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)

    async def _one(self, sender: _Sender) -> None:
        name, priority = self.interactive
        at, received = time.time(), time.monotonic()
        ticket = self.series.received(name, received)
        outcome: Outcome = "error"
        attempts, error = 0, ""
        while attempts < ATTEMPTS and outcome != "ok":
            attempts += 1
            outcome, error = await sender.send(priority)
        seconds = self.series.answered(name, ticket, time.monotonic())
        self.answers.append(Answer(at, seconds, outcome, attempts, "" if outcome == "ok" else error))

    async def _runner(self, sender: _Sender) -> None:
        name, priority = self.batch
        while not self.stop.is_set():
            with self._lock:
                job = next((j for j in self.jobs if j.queue), None)
                ticket = job.queue.pop() if job is not None else None
            if job is None or ticket is None:
                await asyncio.sleep(0.05)
                continue
            if (await sender.send(priority))[0] != "ok":
                with self._lock:
                    job.queue.append(ticket)  # retried next, as the oldest
                    job.retried += 1
                continue
            seconds = self.series.answered(name, ticket, time.monotonic())
            job.answered += 1
            job.on_time += seconds <= job.deadline_seconds
            if job.answered == job.size:
                job.done_at = time.time()


def p95_ms(answers: list[Answer]) -> float:
    """The callers' p95 in ms; a request that never got an answer counts as infinitely slow (so
    the rank above, not an interpolation that could land between a latency and infinity)."""
    values = [a.seconds * 1000 if a.outcome == "ok" else math.inf for a in answers]
    return float(np.percentile(values, 95, method="higher")) if values else math.nan


class _Sender:
    """One request to the next Ready worker at a priority; its outcome (no worker: an error)."""

    def __init__(self, load: MixedLoad, client: Callable[[str], Any], audio: Any) -> None:
        self.load, self.client, self.audio = load, client, audio

    async def send(self, priority: int) -> tuple[Outcome, str]:
        """(outcome, the error's status and message when it failed)."""
        from tritonclient.grpc import InferInput
        from tritonclient.utils import InferenceServerException

        url = self.load._next()
        if url is None:
            await asyncio.sleep(0.05)
            return "error", "no Ready worker"
        inp = InferInput("AUDIO", [1, len(self.audio)], "FP32")
        inp.set_data_from_numpy(self.audio[np.newaxis, :])
        try:
            result = await self.client(url).infer(self.load.model, [inp], priority=priority,
                                                  client_timeout=CLIENT_TIMEOUT_SECONDS)
        except InferenceServerException as e:
            return classify(str(e.status()), str(e.message())), f"{e.status()}: {str(e.message())[:120]}"
        return ("ok", "") if result.as_numpy("TEXT") is not None else ("error", "no TEXT in the answer")
