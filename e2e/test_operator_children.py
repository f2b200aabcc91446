"""The operator on a real API server: children, status columns, drift, HPA, GPU shortage, bad spec."""

from __future__ import annotations

import json
from typing import Any

from e2e.helpers import FIGURES, condition, eventually
from e2e.operator_process import (
    INTERVAL_SECONDS,
    OperatorProcess,
    e2e_spec,
    events,
    shard_status,
    speechcluster,
)
from e2e.traffic import Telemetry
from voxscale import names
from voxscale_lab.devcluster import Kubectl

TAG = "children"
MODEL = "asr-standin"
CHILD_KINDS = ("deployment", "service", "configmap", "poddisruptionbudget")


def _load(tel: Telemetry, ns: str, shard: str, rate: float, latency_ms: float = 200.0) -> None:
    tel.traffic.set(ns, "asr", shard, model=MODEL, rate=rate, latency_ms=latency_ms)


def _replicas(kubectl: Kubectl, ns: str, shard: str) -> int:
    dep = kubectl.json("get", "deployment", names.shard_resource_name("asr", shard), "-n", ns)
    return int(dep["spec"].get("replicas", 0))


def _settled(kubectl: Kubectl, ns: str, shard: str, replicas: int) -> dict[str, Any] | None:
    s = shard_status(speechcluster(kubectl, ns, "asr"), shard)
    ok = s is not None and s["replicas"] == replicas and s["readyReplicas"] == replicas
    return s if ok else None


def test_the_example_gets_owned_children_per_shard_and_per_shard_numbers_in_status(
    kubectl: Kubectl, tel: Telemetry, ns: str,
) -> None:
    # Replica counts come from the floors (3, the cluster's 1, and us-en-es's own 2): a rate step
    # takes the operator's 1-minute rate() window to show in full, latency shows at once.
    for shard, latency in (("eu-en", 180.0), ("eu-de-fr", 120.0), ("us-en-es", 90.0)):
        _load(tel, ns, shard, 5.0, latency)
    doc = e2e_spec(ns, tel.url)
    doc["spec"]["shards"][0]["minReplicas"] = 3
    kubectl.apply(doc)
    uid = speechcluster(kubectl, ns, "asr")["metadata"]["uid"]
    for shard in ("eu-en", "eu-de-fr", "us-en-es"):
        for kind in CHILD_KINDS:
            obj = eventually(f"{kind} of {shard}", lambda k=kind, s=shard: kubectl.run(
                "get", k, names.shard_resource_name("asr", s), "-n", ns, "-o", "json",
                check=False).stdout or None, timeout=30)
            owners = json.loads(obj)["metadata"]["ownerReferences"]
            assert [(o["kind"], o["uid"], o.get("controller")) for o in owners] == [
                (names.KIND, uid, True)]
    expected = {"eu-en": (3, 180.0), "eu-de-fr": (1, 120.0), "us-en-es": (2, 90.0)}

    def all_ready() -> dict[str, Any] | None:
        obj = speechcluster(kubectl, ns, "asr")
        got = {s["name"]: (s["replicas"], s.get("observedLatencyMs")) for s in obj["status"].get("shards", [])
               if s["readyReplicas"] == s["replicas"]}
        # Stable, not panic: with nothing Ready at creation any load is a burst (see decide/panic.py).
        stable = obj["status"].get("mode") == "stable"
        return obj if got == expected and obj["status"].get("readyReplicas") == 6 and stable else None

    obj = eventually("every shard at its floor, all Ready, latency seen", all_ready, timeout=60)
    for shard in obj["status"]["shards"]:
        assert shard["mode"] == "stable"
        assert shard["observedRate"] is not None
        assert shard["scalerState"]["lastReplicas"] == expected[shard["name"]][0]
    row = kubectl.run("get", "spc", "asr", "-n", ns, "--no-headers").stdout.split()
    header = kubectl.run("get", "spc", "asr", "-n", ns).stdout.split()[:8]
    assert header == ["NAME", "SHARDS", "DESIRED", "READY", "P95", "SLO", "MODE", "AGE"]
    assert row[:7] == ["asr", "3", "6", "6", "180", "500", "stable"]


def test_a_hand_scale_of_a_shard_deployment_is_undone_with_a_drift_event(
    kubectl: Kubectl, tel: Telemetry, ns: str,
) -> None:
    _load(tel, ns, "eu-en", 5.0)
    doc = e2e_spec(ns, tel.url, shards=["eu-en"])
    doc["spec"]["shards"][0]["minReplicas"] = 2
    kubectl.apply(doc)
    eventually("eu-en at 2 Ready", lambda: _settled(kubectl, ns, "eu-en", 2), timeout=90)
    deployment = names.shard_resource_name("asr", "eu-en")
    kubectl.run("scale", "deployment", deployment, "-n", ns, "--replicas=5")
    undone = eventually("the hand scale undone", lambda: _replicas(kubectl, ns, "eu-en") == 2,
                        timeout=3 * INTERVAL_SECONDS + 10, interval=0.2)
    assert undone
    drift = eventually("a DriftCorrected event",
                       lambda: events(kubectl, ns, names.REASON_DRIFT_CORRECTED), timeout=10)
    assert "5 -> 2" in drift[0]["message"]
    assert drift[0]["involvedObject"]["kind"] == names.KIND


