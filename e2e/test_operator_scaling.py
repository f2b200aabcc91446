"""The operator scaling under load on a real API server: burst, scale-in, lost metrics, kill, delete."""

from __future__ import annotations

from typing import Any

from e2e.helpers import FIGURES, condition, eventually
from e2e.operator_process import (
    STABILIZATION_SECONDS,
    OperatorProcess,
    e2e_spec,
    events,
    shard_status,
    speechcluster,
)
from e2e.traffic import Telemetry
from voxscale import names
from voxscale_lab.devcluster import Kubectl

TAG = "scaling"
MODEL = "asr-standin"
SHARD = "eu-en"
DEPLOYMENT = names.shard_resource_name("asr", SHARD)


def _shard(kubectl: Kubectl, ns: str) -> dict[str, Any]:
    return shard_status(speechcluster(kubectl, ns, "asr"), SHARD) or {}


def _deployment(kubectl: Kubectl, ns: str) -> dict[str, Any]:
    dep: dict[str, Any] = kubectl.json("get", "deployment", DEPLOYMENT, "-n", ns)
    return dep


def _start(kubectl: Kubectl, tel: Telemetry, ns: str, *, ready: int, latency_ms: float = 100.0,
           **shard: Any) -> None:
    """One shard at `ready` Ready replicas (its floor), low steady load, mode stable."""
    tel.traffic.set(ns, "asr", SHARD, model=MODEL, rate=5.0, latency_ms=latency_ms)
    doc = e2e_spec(ns, tel.url, shards=[SHARD])
    doc["spec"]["shards"][0].update({"minReplicas": ready, **shard})
    kubectl.apply(doc)

    def settled() -> bool:
        s = _shard(kubectl, ns)
        return (s.get("replicas"), s.get("readyReplicas"), s.get("mode")) == (ready, ready, "stable")

    eventually(f"{SHARD} stable at {ready} Ready", settled, timeout=90)


def test_a_burst_scales_out_on_the_latency_breach_then_in_only_after_the_window_never_below_min(
    kubectl: Kubectl, tel: Telemetry, ns: str,
) -> None:
    _start(kubectl, tel, ns, ready=1)
    # p95 at 3× the SLO with 1 Ready pod: the reactive term asks for 3, a panic (≥ 2× ready).
    tel.traffic.set(ns, "asr", SHARD, model=MODEL, latency_ms=1500.0)
    eventually("scale-out on the breach", lambda: _shard(kubectl, ns).get("replicas", 0) >= 3, timeout=30)
    up = events(kubectl, ns, names.REASON_SCALED_UP)
    assert up and "reactive: latency 1500 ms" in up[-1]["message"]
    eventually("the new capacity Ready", lambda: _shard(kubectl, ns).get("readyReplicas", 0) >= 3, timeout=60)
    peak = _shard(kubectl, ns)["replicas"]
    tel.traffic.set(ns, "asr", SHARD, model=MODEL, latency_ms=100.0)
    calm = eventually("the latency back under the SLO",
                      lambda: (_shard(kubectl, ns).get("observedLatencyMs") or 1e9) < 500, timeout=30)
    assert calm
    # Scale-in waits the stabilization window (20 s) after the last high recommendation.
    down = eventually("scale-in back to the floor", lambda: _down_to(kubectl, ns, 1),
                      timeout=STABILIZATION_SECONDS + 60)
    first_down = min(e["firstTimestamp"] or e["eventTime"] for e in down)
    last_up = max(e["firstTimestamp"] or e["eventTime"] for e in events(kubectl, ns, names.REASON_SCALED_UP))
    FIGURES["burst: peak replicas, first ScaledUp → first ScaledDown"] = f"{peak}, {last_up} → {first_down}"
    steps = [e["message"] for e in down]
    assert all("-> 0" not in m for m in steps)  # never below min (1)
    assert _deployment(kubectl, ns)["spec"]["replicas"] == 1


def _down_to(kubectl: Kubectl, ns: str, floor: int) -> list[dict[str, Any]] | None:
    s = _shard(kubectl, ns)
    down = events(kubectl, ns, names.REASON_SCALED_DOWN)
    return down if s.get("replicas") == floor and down else None


