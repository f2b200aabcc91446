"""The SpeechCluster CRD on a real API server: it installs, rejects bad specs clearly, applies defaults."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from e2e.helpers import example_speechcluster
from voxscale_lab.devcluster import Kubectl, KubectlError

Manifest = dict[str, Any]


def _set(path: str, value: Any) -> Callable[[Manifest], None]:
    """A mutation setting `a.b.0.c` (dots; integers index lists) to `value`."""
    *parents, last = path.split(".")

    def mutate(doc: Manifest) -> None:
        node: Any = doc
        for key in parents:
            node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
        node[int(last) if last.isdigit() else last] = value

    return mutate


def _both(*mutations: Callable[[Manifest], None]) -> Callable[[Manifest], None]:
    def mutate(doc: Manifest) -> None:
        for m in mutations:
            m(doc)

    return mutate


def _duplicate_first_shard(doc: Manifest) -> None:
    doc["spec"]["shards"].append(copy.deepcopy(doc["spec"]["shards"][0]))


LIVE = {"name": "live", "kind": "Interactive", "priority": 1}
OFFLINE = {"name": "offline", "kind": "Batch", "priority": 2, "deadlineSeconds": 3600}
CLASSES = [LIVE, OFFLINE]
"""spec.classes of examples/classes-speechcluster.yaml, less its third class (docs/classes.md)."""


SMALL = {"name": "asr-small", "requestsPerSecondPerReplica": 180}
"""spec.model.fallback: a smaller model beside asr-standin (docs/fallback.md)."""


ON_DEMAND = {"name": "on-demand", "nodeSelector": {"lab.voxscale.io/capacity-type": "on-demand"},
             "pricePerHour": 1.2}
"""A spec.placement pool (docs/placement.md)."""


def _classes(*classes: dict[str, Any]) -> Callable[[Manifest], None]:
    return _set("spec.classes", [dict(c) for c in classes])


def _many_batch_classes(doc: Manifest) -> None:
    batch = [{**OFFLINE, "name": f"b{p}", "priority": p} for p in range(2, 10)]
    doc["spec"]["classes"] = [LIVE, *batch]


# (what is wrong, how to make it wrong, words the API server's answer must contain)
BAD_MANIFESTS: list[tuple[str, Callable[[Manifest], None], tuple[str, ...]]] = [
    ("cluster_min_above_max", _both(_set("spec.scaling.minReplicas", 9), _set("spec.scaling.maxReplicas", 3)),
     ("spec.scaling", "minReplicas must be <= maxReplicas")),
    ("shard_min_above_max", _both(_set("spec.shards.0.minReplicas", 5), _set("spec.shards.0.maxReplicas", 2)),
     ("spec.shards[0]", "minReplicas must be <= maxReplicas")),
    ("unknown_field", _set("spec.scaling.maxReplica", 10), ('unknown field "spec.scaling.maxReplica"',)),
    ("bad_shard_name", _set("spec.shards.0.name", "EU_en"), ("spec.shards[0].name", "should match")),
    ("duplicate_shard", _duplicate_first_shard, ("spec.shards[3]", "Duplicate value")),
    ("empty_shards", _set("spec.shards", []), ("spec.shards", "at least 1 items")),
    ("absurd_percentile", _set("spec.slo.percentile", "p101"),
     ("spec.slo.percentile", 'Unsupported value: "p101"')),
    ("oversized_model_name", _set("spec.model.name", "m" * 64),
     ("spec.model.name", "may not be more than 63")),
    ("oversized_prometheus_query", _set("spec.prometheus.queries.rate", "x" * 2049),
     ("spec.prometheus.queries.rate", "may not be more than 2048")),
    ("preferred_batch_above_max", _set("spec.batching.preferredBatchSizes", [8, 64]),
     ("spec.batching", "every preferredBatchSizes entry must be <= maxBatchSize")),
    ("cluster_name_too_long", _set("metadata.name", "a" * 43),
     ("metadata.name must be at most 42 characters",)),
    ("zero_latency_slo", _set("spec.slo.latencyMs", 0), ("spec.slo.latencyMs", "should be greater than 0")),
    ("negative_gpus", _set("spec.worker.gpus", -1),
     ("spec.worker.gpus", "should be greater than or equal to 0")),
    ("bad_language_tag", _set("spec.shards.1.languages", ["German"]),
     ("spec.shards[1].languages[0]", "should match")),
    # spec.classes (docs/classes.md): the CEL rules and the schema bounds, each with its message.
    ("duplicate_class_name", _classes(LIVE, OFFLINE, {**OFFLINE, "priority": 3}),
     ("spec", "class names must be unique")),
    ("duplicate_class_priority", _classes(LIVE, OFFLINE, {**OFFLINE, "name": "archive"}),
     ("spec", "class priorities must be unique")),
    ("two_interactive_classes", _classes(LIVE, {**LIVE, "name": "live2", "priority": 2}),
     ("spec", "classes need exactly one Interactive class")),
    ("no_interactive_class", _classes(OFFLINE), ("spec", "classes need exactly one Interactive class")),
    ("deadline_on_interactive", _classes({**LIVE, "deadlineSeconds": 60}, OFFLINE),
     ("spec.classes[0]", "a Batch class needs deadlineSeconds; an Interactive class has none")),
    ("batch_without_deadline", _classes(LIVE, {k: v for k, v in OFFLINE.items() if k != "deadlineSeconds"}),
     ("spec.classes[1]", "a Batch class needs deadlineSeconds")),
    ("interactive_below_batch", _classes({**LIVE, "priority": 3}, OFFLINE),
     ("spec", "the Interactive class must have the highest priority")),
    ("classes_with_streaming",
     _both(_classes(*CLASSES), _set("spec.streaming", {"maxConcurrentSequencesPerReplica": 8})),
     ("spec", "classes and streaming cannot be combined")),
    ("classes_with_rate_query",
     _both(_classes(*CLASSES), _set("spec.prometheus.queries.rate", "sum(rate(x{selector}[{window}]))")),
     ("spec", "with classes, the interactive rate, latency and queue come from the")),
    ("empty_classes", _classes(), ("spec.classes", "at least 1 items")),
    ("nine_classes", _many_batch_classes, ("spec.classes", "must have at most 8 items")),
    ("class_priority_zero", _classes({**LIVE, "priority": 0}, OFFLINE),
     ("spec.classes[0].priority", "should be greater than or equal to 1")),
    ("bad_class_kind", _classes(LIVE, {**OFFLINE, "kind": "Bulk"}),
     ("spec.classes[1].kind", 'Unsupported value: "Bulk"')),
    # spec.model.fallback (docs/fallback.md)
    ("fallback_named_as_main", _set("spec.model.fallback", {**SMALL, "name": "asr-standin"}),
     ("spec.model", "model.fallback.name must differ from model.name")),
    ("fallback_without_capacity", _set("spec.model.fallback", {"name": "asr-small"}),
     ("spec.model.fallback", "model.fallback needs its capacity")),
    ("fallback_share_zero", _set("spec.model.fallback", {**SMALL, "maxShare": 0}),
     ("spec.model.fallback.maxShare", "should be greater than 0")),
    ("fallback_share_above_one", _set("spec.model.fallback", {**SMALL, "maxShare": 1.5}),
     ("spec.model.fallback.maxShare", "should be less than or equal to 1")),
    ("fallback_with_streaming",
     _both(_set("spec.model.fallback", SMALL),
           _set("spec.streaming", {"maxConcurrentSequencesPerReplica": 8})),
     ("spec", "model.fallback and streaming cannot be combined")),
    # spec.placement (docs/placement.md)
    ("duplicate_pool_name", _set("spec.placement", {"pools": [ON_DEMAND, ON_DEMAND]}),
     ("spec", "placement pool names must be unique")),
    ("class_names_an_undeclared_pool",
     _both(_set("spec.placement", {"pools": [ON_DEMAND]}), _classes(LIVE, {**OFFLINE, "pools": ["spot"]})),
     ("spec", "every pool a class names must be declared in spec.placement.pools")),
    ("class_pools_without_placement", _classes(LIVE, {**OFFLINE, "pools": ["spot"]}),
     ("spec", "class pools and maxOnDemandReplicas need spec.placement")),
    ("negative_pool_price", _set("spec.placement", {"pools": [{**ON_DEMAND, "pricePerHour": -1}]}),
     ("spec.placement.pools[0].pricePerHour", "should be greater than or equal to 0")),
    ("pool_without_node_selector", _set("spec.placement", {"pools": [{**ON_DEMAND, "nodeSelector": {}}]}),
     ("spec.placement.pools[0].nodeSelector", "should have at least 1 properties")),
    ("bad_capacity_type", _set("spec.placement", {"pools": [{**ON_DEMAND, "capacityType": "Reserved"}]}),
     ("spec.placement.pools[0].capacityType", 'Unsupported value: "Reserved"')),
]


def _create(kubectl: Kubectl, doc: Manifest) -> str:
    return kubectl.run("create", "--validate=strict", "-f", "-", stdin=yaml.safe_dump(doc)).stdout


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in BAD_MANIFESTS],
                         ids=[i for i, _, _ in BAD_MANIFESTS])
def test_the_api_server_rejects_a_bad_speechcluster_naming_the_problem(
    kubectl: Kubectl, speechcluster_crd: Manifest, namespace: str,
    mutate: Callable[[Manifest], None], expected: tuple[str, ...],
) -> None:
    doc = example_speechcluster(namespace)
    mutate(doc)
    with pytest.raises(KubectlError) as rejected:
        _create(kubectl, doc)
    for words in expected:
        assert words in rejected.value.stderr


def test_the_crd_is_established_with_its_served_version(speechcluster_crd: Manifest) -> None:
    conditions = {c["type"]: c["status"] for c in speechcluster_crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert speechcluster_crd["status"]["acceptedNames"]["kind"] == "SpeechCluster"


def test_a_shard_cannot_move_to_another_region(kubectl: Kubectl, speechcluster_crd: Manifest,
                                               namespace: str) -> None:
    doc = example_speechcluster(namespace)
    _create(kubectl, doc)
    patch = '[{"op": "replace", "path": "/spec/shards/0/region", "value": "us-east"}]'
    with pytest.raises(KubectlError) as rejected:
        kubectl.run("patch", "speechcluster", doc["metadata"]["name"], "-n", namespace,
                    "--type=json", "-p", patch)
    assert "spec.shards[0]" in rejected.value.stderr
    assert "a shard's region is immutable" in rejected.value.stderr


def _defaults(schema: Manifest, given: Any, path: str = "") -> list[tuple[str, Any]]:
    """(path, default) for every schema default that `given` leaves out, recursing into objects."""
    found: list[tuple[str, Any]] = []
    for key, prop in schema.get("properties", {}).items():
        here = f"{path}.{key}"
        present = isinstance(given, dict) and key in given
        if not present and "default" in prop:
            found.append((here, prop["default"]))
        if prop.get("type") == "object" and (present or "default" in prop):
            found += _defaults(prop, given.get(key) if present else prop["default"], here)
    return found


def _lookup(doc: Manifest, path: str) -> Any:
    node: Any = doc
    for key in path.strip(".").split("."):
        node = node[key]
    return node


def test_the_example_is_accepted_and_every_schema_default_is_applied(
    kubectl: Kubectl, speechcluster_crd: Manifest, namespace: str,
) -> None:
    doc = example_speechcluster(namespace)
    _create(kubectl, doc)
    stored = kubectl.json("get", "speechcluster", doc["metadata"]["name"], "-n", namespace)
    schema = speechcluster_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    expected = _defaults(schema["properties"]["spec"], doc["spec"], "spec")
    assert expected, "the CRD declares no default the example leaves out"
    for path, default in expected:
        value = _lookup(stored, path)
        if isinstance(default, dict):
            assert isinstance(value, dict), path
        else:
            assert value == default, path
    assert stored["spec"]["shards"] == doc["spec"]["shards"]


def test_a_speechcluster_with_classes_is_accepted_and_stored_as_given(
    kubectl: Kubectl, speechcluster_crd: Manifest, namespace: str,
) -> None:
    doc = example_speechcluster(namespace)
    doc["spec"]["classes"] = [LIVE, OFFLINE, {**OFFLINE, "name": "archive", "priority": 3,
                                              "deadlineSeconds": 28800}]
    _create(kubectl, doc)
    stored = kubectl.json("get", "speechcluster", doc["metadata"]["name"], "-n", namespace)
    assert stored["spec"]["classes"] == doc["spec"]["classes"]


def test_a_speechcluster_with_a_fallback_model_is_accepted_with_its_defaults(
    kubectl: Kubectl, speechcluster_crd: Manifest, namespace: str,
) -> None:
    doc = example_speechcluster(namespace)
    doc["spec"]["model"]["fallback"] = {**SMALL, "maxShare": 1}
    _create(kubectl, doc)
    stored = kubectl.json("get", "speechcluster", doc["metadata"]["name"], "-n", namespace)
    assert stored["spec"]["model"]["fallback"] == {
        **SMALL, "maxShare": 1, "version": 1, "holdSeconds": 60, "stepDown": 0.1}


def test_a_speechcluster_with_placement_is_accepted_with_its_defaults(
    kubectl: Kubectl, speechcluster_crd: Manifest, namespace: str,
) -> None:
    doc = example_speechcluster(namespace)
    spot = {"name": "spot", "nodeSelector": {"lab.voxscale.io/capacity-type": "spot"}, "pricePerHour": 0.4,
            "capacityType": "Spot", "tolerations": [{"key": "lab.voxscale.io/spot", "operator": "Exists"}]}
    doc["spec"]["placement"] = {"pools": [ON_DEMAND, spot]}
    doc["spec"]["classes"] = [{**LIVE, "pools": ["on-demand"]},
                              {**OFFLINE, "pools": ["spot", "on-demand"], "maxOnDemandReplicas": 4}]
    _create(kubectl, doc)
    stored = kubectl.json("get", "speechcluster", doc["metadata"]["name"], "-n", namespace)["spec"]
    assert stored["classes"] == doc["spec"]["classes"]
    assert stored["placement"]["currency"] == "USD"
    assert stored["placement"]["pools"][0]["capacityType"] == "OnDemand"
    assert stored["placement"]["pools"][1] == spot
