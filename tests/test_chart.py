"""The Helm chart: lint, render both watch modes, validate offline, and hold RBAC to what the code calls."""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.helpers import ROOT
from voxscale import k8s, names
from voxscale.cli import build_parser
from voxscale.metrics.endpoints import DEFAULT_ALLOWED

CHART = ROOT / "charts" / "voxscale"
KUBERNETES_VERSION = "1.32.0"
RELEASE, RELEASE_NS = "voxscale", "voxscale-system"
# Kinds from the Prometheus Operator: kubernetes_validate has no schema for them.
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
TOKEN_SECRETS = ["prometheus-token", "thanos-token"]

# (apiGroup, resource, verb) the operator needs in a watched namespace, mirroring voxscale/k8s.py
# and kopf. SSA of an object that does not exist yet is authorized as `create`, hence create+patch.
NAMESPACED_ALLOWED = {
    *{("voxscale.io", "speechclusters", v) for v in ("get", "list", "watch", "patch")},
    *{("voxscale.io", "speechclusters/status", v) for v in ("get", "patch")},
    *{("apps", "deployments", v) for v in ("get", "list", "create", "patch", "delete")},
    *{("", r, v) for r in ("configmaps", "services") for v in ("list", "create", "patch", "delete")},
    *{("policy", "poddisruptionbudgets", v) for v in ("list", "create", "patch", "delete")},
    ("", "pods", "list"),
    ("", "pods", "patch"),  # the deletion cost before a streaming shard's scale-in
    ("autoscaling", "horizontalpodautoscalers", "list"),
    ("", "events", "create"),
    ("", "secrets", "get"),
    # routing.py applies the SpeechCluster's route and deletes it by name: never reads or lists it.
    *{(names.GATEWAY_API_GROUP, plural, v) for _, plural in names.ROUTE_KINDS.values()
      for v in ("create", "patch", "delete")},
}
# kopf's CRD watch is a cluster-scoped read in both modes.
CLUSTER_SCOPED_ALLOWED = {
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
}
# With --namespace, kopf also lists/watches Namespaces before serving (else ~55 s of retries).
NAMESPACE_DISCOVERY = {("", "namespaces", "list"), ("", "namespaces", "watch")}
FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "*"}

CLUSTER: dict[str, Any] = {"prometheus": {"tokenSecretNames": TOKEN_SECRETS}}
NAMESPACED: dict[str, Any] = {
    "watch": {"mode": "namespaced", "namespaces": ["speech-eu", "speech-us"]},
    "prometheus": {"tokenSecretNames": TOKEN_SECRETS},
}
EVERYTHING_ON: dict[str, Any] = {
    **CLUSTER,
    "serviceMonitor": {"enabled": True},
    "workerPodMonitor": {"enabled": True},
    "prometheusRule": {"enabled": True},
    "dashboards": {"enabled": True},
    "image": {
        "repository": "registry.example/voxscale",
        "digest": "sha256:" + "a" * 64,
        "pullPolicy": "IfNotPresent",
    },
}
SCENARIOS = {"cluster": CLUSTER, "namespaced": NAMESPACED, "defaults": {}, "everything-on": EVERYTHING_ON}


@functools.cache
def helm_binary() -> str:
    """helm from scripts/helm.sh; its absence is a failure that says how to build it, not a skip."""
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "helm.sh"), "path"], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        pytest.fail(f"helm is required for the chart tests: {out.stderr.strip()}", pytrace=False)
    return out.stdout.strip().splitlines()[-1]


def helm(*args: str, values: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(values or {}, f)
        f.flush()
        return subprocess.run(
            [helm_binary(), *args, "--kube-version", KUBERNETES_VERSION, "--values", f.name],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )


@functools.cache
def _render_cached(values_json: str, include_crds: bool) -> tuple[dict[str, Any], ...]:
    extra = ["--include-crds"] if include_crds else []
    out = helm(
        "template", RELEASE, str(CHART), "--namespace", RELEASE_NS, *extra, values=json.loads(values_json)
    )
    assert out.returncode == 0, out.stderr
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def render(values: dict[str, Any], *, include_crds: bool = False) -> list[dict[str, Any]]:
    """`helm template` of the chart with these values, as a list of objects."""
    return list(_render_cached(json.dumps(values, sort_keys=True), include_crds))


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def deployment(values: dict[str, Any]) -> dict[str, Any]:
    (dep,) = of_kind(render(values), "Deployment")
    return dep


def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (g, r, v)
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }


def all_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for d in docs if d["kind"] in ("Role", "ClusterRole") for rule in d["rules"]]


# ---------------------------------------------------------------------------------------- chart