def test_prometheus_gone_holds_then_falls_back_never_scales_down_and_recovers(
    kubectl: Kubectl, tel: Telemetry, ns: str,
) -> None:
    _start(kubectl, tel, ns, ready=3)
    kubectl.run("patch", names.PLURAL, "asr", "-n", ns, "--type=merge", "-p",
                '{"spec": {"shards": [{"name": "eu-en", "region": "eu-west", "languages": ["en"],'
                ' "zones": ["eu-west-a", "eu-west-b"], "minReplicas": 1}]}}')
    # The floor is now 1 but the load is steady: the window keeps 3 for 20 s, so metrics vanish
    # while 3 are held; they must stay 3 however long Prometheus is gone.
    tel.stop_prometheus()

    def metrics_unavailable() -> dict[str, Any] | None:
        c = condition(speechcluster(kubectl, ns, "asr"), names.CONDITION_METRICS_AVAILABLE)
        return c if c and c["status"] == "False" else None

    gone = eventually("MetricsAvailable=False", metrics_unavailable, timeout=30)
    assert gone["reason"] and "eu-en" in gone["message"]
    held = eventually("the hold step", lambda: _shard(kubectl, ns).get("mode") in ("hold", "fallback"),
                      timeout=30)
    assert held
    fallback = eventually("the fallback step", lambda: _fallback(kubectl, ns), timeout=30)
    assert fallback["replicas"] == 3  # max(held 3, fallback floor 2): never down
    degraded = condition(speechcluster(kubectl, ns, "asr"), names.CONDITION_DEGRADED)
    assert degraded is not None and degraded["reason"] == names.REASON_FALLBACK
    # Well past the stabilization window, still 3: vanished metrics are no evidence of less load.
    eventually("a full window in fallback", lambda: _fallback_for(kubectl, ns, STABILIZATION_SECONDS + 5),
               timeout=STABILIZATION_SECONDS + 40, interval=1.0)
    assert _deployment(kubectl, ns)["spec"]["replicas"] == 3
    assert not events(kubectl, ns, names.REASON_SCALED_DOWN)
    tel.start_prometheus()

    def recovered() -> dict[str, Any] | None:
        c = condition(speechcluster(kubectl, ns, "asr"), names.CONDITION_METRICS_AVAILABLE)
        s = _shard(kubectl, ns)
        return s if c and c["status"] == "True" and s.get("mode") == "stable" else None

    eventually("metrics back, mode stable", recovered, timeout=60)


def _fallback(kubectl: Kubectl, ns: str) -> dict[str, Any] | None:
    s = _shard(kubectl, ns)
    return s if s.get("mode") == "fallback" else None


def _fallback_for(kubectl: Kubectl, ns: str, seconds: float) -> bool:
    s = _shard(kubectl, ns)
    state = s.get("scalerState", {})
    return s.get("mode") == "fallback" and state.get("failures", 0) * 2 >= seconds


def _children(kubectl: Kubectl, ns: str) -> dict[str, list[str]]:
    """Kind -> UIDs of every object labelled as this cluster's, so duplicates would show."""
    found: dict[str, list[str]] = {}
    selector = f"{names.LABEL_CLUSTER}=asr"
    for kind in ("deployments", "services", "configmaps", "poddisruptionbudgets"):
        items = kubectl.json("get", kind, "-n", ns, "-l", selector)["items"]
        found[kind] = sorted(i["metadata"]["uid"] for i in items)
    return found


def _burst_begun(kubectl: Kubectl, ns: str) -> dict[str, Any] | None:
    dep = _deployment(kubectl, ns)
    status = dep.get("status", {})
    scaling = dep["spec"]["replicas"] >= 3 and status.get("readyReplicas", 0) < dep["spec"]["replicas"]
    return dep if scaling else None


def _burst_stored(kubectl: Kubectl, ns: str) -> dict[str, Any] | None:
    if _burst_begun(kubectl, ns) is None:
        return None
    state = _shard(kubectl, ns).get("scalerState", {})
    return state if state.get("panicSince") is not None else None


