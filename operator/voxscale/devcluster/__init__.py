"""A real local Kubernetes control plane with kwok-simulated GPU nodes, for e2e tests and `voxscale dev`."""

from __future__ import annotations

from voxscale.devcluster.cluster import LocalCluster, up
from voxscale.devcluster.kubectl import Kubectl, KubectlError
from voxscale.devcluster.process import ClusterError
from voxscale.devcluster.topology import NodeShape, Topology

__all__ = ["ClusterError", "Kubectl", "KubectlError", "LocalCluster", "NodeShape", "Topology", "up"]
