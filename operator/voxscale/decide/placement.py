"""Cost-aware placement: the shard's replicas split over its node pools, per class (pure).

decide() says how many replicas a shard runs and what each class needs; this module says where
they run (docs/placement.md). Each class's share goes to its first pool. When that pool cannot
place them (its pods stay Pending: spot capacity taken back, or no node matches), the shortfall
overflows to the class's next pools, with two rules for a Batch class going to an OnDemand pool:

- only while its deadline is at risk at what the first pool serves: 6,000 requests queued with
  3,000 s left and 2 spot replicas of 20 req/s finish in 150 s, so nothing is bought; 400,000
  finish in 10,000 s, so the 4 Pending spot replicas go to on-demand;
- at most `maxOnDemandReplicas`; when the cap stops an overflow the deadline needs, the class
  says so (DeadlineCannotBeMet), with the numbers.

Hysteresis: an overflow is entered on the first pool's *Pending* pods, and released only as the
first pool's pods turn *Ready*: once spot nodes return, the Pending spot pods are scheduled and
warm up for a horizon, and the on-demand replicas stay until they serve. Releasing on
"scheduled" would drop capacity for a whole warm-up; re-checking the deadline while overflowing
would release the overflow as soon as the overflow itself made the deadline safe, and flap.

Cost is price × scheduled pods (Ready + warming) per pool: a Pending pod holds no node.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from voxscale import names
from voxscale.api import CapacityType, SpeechClusterSpec
from voxscale.decide.types import ClassNeed, PodCounts

ALL = "all"
"""The one pseudo-class of a cluster with placement but no spec.classes."""


@dataclass(frozen=True)
class Pool:
    name: str
    capacity_type: CapacityType
    price_per_hour: float


@dataclass(frozen=True)
class ClassPlacement:
    """A class as placement sees it: its pools in order of preference, and its cap."""

    name: str
    kind: str
    pools: tuple[str, ...]
    deadline_seconds: float | None = None
    max_on_demand: int | None = None


@dataclass(frozen=True)
class PlacementPolicy:
    pools: tuple[Pool, ...]
    classes: tuple[ClassPlacement, ...]
    currency: str = "USD"

    @classmethod
    def from_spec(cls, spec: SpeechClusterSpec) -> PlacementPolicy | None:
        """None without spec.placement. A class without `pools` uses the first pool; with no
        classes, the shard's replicas use every pool in the declared order."""
        p = spec.placement
        if p is None:
            return None
        pools = tuple(Pool(x.name, x.capacity_type, x.price_per_hour) for x in p.pools)
        classes = tuple(
            ClassPlacement(c.name, c.kind, tuple(c.pools or (pools[0].name,)),
                           float(c.deadline_seconds) if c.deadline_seconds else None,
                           c.max_on_demand_replicas)
            for c in spec.classes or ()
        ) or (ClassPlacement(ALL, "Interactive", tuple(x.name for x in pools)),)
        return cls(pools, classes, p.currency)

    def pool(self, name: str) -> Pool:
        return next(p for p in self.pools if p.name == name)


@dataclass(frozen=True)
class PoolPods:
    """One pool's Deployment of the shard as read: counts (`asked` = its spec.replicas) and the
    scheduler's first message for a Pending pod."""

    counts: PodCounts
    pending_reason: str | None = None


@dataclass(frozen=True)
class Placement:
    replicas: dict[str, int]
    """Pool -> spec.replicas of the shard's Deployment there."""
    by_class: dict[str, dict[str, int]]
    """Class -> pool -> replicas asked for it there."""
    overflow: dict[str, int]
    """Class -> replicas beyond its first pool (the state for the next tick)."""
    pool_cost: dict[str, float]
    class_cost: dict[str, float]
    reasons: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()
    currency: str = "USD"
    pools: tuple[Pool, ...] = ()

    @property
    def cost_per_hour(self) -> float:
        return sum(self.pool_cost.values())


