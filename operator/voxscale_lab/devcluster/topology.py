"""The fake fleet kwok simulates: GPU nodes over regions and zones, and the pod lifecycle stages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voxscale import names

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_NODE_VALUE = "fake"
# kwok writes pod IPs into status only; nothing here ever dials them. They still come from the
# loopback range so that a stray scrape of a fake pod can only ever reach this machine.
POD_CIDR = "127.64.0.0/16"
NODE_IP = "127.0.0.1"
GPU_PRODUCT = "NVIDIA-A10G"


@dataclass(frozen=True)
class NodeShape:
    """Allocatable of one fake node (the scheduler packs pods against these numbers)."""

    cpu: str = "8"
    memory: str = "32Gi"
    pods: str = "110"
    gpus: int = 1


@dataclass(frozen=True)
class Topology:
    """Regions → zones, with `gpu_nodes_per_zone` GPU nodes and `cpu_nodes_per_region` plain ones.

    Default: 2 regions × 2 zones × 3 GPU nodes = 12 GPUs, plus 1 CPU-only node per region so a
    test can show GPU pods never land on it.
    """

    regions: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("eu-west", ("eu-west-a", "eu-west-b")),
        ("us-east", ("us-east-a", "us-east-b")),
    )
    gpu_nodes_per_zone: int = 3
    cpu_nodes_per_region: int = 1
    gpu_shape: NodeShape = NodeShape()
    cpu_shape: NodeShape = NodeShape(cpu="16", memory="64Gi", gpus=0)


def _node(name: str, region: str, zone: str, shape: NodeShape) -> dict[str, Any]:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        names.TOPOLOGY_REGION: region,
        names.TOPOLOGY_ZONE: zone,
    }
    resources: dict[str, str] = {"cpu": shape.cpu, "memory": shape.memory, "pods": shape.pods}
    if shape.gpus:
        labels[names.GPU_PRODUCT_LABEL] = GPU_PRODUCT
        resources[names.GPU_RESOURCE] = str(shape.gpus)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {KWOK_NODE_ANNOTATION: KWOK_NODE_VALUE},
        },
        # kwok keeps the status we create the node with (capacity/allocatable) and adds conditions.
        "status": {"allocatable": resources, "capacity": dict(resources)},
    }


def node_manifests(topology: Topology = Topology()) -> list[dict[str, Any]]:
    """Node objects for every GPU and CPU node of `topology`, named `gpu-<zone>-<i>`/`cpu-<region>-<i>`."""
    nodes: list[dict[str, Any]] = []
    for region, zones in topology.regions:
        for zone in zones:
            nodes += [
                _node(f"gpu-{zone}-{i}", region, zone, topology.gpu_shape)
                for i in range(topology.gpu_nodes_per_zone)
            ]
        nodes += [
            _node(f"cpu-{region}-{i}", region, zones[i % len(zones)], topology.cpu_shape)
            for i in range(topology.cpu_nodes_per_region)
        ]
    return nodes


# Priced node pools (spec.placement; docs/placement.md): GPU nodes labelled with their capacity
# type and tainted when spot, as a cloud's node groups are (e.g. EKS's
# eks.amazonaws.com/capacityType, GKE's cloud.google.com/gke-spot), with their hourly price.
CAPACITY_TYPE_LABEL = "lab.voxscale.io/capacity-type"
POOL_LABEL = "lab.voxscale.io/pool"
PRICE_ANNOTATION = "lab.voxscale.io/price-per-hour"
SPOT_TAINT = {"key": "lab.voxscale.io/spot", "value": "true", "effect": "NoSchedule"}


@dataclass(frozen=True)
class PricedPool:
    """`count` GPU nodes of one pool in one zone: `<name>-<i>`, spot ones tainted."""

    name: str
    count: int
    region: str
    zone: str
    spot: bool = False
    price_per_hour: float = 1.0
    shape: NodeShape = NodeShape()

    def node_names(self) -> list[str]:
        return [f"{self.name}-{i}" for i in range(self.count)]

    def manifests(self, start: int = 0) -> list[dict[str, Any]]:
        """Node objects `<name>-<start>` … `<name>-<count - 1>`."""
        out = []
        for name in self.node_names()[start:]:
            node = _node(name, self.region, self.zone, self.shape)
            node["metadata"]["labels"].update({
                CAPACITY_TYPE_LABEL: "spot" if self.spot else "on-demand", POOL_LABEL: self.name})
            node["metadata"]["annotations"][PRICE_ANNOTATION] = f"{self.price_per_hour:g}"
            if self.spot:
                node["spec"] = {"taints": [dict(SPOT_TAINT)]}
            out.append(node)
        return out

    def placement_pool(self) -> dict[str, Any]:
        """The spec.placement pool that runs on these nodes."""
        pool: dict[str, Any] = {"name": self.name, "nodeSelector": {POOL_LABEL: self.name},
                                "pricePerHour": self.price_per_hour,
                                "capacityType": "Spot" if self.spot else "OnDemand"}
        if self.spot:
            pool["tolerations"] = [{"key": SPOT_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}]
        return pool
