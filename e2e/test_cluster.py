"""The simulated GPU fleet behaves like the real one: placement, GPU limits, warm-up, grace, RBAC."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from e2e.helpers import FIGURES, E2ECluster, condition, eventually, gpu_deployment
from voxscale import names
from voxscale_lab.devcluster import Kubectl, KubectlError
from voxscale_lab.devcluster.topology import GPU_PRODUCT

WARMUP_SECONDS = 6


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _pods(kubectl: Kubectl, namespace: str, app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", "pods", "-n", namespace, "-l", f"app={app}")["items"]
    return items


def _deploy(kubectl: Kubectl, namespace: str, name: str, region: str, *, replicas: int, warmup: int) -> None:
    doc = gpu_deployment(name, region, replicas, warmup)
    doc["metadata"]["namespace"] = namespace
    kubectl.apply(doc)


def _all_ready(kubectl: Kubectl, namespace: str, app: str, count: int) -> list[dict[str, Any]] | None:
    pods = _pods(kubectl, namespace, app)
    ready = [p for p in pods if (condition(p, "Ready") or {}).get("status") == "True"]
    return pods if len(pods) == count and len(ready) == count else None


def test_every_fake_gpu_node_is_ready_with_one_gpu_and_its_topology_labels(kubectl: Kubectl) -> None:
    nodes = kubectl.json("get", "nodes", "-l", names.GPU_PRODUCT_LABEL)["items"]
    assert len(nodes) == 12
    for node in nodes:
        labels = node["metadata"]["labels"]
        assert labels[names.GPU_PRODUCT_LABEL] == GPU_PRODUCT
        assert labels[names.TOPOLOGY_ZONE].startswith(labels[names.TOPOLOGY_REGION] + "-")
        assert node["status"]["allocatable"][names.GPU_RESOURCE] == "1"
        assert (condition(node, "Ready") or {}).get("status") == "True"
    zones = Counter(n["metadata"]["labels"][names.TOPOLOGY_ZONE] for n in nodes)
    assert zones == {"eu-west-a": 3, "eu-west-b": 3, "us-east-a": 3, "us-east-b": 3}


def test_gpu_pods_land_on_gpu_nodes_of_their_region_spread_over_zones_ready_after_warmup(
    kubectl: Kubectl, namespace: str,
) -> None:
    _deploy(kubectl, namespace, "worker", "eu-west", replicas=4, warmup=WARMUP_SECONDS)
    pods = eventually("4 worker pods Ready", lambda: _all_ready(kubectl, namespace, "worker", 4),
                      timeout=90)
    nodes = {n["metadata"]["name"]: n["metadata"]["labels"] for n in kubectl.json("get", "nodes")["items"]}
    placed = [nodes[p["spec"]["nodeName"]] for p in pods]
    assert {labels[names.TOPOLOGY_REGION] for labels in placed} == {"eu-west"}
    assert all(labels.get(names.GPU_PRODUCT_LABEL) == GPU_PRODUCT for labels in placed)
    assert Counter(labels[names.TOPOLOGY_ZONE] for labels in placed) == {"eu-west-a": 2, "eu-west-b": 2}
    created_to_ready, running_to_ready = [], []
    for pod in pods:
        assert "reason" not in condition(pod, "Ready")  # type: ignore[operator]  # no stale WarmingUp
        ready_at = _ts(condition(pod, "Ready")["lastTransitionTime"])  # type: ignore[index]
        started_at = _ts(pod["status"]["startTime"])
        running_to_ready.append((ready_at - started_at).total_seconds())
        created_to_ready.append((ready_at - _ts(pod["metadata"]["creationTimestamp"])).total_seconds())
    # Timestamps are whole seconds, so a 6 s warm-up can read as 5 s; it can never read as 4.
    assert min(running_to_ready) >= WARMUP_SECONDS - 1
    FIGURES[f"pod created→Ready with {WARMUP_SECONDS} s warm-up (4 pods)"] = (
        f"median {statistics.median(created_to_ready):.0f} s, max {max(created_to_ready):.0f} s")


def test_a_region_runs_out_of_gpus_and_the_extra_pod_stays_pending(kubectl: Kubectl, namespace: str) -> None:
    _deploy(kubectl, namespace, "greedy", "us-east", replicas=7, warmup=0)

    def six_ready_one_pending() -> list[dict[str, Any]] | None:
        pods = _pods(kubectl, namespace, "greedy")
        pending = [p for p in pods if p["status"].get("phase") == "Pending"]
        ready = [p for p in pods if (condition(p, "Ready") or {}).get("status") == "True"]
        scheduled = [condition(p, "PodScheduled") for p in pending]
        settled = len(ready) == 6 and len(pending) == 1 and scheduled[0] is not None
        return pending if settled else None

    pending = eventually("6 Ready + 1 Pending", six_ready_one_pending, timeout=90)[0]
    unschedulable = condition(pending, "PodScheduled")
    assert unschedulable is not None
    assert unschedulable["reason"] == "Unschedulable"
    assert f"Insufficient {names.GPU_RESOURCE}" in unschedulable["message"]


@pytest.mark.parametrize("grace_seconds", [3], ids=["3s"])
def test_a_deleted_pod_lingers_for_its_grace_period_then_goes(
    kubectl: Kubectl, namespace: str, grace_seconds: int,
) -> None:
    _deploy(kubectl, namespace, "solo", "eu-west", replicas=1, warmup=0)
    pod = eventually("solo Ready", lambda: _all_ready(kubectl, namespace, "solo", 1), timeout=60)[0]
    name = pod["metadata"]["name"]
    t0 = time.monotonic()
    kubectl.run("delete", "pod", name, "-n", namespace, f"--grace-period={grace_seconds}", "--wait=false")
    terminating = kubectl.json("get", "pod", name, "-n", namespace)
    assert terminating["metadata"]["deletionTimestamp"]

    def gone() -> bool:
        return kubectl.run("get", "pod", name, "-n", namespace, check=False).returncode != 0

    eventually(f"{name} deleted", gone, timeout=60, interval=0.2)
    elapsed = time.monotonic() - t0
    # deletionTimestamp is stored in whole seconds, so kwok may act up to 1 s early.
    assert elapsed >= grace_seconds - 1
    FIGURES[f"pod delete → gone with {grace_seconds} s grace"] = f"{elapsed:.1f} s"


def test_a_service_account_token_kubeconfig_is_bound_by_rbac(
    cluster: E2ECluster, kubectl: Kubectl, namespace: str,
) -> None:
    kubectl.run("create", "serviceaccount", "reader", "-n", namespace)
    reader = kubectl.with_kubeconfig(cluster.kubeconfig_for_service_account(namespace, "reader"))
    with pytest.raises(KubectlError) as denied:
        reader.run("get", "pods", "-n", namespace)
    assert f'"system:serviceaccount:{namespace}:reader" cannot list resource "pods"' in denied.value.stderr
    kubectl.run("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace)
    kubectl.run("create", "rolebinding", "reader", "--role=pod-reader",
                f"--serviceaccount={namespace}:reader", "-n", namespace)
    eventually("RBAC to allow listing pods",
               lambda: reader.run("get", "pods", "-n", namespace, check=False).returncode == 0, timeout=30)
    assert reader.run("auth", "can-i", "delete", "pods", "-n", namespace, check=False).stdout.strip() == "no"


def test_pod_security_admission_refuses_a_privileged_pod_in_a_baseline_namespace(
    kubectl: Kubectl, namespace: str,
) -> None:
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/x:1",
                                 "securityContext": {"privileged": True}}]},
    }
    with pytest.raises(KubectlError) as refused:
        kubectl.apply(pod)
    assert 'violates PodSecurity "baseline:latest": privileged' in refused.value.stderr
