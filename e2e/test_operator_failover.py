"""Regional failover on a real API server: a region loses its GPU nodes, its language's new streams
are routed to the other region's shard within a tick, that shard scales for the extra load, and
the language goes home once the region serves again (after the hold).

Two shards serve en: eu-en (eu-west) and us-en-es (us-east), behind the real Gateway API CRDs.
"Killing" eu-west is what an outage does to its workers: its GPU nodes are cordoned and eu-en's
pods deleted at once, so the ReplicaSet's replacements stay Pending (no GPU left in the region).
The load is the traffic server's: a caller routed to us-en-es shows up in its request rate, so
the scenario moves eu-en's 20 req/s onto us-en-es once the route says so (kwok pods serve nothing).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from e2e.helpers import FIGURES, condition, eventually
from e2e.operator_process import e2e_spec, events, shard_status, speechcluster
from e2e.traffic import Telemetry
from voxscale import names
from voxscale.render.failover import FAILBACK_HOLD_SECONDS
from voxscale_lab.devcluster import Kubectl

TAG = "failover"
MODEL = "asr-standin"
HOME, OTHER = "eu-en", "us-en-es"
DOWN_REGION = "eu-west"
# 20 req/s per shard at 14 per replica (20 × 0.7): us-en-es runs its minReplicas 2; with eu-en's
# 20 on top it needs ⌈40 / 14⌉ = 3.
RATE = 20.0
NODES = f"{names.TOPOLOGY_REGION}={DOWN_REGION},{names.GPU_PRODUCT_LABEL}"


def _spec(tel: Telemetry, ns: str) -> dict[str, Any]:
    doc = e2e_spec(ns, tel.url, shards=[HOME, OTHER])
    doc["spec"]["routing"] = {"parentRefs": [{"name": "speech-gateway", "sectionName": "grpc"}]}
    return doc


def _route(kubectl: Kubectl, ns: str) -> dict[str, Any] | None:
    out = kubectl.run("get", f"grpcroutes.{names.GATEWAY_API_GROUP}", "asr", "-n", ns, "-o", "json",
                      check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


def _en_eu_west(kubectl: Kubectl, ns: str) -> str | None:
    """The Service the applied route sends (x-language en, x-region eu-west) to."""
    route, wanted = _route(kubectl, ns), {"x-language": "en", "x-region": DOWN_REGION}
    for rule in (route or {}).get("spec", {}).get("rules", []):
        for match in rule["matches"]:
            if {h["name"]: h["value"] for h in match["headers"]} == wanted:
                return str(rule["backendRefs"][0]["name"])
    return None


def _ready(kubectl: Kubectl, ns: str, shard: str) -> int:
    return int((shard_status(speechcluster(kubectl, ns, "asr"), shard) or {}).get("readyReplicas", 0))


@contextmanager
def _cordoned(kubectl: Kubectl) -> Iterator[None]:
    """eu-west's GPU nodes unschedulable for the block, and schedulable again whatever happens."""
    kubectl.run("cordon", "-l", NODES)
    try:
        yield
    finally:
        kubectl.run("uncordon", "-l", NODES, check=False)


def test_a_region_that_loses_its_gpus_fails_over_its_language_and_comes_back_after_the_hold(
    kubectl: Kubectl, tel: Telemetry, ns: str, gateway_api_crds: dict[str, Any],
) -> None:
    for shard in (HOME, OTHER):
        tel.traffic.set(ns, "asr", shard, model=MODEL, rate=RATE)
    kubectl.apply(_spec(tel, ns))
    home_svc, other_svc = (names.shard_resource_name("asr", s) for s in (HOME, OTHER))
    eventually("both shards Ready and en/eu-west routed home", lambda: _ready(kubectl, ns, HOME) >= 1
               and _ready(kubectl, ns, OTHER) >= 2 and _en_eu_west(kubectl, ns) == home_svc, timeout=60)
    before = _ready(kubectl, ns, OTHER)
    selector = ",".join(f"{k}={v}" for k, v in names.selector_labels("asr", HOME).items())

    with _cordoned(kubectl):
        killed = time.monotonic()
        kubectl.run("delete", "pods", "-n", ns, "-l", selector, "--grace-period=0", "--force", "--wait=false")
        eventually("en/eu-west routed to us-en-es", lambda: _en_eu_west(kubectl, ns) == other_svc,
                   timeout=60, interval=0.2)
        routed = time.monotonic() - killed
        # The callers now reach us-en-es: its rate carries eu-en's load, and eu-en gets none.
        tel.traffic.set(ns, "asr", OTHER, model=MODEL, rate=2 * RATE)
        tel.traffic.set(ns, "asr", HOME, model=MODEL, rate=0.0)
        obj = speechcluster(kubectl, ns, "asr")
        [failover] = obj["status"]["routing"]["failovers"]
        assert (failover["from"], failover["to"], failover["languages"]) == (HOME, OTHER, ["en"])
        assert (condition(obj, names.CONDITION_FAILED_OVER) or {}).get("status") == "True"
        [said] = events(kubectl, ns, names.REASON_FAILED_OVER)
        print(f"\nfailover: {said['message']}")
        eventually("us-en-es with 3 Ready", lambda: _ready(kubectl, ns, OTHER) >= 3, timeout=60)
        scaled = time.monotonic() - killed
        interval = _spec(tel, ns)["spec"]["scaling"]["intervalSeconds"]
        print(f"failover: eu-west's GPU nodes cordoned and eu-en's pods killed; (en, eu-west) routed to"
              f" {OTHER} after {routed:.1f} s (tick {interval} s); {OTHER} Ready {before} -> 3 for the"
              f" extra load after {scaled:.1f} s")
        FIGURES["failover: kill -> (en, eu-west) routed to the other region"] = f"{routed:.1f} s"
        FIGURES["failover: kill -> receiving shard scaled for the extra load"] = f"{scaled:.1f} s"
        # Nothing dropped: eu-en's rule is gone only because all its languages moved.
        assert _en_eu_west(kubectl, ns) == other_svc

    restored = time.monotonic()
    eventually("eu-en Ready again", lambda: _ready(kubectl, ns, HOME) >= 1, timeout=60)
    ready_again = time.monotonic() - restored
    eventually("en/eu-west routed home", lambda: _en_eu_west(kubectl, ns) == home_svc, timeout=90,
               interval=0.2)
    back = time.monotonic() - restored
    tel.traffic.set(ns, "asr", HOME, model=MODEL, rate=RATE)
    tel.traffic.set(ns, "asr", OTHER, model=MODEL, rate=RATE)
    obj = speechcluster(kubectl, ns, "asr")
    assert obj["status"]["routing"]["failovers"] == []
    assert (condition(obj, names.CONDITION_FAILED_OVER) or {}).get("reason") == names.REASON_AT_HOME
    [came_back] = events(kubectl, ns, names.REASON_FAILED_BACK)
    print(f"failover: {came_back['message']}")
    print(f"failover: eu-west uncordoned; eu-en Ready after {ready_again:.1f} s, (en, eu-west) routed home"
          f" after {back:.1f} s (hold {FAILBACK_HOLD_SECONDS:.0f} s)")
    FIGURES["failover: region back -> language routed home (incl. hold)"] = f"{back:.1f} s"
    assert len(events(kubectl, ns, names.REASON_FAILED_OVER)) == 1
