"""A real local Kubernetes control plane with kwok-simulated GPU nodes, for e2e tests and `voxscale dev`."""

from __future__ import annotations

from voxscale_lab.devcluster.cluster import LocalCluster, up
from voxscale_lab.devcluster.kubectl import Kubectl, KubectlError
from voxscale_lab.devcluster.process import ClusterError
from voxscale_lab.devcluster.topology import NodeShape, Topology

__all__ = ["ClusterError", "Kubectl", "KubectlError", "LocalCluster", "NodeShape", "Topology", "up"]
