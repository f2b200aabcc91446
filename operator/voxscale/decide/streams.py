"""Streams as capacity: a replica holds at most so many live streams, whatever their rate."""

from __future__ import annotations

import math
from typing import NamedTuple

from voxscale.decide.types import Policy


class StreamNeed(NamedTuple):
    replicas: int
    """0 without streaming or without stream data: this term then asks for nothing."""
    reasons: tuple[str, ...] = ()


def stream_replicas(streams: float | None, policy: Policy) -> StreamNeed:
    """Replicas whose sequence slots hold the live streams, with growth headroom.

    Triton's sequence batcher gives each replica `maxConcurrentSequencesPerReplica` slots; a
    stream beyond them waits for a slot, however idle the GPU is (a call centre's quiet callers
    fill slots while sending little audio). So slots are a second capacity beside the request
    rate. The slots are planned at the same growth headroom as an observed rate without a
    forecast (`capacity_without_forecast`, 0.7 unless the spec overrides the target): new
    streams keep arriving during a warm-up, and no forecast of stream arrivals exists yet.
    E.g. 90 live streams at 32 slots: 90 / (32 × 0.7) = 4.02 → 5 replicas.

    No stream data is no data: the term asks for nothing and the rate terms decide alone, so a
    vanished gauge never scales down on its own.
    """
    slots = policy.streams_per_replica
    if slots is None or streams is None or not math.isfinite(streams):
        return StreamNeed(0)
    live = max(streams, 0.0)
    headroom = policy.target_utilization or policy.no_forecast_utilization
    n = math.ceil(live / (slots * headroom) - 1e-9)
    line = (f"streams: {live:.0f} live / ({slots} slots × {headroom:g} headroom) per replica"
            f" → {n}")
    return StreamNeed(n, (line,))