def test_chart_metadata_is_helm_v2_at_version_0_1_0() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["version"], chart["appVersion"]) == ("v2", "0.1.0", "0.1.0")


def test_chart_crd_is_byte_identical_to_the_generated_crd() -> None:
    assert (CHART / "crds" / "speechcluster.yaml").read_bytes() == (
        ROOT / "crds" / "speechcluster.yaml"
    ).read_bytes()


def test_default_values_satisfy_the_values_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)


@pytest.mark.parametrize(
    "values", [CLUSTER, NAMESPACED, EVERYTHING_ON], ids=["cluster", "namespaced", "all-on"]
)
def test_helm_lint_passes_strictly(values: dict[str, Any]) -> None:
    out = helm("lint", "--strict", str(CHART), values=values)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    "values",
    [
        {"watch": {"mode": "namespaced", "namespaces": []}},
        {"watch": {"mode": "cluster", "namespaces": ["speech"]}},
        {"watch": {"mode": "everywhere", "namespaces": []}},
        {"operator": {"metricsPort": 80}},
        {"prometheus": {"tokenSecretNames": ["Not_A_Name"]}},
        {"image": {"repository": "x", "digest": "latest", "pullPolicy": "Always"}},
        {"replicas": 2},
        {"prometheus": {"allowedEndpoints": []}},
        {"prometheus": {"allowedEndpoints": ["*"]}},
        {"prometheus": {"allowedEndpoints": ["prom .svc"]}},
    ],
    ids=[
        "namespaced-without-namespaces",
        "cluster-with-namespaces",
        "unknown-mode",
        "privileged-port",
        "bad-secret-name",
        "digest-not-sha256",
        "unknown-key",
        "no-allowed-endpoint",
        "allow-every-host",
        "endpoint-with-space",
    ],
)
def test_the_values_schema_refuses_a_bad_install(values: dict[str, Any]) -> None:
    out = helm("template", RELEASE, str(CHART), values=values)
    assert out.returncode != 0
    assert "schema" in out.stderr.lower()


@pytest.mark.parametrize("name", list(SCENARIOS), ids=list(SCENARIOS))
def test_every_rendered_object_validates_against_the_kubernetes_schemas(name: str) -> None:
    docs = render(SCENARIOS[name], include_crds=True)
    for doc in docs:
        if doc["kind"] in MONITORING_KINDS:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            assert doc["metadata"]["name"] and doc["metadata"]["namespace"] == RELEASE_NS
            assert isinstance(doc["spec"], dict) and doc["spec"]
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert {d["kind"] for d in docs} >= {"CustomResourceDefinition", "Deployment", "ServiceAccount"}


def test_the_monitoring_objects_render_only_when_switched_on() -> None:
    assert not {d["kind"] for d in render(CLUSTER)} & MONITORING_KINDS
    kinds = {d["kind"] for d in render(EVERYTHING_ON)}
    assert kinds >= MONITORING_KINDS | {"ConfigMap"}


# ---------------------------------------------------------------------------------------- RBAC


@pytest.mark.parametrize("name", list(SCENARIOS), ids=list(SCENARIOS))
def test_rbac_has_no_wildcard_and_no_privilege_verbs(name: str) -> None:
    docs = render(SCENARIOS[name])
    rules = all_rules(docs)
    assert rules
    for rule in rules:
        assert "*" not in json.dumps(rule)
        assert not set(rule["verbs"]) & FORBIDDEN_VERBS
        assert "nonResourceURLs" not in rule


@pytest.mark.parametrize("name", list(SCENARIOS), ids=list(SCENARIOS))
def test_secrets_are_readable_only_by_name_and_never_listed(name: str) -> None:
    for rule in all_rules(render(SCENARIOS[name])):
        if "secrets" in rule["resources"]:
            assert rule["resources"] == ["secrets"] and rule["verbs"] == ["get"]
            assert rule["resourceNames"] == SCENARIOS[name]["prometheus"]["tokenSecretNames"]


def test_without_token_secret_names_there_is_no_secret_rule_at_all() -> None:
    # An empty resourceNames list would grant every Secret: the rule must vanish instead.
    assert not any("secrets" in r["resources"] for r in all_rules(render({})))


