"""e2e fixtures: a real API server (local control plane + kwok GPU nodes, or E2E_KUBECONFIG)."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import FIGURES, E2ECluster, eventually, install_crd
from e2e.operator_process import OperatorProcess, operator_namespace, running_operator
from e2e.traffic import Telemetry, telemetry
from voxscale_lab.devcluster import ClusterError, Kubectl, up
from voxscale_lab.devcluster.binaries import ensure_binaries
from voxscale_lab.devcluster.components import Layout
from voxscale_lab.devcluster.fleet import attach_fleet, detach_fleet
from voxscale_lab.harness.gateway_api import install_gateway_api
from voxscale_lab.harness.prometheus import PrometheusServer, require_binary_for_test, run_prometheus


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: runs against a real Kubernetes API server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.e2e)
    # test_operator_routes.py's first scenario runs before the session installs the Gateway API
    # CRDs: any other module whose scenarios need them (test_operator_failover.py) runs after it.
    late = [i for i in items if "gateway_api_crds" in getattr(i, "fixturenames", ())
            and i.path.name != "test_operator_routes.py"]
    items[:] = [i for i in items if i not in late] + late


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("e2e figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    """The cluster under test, for the whole session.

    With E2E_KUBECONFIG set (e.g. a kind cluster) that cluster is used as is; otherwise a local
    control plane is built (first run only) and started under a temporary directory.
    """
    workdir = tmp_path_factory.mktemp("e2e")
    external = os.environ.get("E2E_KUBECONFIG")
    if external:
        yield from _external_cluster(Path(external), workdir)
        return
    try:
        local = up(workdir / "cluster")
    except ClusterError as e:
        pytest.fail(f"the local control plane did not start: {e}", pytrace=False)
    FIGURES["local cluster start (binaries present → all nodes Ready)"] = f"{local.start_seconds} s"
    try:
        yield E2ECluster(local.kubectl, workdir, local)
    finally:
        local.down()  # raises if any process or port is left behind


def _external_cluster(kubeconfig: Path, workdir: Path) -> Iterator[E2ECluster]:
    """E2E_KUBECONFIG's cluster, with our kwok (a local process) adding the fake GPU nodes to it."""
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail("E2E_KUBECONFIG is set but kubectl is not on PATH", pytrace=False)
    kubectl = Kubectl(binary, kubeconfig)
    try:
        fleet = attach_fleet(kubectl, Layout(ensure_binaries(("kwok",)), workdir / "kwok"))
    except ClusterError as e:
        pytest.fail(f"kwok could not add the fake GPU nodes to {kubeconfig}: {e}", pytrace=False)
    try:
        yield E2ECluster(kubectl, workdir)
    finally:
        detach_fleet(kubectl, fleet)


@pytest.fixture(scope="session")
def kubectl(cluster: E2ECluster) -> Kubectl:
    """kubectl bound to the admin kubeconfig of the cluster under test."""
    return cluster.kubectl


@pytest.fixture(scope="session")
def speechcluster_crd(kubectl: Kubectl) -> dict[str, Any]:
    """crds/speechcluster.yaml installed and Established (the stored CRD object)."""
    return install_crd(kubectl)


@pytest.fixture(scope="session")
def gateway_api_crds(kubectl: Kubectl) -> dict[str, dict[str, Any]]:
    """The real Gateway API CRDs (names.GATEWAY_API_RELEASE, experimental channel: route kinds,
    Gateway, GatewayClass, ReferenceGrant) installed and Established; plural -> stored CRD.
    Fetched once from the Go module proxy by e2e/cluster/gateway-api.sh."""
    try:
        return install_gateway_api(kubectl)
    except ClusterError as e:
        pytest.fail(f"the Gateway API CRDs could not be fetched: {e}", pytrace=False)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real, empty Prometheus on a loopback port (the lab harness's, as the integration tests use).

    Yields `voxscale_lab.harness.prometheus.PrometheusServer`. A test that needs history calls
    that module's `backfill` and then `run_prometheus` itself (blocks load at start-up).
    """
    require_binary_for_test("prometheus")
    data_dir = tmp_path_factory.mktemp("prometheus") / "data"
    data_dir.mkdir()
    with run_prometheus(data_dir) as server:
        yield server


@pytest.fixture
def namespace(kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test (PodSecurity `baseline` enforced), emptied and deleted after."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:5]}"
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "baseline"}},
        }
    )
    yield name
    # Pods normally wait out their 30 s grace period; a test's leftovers must not hold GPUs
    # that the next test counts on, so owners are removed without cascading and pods get 1 s.
    kubectl.run(
        "delete",
        "deployments,replicasets",
        "--all",
        "-n",
        name,
        "--cascade=orphan",
        "--wait=false",
        check=False,
    )

    def pods_gone() -> bool:
        if not kubectl.json("get", "pods", "-n", name)["items"]:
            return True
        kubectl.run("delete", "pods", "--all", "-n", name, "--grace-period=1", "--wait=false", check=False)
        return False

    eventually(f"pods of {name} gone", pods_gone, timeout=60, interval=1.0)
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


# Operator scenarios: one Prometheus (scraping the traffic server) and one operator per test
# module, named by the module's TAG; a fresh namespace per test. A module that needs something
# else (e.g. backfilled history per test) defines its own fixtures of the same names.


@pytest.fixture(scope="module")
def tel(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Telemetry]:
    with telemetry(tmp_path_factory.mktemp(f"telemetry-{request.module.TAG}")) as t:
        yield t


@pytest.fixture(scope="module")
def op(
    cluster: E2ECluster, speechcluster_crd: dict[str, Any], tel: Telemetry, request: pytest.FixtureRequest
) -> Iterator[OperatorProcess]:
    # Exactly this module's Prometheus: any other loopback port (the API server's) stays refused.
    with running_operator(cluster.kubectl, cluster.workdir, request.module.TAG, [tel.url]) as o:
        yield o


@pytest.fixture
def ns(
    kubectl: Kubectl, op: OperatorProcess, tel: Telemetry, request: pytest.FixtureRequest
) -> Iterator[str]:
    for name in operator_namespace(kubectl, op, request, request.module.TAG):
        yield name
        tel.traffic.forget(name)
        if tel.server is None or tel.server.process.poll() is not None:
            tel.start_prometheus()  # a scenario stopped it (metrics outage): the next test needs it
