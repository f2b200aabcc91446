"""Helpers the e2e scenarios share: the cluster handle, CRD install, polling, printed figures."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from voxscale import names
from voxscale_lab.devcluster import Kubectl, LocalCluster

REPO = Path(__file__).resolve().parents[1]
CRD_FILE = REPO / "crds" / "speechcluster.yaml"
EXAMPLE_FILE = REPO / "examples" / "speechcluster.yaml"

# Figures measured during the run, printed in the terminal summary (never asserted on).
FIGURES: dict[str, str] = {}

T = TypeVar("T")


@dataclass(frozen=True)
class E2ECluster:
    """The cluster under test: the local control plane (`local` set) or an E2E_KUBECONFIG one."""

    kubectl: Kubectl
    workdir: Path
    local: LocalCluster | None = None

    def kubeconfig_for_service_account(self, namespace: str, name: str) -> Path:
        """A kubeconfig authenticating as `system:serviceaccount:<namespace>:<name>` (token-based)."""
        return self.kubectl.kubeconfig_for_service_account(namespace, name, self.workdir)


def eventually(what: str, probe: Callable[[], T | None], timeout: float = 60.0,
               interval: float = 0.5) -> T:
    """Poll `probe` until it returns something other than None/False; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last is not None and last is not False:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def install_crd(kubectl: Kubectl, path: Path = CRD_FILE, timeout: float = 60.0) -> dict[str, Any]:
    """Apply the CRD file (server-side) and wait until it is Established; returns the stored CRD."""
    crd = yaml.safe_load(path.read_text())
    kubectl.apply(crd, server_side=True)
    name = crd["metadata"]["name"]

    def established() -> dict[str, Any] | None:
        stored: dict[str, Any] = kubectl.json("get", "crd", name)
        conditions = {c["type"]: c for c in stored.get("status", {}).get("conditions", [])}
        bad = conditions.get("NamesAccepted", {}).get("status") == "False"
        assert not bad, f"CRD names not accepted: {conditions['NamesAccepted'].get('message')}"
        return stored if conditions.get("Established", {}).get("status") == "True" else None

    return eventually(f"CRD {name} Established", established, timeout)


def example_speechcluster(namespace: str) -> dict[str, Any]:
    """examples/speechcluster.yaml, moved into `namespace`."""
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE_FILE.read_text())
    doc["metadata"]["namespace"] = namespace
    return doc


def gpu_deployment(name: str, region: str, replicas: int, warmup_seconds: int) -> dict[str, Any]:
    """A plain Deployment shaped like a Triton worker: 1 GPU, pinned to a region, spread over zones."""
    labels = {"app": name}
    container = {
        "name": "worker", "image": "registry.invalid/triton-standin:1",
        "resources": {"limits": {names.GPU_RESOURCE: "1"}, "requests": {"cpu": "1", "memory": "1Gi"}},
    }
    spread = {"maxSkew": 1, "topologyKey": names.TOPOLOGY_ZONE, "whenUnsatisfiable": "DoNotSchedule",
              "labelSelector": {"matchLabels": labels}}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels,
                             "annotations": {names.ANNOTATION_WARMUP_SECONDS: str(warmup_seconds)}},
                "spec": {
                    "nodeSelector": {names.TOPOLOGY_REGION: region},
                    "topologySpreadConstraints": [spread],
                    "containers": [container],
                },
            },
        },
    }


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return dict(c)
    return None
