"""Bring a local control plane (etcd, apiserver, controller-manager, scheduler) + kwok nodes up and down."""

from __future__ import annotations

import datetime
import json
import ssl
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from voxscale_lab.devcluster import components as c
from voxscale_lab.devcluster.binaries import ensure_binaries, kubectl_path
from voxscale_lab.devcluster.fleet import create_nodes, start_kwok
from voxscale_lab.devcluster.kubectl import Kubectl
from voxscale_lab.devcluster.pki import IDENTITIES, Pki, write_pki
from voxscale_lab.devcluster.process import ClusterError, Proc, free_ports, leftovers, start, stop, wait_until
from voxscale_lab.devcluster.topology import Topology

STATE_FILE = "state.json"
# Cold on 2 busy cores the apiserver needs ~20 s to install its APIs and RBAC bootstrap policy.
START_TIMEOUT = 120.0


@dataclass
class LocalCluster:
    """A running local cluster: where its files are, its ports and processes, how to reach it."""

    state_dir: Path
    bin_dir: Path
    ports: c.Ports
    procs: list[Proc] = field(default_factory=list)
    start_seconds: float | None = None

    @property
    def layout(self) -> c.Layout:
        return c.Layout(self.bin_dir, self.state_dir)

    @property
    def kubeconfig(self) -> Path:
        """The admin (system:masters) kubeconfig."""
        return self.layout.kubeconfig("admin")

    @property
    def server(self) -> str:
        return c.api_url(self.ports)

    @property
    def kubectl(self) -> Kubectl:
        return Kubectl(kubectl_path(self.bin_dir), self.kubeconfig)

    def kubeconfig_for_service_account(self, namespace: str, name: str) -> Path:
        return self.kubectl.kubeconfig_for_service_account(namespace, name, self.state_dir)

    def save(self) -> None:
        state = {"state_dir": str(self.state_dir), "bin_dir": str(self.bin_dir),
                 "ports": asdict(self.ports), "start_seconds": self.start_seconds,
                 "procs": [{"name": p.name, "pid": p.pid, "log": str(p.log)} for p in self.procs]}
        (self.state_dir / STATE_FILE).write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> LocalCluster:
        state = json.loads((state_dir / STATE_FILE).read_text())
        procs = [Proc(p["name"], p["pid"], Path(p["log"])) for p in state["procs"]]
        return cls(Path(state["state_dir"]), Path(state["bin_dir"]), c.Ports(**state["ports"]),
                   procs, state["start_seconds"])

    def down(self) -> None:
        """Stop every process group and check no process or port is left; raises if one is."""
        stop(self.procs)
        left = leftovers(self.procs, self.ports.all())
        if left:
            raise ClusterError(f"teardown left {', '.join(left)}")
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)


def _write_kubeconfigs(layout: c.Layout, pki: Pki, server: str) -> None:
    for ident in IDENTITIES:
        config = c.kubeconfig(server, pki.ca_cert, c.client_cert_user(pki, ident.file_stem))
        path = layout.kubeconfig(ident.file_stem)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)


def _https_ok(url: str, pki: Pki) -> bool:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    cert, key = pki.client("admin")
    ctx.load_cert_chain(str(cert), str(key))
    with urllib.request.urlopen(url, context=ctx, timeout=2) as r:
        return bool(r.status == 200)


def _etcd_ok(port: int) -> bool:
    with urllib.request.urlopen(f"http://{c.LOOPBACK}:{port}/health", timeout=2) as r:
        return b'"health":"true"' in r.read()


def _start_control_plane(cluster: LocalCluster, pki: Pki, ready_annotation: str | None) -> None:
    lay, ports, procs = cluster.layout, cluster.ports, cluster.procs
    procs.append(start("etcd", c.etcd_args(lay, ports), lay.log("etcd")))
    wait_until("etcd /health", lambda: _etcd_ok(ports.etcd_client), START_TIMEOUT, procs)
    procs.append(start("kube-apiserver", c.apiserver_args(lay, ports, pki), lay.log("kube-apiserver")))
    wait_until("kube-apiserver /readyz", lambda: _https_ok(f"{cluster.server}/readyz", pki),
               START_TIMEOUT, procs)
    procs.append(start("kube-controller-manager", c.controller_manager_args(lay, ports, pki),
                       lay.log("kube-controller-manager")))
    procs.append(start("kube-scheduler", c.scheduler_args(lay, ports), lay.log("kube-scheduler")))
    procs.append(start_kwok(lay, lay.kubeconfig("kwok"), ports.kwok, ready_annotation))


def _wait_for_fleet(cluster: LocalCluster, topology: Topology) -> None:
    kubectl, procs = cluster.kubectl, cluster.procs
    create_nodes(kubectl, topology, procs)
    # Pods are refused until the `default` ServiceAccount exists (the controller-manager makes it).
    wait_until("the default ServiceAccount",
               lambda: kubectl.run("get", "serviceaccount", "default", check=False).returncode == 0,
               START_TIMEOUT, procs, interval=0.5)


def up(
    state_dir: Path, topology: Topology | None = None, *, ready_annotation: str | None = None
) -> LocalCluster:
    """Start everything under `state_dir` and return once all nodes are Ready.

    Pods turn Ready after their warm-up annotation's delay, or, with `ready_annotation`, once
    something sets that annotation to "true" on them (see `stages.pod_stages`).

    Processes run detached (own sessions), so a CLI can exit and leave the cluster up; call
    `LocalCluster.down()` (or `LocalCluster.load(state_dir).down()`) to stop it.
    """
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    bin_dir = ensure_binaries()
    t0 = time.monotonic()
    cluster = LocalCluster(state_dir, bin_dir, c.Ports(*free_ports(6)))
    pki = write_pki(state_dir / "pki", datetime.datetime.now(datetime.UTC))
    _write_kubeconfigs(cluster.layout, pki, cluster.server)
    try:
        _start_control_plane(cluster, pki, ready_annotation)
        cluster.save()
        _wait_for_fleet(cluster, topology or Topology())
    except BaseException:
        stop(cluster.procs)
        (state_dir / STATE_FILE).unlink(missing_ok=True)
        raise
    cluster.start_seconds = round(time.monotonic() - t0, 1)
    cluster.save()
    return cluster
