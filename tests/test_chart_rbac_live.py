"""The chart's RBAC on a real kube-apiserver: `voxscale run` as the chart's account does its whole job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_chart import RELEASE, RELEASE_NS, render
from voxscale_lab.devcluster import ClusterError, Kubectl, LocalCluster, up
from voxscale_lab.harness.gateway_api import install_gateway_api
from voxscale_lab.harness.manifests import example_speechcluster, install_crd
from voxscale_lab.harness.operator_process import OperatorProcess
from voxscale_lab.harness.ports import free_port
from voxscale_lab.harness.waiting import eventually

TOKEN = "live-rbac-token-7c1d"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    try:
        cluster: LocalCluster = up(tmp_path_factory.mktemp("rbac-live") / "cluster")
    except ClusterError as e:
        pytest.fail(f"the local control plane did not start (make cluster-binaries): {e}", pytrace=False)
    try:
        install_gateway_api(cluster.kubectl)
        install_crd(cluster.kubectl)
        # New CRDs' watch caches answer 429 "storage is (re)initializing" for a while (seen here
        # with six CRDs just installed): the operator's first watch would log it as an ERROR.
        watch = "/apis/voxscale.io/v1alpha1/speechclusters?watch=1&timeoutSeconds=1"
        eventually("a SpeechCluster watch", lambda: cluster.kubectl.run("get", "--raw", watch,
                                                                         check=False).returncode == 0, 60)
        cluster.kubectl.run("create", "namespace", RELEASE_NS)
        yield cluster.kubectl
    finally:
        cluster.down()


def _speechcluster(ns: str) -> dict[str, Any]:
    # Prometheus on a closed port: metrics fail, so after 2 ticks the fallback floor (3) scales.
    sc = example_speechcluster(ns)
    sc["spec"]["prometheus"] = {
        "url": f"http://127.0.0.1:{free_port()}",
        "timeoutSeconds": 1,
        "bearerTokenSecretRef": {"name": "prometheus-token", "key": "token"},
    }
    sc["spec"]["routing"] = {"parentRefs": [{"name": "speech-gateway"}]}
    # Streaming: undoing the hand scale below is a scale-in that patches pods' deletion costs.
    sc["spec"]["streaming"] = {"maxConcurrentSequencesPerReplica": 8}
    sc["spec"]["scaling"].update(
        intervalSeconds=2, fallback={"failureThreshold": 2, "replicas": 3}, forecast={"enabled": False}
    )
    return sc


def _count(kubectl: Kubectl, kind: str, ns: str) -> int:
    return len(kubectl.json("get", kind, "-n", ns, "-l", "voxscale.io/cluster=asr")["items"])


def _route_rules(kubectl: Kubectl, ns: str) -> int | None:
    route = "grpcroutes.gateway.networking.k8s.io"
    out = kubectl.run("get", route, "asr", "-n", ns, "-o", "json", check=False)
    return len(yaml.safe_load(out.stdout)["spec"]["rules"]) if out.returncode == 0 else None


def _replicas(kubectl: Kubectl, ns: str) -> set[int]:
    return {d["spec"].get("replicas") for d in kubectl.json("get", "deploy", "-n", ns)["items"]}


def _deletion_costs(kubectl: Kubectl, ns: str) -> set[str]:
    pods = kubectl.json("get", "pods", "-n", ns, "-l", "voxscale.io/shard=eu-en")["items"]
    key = "controller.kubernetes.io/pod-deletion-cost"
    return {p["metadata"].get("annotations", {}).get(key) for p in pods} - {None}


def _whole_job(kubectl: Kubectl, ns: str) -> None:
    """Create, scale, status, the route, shard removal, drift correction and deletion, as in use."""
    kubectl.apply(_speechcluster(ns))
    for kind in ("deploy", "svc", "cm", "pdb"):  # server-side apply that creates
        eventually(f"3 {kind} applied", lambda k=kind: _count(kubectl, k, ns) == 3, 60)  # type: ignore[misc]
    eventually("the GRPCRoute applied", lambda: _route_rules(kubectl, ns) == 3, 60)
    eventually("fallback floor applied by the scaler", lambda: _replicas(kubectl, ns) == {3}, 60)
    eventually("status written", lambda: kubectl.json("get", "speechclusters", "asr", "-n", ns).get("status"))
    kubectl.run("patch", "speechclusters", "asr", "-n", ns, "--type=json", "-p",
                '[{"op": "remove", "path": "/spec/shards/2"}]')  # fmt: skip
    eventually("shard objects deleted", lambda: _count(kubectl, "deploy", ns) == 2, 60)
    eventually("the route without the shard", lambda: _route_rules(kubectl, ns) == 2, 60)
    no_routing = '{"spec": {"routing": null}}'
    kubectl.run("patch", "speechclusters", "asr", "-n", ns, "--type=merge", "-p", no_routing)
    eventually("the route deleted", lambda: _route_rules(kubectl, ns) is None, 60)
    kubectl.run("scale", "deploy/asr-eu-en", "-n", ns, "--replicas=7")
    eventually("hand scale undone", lambda: _replicas(kubectl, ns) == {3}, 60)
    eventually("deletion costs patched before the scale-in", lambda: _deletion_costs(kubectl, ns), 30)
    kubectl.run("delete", "speechclusters", "asr", "-n", ns, "--wait=false")
    eventually("finalizer released", lambda: not kubectl.json("get", "speechclusters", "-n", ns)["items"], 60)


@pytest.mark.parametrize("mode", ["cluster", "namespaced"])
def test_the_operator_does_its_whole_job_with_only_the_charts_rbac(
    mode: str, kubectl: Kubectl, tmp_path: Path
) -> None:
    ns = f"speech-{mode}"
    kubectl.run("create", "namespace", ns)
    kubectl.run("create", "secret", "generic", "prometheus-token", "-n", ns, f"--from-literal=token={TOKEN}")
    values: dict[str, Any] = {"prometheus": {"tokenSecretNames": ["prometheus-token"]}}
    if mode == "namespaced":
        values["watch"] = {"mode": "namespaced", "namespaces": [ns]}
    rbac = [d for d in render(values) if d["kind"] in RBAC_KINDS]
    kubectl.apply(*rbac)
    try:
        sa = kubectl.kubeconfig_for_service_account(RELEASE_NS, RELEASE, tmp_path)
        watched = ns if mode == "namespaced" else ""
        # Allowed: the closed loopback port the SpeechCluster names.
        operator = OperatorProcess(sa, watched, tmp_path / "operator.log", ("127.0.0.1",))
        operator.start()
        try:
            _whole_job(kubectl, ns)
        finally:
            operator.stop(timeout=30)
        log = operator.log_since(0)
    finally:
        kubectl.run("delete", "-f", "-", "--ignore-not-found", stdin=yaml.safe_dump_all(rbac[1:]))
    assert "forbidden" not in log.lower(), log
    assert " ERROR " not in log, log
    assert TOKEN not in log
    reasons = {e["reason"] for e in kubectl.json("get", "events", "-n", ns)["items"]
               if e.get("reportingComponent") == "voxscale-operator"}  # fmt: skip
    assert reasons >= {"ScaledUp", "ShardRemoved", "DriftCorrected", "RoutesApplied", "RoutesRemoved"}
