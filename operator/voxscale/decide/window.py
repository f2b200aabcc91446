"""The scale-down stabilization window: past recommendations, kept as a sliding-window maximum."""

from __future__ import annotations

from collections.abc import Sequence

from voxscale.api import Recommendation

WINDOW_CAP = 64
"""Most entries stored per shard (status size: 64 × ~30 bytes ≈ 2 KB)."""


def prune(recs: Sequence[Recommendation], now: float, seconds: float) -> list[Recommendation]:
    """Drop recommendations older than the window."""
    return [r for r in recs if r.at >= now - seconds]


def push(recs: Sequence[Recommendation], at: float, replicas: int) -> list[Recommendation]:
    """Add a recommendation, dropping the ones it makes irrelevant.

    Only the highest recommendation of a window that ends *now or later* is ever read, so an
    older entry no higher than a newer one can never be that highest: 12 at t=0 followed by
    15 at t=10 means 12 can go. What remains descends in replicas as it ascends in time, so a
    shard with a steady load keeps one entry, not 30. Past the cap, the two oldest merge into
    the higher count at the later time: the high value is held a little longer, never shorter.
    """
    kept = [r for r in recs if r.replicas > replicas]
    kept.append(Recommendation(at=at, replicas=replicas))
    while len(kept) > WINDOW_CAP:
        first, second = kept[0], kept[1]
        merged = Recommendation(at=second.at, replicas=max(first.replicas, second.replicas))
        kept = [merged, *kept[2:]]
    return kept


def highest(recs: Sequence[Recommendation], now: float, seconds: float) -> int | None:
    """The highest recommendation within the last `seconds`; None when there is none."""
    inside = [r.replicas for r in recs if r.at >= now - seconds]
    return max(inside) if inside else None