def test_an_operator_killed_mid_scale_resumes_from_stored_state_without_duplicates_or_a_dip(
    kubectl: Kubectl, tel: Telemetry, op: OperatorProcess, ns: str,
) -> None:
    _start(kubectl, tel, ns, ready=2)
    before = _children(kubectl, ns)
    tel.traffic.set(ns, "asr", SHARD, model=MODEL, latency_ms=1500.0)  # 3× SLO: asks for 6
    # Kill once the burst is both under way and stored: the Deployment is patched before the
    # status, so a kill between the two would leave nothing stored to resume from.
    eventually("a scale-out under way and stored", lambda: _burst_stored(kubectl, ns),
               timeout=30, interval=0.2)
    assert op.kill() == -9
    stored = _shard(kubectl, ns)
    window = stored["scalerState"]["recommendations"]
    ready_at_kill = stored["readyReplicas"]
    asked = _deployment(kubectl, ns)["spec"]["replicas"]
    op.start()
    ready_seen: list[int] = []

    def resumed() -> dict[str, Any] | None:
        s = _shard(kubectl, ns)
        ready_seen.append(int(_deployment(kubectl, ns).get("status", {}).get("readyReplicas", 0)))
        newer = [r for r in s["scalerState"]["recommendations"] if r["at"] > window[-1]["at"]]
        return s if newer else None

    # The first tick after the restart carries on the stored decision: the burst that began
    # before the kill is the same burst (panicSince kept), the scale-up clock is not reset.
    after = eventually("the restarted operator ticking", resumed, timeout=60, interval=0.2)
    assert stored["scalerState"]["panicSince"] is not None
    assert after["scalerState"]["panicSince"] == stored["scalerState"]["panicSince"]
    assert after["scalerState"]["lastScaleUpAt"] >= stored["scalerState"]["lastScaleUpAt"]
    assert after["replicas"] >= asked
    tel.traffic.set(ns, "asr", SHARD, model=MODEL, latency_ms=100.0)
    eventually("the asked-for capacity Ready", lambda: _ready_at_least(kubectl, ns, asked, ready_seen),
               timeout=60)
    assert min(ready_seen) >= ready_at_kill
    assert _children(kubectl, ns) == before
    assert op.log_since(0).count("===== start #") == op.starts
    FIGURES["kill mid-scale: replicas asked before the kill → after the restart"] = (
        f"{asked} → {after['replicas']}")


def _ready_at_least(kubectl: Kubectl, ns: str, count: int, seen: list[int]) -> bool:
    seen.append(int(_deployment(kubectl, ns).get("status", {}).get("readyReplicas", 0)))
    return seen[-1] >= count


def test_a_speechcluster_deleted_mid_scale_takes_its_children_and_nothing_comes_back(
    kubectl: Kubectl, tel: Telemetry, ns: str,
) -> None:
    _start(kubectl, tel, ns, ready=1)
    tel.traffic.set(ns, "asr", SHARD, model=MODEL, latency_ms=1500.0)
    eventually("a scale-out under way", lambda: _burst_begun(kubectl, ns), timeout=30, interval=0.2)
    kubectl.run("delete", names.PLURAL, "asr", "-n", ns, "--wait=false")

    def all_gone() -> bool:
        left = kubectl.json("get", f"{names.PLURAL},deployments,services,configmaps,poddisruptionbudgets",
                            "-n", ns, "-l", f"{names.LABEL_CLUSTER}=asr")["items"]
        spc = kubectl.run("get", names.PLURAL, "asr", "-n", ns, check=False).returncode
        return not left and spc != 0

    eventually("the SpeechCluster (finalizer released) and its children gone", all_gone, timeout=60)
    # Several intervals later, still nothing: no tick or re-apply recreated a child.
    eventually("three more intervals", lambda: _quiet_for(kubectl, ns, 6.0), timeout=30)
    assert all_gone()


def _quiet_for(kubectl: Kubectl, ns: str, seconds: float) -> bool:
    import time
    time.sleep(seconds)
    return not kubectl.json("get", "deployments", "-n", ns)["items"]


def test_deleting_the_namespace_of_a_speechcluster_finishes(
    kubectl: Kubectl, tel: Telemetry, ns: str,
) -> None:
    _start(kubectl, tel, ns, ready=1)
    kubectl.run("delete", "namespace", ns, "--wait=false")
    gone = eventually(f"namespace {ns} gone",
                      lambda: kubectl.run("get", "namespace", ns, check=False).returncode != 0, timeout=90)
    assert gone
