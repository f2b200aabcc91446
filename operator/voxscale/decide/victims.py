"""Which pods a scale-in removes: each pod's deletion cost from its live streams, idlest first (pure).

The operator lowers spec.replicas; the ReplicaSet controller picks the pods to delete. It ranks
them (kube-controller-manager, `controller.ActivePodsWithRanks`): unscheduled, then Pending,
then not Ready, then the lowest `controller.kubernetes.io/pod-deletion-cost`, then its own
tie-breaks (pods doubled up on a node, newest Ready). So a Ready pod's cost is the one lever
voxscale has, and it sets it to the pod's live streams: a pod with 0 streams costs 0, one with
7 costs 7, and scaling 6 -> 2 over pods with 0, 0, 1, 2, 5, 9 streams removes those with
0, 0, 1, 2 and cuts nothing that the drain cannot finish.

A pod whose streams are unknown (no series, NaN, a failed query) costs the int32 maximum: it
may hold the busiest streams of the shard, so it goes last, never first as an "idle" 0 would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

INT32_MAX = 2**31 - 1
UNKNOWN_COST = INT32_MAX
"""Deletion cost of a pod whose streams are unknown: above every known one."""


@dataclass(frozen=True)
class PodLoad:
    """One pod a scale-in may remove, as the ranking sees it."""

    name: str
    streams: float | None
    """Live streams now; None = no data (treated as busy)."""
    ready: bool = True
    annotated_cost: str | None = None
    """The pod's deletion-cost annotation as it is now (None = unset), so an unchanged one is
    not patched again."""


@dataclass(frozen=True)
class ScaleIn:
    """Each pod's deletion cost and the pods the ReplicaSet controller will then remove."""

    costs: Mapping[str, int]
    victims: tuple[PodLoad, ...]
    """In the controller's order. Their streams are exact; where costs tie, which pod of equal
    cost goes is the controller's own tie-break, so the names are a prediction."""

    def changed(self, pods: Sequence[PodLoad]) -> list[tuple[str, str]]:
        """(pod, cost annotation) for each pod whose annotation must change."""
        wanted = {name: str(cost) for name, cost in self.costs.items()}
        return [(p.name, wanted[p.name]) for p in pods if p.annotated_cost != wanted[p.name]]

    def summary(self) -> str:
        """'removing pods with 0, 0, 1, ? live streams' (? = unknown)."""
        counts = ", ".join("?" if p.streams is None else f"{p.streams:g}" for p in self.victims)
        return f"removing pods with {counts or 'no'} live streams"


def deletion_cost(streams: float | None) -> int:
    """Live streams as an int32 cost: 0 -> 0, 2.4 -> 3 (a fraction is still a stream), no data
    or nonsense (NaN, negative) -> UNKNOWN_COST."""
    if streams is None or not math.isfinite(streams) or streams < 0:
        return UNKNOWN_COST
    return min(math.ceil(streams), INT32_MAX - 1)


def rank_scale_in(pods: Sequence[PodLoad], remove: int) -> ScaleIn:
    """The deletion cost of every pod, and the `remove` pods the controller takes first: not
    Ready before Ready (it ranks readiness above cost; a warming pod has no streams), then the
    lowest cost, then name (a stand-in for the controller's tie-break)."""
    costs = {p.name: deletion_cost(p.streams) for p in pods}
    order = sorted(pods, key=lambda p: (p.ready, costs[p.name], p.name))
    return ScaleIn(costs, tuple(order[: max(0, remove)]))
