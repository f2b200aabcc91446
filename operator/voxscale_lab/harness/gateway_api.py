"""The real Gateway API CRDs (fetched once by e2e/cluster/gateway-api.sh) installed into a cluster."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from voxscale import names
from voxscale_lab.devcluster import ClusterError, Kubectl
from voxscale_lab.harness.manifests import REPO, install_crd

FETCH_SCRIPT = REPO / "e2e" / "cluster" / "gateway-api.sh"
# What routes and a Gateway need: the route kinds the operator renders, the Gateway and
# GatewayClass they attach to, and ReferenceGrant for routes to Services in other namespaces.
ROUTE_CRDS = ("gatewayclasses", "gateways", "grpcroutes", "httproutes", "referencegrants")


def gateway_api_crd_dir() -> Path:
    """The directory of the pinned release's experimental-channel CRDs, fetched first if needed."""
    out = subprocess.run(["bash", str(FETCH_SCRIPT)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise ClusterError(f"{FETCH_SCRIPT} failed:\n{out.stderr[-3000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def crd_name(plural: str) -> str:
    return f"{plural}.{names.GATEWAY_API_GROUP}"


def install_gateway_api(kubectl: Kubectl, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
    """Apply ROUTE_CRDS (server-side: httproutes is ~0.5 MB, past the client-side annotation limit)
    and wait until each is Established; plural -> the stored CRD."""
    crd_dir = gateway_api_crd_dir()
    return {
        plural: install_crd(kubectl, crd_dir / f"{names.GATEWAY_API_GROUP}_{plural}.yaml", timeout)
        for plural in ROUTE_CRDS
    }


def gateway_api_installed(kubectl: Kubectl) -> list[str]:
    """The ROUTE_CRDS this cluster has (any version or channel)."""
    found = kubectl.run("get", "crd", "-o", "name", check=False).stdout.split()
    return [p for p in ROUTE_CRDS if f"customresourcedefinition.apiextensions.k8s.io/{crd_name(p)}" in found]
