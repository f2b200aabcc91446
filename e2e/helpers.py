"""Helpers the e2e scenarios share: the cluster handle, printed figures, GPU Deployments, conditions,
background threads.

Polling, the CRD and the example SpeechCluster come from the lab's harness (re-exported here for
the scenarios): `eventually`, `install_crd`, `example_speechcluster`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxscale import names
from voxscale_lab.devcluster import Kubectl, LocalCluster
from voxscale_lab.harness.manifests import example_speechcluster, install_crd
from voxscale_lab.harness.waiting import eventually

__all__ = ["FIGURES", "REPO", "E2ECluster", "background", "condition", "eventually",
           "example_speechcluster", "gpu_deployment", "install_crd"]

REPO = Path(__file__).resolve().parents[1]

# Figures measured during the run, printed in the terminal summary (never asserted on).
FIGURES: dict[str, str] = {}


@dataclass(frozen=True)
class E2ECluster:
    """The cluster under test: the local control plane (`local` set) or an E2E_KUBECONFIG one."""

    kubectl: Kubectl
    workdir: Path
    local: LocalCluster | None = None

    def kubeconfig_for_service_account(self, namespace: str, name: str) -> Path:
        """A kubeconfig authenticating as `system:serviceaccount:<namespace>:<name>` (token-based)."""
        return self.kubectl.kubeconfig_for_service_account(namespace, name, self.workdir)


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


def background(stack: ExitStack, target: Callable[[], object], stop: threading.Event, name: str,
               join_seconds: float = 60) -> None:
    """`target` on a thread until the stack unwinds: then `stop` is set and the thread joined."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    stack.callback(thread.join, join_seconds)
    stack.callback(stop.set)