@dataclass
class _Ledger:
    """Pods of each pool not yet attributed to a class: Pending, and warming (scheduled)."""

    pending: dict[str, int]
    warming: dict[str, int]
    asked: dict[str, int] = field(default_factory=dict)
    pods: dict[str, int] = field(default_factory=dict)
    """Pods each pool has now (Ready + warming + Pending), before this tick's counts apply."""

    def take_short(self, pool: str, share: int, *, until_ready: bool) -> tuple[int, int]:
        """How many of `share` the pool does not serve: its Pending pods, and while an overflow
        is active its warming ones too (a spot pod counts again only once Ready). Returns
        (short, of which Pending).

        Pending pods the pool is about to lose do not count: asked for fewer pods than it has,
        the ReplicaSet deletes unscheduled pods first. Worked (the e2e's draining job): 4 spot
        pods, 2 of them Pending, now asked 3: 1 stays Pending, so 1 is short, not 2; counting 2
        asked one on-demand pod for a tick and gave it back the next."""
        surplus = max(0, self.pods.get(pool, 0) - self.asked.get(pool, 0))
        pending = min(share, max(0, self.pending.get(pool, 0) - surplus))
        self.pending[pool] = self.pending.get(pool, 0) - pending
        more = 0
        if until_ready:
            more = min(share - pending, self.warming.get(pool, 0))
            self.warming[pool] = self.warming.get(pool, 0) - more
        return pending + more, pending

    def ask(self, pool: str, n: int) -> None:
        self.asked[pool] = self.asked.get(pool, 0) + n


def place(
    total: int,
    needs: tuple[ClassNeed, ...],
    policy: PlacementPolicy,
    pods: Mapping[str, PoolPods],
    overflow: Mapping[str, int],
    *,
    batch_rps: float,
) -> Placement:
    """Split `total` replicas over the pools: each class's share to its first pool, the part
    that pool leaves Pending to the next ones (Batch onto OnDemand: only while its deadline is at
    risk, within its cap)."""
    ledger = _Ledger({p.name: _counts(pods, p.name).pending for p in policy.pools},
                     {p.name: _counts(pods, p.name).warming for p in policy.pools},
                     {p.name: 0 for p in policy.pools},
                     {p.name: _pods(_counts(pods, p.name)) for p in policy.pools})
    by_class: dict[str, dict[str, int]] = {}
    state: dict[str, int] = {}
    reasons: list[str] = []
    problems: list[tuple[str, str]] = []
    need_of = {n.name: n for n in needs}
    for c, share in shares(total, needs, policy, {p.name: _counts(pods, p.name).asked for p in policy.pools}):
        split, over, lines, trouble = _place_class(
            c, share, need_of.get(c.name), policy, pods, ledger, overflow.get(c.name, 0), batch_rps
        )
        by_class[c.name], state[c.name] = split, over
        reasons.extend(lines)
        problems.extend(trouble)
    pool_cost, class_cost = costs(policy, pods, by_class)
    reasons.append(_cost_line(policy, pods, pool_cost))
    problems.extend(pool_problems(policy, pods))
    return Placement(dict(ledger.asked), by_class, {k: v for k, v in state.items() if v},
                     pool_cost, class_cost, tuple(reasons), tuple(problems), policy.currency, policy.pools)


def shares(
    total: int, needs: tuple[ClassNeed, ...], policy: PlacementPolicy,
    asked: Mapping[str, int] | None = None,
) -> list[tuple[ClassPlacement, int]]:
    """Each class's part of `total`: the Interactive need first, then each Batch need in order;
    what is left over (stabilization holding more than the needs) stays where it runs: each
    Batch class keeps up to what its first pool is `asked` for now, the rest goes to the
    Interactive class. Without classes, all of it is the one pseudo-class's.

    Why not all of it to Interactive: a draining job's need falls 4 → 3 while the window holds
    6, and the held replica moved from spot to on-demand, i.e. an on-demand pod bought to hold a
    spot pod's capacity (seen in the e2e with real workers: a Ready on-demand pod deleted as an
    overflow was released and a new one created 2 s later for the held replica)."""
    if policy.classes[0].name == ALL:
        return [(policy.classes[0], total)]
    need_of = {n.name: n.replicas or 0 for n in needs}
    interactive = next(c for c in policy.classes if c.kind == "Interactive")
    batch = [c for c in policy.classes if c.kind == "Batch"]
    given = {interactive.name: min(total, need_of.get(interactive.name, 0))}
    left = total - given[interactive.name]
    for c in batch:
        given[c.name] = min(left, need_of.get(c.name, 0))
        left -= given[c.name]
    on_pool: dict[str, int] = {}
    for c in policy.classes:
        on_pool[c.pools[0]] = on_pool.get(c.pools[0], 0) + given[c.name]
    for c in batch:
        first = c.pools[0]
        more = min(left, max(0, (asked or {}).get(first, 0) - on_pool[first]))
        given[c.name] += more
        on_pool[first] += more
        left -= more
    given[interactive.name] += left
    return [(c, given[c.name]) for c in policy.classes]


