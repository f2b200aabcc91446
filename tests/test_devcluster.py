"""The local dev cluster's pure parts: fleet, kwok stages, PKI, command lines, process teardown."""

from __future__ import annotations

import datetime
import ipaddress
import re
import socket
from collections import Counter
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from voxscale import names
from voxscale_lab.devcluster import components as c
from voxscale_lab.devcluster import process
from voxscale_lab.devcluster.pki import IDENTITIES, write_pki
from voxscale_lab.devcluster.stages import WARMUP_EXPRESSION, pod_stages
from voxscale_lab.devcluster.topology import (
    CAPACITY_TYPE_LABEL,
    KWOK_NODE_ANNOTATION,
    PRICE_ANNOTATION,
    NodeShape,
    PricedPool,
    Topology,
    node_manifests,
)

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _labels(node: dict[str, object]) -> dict[str, str]:
    return node["metadata"]["labels"]  # type: ignore[index,no-any-return]


def test_the_default_fleet_has_three_gpu_nodes_per_zone_and_one_cpu_node_per_region() -> None:
    nodes = node_manifests()
    gpu = [n for n in nodes if names.GPU_PRODUCT_LABEL in _labels(n)]
    assert Counter(_labels(n)[names.TOPOLOGY_ZONE] for n in gpu) == {
        "eu-west-a": 3, "eu-west-b": 3, "us-east-a": 3, "us-east-b": 3}
    assert len(nodes) - len(gpu) == 2
    assert len({n["metadata"]["name"] for n in nodes}) == len(nodes)


def test_every_node_is_claimed_by_kwok_and_only_gpu_nodes_offer_gpus() -> None:
    for node in node_manifests(Topology(gpu_shape=NodeShape(gpus=4))):
        assert node["metadata"]["annotations"] == {KWOK_NODE_ANNOTATION: "fake"}
        allocatable = node["status"]["allocatable"]
        assert (names.GPU_RESOURCE in allocatable) == (names.GPU_PRODUCT_LABEL in _labels(node))
        assert allocatable.get(names.GPU_RESOURCE, "4") == "4"


def test_a_zone_label_always_belongs_to_its_region() -> None:
    for node in node_manifests(Topology(regions=(("ap", ("ap-1", "ap-2", "ap-3")),), cpu_nodes_per_region=4)):
        assert _labels(node)[names.TOPOLOGY_ZONE].startswith("ap-")


def test_the_warm_up_stage_reads_the_pods_annotation_as_seconds() -> None:
    running, ready, _ = pod_stages()
    assert names.ANNOTATION_WARMUP_SECONDS in WARMUP_EXPRESSION
    assert WARMUP_EXPRESSION.endswith('+ "s"')  # "20" → "20s", a Go duration kwok can parse
    assert ready["spec"]["delay"]["durationFrom"]["jq"]["expression"] == WARMUP_EXPRESSION
    assert "delay" not in running["spec"]
    assert "ready: false" in running["spec"]["next"]["statusTemplate"]
    assert "ready: true" in ready["spec"]["next"]["statusTemplate"]


def test_the_delete_stage_waits_until_the_deletion_timestamp_then_deletes() -> None:
    delete = pod_stages()[2]["spec"]
    assert delete["delay"]["durationFrom"]["jq"]["expression"] == ".metadata.deletionTimestamp"
    assert delete["next"] == {"delete": True}


def test_client_certs_carry_user_and_groups_and_chain_to_the_ca(tmp_path: Path) -> None:
    pki = write_pki(tmp_path, NOW)
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    for ident in IDENTITIES:
        cert = x509.load_pem_x509_certificate(pki.client(ident.file_stem)[0].read_bytes())
        cert.verify_directly_issued_by(ca)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ident.user
        orgs = {a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)}
        assert orgs == set(ident.groups)
        assert cert.not_valid_before_utc < NOW < cert.not_valid_after_utc


def test_the_serving_cert_names_loopback_and_the_in_cluster_service(tmp_path: Path) -> None:
    pki = write_pki(tmp_path, NOW)
    cert = x509.load_pem_x509_certificate(pki.serving_cert.read_bytes())
    sans = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)
    assert oct(pki.sa_key.stat().st_mode & 0o777) == "0o600"


PORTS = c.Ports(2379, 2380, 6443, 10257, 10259, 10247)
LAYOUT = c.Layout(Path("/bin-dir"), Path("/state"))


