"""Command lines and kubeconfigs of the local control plane's processes (pure: paths and ports in)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxscale_lab.devcluster.pki import Pki
from voxscale_lab.devcluster.topology import KWOK_NODE_ANNOTATION, KWOK_NODE_VALUE, NODE_IP, POD_CIDR

LOOPBACK = "127.0.0.1"
SERVICE_CIDR = "10.96.0.0/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
# The default admission set of 1.33 is on anyway; these are named so the intent is visible.
ADMISSION_PLUGINS = "NamespaceLifecycle,LimitRanger,ServiceAccount,NodeRestriction,PodSecurity,ResourceQuota"


@dataclass(frozen=True)
class Ports:
    """Loopback TCP ports, one per listener (picked free at start-up)."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    def all(self) -> tuple[int, ...]:
        return (self.etcd_client, self.etcd_peer, self.apiserver, self.controller_manager,
                self.scheduler, self.kwok)


@dataclass(frozen=True)
class Layout:
    """Where one cluster keeps its binaries, state, kubeconfigs and logs."""

    bin_dir: Path
    state_dir: Path

    def binary(self, name: str) -> str:
        return str(self.bin_dir / name)

    def kubeconfig(self, stem: str) -> Path:
        return self.state_dir / f"{stem}.kubeconfig"

    def log(self, component: str) -> Path:
        return self.state_dir / "logs" / f"{component}.log"


def api_url(ports: Ports) -> str:
    return f"https://{LOOPBACK}:{ports.apiserver}"


def kubeconfig(server: str, ca: Path, user: dict[str, str], name: str = "voxscale-dev") -> dict[str, Any]:
    """A one-context kubeconfig; `user` is {client-certificate, client-key} or {token}."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def client_cert_user(pki: Pki, stem: str) -> dict[str, str]:
    cert, key = pki.client(stem)
    return {"client-certificate": str(cert), "client-key": str(key)}


def etcd_args(layout: Layout, ports: Ports) -> list[str]:
    client = f"http://{LOOPBACK}:{ports.etcd_client}"
    peer = f"http://{LOOPBACK}:{ports.etcd_peer}"
    return [
        layout.binary("etcd"), "--name=default", f"--data-dir={layout.state_dir / 'etcd'}",
        f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        # A test cluster lives minutes; skipping fsync keeps a busy shared disk out of the latency.
        "--unsafe-no-fsync=true", "--log-level=warn",
    ]


def apiserver_args(layout: Layout, ports: Ports, pki: Pki) -> list[str]:
    return [
        layout.binary("kube-apiserver"),
        f"--etcd-servers=http://{LOOPBACK}:{ports.etcd_client}",
        f"--bind-address={LOOPBACK}", f"--advertise-address={LOOPBACK}",
        f"--secure-port={ports.apiserver}", f"--cert-dir={layout.state_dir / 'apiserver-certs'}",
        f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        "--authorization-mode=Node,RBAC", f"--enable-admission-plugins={ADMISSION_PLUGINS}",
        f"--service-account-issuer={SA_ISSUER}", f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}", "--allow-privileged=true",
        # The `kubernetes` Service's Endpoints may not hold a loopback address (validation says so),
        # and nothing in-cluster needs to reach the API: no reconciler.
        "--endpoint-reconciler-type=none", "--profiling=false", "--v=1",
    ]


def _component_common(layout: Layout, stem: str, port: int) -> list[str]:
    kc = str(layout.kubeconfig(stem))
    return [
        f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
        f"--bind-address={LOOPBACK}", f"--secure-port={port}",
        f"--cert-dir={layout.state_dir / (stem + '-certs')}", "--leader-elect=false",
        "--profiling=false", "--v=1",
    ]


def controller_manager_args(layout: Layout, ports: Ports, pki: Pki) -> list[str]:
    return [
        layout.binary("kube-controller-manager"),
        *_component_common(layout, "controller-manager", ports.controller_manager),
        # `*` = every default controller: garbage collector, deployment, replicaset, namespace,
        # serviceaccount-token, endpointslice, disruption (PDBs), nodelifecycle, ...
        "--controllers=*", f"--root-ca-file={pki.ca_cert}",
        f"--service-account-private-key-file={pki.sa_key}", "--use-service-account-credentials=true",
        f"--cluster-signing-cert-file={pki.ca_cert}", f"--cluster-signing-key-file={pki.ca_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}", "--allocate-node-cidrs=false",
        "--cluster-name=voxscale-dev",
    ]


def scheduler_args(layout: Layout, ports: Ports) -> list[str]:
    return [layout.binary("kube-scheduler"), *_component_common(layout, "scheduler", ports.scheduler)]


def kwok_args(layout: Layout, port: int, stages_file: Path, kubeconfig: Path) -> list[str]:
    """kwok plays the kubelet of annotated nodes only, so it can share a real cluster (kind) too."""
    return [
        layout.binary("kwok"), f"--kubeconfig={kubeconfig}", f"--config={stages_file}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}={KWOK_NODE_VALUE}",
        f"--node-ip={NODE_IP}", f"--cidr={POD_CIDR}", "--node-lease-duration-seconds=40",
        f"--server-address={LOOPBACK}:{port}",
    ]
