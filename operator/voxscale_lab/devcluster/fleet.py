"""kwok and its fake GPU nodes, on the local control plane or on any cluster (kind) by kubeconfig."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from voxscale_lab.devcluster import components as c
from voxscale_lab.devcluster.kubectl import Kubectl
from voxscale_lab.devcluster.process import Proc, free_ports, start, stop, wait_until
from voxscale_lab.devcluster.stages import pod_stages
from voxscale_lab.devcluster.topology import Topology, node_manifests

# kwok needs a few seconds to list nodes and write their first heartbeat; 2 busy cores, 60 s.
FLEET_TIMEOUT = 90.0


@dataclass(frozen=True)
class Fleet:
    """A running kwok process and the names of the nodes it plays."""

    proc: Proc
    node_names: tuple[str, ...]


def start_kwok(
    layout: c.Layout, kubeconfig: Path, port: int | None = None, ready_annotation: str | None = None
) -> Proc:
    stages = layout.state_dir / "kwok-stages.yaml"
    stages.write_text(yaml.safe_dump_all(pod_stages(ready_annotation), sort_keys=False))
    port = port if port is not None else free_ports(1)[0]
    return start("kwok", c.kwok_args(layout, port, stages, kubeconfig), layout.log("kwok"))


def _ready_nodes(kubectl: Kubectl, wanted: set[str]) -> int:
    items = kubectl.json("get", "nodes")["items"]
    return sum(
        1 for n in items if n["metadata"]["name"] in wanted and any(
            cond["type"] == "Ready" and cond["status"] == "True"
            for cond in n.get("status", {}).get("conditions", []))
    )


def create_nodes(kubectl: Kubectl, topology: Topology, procs: list[Proc]) -> tuple[str, ...]:
    """Create the fake nodes and wait until kwok has made every one Ready."""
    nodes = node_manifests(topology)
    kubectl.apply(*nodes)
    wanted = {n["metadata"]["name"] for n in nodes}
    wait_until(f"{len(nodes)} kwok nodes Ready", lambda: _ready_nodes(kubectl, wanted) == len(wanted),
               FLEET_TIMEOUT, procs, interval=0.5)
    return tuple(sorted(wanted))


def attach_fleet(kubectl: Kubectl, layout: c.Layout, topology: Topology | None = None) -> Fleet:
    """Run kwok against `kubectl`'s cluster (e.g. kind) and add the fake GPU nodes to it."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    proc = start_kwok(layout, kubectl.kubeconfig)
    try:
        return Fleet(proc, create_nodes(kubectl, topology or Topology(), [proc]))
    except BaseException:
        stop([proc])
        raise


def detach_fleet(kubectl: Kubectl, fleet: Fleet) -> None:
    """Delete the fake nodes (their pods go with them) and stop kwok."""
    kubectl.run("delete", "nodes", *fleet.node_names, "--wait=false", check=False)
    stop([fleet.proc])