def _all_args(pki_dir: Path) -> list[str]:
    pki = write_pki(pki_dir, NOW)
    return [
        *c.etcd_args(LAYOUT, PORTS), *c.apiserver_args(LAYOUT, PORTS, pki),
        *c.controller_manager_args(LAYOUT, PORTS, pki), *c.scheduler_args(LAYOUT, PORTS),
        *c.kwok_args(LAYOUT, PORTS.kwok, Path("/state/stages.yaml"), Path("/state/kwok.kubeconfig")),
    ]


def test_every_listener_binds_loopback_only(tmp_path: Path) -> None:
    args = _all_args(tmp_path)
    hosts = re.findall(r"(?:https?://|address=)([0-9.]+)", " ".join(args))
    assert hosts and set(hosts) == {"127.0.0.1"}
    assert not any("0.0.0.0" in a for a in args)


def test_the_apiserver_enforces_rbac_node_authorization_and_pod_security(tmp_path: Path) -> None:
    args = c.apiserver_args(LAYOUT, PORTS, write_pki(tmp_path, NOW))
    assert "--authorization-mode=Node,RBAC" in args
    plugins = next(a for a in args if a.startswith("--enable-admission-plugins=")).split("=")[1].split(",")
    assert {"PodSecurity", "NodeRestriction", "ServiceAccount"} <= set(plugins)


def test_the_controller_manager_runs_every_controller_and_signs_sa_tokens(tmp_path: Path) -> None:
    pki = write_pki(tmp_path, NOW)
    args = c.controller_manager_args(LAYOUT, PORTS, pki)
    assert "--controllers=*" in args
    assert f"--service-account-private-key-file={pki.sa_key}" in args
    assert f"--root-ca-file={pki.ca_cert}" in args


def test_a_kubeconfig_has_one_consistent_context() -> None:
    config = c.kubeconfig("https://127.0.0.1:6443", Path("/ca.crt"), {"token": "t"})
    context = config["contexts"][0]["context"]
    assert config["current-context"] == config["contexts"][0]["name"]
    assert context == {"cluster": config["clusters"][0]["name"], "user": config["users"][0]["name"]}


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = process.free_ports(6)
    assert len(set(ports)) == 6
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[0]))


def test_stop_kills_the_whole_process_group_and_leaves_nothing(tmp_path: Path) -> None:
    # A parent that ignores SIGTERM, with a child of its own: only a group SIGKILL ends both.
    script = "trap '' TERM; sleep 300 & echo $! > child.pid; wait"
    proc = process.start("stubborn", ["bash", "-c", f"cd {tmp_path} && {script}"], tmp_path / "s.log")
    process.wait_until("the child", (tmp_path / "child.pid").exists, timeout=30, procs=[proc])
    process.stop([proc], grace=0.5)
    assert not process.alive(proc.pid)
    assert process.leftovers([proc], ()) == []  # the group, child included, is gone


def test_wait_until_names_the_component_that_died(tmp_path: Path) -> None:
    proc = process.start("crasher", ["bash", "-c", "echo boom; exit 3"], tmp_path / "c.log")
    with pytest.raises(process.ClusterError, match=r"crasher exited while waiting for godot[\s\S]*boom"):
        process.wait_until("godot", lambda: False, timeout=30, procs=[proc])


def test_a_priced_spot_pool_is_labelled_tainted_priced_and_matches_its_placement_pool() -> None:

    pool = PricedPool("spot", 3, "eu-west", "eu-west-a", spot=True, price_per_hour=0.4)
    nodes = pool.manifests()
    assert [n["metadata"]["name"] for n in nodes] == ["spot-0", "spot-1", "spot-2"]
    node = nodes[0]
    assert node["metadata"]["labels"][CAPACITY_TYPE_LABEL] == "spot"
    assert node["metadata"]["annotations"][PRICE_ANNOTATION] == "0.4"
    placement = pool.placement_pool()
    assert placement["nodeSelector"].items() <= node["metadata"]["labels"].items()
    (taint,) = node["spec"]["taints"]
    (toleration,) = placement["tolerations"]
    assert (toleration["key"], toleration["effect"]) == (taint["key"], taint["effect"])
    on_demand = PricedPool("od", 1, "eu-west", "eu-west-a", price_per_hour=1.2)
    assert "spec" not in on_demand.manifests()[0] and "tolerations" not in on_demand.placement_pool()
    assert [n["metadata"]["name"] for n in pool.manifests(start=2)] == ["spot-2"]
