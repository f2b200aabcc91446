"""A tick's placement I/O (spec.placement): read each pool's Deployment, split, scale, report.

The split itself is pure (decide/placement.py); this module reads the shard's Deployment on
every pool, sums them for decide() (which sizes the shard as if it were one Deployment), and
afterwards applies each pool's count, adds the pools and their cost to the shard's status, and
exports `voxscale_cost_per_hour`. Kept out of loop.py, which only branches here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from voxscale import names, telemetry
from voxscale.api import PoolStatus, ShardStatus
from voxscale.decide.classes import batch_capacity
from voxscale.decide.placement import Placement, PlacementPolicy, PoolPods, place, placement_problems
from voxscale.decide.types import Decision, PodCounts, Policy
from voxscale.pods import ShardPods


class PoolAPI(Protocol):
    """What placement needs from Kubernetes (voxscale.k8s.Kube implements it)."""

    def read_pool(self, namespace: str, cluster: str, shard: str, pool: str) -> ShardPods: ...
    def scale(self, namespace: str, deployment: str, replicas: int) -> None: ...
    def event(self, owner: dict[str, Any], type_: str, reason: str, message: str, now: datetime) -> None: ...


@dataclass(frozen=True)
class PooledPods:
    """A shard's Deployments on every pool, summed as decide() sees one shard."""

    pools: dict[str, ShardPods]
    placement: PlacementPolicy

    @property
    def exists(self) -> bool:
        return all(p.exists for p in self.pools.values())

    @property
    def counts(self) -> PodCounts:
        c = [p.counts for p in self.pools.values()]
        return PodCounts(sum(x.asked for x in c), sum(x.ready for x in c), sum(x.warming for x in c),
                         sum(x.pending for x in c), sum(x.terminating for x in c))

    @property
    def warmups(self) -> tuple[tuple[float, float], ...]:
        return tuple(w for p in self.pools.values() for w in p.warmups)

    @property
    def pending_reasons(self) -> tuple[str, ...]:
        return tuple(r for p in self.pools.values() for r in p.pending_reasons)

    @property
    def spec_replicas(self) -> int:
        return self.counts.asked

    def by_pool(self) -> dict[str, PoolPods]:
        return {n: PoolPods(p.counts, next(iter(p.pending_reasons), None)) for n, p in self.pools.items()}


def read_pools(
    kube: PoolAPI, namespace: str, cluster: str, shard: str, policy: PlacementPolicy
) -> PooledPods:
    """Every pool's Deployment of the shard (blocking)."""
    pools = {p.name: kube.read_pool(namespace, cluster, shard, p.name) for p in policy.pools}
    return PooledPods(pools, policy)


def split(decision: Decision, pods: PooledPods, policy: Policy) -> Placement:
    """Where the decision's replicas go this tick (the pure rule, fed the live pools)."""
    placement = pods.placement
    overflow = dict(decision.state.overflow or {})
    placed = place(decision.replicas, decision.classes, placement, pods.by_pool(), overflow,
                   batch_rps=batch_capacity(policy).per_replica_rps)
    return replace(placed, problems=(*placement_problems(placement), *placed.problems))


def remember(decision: Decision, placed: Placement | None) -> Decision:
    """The decision with this tick's overflow in its state (released on Ready pods next ticks)."""
    if placed is None:
        return decision
    state = decision.state.model_copy(update={"overflow": placed.overflow or None})
    return replace(decision, state=state)


def scale_pools(kube: PoolAPI, owner: dict[str, Any], what: tuple[str, PooledPods, Placement],
                now: datetime) -> bool:
    """Apply each pool's count that differs from its Deployment's (blocking); one Event for the
    shard names every change. True when anything was scaled."""
    shard, pods, placed = what
    meta = owner["metadata"]
    namespace, cluster = meta["namespace"], meta["name"]
    changes = []
    for pool, replicas in placed.replicas.items():
        live = pods.pools[pool].spec_replicas if pool in pods.pools else 0
        if replicas != live:
            kube.scale(namespace, names.pool_resource_name(cluster, shard, pool), replicas)
            changes.append((pool, live, replicas))
            telemetry.count_scale(namespace, cluster, shard, live, replicas)
    if not changes:
        return False
    up = sum(new for _, _, new in changes) > sum(old for _, old, _ in changes)
    moved = ", ".join(f"{pool} {old} -> {new}" for pool, old, new in changes)
    why = "; ".join(r for r in placed.reasons if r.startswith("placement"))
    kube.event(owner, "Normal", names.REASON_SCALED_UP if up else names.REASON_SCALED_DOWN,
               f"{shard}: {moved} ({why})", now)
    return True


def with_placement(status: ShardStatus, placed: Placement, pods: PooledPods) -> ShardStatus:
    """The shard's status with its pools, their cost, each class's split and cost, and the
    placement reasons (kept within the 16 lines: the decision's first)."""
    pools = [
        PoolStatus(name=p.name, capacity_type=p.capacity_type, replicas=placed.replicas.get(p.name, 0),
                   ready_replicas=pods.pools[p.name].counts.ready,
                   pending_replicas=pods.pools[p.name].counts.pending,
                   price_per_hour=p.price_per_hour, cost_per_hour=placed.pool_cost.get(p.name, 0.0))
        for p in placed.pools
    ]
    classes = [
        c.model_copy(update={"pools": placed.by_class.get(c.name),
                             "cost_per_hour": placed.class_cost.get(c.name)})
        for c in status.classes or ()
    ]
    room = max(0, 16 - len(placed.reasons))
    return status.model_copy(update={
        "pools": pools,
        "cost_per_hour": round(placed.cost_per_hour, 6),
        "classes": classes or None,
        "reasons": [*status.reasons[:room], *(r[:1024] for r in placed.reasons)][:16],
    })


def export(namespace: str, cluster: str, shard: str, placed: Placement) -> None:
    overflow = {name: placed.overflow.get(name, 0) for name in placed.by_class}
    telemetry.export_cost(namespace, cluster, shard, placed.pool_cost, overflow)
