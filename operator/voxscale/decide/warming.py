"""Warm-up accounting (HPA's unready-pod rule, adapted): warming pods are capacity coming."""

from __future__ import annotations

from typing import NamedTuple

from voxscale.decide.types import PodCounts


class Capacity(NamedTuple):
    """`base` = ready + warming: what the shard will have without asking for more."""

    base: int
    increment: int
    reasons: tuple[str, ...] = ()


def warming_capacity(desired: int, pods: PodCounts, *, explain: bool = True) -> Capacity:
    """The increment is counted against ready + warming, never against ready alone.

    Warming pods carry no load yet (the observed rate and latency come from ready pods), but
    they will: with 10 ready and 8 warming, a need of 16 adds nothing, and a need of 30 adds
    30 - 18 = 12, not 20 — otherwise every tick of the warm-up would ask for the same 8
    pods again. Pending pods (unschedulable, e.g. no GPU left) are not coming, so they are
    not capacity; asking for more of them only queues more pods behind the same shortage.

    `explain=False` (decide's): base and increment without the lines (the warm-up line was
    formatted on every tick with a pod warming, and a replay reads none of them).
    """
    base = pods.ready + pods.warming
    increment = desired - base
    if not explain:
        return Capacity(base, increment)
    lines: list[str] = []
    if pods.warming > 0:
        verdict = f"add {increment}" if increment > 0 else "nothing to add"
        lines.append(
            f"warm-up: need {desired} vs {pods.ready} ready + {pods.warming} warming"
            f" = {base}: {verdict}"
        )
    if pods.pending > 0:
        lines.append(f"pending: {pods.pending} unschedulable pods are not counted as capacity")
    return Capacity(base, increment, tuple(lines))