def test_cluster_mode_grants_exactly_what_the_operator_calls() -> None:
    docs = render(CLUSTER)
    (role,) = of_kind(docs, "ClusterRole")
    assert grants(role["rules"]) == NAMESPACED_ALLOWED | CLUSTER_SCOPED_ALLOWED
    assert not of_kind(docs, "Role") and not of_kind(docs, "RoleBinding")
    (binding,) = of_kind(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": RELEASE_NS}]


def test_namespaced_mode_grants_a_role_per_namespace_and_only_discovery_reads_cluster_wide() -> None:
    docs = render(NAMESPACED)
    roles = of_kind(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["speech-eu", "speech-us"]
    for role in roles:
        assert grants(role["rules"]) == NAMESPACED_ALLOWED
    bindings = of_kind(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["speech-eu", "speech-us"]
    assert all(b["roleRef"]["kind"] == "Role" for b in bindings)
    (cluster_role,) = of_kind(docs, "ClusterRole")
    assert grants(cluster_role["rules"]) == CLUSTER_SCOPED_ALLOWED | NAMESPACE_DISCOVERY


def test_every_child_kind_the_operator_applies_can_be_created_patched_listed_and_deleted() -> None:
    # Cross-check the allow-list with the code: k8s.CHILD_KINDS is what Kube.apply and
    # Kube.delete_shards_except touch.
    for group_version, plural in k8s.CHILD_KINDS.values():
        group = "" if group_version == "api/v1" else group_version.split("/")[1]
        for verb in ("list", "create", "patch", "delete"):
            assert (group, plural, verb) in NAMESPACED_ALLOWED
    assert (names.GROUP, names.PLURAL, "watch") in NAMESPACED_ALLOWED


# ---------------------------------------------------------------------------------------- pod


def test_the_operator_runs_one_replica_recreated_never_two_at_once() -> None:
    spec = deployment(CLUSTER)["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_the_operator_pod_meets_the_restricted_profile_with_a_read_only_root() -> None:
    pod = deployment(CLUSTER)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is True
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert {m["mountPath"]: "emptyDir" in volumes[m["name"]] for m in container["volumeMounts"]} == {
        "/tmp": True
    }
    assert not any(k in pod for k in ("hostNetwork", "hostPID", "hostIPC"))
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_probes_hit_kopf_liveness_endpoint_on_its_port() -> None:
    (container,) = deployment(CLUSTER)["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"healthz": 8080, "metrics": 8081}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}


@pytest.mark.parametrize(
    ("values", "namespaces"),
    [(CLUSTER, []), (NAMESPACED, ["speech-eu", "speech-us"])],
    ids=["cluster-watches-all", "namespaced-watches-each"],
)
def test_the_command_line_is_one_voxscale_run_accepts(values: dict[str, Any], namespaces: list[str]) -> None:
    (container,) = deployment(values)["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["voxscale"]
    args = build_parser().parse_args(container["args"])
    assert (args.command, args.namespace) == ("run", namespaces)
    assert (args.liveness_port, args.metrics_port, args.verbose) == (8080, 8081, False)


def test_the_default_metrics_endpoint_allow_list_is_the_in_cluster_service_pattern() -> None:
    (container,) = deployment(CLUSTER)["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.allowed_metrics_endpoint == list(DEFAULT_ALLOWED) == ["*.svc", "*.svc.cluster.local"]


def test_allowed_endpoints_become_one_flag_each_that_voxscale_run_accepts() -> None:
    entries = ["prometheus-operated.monitoring.svc:9090", "https://thanos.example.com/tenant-a"]
    (container,) = deployment({**CLUSTER, "prometheus": {"allowedEndpoints": entries}})["spec"][
        "template"]["spec"]["containers"]
    assert [a for a in container["args"] if a.startswith("--allowed")] == [
        f"--allowed-metrics-endpoint={e}" for e in entries
    ]
    assert build_parser().parse_args(container["args"]).allowed_metrics_endpoint == entries


def test_the_image_is_pulled_by_digest_when_one_is_given() -> None:
    (container,) = deployment(EVERYTHING_ON)["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"registry.example/voxscale:0.1.0@sha256:{'a' * 64}"


def test_the_metrics_service_fronts_port_8081_of_the_operator_pod() -> None:
    docs = render(CLUSTER)
    (svc,) = of_kind(docs, "Service")
    assert svc["spec"]["ports"] == [
        {"name": "metrics", "port": 8081, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = deployment(CLUSTER)["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()


def test_the_service_monitor_keeps_the_speechcluster_namespace_label() -> None:
    (sm,) = of_kind(render(EVERYTHING_ON), "ServiceMonitor")
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["honorLabels"] is True


def test_the_worker_pod_monitor_relabels_the_labels_the_promql_selects_on() -> None:
    (pm,) = of_kind(render(EVERYTHING_ON), "PodMonitor")
    (endpoint,) = pm["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == names.PORT_NAME_METRICS
    targets = {r["targetLabel"] for r in endpoint["relabelings"]}
    assert targets == {names.PROM_LABEL_CLUSTER, names.PROM_LABEL_SHARD}
    assert pm["spec"]["selector"]["matchLabels"][names.LABEL_NAME] == names.WORKER_APP
