"""The demo's live sessions (pure): a share of each shard's trace rate carried by multi-chunk streams.

A streaming shard gets two kinds of traffic from the same trace: one-shot requests (a one-chunk
sequence each) and sessions, callers whose audio arrives as chunks a second apart on one
sequence held by one worker. The trace's rate is split between them, so what a shard is
offered in all (requests plus chunks) is still the trace: its backfilled history, its forecast
and the static allocation the run is compared with stay the same as without streams.

Live sessions then follow the trace's shape: sessions start at share × rate ÷ mean chunks per
second and each lives about mean chunks × pace, so about share × rate × pace are live at once
(0.2 × 70 req/s × 1 s = 14 streams at a shard's peak; 1-2 in the night trough).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voxscale.series import FloatArray, History

STREAM_SHARE = 0.2
"""Share of a shard's rate sent as stream chunks; the rest are one-shot requests."""
CHUNKS = (4, 12)
"""Chunks per session, inclusive: 4-12 s calls at one chunk a second."""
PACE_SECONDS = 1.0
"""Seconds between a session's chunks. A chunk carries the requests' 0.1 s of audio, not a
second of it: the stand-in's cost is per request, not per second of audio, and chunks of the
requests' shape batch with them (Triton batches only equal shapes)."""


@dataclass(frozen=True)
class Session:
    """One caller's stream: its first chunk's time (s after the traffic starts), chunks, caller."""

    due: float
    chunks: int
    caller: int
    """Routes the session (rendezvous hashing over the shard's workers, as requests are)."""

    def chunk_times(self, pace: float) -> FloatArray:
        """When each chunk is due (s after the traffic starts)."""
        return self.due + pace * np.arange(self.chunks, dtype=float)


@dataclass(frozen=True)
class SessionMix:
    """How a shard's trace rate splits into one-shot requests and sessions."""

    share: float = STREAM_SHARE
    chunks: tuple[int, int] = CHUNKS
    pace_seconds: float = PACE_SECONDS

    def __post_init__(self) -> None:
        lo, hi = self.chunks
        if not 0.0 <= self.share <= 1.0 or not 1 <= lo <= hi or self.pace_seconds <= 0:
            raise ValueError(f"share in [0, 1], 1 <= chunks[0] <= chunks[1], pace > 0: got {self}")

    @property
    def mean_chunks(self) -> float:
        return (self.chunks[0] + self.chunks[1]) / 2

    @property
    def longest_seconds(self) -> float:
        """From a session's first chunk to its last."""
        return (self.chunks[1] - 1) * self.pace_seconds

    def request_series(self, rate: History) -> History:
        """The one-shot requests' rate: what the sessions' chunks leave of the trace."""
        return History(rate.start, rate.step, rate.values * (1.0 - self.share))

    def session_series(self, rate: History) -> History:
        """Sessions started per second: `share` of the rate in chunks, `mean_chunks` a session."""
        return History(rate.start, rate.step, rate.values * self.share / self.mean_chunks)


def sessions_at(starts: FloatArray, mix: SessionMix, rng: np.random.Generator, callers: int) -> list[Session]:
    """One session per start time, its chunk count uniform over `mix.chunks`, its caller over `callers`."""
    chunks = rng.integers(mix.chunks[0], mix.chunks[1] + 1, size=len(starts))
    who = rng.integers(callers, size=len(starts))
    return [Session(float(t), int(c), int(w)) for t, c, w in zip(starts, chunks, who, strict=True)]


def chunk_times(sessions: list[Session], pace: float) -> FloatArray:
    """Every chunk's due time, sorted: the sessions' part of the offered rate."""
    if not sessions:
        return np.zeros(0)
    return np.sort(np.concatenate([s.chunk_times(pace) for s in sessions]))


def live_at(sessions: list[Session], t: float, pace: float) -> int:
    """Sessions open at `t` as scheduled (first chunk due, last chunk not yet due)."""
    return sum(s.due <= t <= s.due + (s.chunks - 1) * pace for s in sessions)
