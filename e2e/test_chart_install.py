"""The Helm chart on a real control plane: `helm install` into restricted namespaces, the account's
exact permissions as a `kubectl auth can-i --list` snapshot, and the operator doing its job as it."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import E2ECluster, eventually, example_speechcluster
from voxscale import names
from voxscale_lab.demo.parts import CHART, OperatorProcess
from voxscale_lab.devcluster import Kubectl
from voxscale_lab.devcluster.binaries import ensure_binaries
from voxscale_lab.harness.ports import free_port

RELEASE = "voxscale"
SNAPSHOT = Path(__file__).parent / "snapshots" / "chart-can-i-namespaced.txt"
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}


def _namespace(kubectl: Kubectl, stem: str) -> str:
    name = f"{stem}-{uuid.uuid4().hex[:5]}"
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": RESTRICTED}})
    return name


def _helm(cluster: E2ECluster, *args: str) -> subprocess.CompletedProcess[str]:
    helm = str(ensure_binaries(("helm",)) / "helm")
    done = subprocess.run(
        [helm, *args, "--kubeconfig", str(cluster.kubectl.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"helm {args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def install(cluster: E2ECluster, speechcluster_crd: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(operator namespace, watched namespace), both enforcing the restricted Pod Security profile."""
    kubectl = cluster.kubectl
    system, watched = _namespace(kubectl, "vx-system"), _namespace(kubectl, "vx-speech")
    _helm(
        cluster,
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        system,
        "--wait=false",
        "--set",
        "watch.mode=namespaced",
        "--set",
        f"watch.namespaces={{{watched}}}",
    )
    try:
        yield system, watched
    finally:
        _helm(cluster, "uninstall", RELEASE, "--namespace", system)
        kubectl.run("delete", "namespace", system, watched, "--wait=false", check=False)


def _permissions(kubectl: Kubectl, system: str, watched: str) -> str:
    listed = kubectl.run(
        "auth", "can-i", "--list", "-n", watched, f"--as=system:serviceaccount:{system}:{RELEASE}"
    )
    rows = [re.sub(r"\s+", " ", line).strip() for line in listed.stdout.splitlines()[1:]]
    return "\n".join(sorted(r for r in rows if r)) + "\n"


def test_the_operator_pod_is_admitted_under_the_restricted_profile(
    install: tuple[str, str], kubectl: Kubectl
) -> None:
    system, _ = install
    pods = eventually(
        "the operator Deployment to create its pod",
        lambda: kubectl.json("get", "pods", "-n", system)["items"] or None,
        timeout=60,
    )
    assert [p["metadata"]["labels"].get("app.kubernetes.io/name") for p in pods] == ["voxscale"]
    refused = [
        e for e in kubectl.json("get", "events", "-n", system)["items"] if e["reason"] == "FailedCreate"
    ]
    assert refused == []


def test_the_chart_account_holds_exactly_the_snapshotted_permissions(
    install: tuple[str, str], kubectl: Kubectl
) -> None:
    got = _permissions(kubectl, *install)
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(got)
    assert got == SNAPSHOT.read_text(), (
        "RBAC changed: review, then UPDATE_SNAPSHOTS=1 pytest e2e/test_chart_install.py"
    )
    secrets = [row for row in got.splitlines() if row.startswith("secrets ")]
    assert all("list" not in row and "watch" not in row for row in secrets)


def test_the_operator_runs_as_the_chart_account_and_its_worker_pods_are_admitted(
    install: tuple[str, str], cluster: E2ECluster, tmp_path: Path
) -> None:
    system, watched = install
    kubectl = cluster.kubectl
    account = cluster.kubeconfig_for_service_account(system, RELEASE)
    operator = OperatorProcess(account, watched, tmp_path / "operator.log", free_port())
    operator.start()
    try:
        kubectl.apply(example_speechcluster(watched))
        for shard in ("eu-en", "eu-de-fr", "us-en-es"):
            selector = f"{names.LABEL_CLUSTER}=asr,{names.LABEL_SHARD}={shard}"
            eventually(
                f"a worker pod of {shard} admitted in the restricted namespace",
                lambda s=selector: kubectl.json("get", "pods", "-n", watched, "-l", s)["items"] or None,
                timeout=90,
            )
        log = (tmp_path / "operator.log").read_text()
        assert "Forbidden" not in log and "forbidden" not in log, log[-3000:]
        kubectl.run("delete", names.PLURAL, "asr", "-n", watched, "--timeout=60s")
    finally:
        operator.stop()
