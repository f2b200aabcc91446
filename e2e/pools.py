"""Priced kwok pools in e2e scenarios: their nodes, a shard's per-pool status, a spot reclaim, cost sampled.

The placement and spot-reclaim modules each run a shard over a spot and an on-demand pool
(voxscale_lab.devcluster.topology.PricedPool) and wait on the same things: the shard's pools at a
given (replicas, ready, pending), then spot nodes taken away with their pods.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from e2e.helpers import condition, eventually
from e2e.operator_process import shard_status, speechcluster
from voxscale import names
from voxscale_lab.devcluster import Kubectl
from voxscale_lab.devcluster.topology import PricedPool

PoolSplit = dict[str, tuple[int, int, int]]
"""pool -> (replicas, ready, pending)."""


@contextmanager
def priced_nodes(kubectl: Kubectl, *pools: PricedPool) -> Iterator[None]:
    """The pools' kwok nodes, all Ready, for the block; deleted after, and waited for: untainted GPU
    nodes of a region left behind would take later modules' pods."""
    kubectl.apply(*(m for pool in pools for m in pool.manifests()))
    try:
        want = sum(pool.count for pool in pools)
        eventually("priced pool nodes Ready", lambda: _ready_nodes(kubectl, pools) == want, timeout=90)
        yield
    finally:
        nodes = [n for pool in pools for n in pool.node_names()]
        kubectl.run("delete", "nodes", *nodes, "--ignore-not-found", "--timeout=60s", check=False)


def _ready_nodes(kubectl: Kubectl, pools: tuple[PricedPool, ...]) -> int:
    mine = {n for pool in pools for n in pool.node_names()}
    return sum(1 for n in kubectl.json("get", "nodes")["items"] if n["metadata"]["name"] in mine and any(
        c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", [])))


def pool_split(s: dict[str, Any]) -> PoolSplit:
    """pool -> (replicas, ready, pending) as a shard's status says."""
    return {p["name"]: (p.get("replicas", 0), p.get("readyReplicas", 0), p.get("pendingReplicas", 0))
            for p in s.get("pools", [])}


def split_text(s: dict[str, Any]) -> str:
    """The shard's pools as text: `on-demand 2/2 Ready, spot 6/2 Ready (4 Pending)`."""
    return ", ".join(f"{n} {r}/{rd} Ready" + (f" ({p} Pending)" if p else "")
                     for n, (r, rd, p) in pool_split(s).items())


def class_pools(s: dict[str, Any], name: str) -> dict[str, int]:
    """pool -> replicas of class `name` as a shard's status says."""
    return next((c.get("pools") or {} for c in s.get("classes", []) if c["name"] == name), {})


def until_status(kubectl: Kubectl, ns: str, done: Callable[[dict[str, Any]], object], what: str, *,
                 cluster: str, shard: str, timeout: float) -> dict[str, Any]:
    """The shard's status once `done(status)`; the last seen pools and reasons in the error."""
    seen: list[dict[str, Any]] = [{}]

    def check() -> bool:
        seen[0] = shard_status(speechcluster(kubectl, ns, cluster), shard) or {}
        return bool(done(seen[0]))

    try:
        eventually(what, check, timeout=timeout)
    except AssertionError as err:
        last = seen[0]
        raise AssertionError(f"{err}; pools {pool_split(last)}, reasons {last.get('reasons')}") from None
    return seen[0]


def reclaim_spot(kubectl: Kubectl, ns: str, spot: PricedPool, count: int) -> list[str]:
    """Take `count` spot nodes away, those running the shard's pods first, and their pods with them."""
    pods = kubectl.json("get", "pods", "-n", ns, "-l", f"{names.LABEL_POOL}=spot")["items"]
    busy = sorted({p["spec"].get("nodeName") for p in pods if p["spec"].get("nodeName")})
    gone = (busy + [n for n in spot.node_names() if n not in busy])[:count]
    kubectl.run("delete", "nodes", *gone, "--wait=false")
    doomed = [p["metadata"]["name"] for p in pods if p["spec"].get("nodeName") in gone]
    if doomed:
        kubectl.run("delete", "pods", "-n", ns, *doomed, "--grace-period=0", "--force", check=False)
    return gone


@dataclass
class Sample:
    at: float
    cost: float | None
    pools: PoolSplit
    degraded: tuple[str, str] | None


@dataclass
class Sampler:
    """The shard's status once a second: cost per hour, pools, the Degraded condition."""

    kubectl: Kubectl
    ns: str
    cluster: str
    shard: str
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def poll(self) -> None:
        while not self.stop.is_set():
            try:
                obj = speechcluster(self.kubectl, self.ns, self.cluster)
            except Exception:  # an API hiccup: the next read counts
                obj = {}
            s = shard_status(obj, self.shard) or {}
            d = condition(obj, names.CONDITION_DEGRADED) or {}
            degraded = (d.get("reason", ""), d.get("message", "")) if d.get("status") == "True" else None
            if s:
                self.samples.append(Sample(time.time(), s.get("costPerHour"), pool_split(s), degraded))
            self.stop.wait(1.0)

    def changes(self) -> list[tuple[float, float, str]]:
        """(time, cost, pools) at each change of either, from the first sample on."""
        out: list[tuple[float, float, str]] = []
        for s in self.samples:
            pools = " ".join(f"{n} {r}/{rd}/{p}" for n, (r, rd, p) in s.pools.items())
            if not out or (out[-1][1], out[-1][2]) != (s.cost or 0.0, pools):
                out.append((s.at, s.cost or 0.0, pools))
        return out

    def mean_cost(self, start: float, end: float) -> float:
        """Time-weighted mean of costPerHour over [start, end] (each sample holds until the next)."""
        pts = [(s.at, s.cost or 0.0) for s in self.samples if s.cost is not None]
        total = 0.0
        for (t0, c), (t1, _) in zip(pts, [*pts[1:], (end, 0.0)], strict=True):
            lo, hi = max(t0, start), min(t1, end)
            total += c * max(0.0, hi - lo)
        return total / (end - start)