def _place_class(  # noqa: PLR0917 (one class's inputs, unpacked by place())
    c: ClassPlacement, share: int, need: ClassNeed | None, policy: PlacementPolicy,
    pods: Mapping[str, PoolPods], ledger: _Ledger, before: int, batch_rps: float,
) -> tuple[dict[str, int], int, list[str], list[tuple[str, str]]]:
    first, rest = c.pools[0], c.pools[1:]
    ledger.ask(first, share)
    split = {first: share}
    short, pending = ledger.take_short(first, share, until_ready=before > 0)
    head = f"placement {c.name}: {share} on {first}"
    if short == 0 or not rest:
        unplaced = f" ({short} not placed: no further pool listed)" if short else ""
        return split, 0, [head + unplaced], []
    serving = share - short
    gate, why = _gate(c, need, policy, serving=serving, batch_rps=batch_rps, active=before > 0)
    if not gate:
        return split, 0, [f"{head}, {short} of them Pending; {why}: no overflow"], []
    cap_left = c.max_on_demand if c.kind == "Batch" and c.max_on_demand is not None else math.inf
    remaining = short
    for name in rest:
        take = remaining
        if policy.pool(name).capacity_type == "OnDemand" and c.kind == "Batch":
            take = int(min(take, cap_left))
            cap_left -= take
        if take:
            split[name] = split.get(name, 0) + take
            ledger.ask(name, take)
        remaining -= take
    moved = short - remaining
    where = " + ".join(f"{n} {split[n]}" for n in rest if split.get(n))
    state = "until its pods are Ready" if before > 0 else "its pods are Pending"
    line = f"{head}, {short} short ({state}); {why}: {moved} overflow to {where or 'nothing'}"
    lines, trouble = [line], []
    if moved:
        trouble.append((names.REASON_OVERFLOW, f"class {c.name}: {moved} replica(s) on {where} while"
                        f" {first} cannot place them ({why})"))
    if remaining and c.kind == "Batch":
        # Judged on what will serve: the first pool's scheduled pods (warming ones too) and the
        # overflow. The hysteresis above counts warming spot pods as short only to keep the
        # overflow until they are Ready; they are not missing from the deadline's arithmetic.
        placed = share - pending
        met, after = _finishes(need, c, placed + moved, batch_rps)
        cap = f"maxOnDemandReplicas {c.max_on_demand}"
        lines.append(f"placement {c.name}: {cap} reached, {remaining} not placed; {after}")
        if not met:
            trouble.append((names.REASON_OVERFLOW_CAPPED, (
                f"class {c.name}: the {c.deadline_seconds or 0:g} s deadline cannot be met: {first}"
                f" places {placed} of {share}, on-demand overflow is capped at {cap}, and {after};"
                f" raise {cap}, add {first} capacity, or lengthen deadlineSeconds")))
    return split, moved, lines, trouble


def _gate(c: ClassPlacement, need: ClassNeed | None, policy: PlacementPolicy, *, serving: int,
          batch_rps: float, active: bool) -> tuple[bool, str]:
    """Whether a class may overflow now, and why. Interactive: always (its SLO has no slack).
    Batch: to Spot pools always; to OnDemand only while its deadline is at risk at what its
    first pool serves (or while an overflow is already active: released only by Ready pods)."""
    if c.kind != "Batch" or all(policy.pool(n).capacity_type == "Spot" for n in c.pools[1:]):
        return True, "first pool exhausted"
    if active:
        return True, "overflow held until the first pool serves again"
    met, why = _finishes(need, c, serving, batch_rps)
    return (not met), (f"deadline at risk: {why}" if not met else f"deadline holds: {why}")


