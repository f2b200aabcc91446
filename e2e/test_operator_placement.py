"""Cost-aware placement on a real API server: batch on spot, spot taken back, overflow to on-demand.

Two priced kwok pools in eu-west: 8 spot GPU nodes (tainted, 0.40/h) and 8 on-demand ones
(1.20/h). One shard, two classes fed through the traffic server's voxscale_class_* series (the
gateway's and the job queue's, docs/classes.md): `live` (Interactive, on [on-demand]) at 24 req/s
→ 2 replicas at 20 × 0.7; `offline` (Batch, [spot, on-demand], maxOnDemandReplicas 4) with
400,000 queued and a 3,600 s deadline → 400,000 / ~3,590 s = 111 req/s at 20 per replica → 6.

Then 6 of the 8 spot nodes disappear (their pods with them, as a spot reclaim does): 2 spot pods
can run, 2 × 20 req/s would need 10,000 s, so the deadline is at risk and the 4 Pending spot
replicas go to on-demand (the cap); live stays at 2 on on-demand throughout. When the spot nodes
come back, the spot pods turn Ready and the on-demand overflow is released. Last, the same load
with every class on on-demand: the all-on-demand cost of the same need.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.helpers import FIGURES, condition
from e2e.operator_process import e2e_spec, events, speechcluster
from e2e.pools import PoolSplit, class_pools, pool_split, priced_nodes, reclaim_spot, split_text, until_status
from e2e.traffic import Telemetry
from voxscale import names
from voxscale_lab.devcluster import Kubectl
from voxscale_lab.devcluster.topology import PricedPool

TAG = "placement"
MODEL = "asr-standin"
SHARD = "eu-en"
SPOT = PricedPool("pl-spot", 8, "eu-west", "eu-west-a", spot=True, price_per_hour=0.40)
ON_DEMAND = PricedPool("pl-on-demand", 8, "eu-west", "eu-west-b", price_per_hour=1.20)
INTERACTIVE_RPS, BACKLOG = 24.0, 400_000  # 24 / 14 = 1.7 → 2: off a boundary, so rate noise stays at 2
LIVE = {"name": "live", "kind": "Interactive", "priority": 1, "pools": ["on-demand"]}
OFFLINE = {"name": "offline", "kind": "Batch", "priority": 2, "deadlineSeconds": 3600,
           "pools": ["spot", "on-demand"], "maxOnDemandReplicas": 4}


@pytest.fixture(scope="module")
def pools(kubectl: Kubectl) -> Iterator[None]:
    with priced_nodes(kubectl, SPOT, ON_DEMAND):
        yield


def _spec(tel: Telemetry, ns: str, *, all_on_demand: bool = False) -> dict[str, Any]:
    doc = e2e_spec(ns, tel.url, shards=[SHARD])
    spec = doc["spec"]
    spec["placement"] = {"pools": [{**ON_DEMAND.placement_pool(), "name": "on-demand"},
                                   {**SPOT.placement_pool(), "name": "spot"}]}
    offline = {k: v for k, v in OFFLINE.items() if k != "maxOnDemandReplicas"} if all_on_demand else OFFLINE
    spec["classes"] = [LIVE, {**offline, "pools": ["on-demand"]} if all_on_demand else offline]
    spec["scaling"]["scaleUp"] = {"periodSeconds": 2, "maxPods": 8}
    return doc


def _until(kubectl: Kubectl, ns: str, want: PoolSplit, what: str) -> dict[str, Any]:
    """The shard's status once its pools are `want` (replicas, ready, pending); the last seen in the error."""
    return until_status(kubectl, ns, lambda s: pool_split(s) == want, what, cluster="asr", shard=SHARD,
                        timeout=90)


def test_spot_reclaim_overflows_batch_to_on_demand_within_its_cap_and_back(
    kubectl: Kubectl, tel: Telemetry, ns: str, pools: None,
) -> None:
    tel.traffic.set(ns, "asr", SHARD, model=MODEL, rate=INTERACTIVE_RPS, latency_ms=100.0)
    tel.traffic.set_class(ns, "asr", SHARD, "live", model=MODEL, rate=INTERACTIVE_RPS)
    tel.traffic.set_class(ns, "asr", SHARD, "offline", model=MODEL, rate=0.0, backlog=BACKLOG,
                          oldest_seconds=0)
    kubectl.apply(_spec(tel, ns))

    steady = {"on-demand": (2, 2, 0), "spot": (6, 6, 0)}
    before = _until(kubectl, ns, steady, "live 2 on on-demand, offline 6 on spot, all Ready")
    assert class_pools(before, "live") == {"on-demand": 2}
    assert class_pools(before, "offline") == {"spot": 6}

    reclaimed = time.monotonic()
    gone = reclaim_spot(kubectl, ns, SPOT, 6)
    overflowed = {"on-demand": (6, 6, 0), "spot": (6, 2, 4)}
    during = _until(kubectl, ns, overflowed, "offline's 4 Pending spot replicas on on-demand, Ready")
    FIGURES["placement: spot reclaim -> overflow Ready"] = f"{time.monotonic() - reclaimed:.1f} s"
    assert class_pools(during, "live") == {"on-demand": 2}, "interactive stays on on-demand at its need"
    assert class_pools(during, "offline") == {"spot": 6, "on-demand": 4}
    assert during["scalerState"]["overflow"] == {"offline": 4}
    overflow_events = events(kubectl, ns, names.REASON_OVERFLOW)
    assert overflow_events and "deadline at risk" in overflow_events[-1]["message"]
    degraded = condition(speechcluster(kubectl, ns, "asr"), names.CONDITION_DEGRADED) or {}
    assert degraded.get("status") == "True"
    assert not events(kubectl, ns, names.REASON_OVERFLOW_CAPPED), "the cap covers the shortfall"

    kubectl.apply(*[n for n in SPOT.manifests() if n["metadata"]["name"] in gone])
    back = time.monotonic()
    after = _until(kubectl, ns, steady, "spot back: overflow released, live 2 and offline 6 on spot")
    FIGURES["placement: spot back -> on-demand overflow released"] = f"{time.monotonic() - back:.1f} s"
    assert not after["scalerState"].get("overflow")

    kubectl.apply(_spec(tel, ns, all_on_demand=True))
    all_od = {"on-demand": (8, 8, 0), "spot": (0, 0, 0)}
    on_demand_only = _until(kubectl, ns, all_od, "the same load all on on-demand")

    for label, s in (("spot available", before), ("6 of 8 spot nodes reclaimed", during),
                     ("spot back", after), ("all on-demand, same load", on_demand_only)):
        FIGURES[f"placement: {label}: cost per hour"] = f"{s['costPerHour']:.2f} USD/h ({split_text(s)})"
    saving = 1 - before["costPerHour"] / on_demand_only["costPerHour"]
    FIGURES["placement: spot-first vs all-on-demand, same load"] = (
        f"{before['costPerHour']:.2f} vs {on_demand_only['costPerHour']:.2f} USD/h ({saving:.0%} less)")