def test_an_hpa_on_a_shard_deployment_is_not_fought_and_is_reported(
    kubectl: Kubectl, tel: Telemetry, ns: str,
) -> None:
    deployment = names.shard_resource_name("asr", "eu-en")
    kubectl.apply({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "legacy", "namespace": ns},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
                 "minReplicas": 1, "maxReplicas": 3,
                 "metrics": [{"type": "Resource", "resource": {
                     "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]},
    })
    # p95 at 4× the SLO asks for 4 replicas per Ready one, if voxscale were in charge.
    _load(tel, ns, "eu-en", 5.0, latency_ms=2000.0)

    def conflict() -> dict[str, Any] | None:
        c = condition(speechcluster(kubectl, ns, "asr"), names.CONDITION_DEGRADED)
        return c if c and c["status"] == "True" and c["reason"] == names.REASON_HPA_CONFLICT else None

    kubectl.apply(e2e_spec(ns, tel.url, shards=["eu-en"]))
    degraded = eventually("Degraded=True HPAConflict", conflict, timeout=60)
    assert "HorizontalPodAutoscaler legacy" in degraded["message"]
    eventually("the breach seen with a Ready pod", lambda: _breach_seen(kubectl, ns, "eu-en"), timeout=60)
    assert _replicas(kubectl, ns, "eu-en") <= 3  # the HPA's bound, not voxscale's 4
    assert not events(kubectl, ns, names.REASON_SCALED_UP)
    kubectl.run("delete", "hpa", "legacy", "-n", ns)
    eventually("voxscale scales once the HPA is gone", lambda: _replicas(kubectl, ns, "eu-en") >= 4,
               timeout=30)
    assert events(kubectl, ns, names.REASON_SCALED_UP)


def _breach_seen(kubectl: Kubectl, ns: str, shard: str) -> bool:
    s = shard_status(speechcluster(kubectl, ns, "asr"), shard)
    return s is not None and (s.get("observedLatencyMs") or 0) > 1000 and s["readyReplicas"] >= 1


def test_pods_that_find_no_gpu_are_reported_pending_with_the_schedulers_message(
    kubectl: Kubectl, tel: Telemetry, ns: str,
) -> None:
    # us-east has 6 GPUs; a floor of 8 leaves 2 pods with nowhere to go.
    doc = e2e_spec(ns, tel.url, shards=["us-en-es"])
    doc["spec"]["shards"][0]["minReplicas"] = 8
    _load(tel, ns, "us-en-es", 5.0)
    kubectl.apply(doc)

    def six_ready_two_pending() -> dict[str, Any] | None:
        s = shard_status(speechcluster(kubectl, ns, "asr"), "us-en-es")
        ok = s is not None and (s["readyReplicas"], s["warmingReplicas"], s["pendingReplicas"]) == (6, 0, 2)
        return s if ok else None

    eventually("6 Ready, 0 warming, 2 pending", six_ready_two_pending, timeout=90)
    degraded = condition(speechcluster(kubectl, ns, "asr"), names.CONDITION_DEGRADED)
    assert degraded is not None and degraded["status"] == "True"
    assert degraded["reason"] == names.REASON_PODS_PENDING
    assert "2 pod(s) Pending" in degraded["message"]
    assert f"Insufficient {names.GPU_RESOURCE}" in degraded["message"]


def test_a_spec_the_schema_cannot_reject_is_reported_invalid_without_a_crash_loop(
    kubectl: Kubectl, tel: Telemetry, op: OperatorProcess, ns: str,
) -> None:
    # The schema bounds the length of a query template but cannot parse PromQL: this one
    # reads a series outside the shard's selector.
    doc = e2e_spec(ns, tel.url, shards=["eu-en"])
    doc["spec"]["prometheus"]["queries"] = {"rate": "sum(rate(nv_inference_request_success[1m]))"}
    starts = op.starts
    kubectl.apply(doc)

    def invalid() -> dict[str, Any] | None:
        c = condition(speechcluster(kubectl, ns, "asr"), names.CONDITION_READY)
        return c if c and c["status"] == "False" and c["reason"] == names.REASON_INVALID_SPEC else None

    ready = eventually("Ready=False InvalidSpec", invalid, timeout=30)
    assert "{selector}" in ready["message"]
    warning = eventually("a Warning InvalidSpec event",
                         lambda: events(kubectl, ns, names.REASON_INVALID_SPEC), timeout=10)
    assert warning[0]["type"] == "Warning"
    assert op.process is not None and op.process.poll() is None and op.starts == starts
    FIGURES["operator restarts during the invalid-spec scenario"] = str(op.starts - starts)
