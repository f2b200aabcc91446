"""spec.placement: the API's rules, and one Deployment per pool per shard in the renders."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from tests.helpers import ROOT, example_doc, spec_with
from voxscale import names
from voxscale.decide.placement import PlacementPolicy, placement_problems
from voxscale.manifest import load_manifest
from voxscale.render import Owner, render_shard
from voxscale.render.crd import render_crd

OWNER = Owner("asr", "speech", "uid-1")
SPOT_TAINT = {"key": "lab.voxscale.io/spot", "operator": "Exists", "effect": "NoSchedule"}
PLACEMENT = {
    "pools": [
        {"name": "on-demand", "nodeSelector": {"lab.voxscale.io/capacity-type": "on-demand"},
         "pricePerHour": 1.2},
        {"name": "spot", "nodeSelector": {"lab.voxscale.io/capacity-type": "spot"},
         "tolerations": [SPOT_TAINT], "pricePerHour": 0.4, "capacityType": "Spot"},
    ]
}
CLASSES = [
    {"name": "live", "kind": "Interactive", "priority": 1, "pools": ["on-demand"]},
    {"name": "offline", "kind": "Batch", "priority": 2, "deadlineSeconds": 3600,
     "pools": ["spot", "on-demand"], "maxOnDemandReplicas": 4},
]


def _objects(**overrides: Any) -> list[dict[str, Any]]:
    spec = spec_with(**overrides)
    return render_shard(OWNER, spec, spec.shards[0])


def _deployments(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}


def test_without_placement_the_shard_keeps_its_one_deployment_byte_for_byte() -> None:
    plain = _objects()
    assert [o["kind"] for o in plain] == ["ConfigMap", "Service", "PodDisruptionBudget", "Deployment"]
    assert list(_deployments(plain)) == ["asr-eu-en"]
    dep = plain[-1]
    assert dep["spec"]["selector"]["matchLabels"] == names.selector_labels("asr", "eu-en")
    assert names.LABEL_POOL not in json.dumps(plain)
    # The same spec with the field given as absent renders the same bytes.
    raw = copy.deepcopy(example_doc()["spec"])
    assert json.dumps(_objects(**raw), sort_keys=True) == json.dumps(plain, sort_keys=True)


def test_with_placement_each_pool_gets_the_shards_deployment_with_its_selector_and_tolerations() -> None:
    objects = _objects(placement=PLACEMENT, classes=CLASSES)
    deps = _deployments(objects)
    assert list(deps) == ["asr-eu-en-on-demand", "asr-eu-en-spot"]
    spot = deps["asr-eu-en-spot"]
    assert spot["spec"]["selector"]["matchLabels"] == names.pool_selector_labels("asr", "eu-en", "spot")
    pod = spot["spec"]["template"]
    assert pod["metadata"]["labels"][names.LABEL_POOL] == "spot"
    assert pod["spec"]["nodeSelector"] == {names.TOPOLOGY_REGION: "eu-west",
                                           "lab.voxscale.io/capacity-type": "spot"}
    assert SPOT_TAINT in pod["spec"]["tolerations"]
    assert "tolerations" not in deps["asr-eu-en-on-demand"]["spec"]["template"]["spec"]
    # Same workers on every pool: only scheduling and the pool label differ.
    a, b = (copy.deepcopy(d["spec"]["template"]) for d in deps.values())
    for t in (a, b):
        t["metadata"]["labels"].pop(names.LABEL_POOL)
        t["spec"].pop("nodeSelector")
        t["spec"].pop("tolerations", None)
    assert a == b


def test_the_shards_service_and_pdb_select_every_pools_pods() -> None:
    objects = _objects(placement=PLACEMENT, classes=CLASSES)
    pod_labels = _deployments(objects)["asr-eu-en-spot"]["spec"]["template"]["metadata"]["labels"]
    service = next(o for o in objects if o["kind"] == "Service")
    pdb = next(o for o in objects if o["kind"] == "PodDisruptionBudget")
    assert service["metadata"]["name"] == "asr-eu-en"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


@pytest.mark.parametrize(
    ("placement", "classes", "message"),
    [
        ({"pools": [PLACEMENT["pools"][0], PLACEMENT["pools"][0]]}, None, "pool names must be unique"),
        (PLACEMENT, [CLASSES[0], {**CLASSES[1], "pools": ["spot", "gpu-x"]}],
         "gpu-x not in spec.placement.pools"),
        (None, CLASSES, "pools and maxOnDemandReplicas need spec.placement"),
    ],
)
def test_placement_rules_refuse_with_a_message(placement: Any, classes: Any, message: str) -> None:
    given: dict[str, Any] = {"classes": classes} if classes else {}
    if placement is not None:
        given["placement"] = placement
    with pytest.raises(ValidationError, match=message):
        spec_with(**given)


def test_a_negative_price_is_refused_by_the_schema() -> None:
    pools = [{**PLACEMENT["pools"][0], "pricePerHour": -1}]
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        spec_with(placement={"pools": pools})


def test_the_crd_carries_the_placement_cel_rules() -> None:
    rules = json.dumps(render_crd())
    assert "placement pool names must be unique" in rules
    assert "every pool a class names must be declared in spec.placement.pools" in rules


def test_the_placement_example_is_valid_priced_sanely_and_renders_two_deployments_per_shard() -> None:
    loaded = load_manifest(ROOT / "examples" / "placement-speechcluster.yaml")
    spec = loaded.spec
    policy = PlacementPolicy.from_spec(spec)
    assert policy is not None and placement_problems(policy) == []
    for shard in spec.shards:
        deps = _deployments(render_shard(OWNER, spec, shard))
        assert sorted(deps) == [f"asr-{shard.name}-on-demand", f"asr-{shard.name}-spot"]
