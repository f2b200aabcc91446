"""Cost-aware placement (decide/placement.py): where a shard's replicas run, tick by tick.

Pools: on-demand at 1.20/h and spot at 0.40/h. Interactive `live` on [on-demand]; Batch `offline`
on [spot, on-demand] with a 3,600 s deadline. A batch replica runs 20 req/s (no serviceTime:
the SLO rate). The timelines step a fake clock through the pools' pod states, carrying the
overflow state from tick to tick as the loop stores it in status.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from voxscale import names
from voxscale.decide.placement import (
    ALL,
    ClassPlacement,
    Placement,
    PlacementPolicy,
    Pool,
    PoolPods,
    costs,
    place,
    placement_problems,
    pool_problems,
    shares,
)
from voxscale.decide.types import ClassNeed, PodCounts

ON_DEMAND = Pool("on-demand", "OnDemand", 1.20)
SPOT = Pool("spot", "Spot", 0.40)
RPS = 20.0
DEADLINE = 3600.0


def _policy(cap: int | None = 4, interactive: tuple[str, ...] = ("on-demand",)) -> PlacementPolicy:
    return PlacementPolicy(
        (ON_DEMAND, SPOT),
        (ClassPlacement("live", "Interactive", interactive),
         ClassPlacement("offline", "Batch", ("spot", "on-demand"), DEADLINE, cap)),
    )


def _needs(interactive: int, batch: int, backlog: float, *, oldest: float = 0.0) -> tuple[ClassNeed, ...]:
    return (ClassNeed("live", "Interactive", interactive, rate=28.0),
            ClassNeed("offline", "Batch", batch, rate=0.0, backlog=backlog, oldest_seconds=oldest))


@dataclass
class Pools:
    """The pools' pods as the scheduler leaves them: `nodes` GPUs per pool, one pod each.
    Pods the loop asks for fill free nodes (warming first, Ready on the next tick)."""

    nodes: dict[str, int]
    asked: dict[str, int] = field(default_factory=lambda: {"on-demand": 0, "spot": 0})
    ready: dict[str, int] = field(default_factory=lambda: {"on-demand": 0, "spot": 0})
    warming: dict[str, int] = field(default_factory=lambda: {"on-demand": 0, "spot": 0})

    def view(self) -> dict[str, PoolPods]:
        out = {}
        for pool, asked in self.asked.items():
            placed = self.ready[pool] + self.warming[pool]
            pending = asked - placed
            why = "0/8 nodes are available: 8 Insufficient nvidia.com/gpu." if pending else None
            out[pool] = PoolPods(PodCounts(asked, self.ready[pool], self.warming[pool], pending), why)
        return out

    def settle(self, replicas: dict[str, int]) -> None:
        """Apply the loop's counts; last tick's warming pods turn Ready, new pods warm where a
        node is free; losing nodes takes their pods (Ready ones last)."""
        for pool, asked in replicas.items():
            self.asked[pool] = asked
            self.ready[pool] = min(self.ready[pool] + self.warming[pool], asked, self.nodes[pool])
            self.warming[pool] = max(0, min(asked, self.nodes[pool]) - self.ready[pool])


def _tick(pools: Pools, policy: PlacementPolicy, needs: tuple[ClassNeed, ...], overflow: dict[str, int],
          total: int | None = None) -> Placement:
    n = total if total is not None else sum(x.replicas or 0 for x in needs)
    placed = place(n, needs, policy, pools.view(), overflow, batch_rps=RPS)
    overflow.clear()
    overflow.update(placed.overflow)
    pools.settle(placed.replicas)
    return placed


def _steady(pools: Pools, policy: PlacementPolicy, needs: tuple[ClassNeed, ...], overflow: dict[str, int],
            ticks: int = 3) -> Placement:
    placed = _tick(pools, policy, needs, overflow)
    for _ in range(ticks - 1):
        placed = _tick(pools, policy, needs, overflow)
    return placed


# 400,000 queued with the whole 3,600 s left: 6 replicas (400,000 / 3,590 s = 111 rps).
# On 2 spot replicas (40 rps) they would take 10,000 s: the deadline is at risk.
AT_RISK = _needs(2, 6, 400_000)
# 6,000 queued: 2 spot replicas finish them in 150 s, well within the deadline.
SMALL = _needs(2, 6, 6_000)


def test_with_spot_available_batch_runs_on_spot_and_interactive_on_on_demand() -> None:
    pools, overflow = Pools({"on-demand": 8, "spot": 8}), {}
    placed = _steady(pools, _policy(), AT_RISK, overflow)
    assert placed.replicas == {"on-demand": 2, "spot": 6}
    assert placed.by_class == {"live": {"on-demand": 2}, "offline": {"spot": 6}}
    assert overflow == {}
    assert placed.cost_per_hour == pytest.approx(2 * 1.20 + 6 * 0.40)
    assert not [p for p in placed.problems if p[0] != names.REASON_POOL_PENDING]


def test_spot_exhausted_with_the_deadline_at_risk_overflows_to_on_demand_within_the_cap() -> None:
    pools, overflow = Pools({"on-demand": 8, "spot": 8}), {}
    _steady(pools, _policy(cap=4), AT_RISK, overflow)
    pools.nodes["spot"] = 2  # 6 of 8 spot nodes taken back: 4 spot pods are Pending from now on
    pools.ready["spot"] = 2
    placed = _tick(pools, _policy(cap=4), AT_RISK, overflow)
    assert placed.replicas == {"on-demand": 6, "spot": 6}
    assert placed.by_class["offline"] == {"spot": 6, "on-demand": 4}
    assert placed.by_class["live"] == {"on-demand": 2}
    assert overflow == {"offline": 4}
    assert any("deadline at risk" in r and "4 overflow to on-demand 4" in r for r in placed.reasons)
    reasons = {r for r, _ in placed.problems}
    assert names.REASON_OVERFLOW in reasons and names.REASON_OVERFLOW_CAPPED not in reasons
    assert names.REASON_POOL_PENDING in reasons


def test_a_cap_below_the_shortfall_says_the_deadline_cannot_be_met_and_why() -> None:
    pools, overflow = Pools({"on-demand": 8, "spot": 8}), {}
    _steady(pools, _policy(cap=2), AT_RISK, overflow)
    pools.nodes["spot"], pools.ready["spot"] = 2, 2
    placed = _tick(pools, _policy(cap=2), AT_RISK, overflow)
    assert placed.by_class["offline"] == {"spot": 6, "on-demand": 2}
    capped = dict(placed.problems)[names.REASON_OVERFLOW_CAPPED]
    # 4 serving replicas × 20 rps take 5,000 s for 400,000 requests: past the 3,600 s left.
    assert "maxOnDemandReplicas 2" in capped and "5000 s" in capped and "3600 s left" in capped
    assert "raise maxOnDemandReplicas" in capped


def test_spot_exhausted_with_the_deadline_safe_buys_no_on_demand() -> None:
    pools, overflow = Pools({"on-demand": 8, "spot": 8}), {}
    _steady(pools, _policy(), SMALL, overflow)
    pools.nodes["spot"], pools.ready["spot"] = 2, 2
    placed = _tick(pools, _policy(), SMALL, overflow)
    assert placed.by_class["offline"] == {"spot": 6}
    assert overflow == {}
    assert any("deadline holds" in r and "150 s" in r and "no overflow" in r for r in placed.reasons)


def test_the_overflow_is_released_only_as_returning_spot_pods_turn_ready() -> None:
    pools, overflow = Pools({"on-demand": 8, "spot": 8}), {}
    policy = _policy(cap=4)
    _steady(pools, policy, AT_RISK, overflow)
    pools.nodes["spot"], pools.ready["spot"] = 2, 2
    _steady(pools, policy, AT_RISK, overflow)
    assert overflow == {"offline": 4}
    pools.nodes["spot"] = 8  # spot is back: the 4 Pending spot pods are scheduled and warm up
    scheduled = _tick(pools, policy, AT_RISK, overflow)  # read while Pending, then scheduled
    assert pools.warming["spot"] == 4
    assert scheduled.by_class["offline"]["on-demand"] == 4
    warming = _tick(pools, policy, AT_RISK, overflow)  # read while warming
    assert warming.by_class["offline"]["on-demand"] == 4, "held while the spot pods only warm"
    assert pools.ready["spot"] == 6
    released = _tick(pools, policy, AT_RISK, overflow)  # read once Ready
    assert released.by_class["offline"] == {"spot": 6}
    assert released.replicas == {"on-demand": 2, "spot": 6}
    assert overflow == {}


def test_the_overflow_is_not_released_because_the_overflow_itself_made_the_deadline_safe() -> None:
    pools, overflow = Pools({"on-demand": 8, "spot": 8}), {}
    policy = _policy(cap=4)
    _steady(pools, policy, AT_RISK, overflow)
    pools.nodes["spot"], pools.ready["spot"] = 2, 2
    # 6 serving replicas keep the deadline: a gate re-checked now would release and flap.
    placed = _steady(pools, policy, AT_RISK, overflow, ticks=5)
    assert placed.by_class["offline"] == {"spot": 6, "on-demand": 4}
    assert any("held until the first pool serves again" in r for r in placed.reasons)


def test_a_drained_backlog_releases_the_overflow_with_its_need() -> None:
    pools, overflow = Pools({"on-demand": 8, "spot": 2}), {}
    policy = _policy(cap=4)
    _steady(pools, policy, AT_RISK, overflow)
    placed = _tick(pools, policy, _needs(2, 0, 0), overflow)
    assert placed.replicas == {"on-demand": 2, "spot": 0}
    assert overflow == {}


def _overflowing_on_two_spot_nodes() -> tuple[Pools, PlacementPolicy, dict[str, int]]:
    """2 spot nodes, batch needs 4: 2 Pending spot pods overflow to on-demand (the cap, 2)."""
    pools, overflow = Pools({"on-demand": 8, "spot": 2}), {}
    policy = _policy(cap=2)
    _steady(pools, policy, _needs(2, 4, 400_000), overflow)
    assert pools.asked == {"on-demand": 4, "spot": 4} and overflow == {"offline": 2}
    return pools, policy, overflow


def test_a_shrinking_batch_share_does_not_count_the_pending_pods_the_replicaset_deletes_first() -> None:
    pools, policy, overflow = _overflowing_on_two_spot_nodes()
    # The draining job needs 3 and the window lets the total go to 5: spot is asked 3 of its 4
    # pods, and the ReplicaSet deletes a Pending one first, so 1 stays short, not 2.
    shrunk = _tick(pools, policy, _needs(2, 3, 400_000), overflow, total=5)
    assert shrunk.by_class == {"live": {"on-demand": 2}, "offline": {"spot": 3, "on-demand": 1}}
    assert shrunk.replicas == {"on-demand": 3, "spot": 3}, "not 4 for one tick and 3 the next"
    again = _tick(pools, policy, _needs(2, 3, 400_000), overflow, total=5)
    assert again.replicas == shrunk.replicas


def test_replicas_the_scale_down_window_holds_stay_on_the_pool_they_run_on() -> None:
    pools, policy, overflow = _overflowing_on_two_spot_nodes()
    # The job needs 3 but the window holds 6: the held replica stays with the batch class on
    # spot, instead of going to interactive and buying an on-demand pod.
    held = _tick(pools, policy, _needs(2, 3, 400_000), overflow, total=6)
    assert held.by_class == {"live": {"on-demand": 2}, "offline": {"spot": 4, "on-demand": 2}}
    assert held.replicas == {"on-demand": 4, "spot": 4}
    # Interactive's need falls instead: its held replica stays with it, on on-demand.
    held = _tick(pools, policy, _needs(1, 4, 400_000), overflow, total=6)
    assert held.by_class == {"live": {"on-demand": 2}, "offline": {"spot": 4, "on-demand": 2}}


def test_interactive_never_lands_on_spot_unless_its_class_lists_spot() -> None:
    pools, overflow = Pools({"on-demand": 1, "spot": 8}), {}
    placed = _steady(pools, _policy(), _needs(4, 0, 0), overflow)
    assert placed.by_class["live"] == {"on-demand": 4}
    assert placed.replicas["spot"] == 0
    listed = _policy(interactive=("on-demand", "spot"))
    pools, overflow = Pools({"on-demand": 1, "spot": 8}), {}
    placed = _steady(pools, listed, _needs(4, 0, 0), overflow)
    assert placed.by_class["live"] == {"on-demand": 4, "spot": 3}


def test_interactive_overflow_needs_no_deadline_and_no_cap() -> None:
    policy = _policy(cap=0, interactive=("on-demand", "spot"))
    pools, overflow = Pools({"on-demand": 2, "spot": 8}), {}
    placed = _steady(pools, policy, _needs(6, 0, 0), overflow)
    assert placed.by_class["live"] == {"on-demand": 6, "spot": 4}


def test_shares_give_interactive_its_need_first_then_batch_and_leftovers_to_interactive() -> None:
    policy = _policy()
    got = {c.name: n for c, n in shares(10, _needs(3, 5, 1), policy)}
    assert got == {"live": 5, "offline": 5}
    got = {c.name: n for c, n in shares(6, _needs(3, 5, 1), policy)}
    assert got == {"live": 3, "offline": 3}, "clamped to maxReplicas: batch gives way"


def test_without_classes_the_shard_uses_the_pools_in_declared_order() -> None:
    policy = PlacementPolicy((SPOT, ON_DEMAND), (ClassPlacement(ALL, "Interactive", ("spot", "on-demand")),))
    pools, overflow = Pools({"on-demand": 8, "spot": 3}), {}
    placed = _tick(pools, policy, (), overflow, total=3)
    assert placed.replicas == {"spot": 3, "on-demand": 0}
    placed = _tick(pools, policy, (), overflow, total=5)
    assert placed.replicas == {"spot": 5, "on-demand": 0}, "spot is tried first"
    placed = _tick(pools, policy, (), overflow, total=5)  # 2 spot pods Pending now
    assert placed.replicas == {"spot": 5, "on-demand": 2}


def test_cost_counts_scheduled_pods_only_and_gives_each_pool_to_its_classes_in_order() -> None:
    pods = {"on-demand": PoolPods(PodCounts(6, ready=5, warming=1)),
            "spot": PoolPods(PodCounts(6, ready=2, pending=4))}
    by_class = {"live": {"on-demand": 2}, "offline": {"spot": 6, "on-demand": 4}}
    pool_cost, class_cost = costs(_policy(), pods, by_class)
    assert pool_cost == {"on-demand": pytest.approx(7.2), "spot": pytest.approx(0.8)}
    assert class_cost == {"live": pytest.approx(2.4), "offline": pytest.approx(0.8 + 4.8)}


def test_a_pool_no_node_matches_says_to_check_its_node_selector() -> None:
    message = "0/20 nodes are available: 20 node(s) didn't match Pod's node affinity/selector."
    pods = {"spot": PoolPods(PodCounts(3, pending=3), message)}
    (reason, text), = pool_problems(_policy(), pods)
    assert reason == names.REASON_POOL_PENDING
    assert "pool spot (Spot): 3 pod(s) Pending" in text and "pools[spot].nodeSelector" in text


def test_a_spot_pool_priced_above_on_demand_is_reported() -> None:
    policy = PlacementPolicy((ON_DEMAND, Pool("spot", "Spot", 2.5)), _policy().classes)
    (reason, text), = placement_problems(policy)
    assert reason == names.REASON_PLACEMENT_INVALID
    assert "Spot pool spot costs 2.5 USD/h, above OnDemand pool on-demand at 1.2" in text
    assert placement_problems(_policy()) == []


def test_warming_spot_pods_held_short_by_the_hysteresis_still_count_for_the_deadline() -> None:
    pools, overflow = Pools({"on-demand": 8, "spot": 8}), {}
    policy = _policy(cap=4)
    _steady(pools, policy, AT_RISK, overflow)
    pools.nodes["spot"], pools.ready["spot"], pools.warming["spot"] = 2, 0, 2  # replacements warming
    placed = _tick(pools, policy, AT_RISK, overflow)
    assert overflow == {"offline": 4}
    pools.ready["spot"], pools.warming["spot"] = 0, 2  # still warming at the next read
    placed = _tick(pools, policy, AT_RISK, overflow)  # active: 6 short until Ready, cap 4
    assert placed.by_class["offline"] == {"spot": 6, "on-demand": 4}
    assert names.REASON_OVERFLOW_CAPPED not in dict(placed.problems), "2 spot + 4 on-demand meet it"