def _finishes(need: ClassNeed | None, c: ClassPlacement, serving: int, rps: float) -> tuple[bool, str]:
    """Whether the class's queued work completes before its deadline on `serving` replicas of
    `rps` each: backlog ÷ (serving × rps − arrivals) ≤ time left to the oldest request's deadline."""
    if need is None or need.backlog is None:
        return True, "no backlog data"
    backlog, arriving = max(need.backlog, 0.0), max(need.rate or 0.0, 0.0)
    if backlog <= 0:
        return True, "nothing queued"
    left = (c.deadline_seconds or 0.0) - (need.oldest_seconds or 0.0)
    drain = serving * rps - arriving
    if drain <= 0:
        return False, (f"{serving} replica(s) × {rps:.1f} rps do not outpace {arriving:.1f} rps"
                       f" arriving, {backlog:.0f} queued")
    finish = backlog / drain
    text = (f"{backlog:.0f} queued finish in {finish:.0f} s on {serving} replica(s) × {rps:.1f} rps,"
            f" {left:.0f} s left")
    return finish <= left and not need.at_risk, text


def costs(policy: PlacementPolicy, pods: Mapping[str, PoolPods],
          by_class: Mapping[str, Mapping[str, int]]) -> tuple[dict[str, float], dict[str, float]]:
    """Per pool: price × scheduled pods (Ready + warming). Per class: each pool's scheduled pods
    given to the classes asking there, in class order (the Interactive class first)."""
    pool_cost: dict[str, float] = {}
    class_cost = dict.fromkeys(by_class, 0.0)
    for p in policy.pools:
        counts = _counts(pods, p.name)
        scheduled = counts.ready + counts.warming
        pool_cost[p.name] = round(scheduled * p.price_per_hour, 6)
        for name, split in by_class.items():
            given = min(scheduled, split.get(p.name, 0))
            scheduled -= given
            class_cost[name] = round(class_cost[name] + given * p.price_per_hour, 6)
    return pool_cost, class_cost


def _cost_line(policy: PlacementPolicy, pods: Mapping[str, PoolPods], pool_cost: Mapping[str, float]) -> str:
    parts = [f"{_counts(pods, p.name).ready + _counts(pods, p.name).warming} × {p.name}"
             f" {p.price_per_hour:g}" for p in policy.pools]
    return f"cost: {' + '.join(parts)} = {sum(pool_cost.values()):.2f} {policy.currency}/h"


def pool_problems(policy: PlacementPolicy, pods: Mapping[str, PoolPods]) -> list[tuple[str, str]]:
    """A pool with Pending pods, with the scheduler's message; when no node matches the pool's
    selector (Pending forever, not spot taken back) the message says what to check."""
    out = []
    for p in policy.pools:
        pp = pods.get(p.name)
        if pp is None or not pp.counts.pending:
            continue
        why = pp.pending_reason or "unschedulable"
        hint = ""
        # "didn't match" alone: no node of the pool is there at all. Beside "Insufficient
        # nvidia.com/gpu" it is only the other pools' nodes, and the pool is merely full.
        if "didn't match" in why and "Insufficient" not in why:
            hint = ("; no node matches the pool's nodeSelector and the shard's region: check"
                    f" spec.placement.pools[{p.name}].nodeSelector and its tolerations")
        out.append((names.REASON_POOL_PENDING,
                    f"pool {p.name} ({p.capacity_type}): {pp.counts.pending} pod(s) Pending: {why}{hint}"))
    return out


def placement_problems(policy: PlacementPolicy) -> list[tuple[str, str]]:
    """What the schema cannot say: a Spot pool priced above an OnDemand one (batch would be sent
    to the dearer pool first, and the cost figures would call it a saving)."""
    on_demand = [p for p in policy.pools if p.capacity_type == "OnDemand"]
    out = []
    for spot in (p for p in policy.pools if p.capacity_type == "Spot"):
        dearer = [p for p in on_demand if spot.price_per_hour > p.price_per_hour]
        if dearer:
            out.append((names.REASON_PLACEMENT_INVALID, (
                f"Spot pool {spot.name} costs {spot.price_per_hour:g} {policy.currency}/h, above OnDemand"
                f" pool {dearer[0].name} at {dearer[0].price_per_hour:g}: check pricePerHour (batch goes"
                " to spot first)")))
    return out


def _pods(c: PodCounts) -> int:
    return c.ready + c.warming + c.pending


def _counts(pods: Mapping[str, PoolPods], pool: str) -> PodCounts:
    pp = pods.get(pool)
    return pp.counts if pp is not None else PodCounts(asked=0)
