"""How long a removed replica may drain its streams: the learned p99 session length, bounded (pure).

A replica leaving a streaming shard must let its live streams finish. How long that takes is
the length of the sessions it holds: the p99 of recently closed streams, learned from the
worker's histogram (names.STREAM_DURATION_METRIC). It is never below the spec's
scaling.scaleDown.drainSeconds (the user's floor, and the stream idle timeout is within it) and
never above streaming.maxSessionSeconds (the worker ends any stream at that age anyway).

The drain becomes the pod template's terminationGracePeriodSeconds, and a changed template rolls
the shard, so the learned value moves in steps of DRAIN_STEP_SECONDS, rises at once (longer
sessions would be cut) and falls only when it is at least two steps lower (a p99 wobbling
around 240 s must not roll the shard every minute).
"""

from __future__ import annotations

import math

from voxscale.api import SpeechClusterSpec

DRAIN_STEP_SECONDS = 30


def drain_bounds(spec: SpeechClusterSpec) -> tuple[int, int]:
    """[floor, ceiling] of the drain in seconds: scaleDown.drainSeconds, and
    streaming.maxSessionSeconds (without streaming, the floor: there are no sessions to learn)."""
    floor = spec.scaling.scale_down.drain_seconds
    ceiling = spec.streaming.max_session_seconds if spec.streaming is not None else floor
    return floor, max(floor, ceiling)


def clamp_drain(seconds: int | None, spec: SpeechClusterSpec) -> int:
    """A drain (e.g. one learned under an older spec) within this spec's bounds; None = the floor."""
    floor, ceiling = drain_bounds(spec)
    return floor if seconds is None else min(max(seconds, floor), ceiling)


def learned_drain(p99_seconds: float | None, previous: int | None, spec: SpeechClusterSpec) -> int:
    """The drain for a p99 session length (None = no data: keep the previous one).

    Worked numbers, 30 s steps: p99 212 s -> 240 s. From 240, p99 190 s (210, one step down)
    keeps 240; p99 170 s (180, two steps down) falls to 180; p99 250 s rises to 270 at once.
    """
    if p99_seconds is None or not math.isfinite(p99_seconds) or p99_seconds < 0:
        return clamp_drain(previous, spec)
    stepped = math.ceil(p99_seconds / DRAIN_STEP_SECONDS) * DRAIN_STEP_SECONDS
    if previous is not None and previous - 2 * DRAIN_STEP_SECONDS < stepped < previous:
        stepped = previous
    return clamp_drain(stepped, spec)
