"""Clamp a replica count to the shard's [min_replicas, max_replicas]."""

from __future__ import annotations

from typing import Literal, NamedTuple

from voxscale.decide.types import Policy

Bound = Literal["floor", "ceiling"]


class Clamped(NamedTuple):
    replicas: int
    bound: Bound | None
    """Which bound set the count, if one did."""
    reasons: tuple[str, ...] = ()


def clamp(replicas: int, policy: Policy) -> Clamped:
    """min wins over max if a bad policy ever has min > max (the API already forbids it)."""
    if replicas > policy.max_replicas:
        line = f"clamp: {replicas} lowered to max {policy.max_replicas}"
        replicas = policy.max_replicas
        if replicas >= policy.min_replicas:
            return Clamped(replicas, "ceiling", (line,))
    if replicas < policy.min_replicas:
        return Clamped(
            policy.min_replicas,
            "floor",
            (f"clamp: {replicas} raised to min {policy.min_replicas}",),
        )
    return Clamped(replicas, None)
